//! The claims carried by a Natter access token.

use serde::{Deserialize, Serialize};

/// Claims of an access token. `sid` names the session (refresh token family) so a logout
/// or a detected refresh-token reuse can deny every access token of that session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// Token id, unique per token; deny-listed on logout.
    pub jti: String,
    /// Session id.
    pub sid: String,
    /// The username at issue time, for display without a lookup.
    pub name: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

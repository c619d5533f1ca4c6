//! Verifies access tokens locally: signature by `kid` from the JWKS, issuer, audience,
//! expiry, and the deny-list. No call to the auth service per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

use super::keys::decoding_keys;
use super::{ALGORITHM, AccessClaims, Denylist};
use crate::kv::KvError;

/// Why a token was refused. The messages are safe to show to clients.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed JWT, wrong algorithm, bad signature, wrong issuer or audience.
    #[error("invalid token")]
    Invalid,
    /// The `kid` is not among the known keys.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
    /// Logged out or its session was revoked.
    #[error("token revoked")]
    Revoked,
    /// The deny-list could not be consulted; failing closed.
    #[error("token check unavailable")]
    Unavailable(#[from] KvError),
}

/// Checks access tokens. Cheap to clone; keys are replaced in place on rotation.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<RwLock<HashMap<String, DecodingKey>>>,
    validation: Arc<Validation>,
    denylist: Denylist,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self.read_keys().keys().cloned().collect();
        f.debug_struct("TokenVerifier")
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for tokens from `issuer` to `audience`, with keys from `jwks`.
    pub fn new(jwks: &JwkSet, issuer: &str, audience: &str, denylist: Denylist) -> Self {
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let verifier = Self {
            keys: Arc::default(),
            validation: Arc::new(validation),
            denylist,
        };
        verifier.set_keys(jwks);
        verifier
    }

    /// Replaces the known keys (after a rotation or a JWKS refresh).
    pub fn set_keys(&self, jwks: &JwkSet) {
        let keys = decoding_keys(jwks).into_iter().collect();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// The kids currently trusted.
    pub fn kids(&self) -> Vec<String> {
        self.read_keys().keys().cloned().collect()
    }

    /// The deny-list consulted by [`TokenVerifier::verify`].
    pub fn denylist(&self) -> &Denylist {
        &self.denylist
    }

    /// Full check: signature, claims, expiry and the deny-list.
    #[tracing::instrument(name = "token.verify", skip_all, err(level = "debug"))]
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let claims = self.verify_signature(token)?;
        if self.denylist.is_denied(&claims).await? {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Signature and claims only, without the deny-list.
    pub fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let keys = self.read_keys();
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, DecodingKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }
}

//! Access tokens: the Ed25519 key set, the claims, signing (auth only) and local
//! verification (every service), plus the deny-list that makes logout immediate.

mod claims;
mod denylist;
pub mod jwks;
mod keys;
mod signatures;
mod signer;
mod verifier;

pub use claims::AccessClaims;
pub use denylist::{Denylist, REVOCATIONS_TOPIC, Revocation};
pub use jsonwebtoken::jwk::JwkSet;
pub use keys::{KeyError, KeySet, SigningKeySpec};
pub use signer::{IssuedToken, TokenSigner};
pub use verifier::{TokenError, TokenVerifier};

/// The JWT `alg` Natter signs with.
pub const ALGORITHM: jsonwebtoken::Algorithm = jsonwebtoken::Algorithm::EdDSA;

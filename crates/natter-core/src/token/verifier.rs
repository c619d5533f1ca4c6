//! Verifies access tokens locally: signature by `kid` from the JWKS, issuer, audience,
//! expiry, and the deny-list. No call to the auth service per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use sha2::{Digest as _, Sha256};

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
///
/// A client presents the same access token many times, so tokens whose signature has
/// been checked are remembered (bounded, cleared on key changes): a repeat costs a hash
/// lookup and an expiry check instead of an Ed25519 verification (~40 µs).
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<RwLock<HashMap<String, DecodingKey>>>,
    validation: Arc<Validation>,
    verified: Arc<Mutex<VerifiedCache>>,
    denylist: Denylist,
}

/// Two generations of verified tokens: when the young one is full it becomes the old one
/// and the previous old one is dropped, so memory stays within two generations.
#[derive(Default)]
struct VerifiedCache {
    young: HashMap<Digest, Arc<AccessClaims>>,
    old: HashMap<Digest, Arc<AccessClaims>>,
}

/// A token's SHA-256, the cache's key: 32 bytes instead of the ~300 of the token, and no
/// other token can be made to match a verified one's.
type Digest = [u8; 32];

fn digest(token: &str) -> Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// Tokens per cache generation (about 0.3 KiB each).
const CACHE_GENERATION: usize = 4096;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self.read_keys().keys().cloned().collect();
        f.debug_struct("TokenVerifier")
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

impl VerifiedCache {
    fn get(&mut self, token: &Digest) -> Option<Arc<AccessClaims>> {
        if let Some(claims) = self.young.get(token) {
            return Some(claims.clone());
        }
        let claims = self.old.remove(token)?;
        self.insert(*token, claims.clone());
        Some(claims)
    }

    fn insert(&mut self, token: Digest, claims: Arc<AccessClaims>) {
        if self.young.len() >= CACHE_GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(token, claims);
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
            verified: Arc::default(),
            denylist,
        };
        verifier.set_keys(jwks);
        verifier
    }

    /// Replaces the known keys (after a rotation or a JWKS refresh).
    pub fn set_keys(&self, jwks: &JwkSet) {
        let keys = decoding_keys(jwks).into_iter().collect();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        *self.cache() = VerifiedCache::default();
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
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_shared(token).await.map(Arc::unwrap_or_clone)
    }

    /// [`TokenVerifier::verify`], sharing the claims with the cache (a connection keeps
    /// them for its life).
    #[tracing::instrument(name = "token.verify", skip_all, err(level = "debug"))]
    pub async fn verify_shared(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let claims = self.verified(token)?;
        if self.denylist.is_denied(&claims).await? {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Signature and claims only, without the deny-list.
    pub fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verified(token).map(Arc::unwrap_or_clone)
    }

    fn verified(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let key = digest(token);
        if let Some(claims) = self.cache().get(&key) {
            let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
            if claims.exp + leeway < crate::time::now_secs() {
                return Err(TokenError::Expired);
            }
            return Ok(claims);
        }
        let claims = Arc::new(self.decode(token)?);
        self.cache().insert(key, claims.clone());
        Ok(claims)
    }

    fn decode(&self, token: &str) -> Result<AccessClaims, TokenError> {
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

    fn cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, DecodingKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;
    use crate::token::{KeySet, TokenSigner};

    fn verifier_for(keys: &KeySet) -> TokenVerifier {
        let denylist = Denylist::new(Arc::new(MemoryKv::default()));
        TokenVerifier::new(&keys.jwks().unwrap(), "natter", "natter", denylist)
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let keys = KeySet::generate(0);
        let signer = TokenSigner::new(&keys, "natter", "natter", 10).unwrap();
        let verifier = verifier_for(&keys);
        let now = crate::time::now_secs();
        let token = signer.sign("u", "n", "s", now).token;
        assert!(verifier.verify_signature(&token).is_ok());
        assert!(verifier.verify_signature(&token).is_ok(), "from the cache");
        // Pretend the remembered claims ran out: the cache must re-check expiry.
        let mut cache = verifier.cache();
        let claims = cache.young.get_mut(&digest(&token)).unwrap();
        Arc::make_mut(claims).exp = now - 60;
        drop(cache);
        assert!(matches!(
            verifier.verify_signature(&token),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn removing_a_key_forgets_the_tokens_it_signed() {
        let mut keys = KeySet::generate(0);
        let signer = TokenSigner::new(&keys, "natter", "natter", 900).unwrap();
        let verifier = verifier_for(&keys);
        let token = signer.sign("u", "n", "s", crate::time::now_secs()).token;
        assert!(verifier.verify_signature(&token).is_ok());
        keys.rotate(10, 0);
        keys.rotate(20, 0);
        verifier.set_keys(&keys.jwks().unwrap());
        assert!(matches!(
            verifier.verify_signature(&token),
            Err(TokenError::UnknownKey)
        ));
    }

    #[test]
    fn the_cache_stays_within_two_generations() {
        let mut cache = VerifiedCache::default();
        let claims = AccessClaims {
            iss: String::new(),
            aud: String::new(),
            sub: String::new(),
            jti: String::new(),
            sid: String::new(),
            name: String::new(),
            iat: 0,
            exp: 0,
        };
        for i in 0..(CACHE_GENERATION * 3) {
            cache.insert(digest(&i.to_string()), Arc::new(claims.clone()));
        }
        assert!(cache.young.len() + cache.old.len() <= 2 * CACHE_GENERATION);
        assert!(
            cache
                .get(&digest(&(CACHE_GENERATION * 3 - 1).to_string()))
                .is_some()
        );
        assert!(cache.get(&digest("0")).is_none());
    }
}

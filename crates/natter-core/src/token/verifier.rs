//! Verifies access tokens locally: signature by `kid` from the JWKS, issuer, audience,
//! expiry, and the deny-list. No call to the auth service per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_zebra::batch::Item;
use ed25519_zebra::{Signature, VerificationKeyBytes};
use jsonwebtoken::jwk::JwkSet;
use sha2::{Digest as _, Sha256};

use super::keys::verification_keys;
use super::signatures::{self, Signatures};
use super::{ALGORITHM, AccessClaims, Denylist};
use crate::kv::KvError;

/// Seconds past `exp` a token is still accepted (clocks of replicas differ a little).
const LEEWAY_SECS: i64 = 5;

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
/// lookup and an expiry check instead of an Ed25519 verification (~30 µs). Tokens new to
/// the verifier that arrive together (a reconnect storm) have their signatures checked in
/// batches ([`signatures`]).
///
/// jsonwebtoken takes the token apart; its `decode` checks one signature at a time, so
/// the signature and the three claims it would check (issuer, audience, expiry) are
/// checked here.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<RwLock<HashMap<String, VerificationKeyBytes>>>,
    expected: Arc<Expected>,
    verified: Arc<Mutex<VerifiedCache>>,
    signatures: Signatures,
    denylist: Denylist,
}

/// What a token's `iss` and `aud` must be.
struct Expected {
    issuer: String,
    audience: String,
}

/// A token taken apart and its claims checked; its signature still to check.
struct Unchecked {
    claims: AccessClaims,
    signature: Item,
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
        let expected = Expected {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        };
        let verifier = Self {
            keys: Arc::default(),
            expected: Arc::new(expected),
            verified: Arc::default(),
            signatures: Signatures::default(),
            denylist,
        };
        verifier.set_keys(jwks);
        verifier
    }

    /// Replaces the known keys (after a rotation or a JWKS refresh).
    pub fn set_keys(&self, jwks: &JwkSet) {
        let keys = verification_keys(jwks).into_iter().collect();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        *self.cache() = VerifiedCache::default();
    }

    /// The kids currently trusted.
    pub fn kids(&self) -> Vec<String> {
        self.read_keys().keys().cloned().collect()
    }

    /// Adds `natter_token_signatures_checked_total` and
    /// `natter_token_signature_batches_total` to `metrics`: signatures of tokens new to
    /// this process checked in batches, and the batches (their ratio is the mean batch
    /// size). Once per process: clones share the counts, and a second registration would
    /// list each series twice.
    pub fn register_metrics(&self, metrics: &crate::http::Metrics) {
        let counts = self.signatures.counts().clone();
        metrics.register(|registry| {
            registry.register(
                "token_signatures_checked",
                "Signatures of access tokens new to this process, checked in batches",
                counts.checked,
            );
            registry.register(
                "token_signature_batches",
                "Batches the signatures of new access tokens were checked in",
                counts.batches,
            );
        });
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
        let key = digest(token);
        let claims = match self.remembered(&key)? {
            Some(claims) => claims,
            None => {
                let Unchecked { claims, signature } = self.unchecked(token)?;
                if !self.signatures.check(signature).await {
                    return Err(TokenError::Invalid);
                }
                self.remember(key, claims)
            }
        };
        if self.denylist.is_denied(&claims).await? {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Signature and claims only, without the deny-list.
    pub fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let key = digest(token);
        if let Some(claims) = self.remembered(&key)? {
            return Ok(Arc::unwrap_or_clone(claims));
        }
        let Unchecked { claims, signature } = self.unchecked(token)?;
        if !signatures::check_one(signature) {
            return Err(TokenError::Invalid);
        }
        Ok(Arc::unwrap_or_clone(self.remember(key, claims)))
    }

    /// The claims of a token verified before, if they have not expired since.
    fn remembered(&self, key: &Digest) -> Result<Option<Arc<AccessClaims>>, TokenError> {
        let Some(claims) = self.cache().get(key) else {
            return Ok(None);
        };
        unexpired(&claims)?;
        Ok(Some(claims))
    }

    fn remember(&self, key: Digest, claims: AccessClaims) -> Arc<AccessClaims> {
        let claims = Arc::new(claims);
        self.cache().insert(key, claims.clone());
        claims
    }

    /// Takes `token` apart and checks its header and claims; the signature is left to
    /// the caller (checked last: it is the costly part).
    fn unchecked(&self, token: &str) -> Result<Unchecked, TokenError> {
        let decoded = jsonwebtoken::dangerous::insecure_decode::<AccessClaims>(token)
            .map_err(|_| TokenError::Invalid)?;
        if decoded.header.alg != ALGORITHM {
            return Err(TokenError::Invalid);
        }
        let kid = decoded.header.kid.ok_or(TokenError::Invalid)?;
        let key = *self.read_keys().get(&kid).ok_or(TokenError::UnknownKey)?;
        let claims = decoded.claims;
        let expected = &self.expected;
        if claims.iss != expected.issuer || claims.aud != expected.audience {
            return Err(TokenError::Invalid);
        }
        unexpired(&claims)?;
        // What was signed: the header and the claims as sent, with the dot between.
        let (signed, encoded) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let bytes: [u8; 64] = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(TokenError::Invalid)?;
        let signature = Item::from((key, Signature::from_bytes(&bytes), signed.as_bytes()));
        Ok(Unchecked { claims, signature })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, VerificationKeyBytes>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Refuses claims past their `exp` by more than the leeway: a token checked now, and
/// one remembered from before.
fn unexpired(claims: &AccessClaims) -> Result<(), TokenError> {
    match claims.exp + LEEWAY_SECS < crate::time::now_secs() {
        true => Err(TokenError::Expired),
        false => Ok(()),
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

    /// A new key set, a signer of tokens valid `ttl_secs`, and a verifier of them.
    fn issuing(ttl_secs: u64) -> (KeySet, TokenSigner, TokenVerifier) {
        let keys = KeySet::generate(0);
        let signer = TokenSigner::new(&keys, "natter", "natter", ttl_secs).unwrap();
        let verifier = verifier_for(&keys);
        (keys, signer, verifier)
    }

    /// `token` with its claims replaced by `claims`, the header and signature kept.
    fn with_claims(token: &str, claims: &AccessClaims) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        format!("{}.{payload}.{}", parts[0], parts[2])
    }

    #[tokio::test]
    async fn tokens_checked_together_are_each_judged_on_their_own() {
        let (_, signer, verifier) = issuing(900);
        let now = crate::time::now_secs();
        let tokens: Vec<String> = (0..24)
            .map(|i| {
                let issued = signer.sign(&format!("u{i}"), "n", "s", now);
                if i % 5 == 2 {
                    let mut claims = issued.claims;
                    claims.sub = "someone else".into();
                    with_claims(&issued.token, &claims)
                } else {
                    issued.token
                }
            })
            .collect();
        let checks = tokens.iter().map(|token| verifier.verify_shared(token));
        let answers = futures::future::join_all(checks).await;
        for (i, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok(claims) => assert!(i % 5 != 2 && claims.sub == format!("u{i}")),
                Err(error) => assert!(i % 5 == 2 && matches!(error, TokenError::Invalid)),
            }
        }
        // Refused tokens are not remembered: the same forgery is refused again.
        assert!(matches!(
            verifier.verify_shared(&tokens[2]).await,
            Err(TokenError::Invalid)
        ));
    }

    #[test]
    fn a_token_is_refused_for_its_header_claims_or_signature() {
        let (keys, signer, verifier) = issuing(900);
        let now = crate::time::now_secs();
        let issued = signer.sign("u", "n", "s", now);
        let refused = |token: &str| verifier.verify_signature(token).unwrap_err();
        // Claims the key never signed, even ones that would pass every check.
        let mut longer = issued.claims.clone();
        longer.exp += 3600;
        assert!(matches!(
            refused(&with_claims(&issued.token, &longer)),
            TokenError::Invalid
        ));
        // Signed, but for another audience or by another issuer.
        for (issuer, audience) in [("natter", "elsewhere"), ("elsewhere", "natter")] {
            let other = TokenSigner::new(&keys, issuer, audience, 900).unwrap();
            let token = other.sign("u", "n", "s", now).token;
            assert!(matches!(refused(&token), TokenError::Invalid));
        }
        // Expired beyond the leeway, though well signed.
        let old = signer
            .sign("u", "n", "s", now - 900 - LEEWAY_SECS - 1)
            .token;
        assert!(matches!(refused(&old), TokenError::Expired));
        // Another algorithm under our kid (HMAC keyed with anything).
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(keys.active_kid.clone());
        let key = jsonwebtoken::EncodingKey::from_secret(b"guess");
        let hmac = jsonwebtoken::encode(&header, &issued.claims, &key).unwrap();
        assert!(matches!(refused(&hmac), TokenError::Invalid));
        // A signature cut short, and no signature.
        let (signed, signature) = issued.token.rsplit_once('.').unwrap();
        let short = format!("{signed}.{}", &signature[..40]);
        assert!(matches!(refused(&short), TokenError::Invalid));
        assert!(matches!(refused(signed), TokenError::Invalid));
        assert!(matches!(refused("not a token"), TokenError::Invalid));
        // And the untouched token passes.
        assert_eq!(
            verifier.verify_signature(&issued.token).unwrap(),
            issued.claims
        );
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let (_, signer, verifier) = issuing(10);
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
        let (mut keys, signer, verifier) = issuing(900);
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

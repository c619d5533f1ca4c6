//! The signing key set: Ed25519 keys named by `kid`, one active, older ones kept for
//! verification until the tokens they signed have expired.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_zebra::{VerificationKey, VerificationKeyBytes};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The key set as stored in a secret source:
/// `{"active_kid": "...", "keys": [{"kid", "private_key", "created_at", "retired_at"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    /// The key that signs new tokens.
    pub active_kid: String,
    /// Every key that still verifies.
    pub keys: Vec<SigningKeySpec>,
}

/// One Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeySpec {
    /// Key id, placed in the JWT header.
    pub kid: String,
    /// The 32-byte Ed25519 seed, base64url without padding.
    pub private_key: Secret<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds when another key became active; `None` while active.
    #[serde(default)]
    pub retired_at: Option<i64>,
}

/// A key set that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The active kid names no key.
    #[error("active_kid `{0}` is not in the key set")]
    NoActiveKey(String),
    /// A key's material is not a base64url 32-byte seed.
    #[error("key `{0}`: private_key must be a base64url-encoded 32-byte Ed25519 seed")]
    BadKey(String),
}

impl KeySet {
    /// A fresh set with one new active key.
    pub fn generate(now_secs: i64) -> Self {
        let key = SigningKeySpec::generate(now_secs);
        Self {
            active_kid: key.kid.clone(),
            keys: vec![key],
        }
    }

    /// Adds a new active key, retires the old one and drops keys retired more than
    /// `keep_retired_secs` ago (they can no longer have valid tokens).
    pub fn rotate(&mut self, now_secs: i64, keep_retired_secs: i64) {
        for key in &mut self.keys {
            key.retired_at.get_or_insert(now_secs);
        }
        self.keys.retain(|k| {
            k.retired_at
                .is_none_or(|at| now_secs - at <= keep_retired_secs)
        });
        let key = SigningKeySpec::generate(now_secs);
        self.active_kid = key.kid.clone();
        self.keys.push(key);
    }

    /// The active key, checked.
    pub fn active(&self) -> Result<&SigningKeySpec, KeyError> {
        self.keys
            .iter()
            .find(|k| k.kid == self.active_kid)
            .ok_or_else(|| KeyError::NoActiveKey(self.active_kid.clone()))
    }

    /// The public half of every key as a JWKS document.
    pub fn jwks(&self) -> Result<JwkSet, KeyError> {
        let keys = self
            .keys
            .iter()
            .map(SigningKeySpec::public_jwk)
            .collect::<Result<_, _>>()?;
        Ok(JwkSet { keys })
    }
}

impl SigningKeySpec {
    /// A new random key; its kid is derived from the public key.
    pub fn generate(now_secs: i64) -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let public = signing.verifying_key().to_bytes();
        Self {
            kid: format!("ed-{}", &URL_SAFE_NO_PAD.encode(public)[..16]),
            private_key: Secret::new(URL_SAFE_NO_PAD.encode(signing.to_bytes())),
            created_at: now_secs,
            retired_at: None,
        }
    }

    fn signing_key(&self) -> Result<SigningKey, KeyError> {
        let bad = || KeyError::BadKey(self.kid.clone());
        let bytes = URL_SAFE_NO_PAD
            .decode(self.private_key.expose())
            .map_err(|_| bad())?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// The key jsonwebtoken signs with.
    pub fn encoding_key(&self) -> Result<EncodingKey, KeyError> {
        let der = self
            .signing_key()?
            .to_pkcs8_der()
            .map_err(|_| KeyError::BadKey(self.kid.clone()))?;
        Ok(EncodingKey::from_ed_der(der.as_bytes()))
    }

    /// The public key as a JWK with `kid`, `alg`, `use`.
    pub fn public_jwk(&self) -> Result<Jwk, KeyError> {
        let public = self.signing_key()?.verifying_key().to_bytes();
        Ok(Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_id: Some(self.kid.clone()),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(public),
            }),
        })
    }
}

/// Verification keys by kid from a JWKS document; keys that are not Ed25519 (or not a
/// point of its curve) are skipped. Kept as bytes: that is what a signature check takes
/// (ed25519-zebra decompresses a key once per batch, and once per signature checked
/// alone).
pub(crate) fn verification_keys(jwks: &JwkSet) -> Vec<(String, VerificationKeyBytes)> {
    jwks.keys
        .iter()
        .filter_map(|jwk| {
            let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
                return None;
            };
            if okp.curve != EllipticCurve::Ed25519 {
                return None;
            }
            let kid = jwk.common.key_id.clone()?;
            let bytes = URL_SAFE_NO_PAD.decode(&okp.x).ok()?;
            let key = VerificationKey::try_from(bytes.as_slice()).ok()?;
            Some((kid, VerificationKeyBytes::from(key)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_recent_keys_and_drops_expired_ones() {
        let mut set = KeySet::generate(1_000);
        let first = set.active_kid.clone();
        set.rotate(2_000, 900);
        assert_ne!(set.active_kid, first);
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[0].retired_at, Some(2_000));
        set.rotate(4_000, 900);
        assert_eq!(set.keys.len(), 2, "the key retired at 2000 is past 900 s");
        assert!(set.keys.iter().all(|k| k.kid != first));
    }

    #[test]
    fn debug_output_hides_private_keys() {
        let set = KeySet::generate(0);
        let seed = set.keys[0].private_key.expose().clone();
        assert!(!format!("{set:?}").contains(&seed));
    }

    #[test]
    fn jwks_publishes_public_keys_only() {
        let set = KeySet::generate(0);
        let json = serde_json::to_string(&set.jwks().unwrap()).unwrap();
        assert!(json.contains("\"kid\":\"ed-"), "{json}");
        assert!(json.contains("\"crv\":\"Ed25519\""), "{json}");
        assert!(!json.contains(set.keys[0].private_key.expose().as_str()));
    }
}

//! Cookie encryption keys: seal a session cookie with the current key, open cookies made
//! with the previous key until its grace period ends (key rotation logs nobody out).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

const NONCE_LEN: usize = 24;

/// The cookie key secret:
/// `{"current": "<base64 of 32 bytes>", "previous": "<base64>", "previous_until": <unix secs>}`
/// (`previous` and `previous_until` only after a rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CookieKeys {
    /// Seals new cookies and opens them.
    pub current: Secret<String>,
    /// The key before the last rotation; opens cookies until `previous_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Secret<String>>,
    /// Unix seconds after which `previous` no longer opens anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<i64>,
}

/// A cookie key that is not base64 of 32 bytes.
#[derive(Debug, thiserror::Error)]
#[error("cookie key `{0}` must be base64 of 32 bytes")]
pub struct BadCookieKey(&'static str);

impl CookieKeys {
    /// One fresh random key.
    pub fn generate() -> Self {
        Self {
            current: random_key(),
            previous: None,
            previous_until: None,
        }
    }

    /// A new current key; the old one keeps opening cookies for `grace_secs`.
    pub fn rotate(&mut self, now_secs: i64, grace_secs: i64) {
        let old = std::mem::replace(&mut self.current, random_key());
        self.previous = Some(old);
        self.previous_until = Some(now_secs.saturating_add(grace_secs));
    }

    /// Checks both keys decode to 32 bytes.
    pub fn validate(&self) -> Result<(), BadCookieKey> {
        cipher(&self.current).ok_or(BadCookieKey("current"))?;
        if let Some(previous) = &self.previous {
            cipher(previous).ok_or(BadCookieKey("previous"))?;
        }
        Ok(())
    }

    /// Encrypts and authenticates `plain` with the current key: base64url(nonce ‖ sealed).
    pub fn seal(&self, plain: &[u8]) -> Result<String, BadCookieKey> {
        let cipher = cipher(&self.current).ok_or(BadCookieKey("current"))?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, plain)
            .expect("XChaCha20-Poly1305 seals any cookie-sized input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The plaintext of a cookie sealed by the current key, or by the previous one while
    /// its grace period lasts; `None` for anything forged, altered or too old.
    pub fn open(&self, cookie: &str, now_secs: i64) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?);
        let current = cipher(&self.current)?.decrypt(&nonce, sealed).ok();
        current.or_else(|| {
            let previous = self.previous.as_ref()?;
            if self.previous_until.is_none_or(|until| now_secs > until) {
                return None;
            }
            cipher(previous)?.decrypt(&nonce, sealed).ok()
        })
    }
}

fn random_key() -> Secret<String> {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    Secret::new(STANDARD.encode(key))
}

fn cipher(key: &Secret<String>) -> Option<XChaCha20Poly1305> {
    let bytes = STANDARD.decode(key.expose()).ok()?;
    XChaCha20Poly1305::new_from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cookie_opens_and_tampering_fails() {
        let keys = CookieKeys::generate();
        let sealed = keys.seal(b"session").unwrap();
        assert_eq!(keys.open(&sealed, 0).unwrap(), b"session");
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            keys.open(std::str::from_utf8(&tampered).unwrap(), 0)
                .is_none()
        );
        assert!(keys.open("not a cookie", 0).is_none());
    }

    #[test]
    fn previous_key_opens_only_during_grace() {
        let mut keys = CookieKeys::generate();
        let old = keys.seal(b"old").unwrap();
        keys.rotate(1_000, 60);
        let new = keys.seal(b"new").unwrap();
        assert_eq!(keys.open(&old, 1_060).unwrap(), b"old");
        assert_eq!(keys.open(&new, 5_000).unwrap(), b"new");
        assert!(keys.open(&old, 1_061).is_none(), "grace is over");
        keys.validate().unwrap();
    }

    #[test]
    fn a_key_of_the_wrong_size_is_refused() {
        let keys = CookieKeys {
            current: Secret::new(STANDARD.encode([0u8; 16])),
            previous: None,
            previous_until: None,
        };
        assert_eq!(
            keys.validate().unwrap_err().to_string(),
            "cookie key `current` must be base64 of 32 bytes"
        );
    }
}

//! The deny-list: token ids and sessions that were revoked before their tokens expire.

use std::sync::Arc;
use std::time::Duration;

use super::AccessClaims;
use crate::kv::{Kv, KvError};

/// Revoked token ids (`jti`) and sessions (`sid`), kept only as long as a token of
/// theirs could still be valid. Backed by Redis in cluster mode, memory in standalone.
#[derive(Debug, Clone)]
pub struct Denylist {
    kv: Arc<dyn Kv>,
}

impl Denylist {
    /// A deny-list stored in `kv`.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// Denies one token until it expires.
    pub async fn deny_token(&self, jti: &str, remaining: Duration) -> Result<(), KvError> {
        if remaining.is_zero() {
            return Ok(());
        }
        self.kv.set_flag(&token_key(jti), remaining).await
    }

    /// Denies every access token of a session for `lifetime` (the access token TTL).
    pub async fn deny_session(&self, sid: &str, lifetime: Duration) -> Result<(), KvError> {
        self.kv.set_flag(&session_key(sid), lifetime).await
    }

    /// Whether the token or its session has been denied.
    pub async fn is_denied(&self, claims: &AccessClaims) -> Result<bool, KvError> {
        let keys = [token_key(&claims.jti), session_key(&claims.sid)];
        self.kv.any_exists(&keys).await
    }
}

fn token_key(jti: &str) -> String {
    format!("natter:deny:jti:{jti}")
}

fn session_key(sid: &str) -> String {
    format!("natter:deny:sid:{sid}")
}

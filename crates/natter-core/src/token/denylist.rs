//! The deny-list: token ids and sessions that were revoked before their tokens expire.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::AccessClaims;
use crate::broker::Broker;
use crate::kv::{Kv, KvError};

/// Broker topic on which revocations are announced, so that services holding long-lived
/// connections (chat's WebSockets) close those of a revoked session at once.
pub const REVOCATIONS_TOPIC: &str = "natter.revocations";

/// An announcement on [`REVOCATIONS_TOPIC`]; readers ignore types they do not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Revocation {
    /// Every access token of the session is denied from now on.
    SessionRevoked {
        /// The session (`sid` claim).
        session_id: String,
    },
}

/// Revoked token ids (`jti`) and sessions (`sid`), kept only as long as a token of
/// theirs could still be valid. Backed by Redis in cluster mode, memory in standalone.
#[derive(Debug, Clone)]
pub struct Denylist {
    kv: Arc<dyn Kv>,
    announce: Option<Arc<dyn Broker>>,
}

impl Denylist {
    /// A deny-list stored in `kv`.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv, announce: None }
    }

    /// A deny-list stored in `kv` that also announces revoked sessions on `broker`
    /// ([`REVOCATIONS_TOPIC`]).
    pub fn announcing(kv: Arc<dyn Kv>, broker: Arc<dyn Broker>) -> Self {
        Self {
            kv,
            announce: Some(broker),
        }
    }

    /// Denies one token until it expires.
    pub async fn deny_token(&self, jti: &str, remaining: Duration) -> Result<(), KvError> {
        if remaining.is_zero() {
            return Ok(());
        }
        self.kv.set_flag(&token_key(jti), remaining).await
    }

    /// Denies every access token of a session for `lifetime` (the access token TTL) and
    /// announces it. The denial is what protects; a failed announcement is logged, and
    /// connections still find the denial when they check again after a broker outage.
    pub async fn deny_session(&self, sid: &str, lifetime: Duration) -> Result<(), KvError> {
        self.kv.set_flag(&session_key(sid), lifetime).await?;
        let Some(broker) = &self.announce else {
            return Ok(());
        };
        let revocation = Revocation::SessionRevoked {
            session_id: sid.to_owned(),
        };
        let payload = serde_json::to_vec(&revocation).expect("revocations serialise");
        if let Err(error) = broker
            .publish(REVOCATIONS_TOPIC, Bytes::from(payload))
            .await
        {
            tracing::warn!(%error, "announcing a revoked session failed");
        }
        Ok(())
    }

    /// Denies a session again after a restart without announcing it (nothing can be
    /// connected with it yet): `remaining` is what is left of its denial.
    pub async fn restore_session(&self, sid: &str, remaining: Duration) -> Result<(), KvError> {
        if remaining.is_zero() {
            return Ok(());
        }
        self.kv.set_flag(&session_key(sid), remaining).await
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

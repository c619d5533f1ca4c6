//! The deny-list: token ids and sessions that were revoked before their tokens expire.
//! Checks made together against a remote store (Redis) share one round trip: a reconnect
//! storm's authentications, or every connection's recheck after a broker outage.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::AccessClaims;
use crate::broker::Broker;
use crate::coalesce::{Batch, Coalescer};
use crate::kv::{Kv, KvError};

/// Most checks (two keys each) answered by one read.
const CHECKS_AT_ONCE: usize = 64;

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
    /// Checks made meanwhile join the next read (a remote store only: memory answers at
    /// once).
    checks: Option<Coalescer<Checks>>,
}

/// Reads whether the keys of a batch of checks are set.
struct Checks {
    kv: Arc<dyn Kv>,
}

impl Denylist {
    /// A deny-list stored in `kv`.
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        let checks = kv.remote().then(|| {
            let checks = Checks { kv: kv.clone() };
            Coalescer::new(checks, CHECKS_AT_ONCE)
        });
        Self {
            kv,
            announce: None,
            checks,
        }
    }

    /// A deny-list stored in `kv` that also announces revoked sessions on `broker`
    /// ([`REVOCATIONS_TOPIC`]).
    pub fn announcing(kv: Arc<dyn Kv>, broker: Arc<dyn Broker>) -> Self {
        Self {
            announce: Some(broker),
            ..Self::new(kv)
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
        match &self.checks {
            Some(checks) => checks
                .ask((), keys)
                .await
                .unwrap_or_else(|| Err(KvError::from("the deny-list check ended unanswered"))),
            None => self.kv.any_exists(&keys).await,
        }
    }
}

impl Batch for Checks {
    type Key = ();
    type Request = [String; 2];
    type Answer = Result<bool, KvError>;

    async fn run(&self, (): &(), checks: Vec<[String; 2]>) -> Vec<Result<bool, KvError>> {
        let count = checks.len();
        let keys: Vec<String> = checks.into_iter().flatten().collect();
        match self.kv.exist_each(&keys).await {
            Ok(found) if found.len() == keys.len() => found
                .chunks(2)
                .map(|pair| Ok(pair.contains(&true)))
                .collect(),
            Ok(_) => vec![Err(KvError::from("the deny-list read lost keys")); count],
            Err(error) => vec![Err(error); count],
        }
    }
}

fn token_key(jti: &str) -> String {
    format!("natter:deny:jti:{jti}")
}

fn session_key(sid: &str) -> String {
    format!("natter:deny:sid:{sid}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::kv::{Hit, MemoryKv};

    /// Memory that says it is remote and counts its reads, each taking a while (as a
    /// round trip to Redis does).
    #[derive(Debug, Default)]
    struct Remote {
        memory: MemoryKv,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl Kv for Remote {
        async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), KvError> {
            self.memory.set_flag(key, ttl).await
        }
        async fn exist_each(&self, keys: &[String]) -> Result<Vec<bool>, KvError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.memory.exist_each(keys).await
        }
        async fn hit(&self, key: &str, window: Duration) -> Result<Hit, KvError> {
            self.memory.hit(key, window).await
        }
        async fn ping(&self) -> Result<(), KvError> {
            Ok(())
        }
        fn remote(&self) -> bool {
            true
        }
    }

    fn claims(n: usize) -> AccessClaims {
        AccessClaims {
            iss: "natter".into(),
            aud: "natter".into(),
            sub: format!("user-{n}"),
            jti: format!("token-{n}"),
            sid: format!("session-{}", n / 2),
            name: format!("user {n}"),
            iat: 0,
            exp: 0,
        }
    }

    #[tokio::test]
    async fn checks_made_together_share_reads_and_each_gets_its_own_answer() {
        let kv = Arc::new(Remote::default());
        let denylist = Denylist::new(kv.clone());
        let hour = Duration::from_secs(3600);
        // Token 3 was denied alone; session 4 (tokens 8 and 9) as a whole.
        denylist.deny_token("token-3", hour).await.unwrap();
        denylist.deny_session("session-4", hour).await.unwrap();
        let checks: Vec<_> = (0..20)
            .map(|n| {
                let denylist = denylist.clone();
                tokio::spawn(async move { denylist.is_denied(&claims(n)).await.unwrap() })
            })
            .collect();
        let mut denied = Vec::new();
        for (n, check) in checks.into_iter().enumerate() {
            if check.await.unwrap() {
                denied.push(n);
            }
        }
        assert_eq!(denied, [3, 8, 9]);
        let reads = kv.reads.load(Ordering::SeqCst);
        assert!(reads <= 2, "20 checks made together took {reads} reads");
    }
}

//! Short-lived shared state with expiry (deny-list flags, rate-limit counters): Redis in
//! cluster mode so every replica agrees, memory in standalone mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use crate::sweep::Sweep;

/// Default bound on connecting to Redis, and on waiting for one answer.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// A Redis or memory failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct KvError(String);

impl From<&str> for KvError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// The state of a fixed-window counter after one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Time until the window ends.
    pub resets_in: Duration,
}

/// Expiring flags and counters.
#[async_trait]
pub trait Kv: Send + Sync + std::fmt::Debug {
    /// Sets `key` for `ttl`.
    async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), KvError>;
    /// Whether any of `keys` is set.
    async fn any_exists(&self, keys: &[String]) -> Result<bool, KvError> {
        Ok(self.exist_each(keys).await?.contains(&true))
    }
    /// Whether each of `keys` is set, in their order: one round trip for all.
    async fn exist_each(&self, keys: &[String]) -> Result<Vec<bool>, KvError>;
    /// Whether a call crosses the network: then calls made together are worth batching.
    fn remote(&self) -> bool {
        false
    }
    /// Counts one hit on `key` in a fixed window of length `window`.
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, KvError>;
    /// Checks the backend answers.
    async fn ping(&self) -> Result<(), KvError>;
}

/// In-process [`Kv`] for standalone mode and tests.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<Entries>,
}

/// The entries, and when expired ones are next swept.
#[derive(Debug)]
struct Entries {
    map: HashMap<String, Entry>,
    sweep: Sweep,
}

impl Default for Entries {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep: Sweep::above(MemoryKv::SWEEP_AT),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u64,
    expires_at: Instant,
}

/// Redis-backed [`Kv`]; one multiplexed connection that reconnects by itself.
#[derive(Clone)]
pub struct RedisKv {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv").finish_non_exhaustive()
    }
}

/// Redis when `redis_url` is set (each call bounded by `timeout`), else memory (one
/// process only).
pub async fn connect(
    redis_url: Option<&str>,
    timeout: Duration,
) -> Result<std::sync::Arc<dyn Kv>, KvError> {
    Ok(match redis_url {
        Some(url) => std::sync::Arc::new(RedisKv::connect(url, timeout).await?),
        None => std::sync::Arc::new(MemoryKv::default()),
    })
}

impl MemoryKv {
    /// Entries below which expired ones are never swept.
    const SWEEP_AT: usize = 10_000;

    /// Runs `f` on the entries; `write`s sweep out expired ones when due (reads never
    /// do: with 10,000 users' rate-limit windows live, each deny-list check swept them).
    fn with_entries<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T,
    ) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if write && entries.sweep.due(entries.map.len()) {
            entries.map.retain(|_, e| e.expires_at > now);
            let left = entries.map.len();
            entries.sweep.swept(left);
        }
        f(&mut entries.map, now)
    }
}

#[async_trait]
impl Kv for MemoryKv {
    async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), KvError> {
        self.with_entries(true, |entries, now| {
            let expires_at = now + ttl;
            entries.insert(
                key.into(),
                Entry {
                    count: 1,
                    expires_at,
                },
            );
        });
        Ok(())
    }

    async fn exist_each(&self, keys: &[String]) -> Result<Vec<bool>, KvError> {
        Ok(self.with_entries(false, |entries, now| {
            keys.iter()
                .map(|k| entries.get(k).is_some_and(|e| e.expires_at > now))
                .collect()
        }))
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, KvError> {
        Ok(self.with_entries(true, |entries, now| {
            let entry = entries.entry(key.into()).or_insert(Entry {
                count: 0,
                expires_at: now + window,
            });
            if entry.expires_at <= now {
                *entry = Entry {
                    count: 0,
                    expires_at: now + window,
                };
            }
            entry.count += 1;
            Hit {
                count: entry.count,
                resets_in: entry.expires_at - now,
            }
        }))
    }

    async fn ping(&self) -> Result<(), KvError> {
        Ok(())
    }
}

impl RedisKv {
    /// Connects to `url` (redis://…); every call is bounded by about twice `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, KvError> {
        let client = redis_client(url).map_err(redis_error)?;
        let conn = managed(client, timeout).await.map_err(redis_error)?;
        Ok(Self { conn })
    }
}

#[async_trait]
impl Kv for RedisKv {
    #[tracing::instrument(name = "redis SET", skip_all, fields(db.system.name = "redis"))]
    async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), KvError> {
        let millis = ttl.as_millis().max(1) as u64;
        let mut set = redis::cmd("SET");
        set.arg(key).arg(1).arg("PX").arg(millis);
        let set = &set;
        retrying(&self.conn, |mut conn| async move {
            set.query_async::<()>(&mut conn).await
        })
        .await
        .map_err(redis_error)
    }

    /// `MGET`, not `EXISTS`: one command answers for every key (the flags are strings).
    #[tracing::instrument(name = "redis MGET", skip_all, fields(db.system.name = "redis", keys = keys.len()))]
    async fn exist_each(&self, keys: &[String]) -> Result<Vec<bool>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut get = redis::cmd("MGET");
        get.arg(keys);
        let get = &get;
        let found: Vec<Option<Vec<u8>>> = retrying(&self.conn, |mut conn| async move {
            get.query_async(&mut conn).await
        })
        .await
        .map_err(redis_error)?;
        Ok(found.iter().map(Option::is_some).collect())
    }

    fn remote(&self) -> bool {
        true
    }

    #[tracing::instrument(name = "redis INCR", skip_all, fields(db.system.name = "redis"))]
    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, KvError> {
        let millis = window.as_millis().max(1) as u64;
        // The window starts at the first hit: PEXPIRE … NX (Redis 7) only sets an expiry
        // on a key that has none, so later hits never extend it.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("INCR")
            .arg(key)
            .cmd("PEXPIRE")
            .arg(key)
            .arg(millis)
            .arg("NX")
            .ignore()
            .cmd("PTTL")
            .arg(key);
        let pipe = &pipe;
        let (count, ttl): (u64, i64) = retrying(&self.conn, |mut conn| async move {
            pipe.query_async(&mut conn).await
        })
        .await
        .map_err(redis_error)?;
        Ok(Hit {
            count,
            resets_in: Duration::from_millis(ttl.max(0) as u64),
        })
    }

    async fn ping(&self) -> Result<(), KvError> {
        let ping = &redis::cmd("PING");
        retrying(&self.conn, |mut conn| async move {
            ping.query_async::<()>(&mut conn).await
        })
        .await
        .map_err(redis_error)
    }
}

/// A Redis client whose connections set `TCP_NODELAY` (small commands must not wait for
/// Nagle's algorithm).
pub(crate) fn redis_client(url: &str) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;
    let info = url
        .into_connection_info()?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    redis::Client::open(info)
}

/// A connection that reconnects by itself, with connecting and each answer bounded by
/// `timeout`. It makes one attempt per call: retrying is [`retrying`]'s job, so that a
/// call's wait stays bounded while Redis is down.
pub(crate) async fn managed(
    client: redis::Client,
    timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(0);
    ConnectionManager::new_with_config(client, config).await
}

/// Runs a Redis call, and once more when its connection failed (Redis restarted, a proxy
/// cut the line, or the last reconnection attempt failed): the manager only notices a
/// dead connection when a call fails on it, and the second try runs on the connection it
/// then makes. A call therefore waits at most two connection attempts and two answers.
pub(crate) async fn retrying<T, F, Fut>(
    conn: &ConnectionManager,
    mut call: F,
) -> redis::RedisResult<T>
where
    F: FnMut(ConnectionManager) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    match call(conn.clone()).await {
        Err(error) if error.is_io_error() || error.is_connection_dropped() => {
            call(conn.clone()).await
        }
        other => other,
    }
}

fn redis_error(error: redis::RedisError) -> KvError {
    KvError(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_counter_resets_after_its_window() {
        let kv = MemoryKv::default();
        let window = Duration::from_secs(60);
        assert_eq!(kv.hit("k", window).await.unwrap().count, 1);
        assert_eq!(kv.hit("k", window).await.unwrap().count, 2);
        tokio::time::advance(Duration::from_secs(61)).await;
        let hit = kv.hit("k", window).await.unwrap();
        assert_eq!(hit.count, 1);
        assert_eq!(hit.resets_in, window);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_flags_expire() {
        let kv = MemoryKv::default();
        kv.set_flag("f", Duration::from_secs(5)).await.unwrap();
        assert!(kv.any_exists(&["x".into(), "f".into()]).await.unwrap());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(!kv.any_exists(&["f".into()]).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn memory_sweeps_expired_entries_after_the_map_doubles() {
        let kv = MemoryKv::default();
        let size = || kv.entries.lock().unwrap().map.len();
        for i in 0..MemoryKv::SWEEP_AT {
            kv.set_flag(&format!("old{i}"), Duration::from_secs(5))
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(6)).await;
        // The next write sweeps the expired ones; live ones stay.
        kv.set_flag("live", Duration::from_secs(60)).await.unwrap();
        assert_eq!(size(), 1);
        for i in 0..MemoryKv::SWEEP_AT {
            kv.set_flag(&format!("new{i}"), Duration::from_secs(60))
                .await
                .unwrap();
        }
        // The sweep at 10,000 live entries found nothing: the next is due at twice that.
        assert!(kv.any_exists(&["live".into()]).await.unwrap());
        assert_eq!(size(), MemoryKv::SWEEP_AT + 1);
        let sweep = kv.entries.lock().unwrap().sweep;
        assert!(!sweep.due(2 * MemoryKv::SWEEP_AT - 1) && sweep.due(2 * MemoryKv::SWEEP_AT));
    }
}

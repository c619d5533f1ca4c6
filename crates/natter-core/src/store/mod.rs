//! The store: one sqlx `Any` pool over PostgreSQL (cluster) or SQLite (standalone), the
//! embedded migrations for each, and the repositories built on it.
//!
//! Queries are written once in the SQL both databases share: `$n` parameters, `RETURNING`,
//! `ON CONFLICT`, instants as Unix milliseconds (BIGINT), ids as UUID text.

mod edits;
mod email;
mod liveness;
mod mentions;
mod messages;
mod notify;
mod profiles;
mod push;
mod reactions;
mod rooms;
mod sessions;
mod threads;
mod together;
mod users;
mod wal;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use edits::{Edit, EditRecord, MAX_EDITS_KEPT, Pinned};
pub use email::{DigestItem, DueDigest};
pub use messages::{HistoryOrder, MessageRecord, NewMessage, Posted, Timeline};
pub use notify::{Level, ReadMarker, RoomCounts};
pub use profiles::{ProfileRecord, ProfileUpdate};
pub use push::{Channel, DuePush, PushContent, PushSubscription};
pub use reactions::{Reacted, ReactionChange, ReactionCount};
pub use rooms::{CURSOR_MAX, MemberRecord, MyRoom, Page, Role, RoomKind, RoomRecord, escape_like};
pub use sessions::{NewSession, RotateRequest, Rotation, SessionRecord};
pub use threads::{FollowedThread, MAX_PARTICIPANTS, ThreadUnread};
pub use users::{NewUser, UserRecord};
pub use wal::Checkpointed;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (cluster mode).
    Postgres,
    /// SQLite (standalone mode, tests).
    Sqlite,
}

/// A store failure, mapped deliberately where callers act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the string names the constraint or index.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database refused or failed in a way no caller handles.
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A pagination cursor that this store did not make.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The URL names no supported database.
    #[error("unsupported database URL (expected postgres:// or sqlite:)")]
    UnsupportedUrl,
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    /// Notes, on the way, a failure for want of the database: the pool's connections
    /// taken back before it are pinged before their next use.
    fn from(error: sqlx::Error) -> Self {
        let error = Self::Database(error);
        if error.is_unavailable() {
            liveness::lost();
        }
        error
    }
}

impl StoreError {
    /// Whether the database could not be reached or is shutting down (retrying later
    /// may succeed), as opposed to a refused or broken statement.
    pub fn is_unavailable(&self) -> bool {
        let Self::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE class 08: connection exception; 57P01-03: the server is shutting
            // down or starting; 53300: too many connections.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            }),
            _ => false,
        }
    }
}

/// Connection pools plus the repositories' methods. Cheap to clone.
///
/// Writes go to `writer`: on PostgreSQL the same pool as reads; on SQLite, which has one
/// write lock per database, a pool of one connection, so writes queue in order for it
/// instead of contending for the lock and sleeping in SQLite's busy handler (its back-off
/// steps up to 100 ms), while reads go on concurrently from the other connections (WAL).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How the connection pool behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most (reading) connections open at once; `None`: the backend's default
    /// ([`Backend::default_connections`]).
    pub max_connections: Option<u32>,
    /// A pooled connection is closed after this long, so new credentials given to
    /// [`Store::use_url`] take over within that time.
    pub max_lifetime: Duration,
    /// Longest wait for a connection; past it the call fails as unavailable (the
    /// database is down or every connection is busy).
    pub acquire_timeout: Duration,
}

impl PoolSettings {
    /// `max_connections` connections, replaced after 30 minutes, waited for up to 5 s.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections: Some(max_connections),
            max_lifetime: Duration::from_secs(30 * 60),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Store {
    /// Connects to `url` with at most `max_connections` pooled connections and the other
    /// [`PoolSettings::new`] defaults.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with(url, PoolSettings::new(max_connections)).await
    }

    /// Connects to `url` with the pool behaving as `settings` say.
    pub async fn connect_with(url: &str, settings: PoolSettings) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = connect_options(url)?;
        let max = settings
            .max_connections
            .unwrap_or_else(|| backend.default_connections());
        let pool = pool_options(backend, settings, max)
            .connect_with(options.clone())
            .await?;
        let writer = match backend {
            Backend::Postgres => pool.clone(),
            Backend::Sqlite => {
                pool_options(backend, settings, 1)
                    .connect_with(options)
                    .await?
            }
        };
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    /// Opens new connections with `url` (rotated credentials); open ones live out their
    /// lifetime, so no request is dropped. The backend must stay the same.
    pub fn use_url(&self, url: &str) -> Result<()> {
        if Backend::of_url(url)? != self.backend {
            return Err(StoreError::UnsupportedUrl);
        }
        let options = connect_options(url)?;
        self.pool.set_connect_options(options.clone());
        self.writer.set_connect_options(options);
        Ok(())
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&self.writer).await?;
        self.fill_fold_keys().await
    }

    /// Refreshes the query planner's statistics of every table (after a bulk load: until
    /// autovacuum or a later `ANALYZE` gets to them, freshly filled tables are planned as
    /// if empty).
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE").execute(&self.writer).await?;
        Ok(())
    }

    /// Folds the case keys the migration could not compute in SQL (texts beyond ASCII).
    /// A key that collides with an existing one is left empty and logged: the row keeps
    /// working, only its case-insensitive uniqueness is not enforced.
    async fn fill_fold_keys(&self) -> Result<()> {
        for (select, update) in [
            (
                "SELECT id, name FROM rooms WHERE name_key IS NULL AND name IS NOT NULL",
                "UPDATE rooms SET name_key = $1 WHERE id = $2",
            ),
            (
                "SELECT id, email FROM users WHERE email_key IS NULL AND email IS NOT NULL",
                "UPDATE users SET email_key = $1 WHERE id = $2",
            ),
        ] {
            let rows: Vec<(String, String)> = sqlx::query_as(select).fetch_all(&self.pool).await?;
            for (id, text) in rows {
                let filled = sqlx::query(update)
                    .bind(crate::text::fold_case(&text))
                    .bind(&id)
                    .execute(&self.writer)
                    .await
                    .map_err(map_conflict);
                match filled {
                    Ok(_) => {}
                    Err(StoreError::Conflict(index)) => {
                        tracing::warn!(%id, %index, "a case-folded key collides; left empty")
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `db.system.name` of spans: which database answers.
    fn system(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }

    /// Connections the read pool holds: `(open, idle)` (on PostgreSQL, every connection).
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Most connections the read pool opens (on PostgreSQL, every connection; on SQLite,
    /// the one writer comes on top).
    pub fn pool_max(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Pool options of `backend`, with `max` connections (SQLite: WAL, checkpointed beside the
/// writer ([`wal`]), foreign keys, a busy timeout that only another process's writes can
/// make it wait in, and a 128 KiB page cache per connection: every connection fills its
/// cache in a reconnect storm, and SQLite's default 2 MB each made 34 MB for the 17
/// connections standalone mode had, 512 KiB still 8.5 MB, while the file's pages stay in
/// the kernel's cache anyway; a statement's hot pages (a few B-tree levels per index) fit
/// in 32).
///
/// sqlx pings every connection it takes back and, by default, again before handing it
/// out. A PostgreSQL connection may have been cut while it sat in the pool (a restart,
/// a network cut): a ping before handing it out replaces it on the first call after an
/// outage, not the second. But pinging every time doubled every statement's round trips
/// (a send's ack waited for two PostgreSQL turns on a loaded machine), so a PostgreSQL
/// connection is pinged first only when it was idle long or taken back before a call last
/// failed for want of the database ([`liveness`]). SQLite's in-process connections cannot
/// be cut, and the ping was a round trip to the connection's worker thread on every
/// statement: they are not pinged first.
fn pool_options(backend: Backend, settings: PoolSettings, max: u32) -> AnyPoolOptions {
    let options = AnyPoolOptions::new()
        .max_connections(max)
        .max_lifetime(settings.max_lifetime)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false);
    match backend {
        // The check (a boxed future) only where a connection can be cut.
        Backend::Postgres => options.before_acquire(|conn, meta| {
            Box::pin(async move {
                if liveness::must_ping(meta.idle_for) {
                    conn.ping().await?;
                }
                Ok(true)
            })
        }),
        Backend::Sqlite => options.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                     PRAGMA cache_size = -128;",
                )
                .await?;
                conn.execute(wal::AUTOCHECKPOINT).await?;
                Ok(())
            })
        }),
    }
}

impl Backend {
    /// Pooled connections when the configuration names no number. PostgreSQL: 16, each a
    /// server process of its own. SQLite: a reader per core the process may use, 4 to 16,
    /// beside the one writer. Each SQLite connection is a thread of this process with its
    /// own page cache; reads are short and in memory, so more readers than cores run no
    /// more at once, and on two cores 16 of them held ~0.4 KiB more per socket after a
    /// connect storm of 10,000 than 4 did (docs/latency.md).
    pub fn default_connections(self) -> u32 {
        match self {
            Self::Postgres => 16,
            Self::Sqlite => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                u32::try_from(cores).unwrap_or(u32::MAX).clamp(4, 16)
            }
        }
    }

    /// The backend a URL names.
    pub fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// `count` numbered bind placeholders from `$first` on, comma-separated: the only thing
/// ever formatted into a statement (values are always bound).
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    let numbered: Vec<String> = (first..first + count).map(|i| format!("${i}")).collect();
    numbered.join(", ")
}

fn connect_options(url: &str) -> Result<AnyConnectOptions> {
    Ok(AnyConnectOptions::from_str(url)?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(250)))
}

/// Maps a unique violation to [`StoreError::Conflict`] and anything else to `Database`.
pub(crate) fn map_conflict(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
    {
        let name = db
            .constraint()
            .map(str::to_owned)
            .unwrap_or_else(|| db.message().to_owned());
        return StoreError::Conflict(name);
    }
    StoreError::from(error)
}

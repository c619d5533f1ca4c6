//! The store: one sqlx `Any` pool over PostgreSQL (cluster) or SQLite (standalone), the
//! embedded migrations for each, and the repositories built on it.
//!
//! Queries are written once in the SQL both databases share: `$n` parameters, `RETURNING`,
//! `ON CONFLICT`, instants as Unix milliseconds (BIGINT), ids as UUID text.

mod messages;
mod profiles;
mod rooms;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use messages::{HistoryOrder, MessageRecord, NewMessage, Posted};
pub use profiles::{ProfileRecord, ProfileUpdate};
pub use rooms::{MemberRecord, MyRoom, Page, Role, RoomKind, RoomRecord, escape_like};
pub use sessions::{NewSession, RotateRequest, Rotation, SessionRecord};
pub use users::{NewUser, UserRecord};

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
    Database(#[from] sqlx::Error),
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

/// A connection pool plus the repositories' methods. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

impl Store {
    /// Connects to `url` with at most `max_connections` pooled connections, each replaced
    /// after 30 minutes.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with_lifetime(url, max_connections, Duration::from_secs(30 * 60)).await
    }

    /// Connects to `url`; a pooled connection is closed after `max_lifetime`, so new
    /// credentials given to [`Store::use_url`] take over within that time.
    pub async fn connect_with_lifetime(
        url: &str,
        max_connections: u32,
        max_lifetime: Duration,
    ) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = connect_options(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .max_lifetime(max_lifetime)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    /// Opens new connections with `url` (rotated credentials); open ones live out their
    /// lifetime, so no request is dropped. The backend must stay the same.
    pub fn use_url(&self, url: &str) -> Result<()> {
        if Backend::of_url(url)? != self.backend {
            return Err(StoreError::UnsupportedUrl);
        }
        self.pool.set_connect_options(connect_options(url)?);
        Ok(())
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
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

    /// Connections the pool holds: `(open, idle)`.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Backend {
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
    StoreError::Database(error)
}

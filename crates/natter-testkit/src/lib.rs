//! Test support shared by every crate's tests: a fresh database per test on the real
//! PostgreSQL (or a SQLite file), Redis, and a configuration that hashes cheaply.
//!
//! The servers come from `cargo xtask test` (DATABASE_URL, REDIS_URL, VAULT_ADDR). A test run
//! without them fails with instructions; it never skips.

use std::sync::Arc;

use natter_core::config::{Argon2Params, Config};
use natter_core::kv::{Kv, MemoryKv, RedisKv};
use natter_core::store::{Backend, Store};
use sqlx::{AssertSqlSafe, Connection};

mod proxy;
pub mod telemetry;
mod vault;

pub use proxy::Proxy;
pub use vault::{database_engine, root_api, vault_addr, vault_config, vault_root_token};

/// A migrated store that lives as long as this value (the SQLite file is deleted after).
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: Store,
    /// Its connection URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server's URL; panics with instructions when unset.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with `cargo xtask test`, which starts PostgreSQL and Redis")
    })
}

/// The Redis server's URL; panics with instructions when unset.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| {
        panic!("REDIS_URL is not set: run the tests with `cargo xtask test`, which starts PostgreSQL and Redis")
    })
}

/// A fresh, migrated database of `backend`.
pub async fn store(backend: Backend) -> TestStore {
    match backend {
        Backend::Postgres => {
            let url = fresh_postgres_url().await;
            let store = Store::connect(&url, 8)
                .await
                .expect("connect to the test database");
            store.migrate().await.expect("migrate PostgreSQL");
            TestStore {
                store,
                url,
                _dir: None,
            }
        }
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            let store = Store::connect(&url, 4).await.expect("open SQLite");
            store.migrate().await.expect("migrate SQLite");
            TestStore {
                store,
                url,
                _dir: Some(dir),
            }
        }
    }
}

/// The URL of a new, empty database on the test PostgreSQL server.
pub async fn fresh_postgres_url() -> String {
    let admin_url = database_url();
    let name = format!("natter_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let url = match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("DATABASE_URL must end in /<database>"),
    };
    admin.close().await.expect("disconnect");
    url
}

/// Redis-backed key-value state (shared by all tests: use unique keys).
pub async fn redis_kv() -> Arc<dyn Kv> {
    Arc::new(
        RedisKv::connect(&redis_url(), natter_core::kv::REDIS_TIMEOUT)
            .await
            .expect("connect to the test Redis server"),
    )
}

/// The key-value state that goes with `backend` in production: Redis beside PostgreSQL,
/// memory beside SQLite (standalone).
pub async fn kv_for(backend: Backend) -> Arc<dyn Kv> {
    match backend {
        Backend::Postgres => redis_kv().await,
        Backend::Sqlite => Arc::new(MemoryKv::default()),
    }
}

/// Defaults with argon2id parameters cheap enough for tests.
pub fn config() -> Config {
    let mut config = Config::default();
    config.auth.argon2 = CHEAP_ARGON2;
    config
}

/// Argon2id parameters for tests: the algorithm is real, the cost is not.
pub const CHEAP_ARGON2: Argon2Params = Argon2Params {
    memory_kib: 256,
    iterations: 1,
    parallelism: 1,
};

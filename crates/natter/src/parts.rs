//! The handles every mode connects to: store, key-value state, broker; and `/readyz` over
//! them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use natter_core::broker::Broker;
use natter_core::config::Config;
use natter_core::http::Readiness;
use natter_core::kv::Kv;
use natter_core::shutdown::Shutdown;
use natter_core::store::{PoolSettings, Store};

/// Connected dependencies.
pub struct Parts {
    pub store: Store,
    pub kv: Arc<dyn Kv>,
    pub broker: Arc<dyn Broker>,
}

impl Parts {
    /// Connects the store (migrating when `migrate`, its SQLite log checkpointed until
    /// `shutdown`), the key-value store and the broker: Redis for both when configured,
    /// memory otherwise.
    pub async fn connect(
        config: &Config,
        migrate: bool,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Self> {
        let pool = PoolSettings {
            max_connections: config.database.max_connections,
            max_lifetime: Duration::from_secs(config.database.max_lifetime_secs),
            acquire_timeout: Duration::from_millis(config.database.acquire_timeout_ms),
        };
        let store = Store::connect_with(&config.database_url(), pool)
            .await
            .context("connecting to the database")?;
        if migrate {
            store.migrate().await.context("applying migrations")?;
        }
        tokio::spawn(store.clone().keep_checkpointed(shutdown.clone()));
        let redis = config.redis_url.as_ref().map(|u| u.expose().as_str());
        let timeout = Duration::from_millis(config.redis_timeout_ms);
        let kv = natter_core::kv::connect(redis, timeout)
            .await
            .context("connecting to Redis")?;
        let broker = natter_core::broker::connect(redis, timeout)
            .await
            .context("connecting to Redis")?;
        Ok(Self { store, kv, broker })
    }

    /// `/readyz`: database and key-value store answer, not shutting down.
    pub fn readiness(&self, shutdown: Shutdown) -> Readiness {
        let store = self.store.clone();
        let kv = self.kv.clone();
        Readiness::new(shutdown)
            .check("database", move || {
                let store = store.clone();
                Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
            })
            .check("kv", move || {
                let kv = kv.clone();
                Box::pin(async move { kv.ping().await.map_err(|e| e.to_string()) })
            })
    }
}

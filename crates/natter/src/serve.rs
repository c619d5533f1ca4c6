//! Service mode: each service alone against PostgreSQL and Redis, plus `migrate` and the
//! pieces every mode shares (listening, serving until shutdown, picking up rotated keys).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use natter_auth::Auth;
use natter_core::config::Config;
use natter_core::http::{Metrics, Readiness, observe, ops_routes};
use natter_core::kv::Kv;
use natter_core::secrets::{SecretSource, Secrets};
use natter_core::shutdown::Shutdown;
use natter_core::store::Store;

/// How often secrets are re-read to pick up rotations.
const SECRETS_POLL: Duration = Duration::from_secs(30);

/// `natter auth`: gRPC on `grpc.addr`, JSON + ops on `http.addr`.
pub async fn auth(config: Config) -> anyhow::Result<()> {
    if config.database.url.is_none() {
        bail!("`natter auth` needs PostgreSQL: set NATTER_DATABASE_URL (config key database.url)");
    }
    if config.redis_url.is_none() {
        bail!(
            "`natter auth` needs Redis for the deny-list and rate limits: set NATTER_REDIS_URL (config key redis.url)"
        );
    }
    let shutdown = Shutdown::on_signals();
    let parts = Parts::connect(&config, false).await?;
    let auth = parts.auth(&config).await?;
    let metrics = Metrics::new();
    let http = observe(
        natter_auth::routes(auth.clone(), config.trust_forwarded_for).merge(ops_routes(
            parts.readiness(shutdown.clone()),
            metrics.clone(),
        )),
        &metrics,
    );
    let grpc = observe(natter_auth::grpc_routes(&auth).await, &metrics);
    tokio::spawn(watch_secrets(parts.secrets, auth, shutdown.clone()));
    let http_listener = bind(config.http_addr).await?;
    let grpc_listener = bind(config.grpc_addr).await?;
    tracing::info!(http = %config.http_addr, grpc = %config.grpc_addr, "auth service listening");
    tokio::try_join!(
        serve(http_listener, http, shutdown.clone()),
        serve(grpc_listener, grpc, shutdown),
    )?;
    Ok(())
}

/// `natter migrate`: applies the migrations of the configured database.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let url = config.database_url();
    let store = Store::connect(&url, 1)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!(backend = ?store.backend(), "migrations applied");
    Ok(())
}

/// The handles every mode connects to.
pub struct Parts {
    pub store: Store,
    pub kv: Arc<dyn Kv>,
    pub secrets: Box<dyn SecretSource>,
    pub loaded: Secrets,
}

impl Parts {
    /// Loads secrets, connects the store (migrating when `migrate`) and the key-value
    /// store.
    pub async fn connect(config: &Config, migrate: bool) -> anyhow::Result<Self> {
        let secrets = natter_core::secrets::source(config, |name| std::env::var(name).ok());
        let loaded = secrets.load().await.context("loading secrets")?;
        let store = Store::connect(&config.database_url(), config.database.max_connections)
            .await
            .context("connecting to the database")?;
        if migrate {
            store.migrate().await.context("applying migrations")?;
        }
        let redis = config.redis_url.as_ref().map(|u| u.expose().as_str());
        let kv = natter_core::kv::connect(redis)
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            store,
            kv,
            secrets,
            loaded,
        })
    }

    /// The auth service over these handles.
    pub async fn auth(&self, config: &Config) -> anyhow::Result<Auth> {
        Ok(natter_auth::assemble(
            config,
            self.store.clone(),
            self.kv.clone(),
            &self.loaded.jwt_keys,
        )
        .await?)
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

/// Binds a listener, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    natter_core::http::serve(listener, router, shutdown)
        .await
        .context("server failed")
}

/// Re-reads secrets periodically and applies a rotated signing key without a restart.
pub async fn watch_secrets(source: Box<dyn SecretSource>, auth: Auth, shutdown: Shutdown) {
    let mut current = match source.load().await {
        Ok(secrets) => secrets.jwt_keys,
        Err(error) => {
            tracing::error!(%error, "secrets unreadable; keeping the loaded keys");
            return;
        }
    };
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SECRETS_POLL) => {}
            _ = shutdown.clone().wait() => return,
        }
        let secrets = match source.load().await {
            Ok(secrets) => secrets,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "secrets unreadable; keeping the loaded keys");
                }
                failing = true;
                continue;
            }
        };
        if std::mem::take(&mut failing) {
            tracing::info!("secrets readable again");
        }
        if secrets.jwt_keys == current {
            continue;
        }
        match auth.set_keys(&secrets.jwt_keys) {
            Ok(()) => {
                tracing::info!(kid = %secrets.jwt_keys.active_kid, "signing keys rotated");
                current = secrets.jwt_keys;
            }
            Err(error) => tracing::error!(%error, "rotated keys refused"),
        }
    }
}

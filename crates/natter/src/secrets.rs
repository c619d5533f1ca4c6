//! Secrets in the binary: load them at start (their database and Redis connections go into
//! the config), then apply rotations to the running parts without a restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use natter_auth::Auth;
use natter_core::config::{Config, SecretSourceKind};
use natter_core::http::Metrics;
use natter_core::secrets::{SecretSource, Secrets};
use natter_core::shutdown::Shutdown;
use natter_core::store::Store;
use tokio::sync::watch;

/// Whether a service reads the secret source: auth signs tokens, and with Vault every
/// service takes its database and Redis connections from there.
pub fn needed_by(config: &Config, signs_tokens: bool) -> bool {
    signs_tokens || config.secrets_source == SecretSourceKind::Vault
}

/// Opens the configured source, loads the secrets (retrying an unreachable source until
/// `vault.start_deadline_secs`), puts their connections into `config` and watches them.
/// A Vault source's token lifetime becomes `natter_vault_token_ttl_seconds`.
pub async fn load(
    config: &mut Config,
    shutdown: Shutdown,
    metrics: &Metrics,
) -> anyhow::Result<watch::Receiver<Secrets>> {
    let source: Arc<dyn SecretSource> =
        natter_core::secrets::open(config, |name| std::env::var(name).ok())
            .await
            .context("opening the secret source")?
            .into();
    if config.secrets_source == SecretSourceKind::Vault {
        let vault = Arc::downgrade(&source);
        metrics.gauge_fn(
            "vault_token_ttl_seconds",
            "Seconds until the Vault token expires (renewed at two thirds of its lifetime)",
            move || vault.upgrade()?.token_ttl_secs(),
        );
    }
    let deadline = Duration::from_secs(config.vault.start_deadline_secs);
    let secrets = natter_core::secrets::load_at_start(source.as_ref(), deadline)
        .await
        .context("loading secrets")?;
    secrets
        .apply_to(config)
        .context("applying the secrets' connections")?;
    let poll = Duration::from_secs(config.secrets_poll_secs);
    Ok(natter_core::secrets::watch(source, secrets, poll, shutdown))
}

/// Makes each new signing key set the auth service's.
pub fn follow_signing_keys(auth: Auth, current: watch::Receiver<Secrets>) {
    follow(
        current,
        "signing keys",
        |s| s.jwt_keys.clone(),
        move |secrets| {
            auth.set_keys(&secrets.jwt_keys)?;
            tracing::info!(kid = %secrets.jwt_keys.active_kid, "signing keys rotated");
            Ok(())
        },
    );
}

/// Opens new database connections with rotated credentials; old connections retire at
/// the end of their lifetime (`database.max_lifetime_secs`).
pub fn follow_database(config: &Config, store: Store, current: watch::Receiver<Secrets>) {
    let base = config.clone();
    follow(
        current,
        "database credentials",
        |s| s.database.clone(),
        move |secrets| {
            let mut config = base.clone();
            secrets.apply_to(&mut config)?;
            store.use_url(&config.database_url())?;
            tracing::info!("database credentials rotated; new connections use them");
            Ok(())
        },
    );
}

/// Calls `apply` with the secrets each time the part `select` picks changes; a refused
/// change is logged and tried again with the next one.
fn follow<T: PartialEq + Send + 'static>(
    mut current: watch::Receiver<Secrets>,
    what: &'static str,
    select: impl Fn(&Secrets) -> T + Send + 'static,
    apply: impl Fn(&Secrets) -> anyhow::Result<()> + Send + 'static,
) {
    tokio::spawn(async move {
        let mut applied = select(&current.borrow_and_update());
        while current.changed().await.is_ok() {
            let secrets = current.borrow_and_update().clone();
            let next = select(&secrets);
            if next == applied {
                continue;
            }
            match apply(&secrets) {
                Ok(()) => applied = next,
                Err(error) => tracing::error!(%error, "rotated {what} refused"),
            }
        }
    });
}

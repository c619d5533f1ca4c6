//! Standalone mode: every service in one process on one port, SQLite in the data dir,
//! in-memory state, secrets generated on first start.

use std::io::Write;

use anyhow::Context;
use natter_core::config::Config;
use natter_core::http::{Metrics, observe, ops_routes};
use natter_core::secrets::FileSource;
use natter_core::shutdown::Shutdown;

use crate::grpc;
use crate::parts::Parts;
use crate::services::{SOCKET_DRAIN, assemble_auth, bind, chat_routes, serve, watch_secrets};

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    create_private_dir(&config.data_dir)?;
    let shutdown = Shutdown::on_signals();
    let parts = Parts::connect(&config, true).await?;
    let secrets = natter_core::secrets::source(&config, |name| std::env::var(name).ok());
    let auth = assemble_auth(&config, &parts, secrets.as_ref()).await?;
    let website = crate::services::assemble_website(&config, &parts, auth.verifier().clone());
    let (chat, chat_http, sockets) = chat_routes(&parts, auth.verifier().clone(), shutdown.clone());
    let metrics = Metrics::new();
    let router = natter_auth::routes(auth.clone(), config.trust_forwarded_for)
        .merge(chat_http)
        .merge(natter_website::routes(website.clone()))
        .merge(grpc::router(Some(&auth), Some(&website), Some(&chat)).await)
        .merge(ops_routes(
            parts.readiness(shutdown.clone()),
            metrics.clone(),
        ));
    let listener = bind(config.http_addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(watch_secrets(secrets, auth, shutdown.clone()));
    // A closed stdout (the launcher went away) must not stop the server.
    let _ = writeln!(
        std::io::stdout(),
        "Natter is running at http://{addr}/ (data in {})\nAPI docs: http://{addr}/api/docs/  WebSocket: ws://{addr}/ws\nPress Ctrl-C to stop.",
        config.data_dir.display()
    );
    serve(listener, observe(router, &metrics), shutdown).await?;
    sockets.drained(SOCKET_DRAIN).await;
    parts.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Creates the data dir readable by its owner only: it holds the database (password
/// hashes) and the signing keys.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting data dir {}", dir.display()))?;
    }
    Ok(())
}

/// `natter rotate-keys`: a new signing key in the data dir's secrets file; the previous
/// ones keep verifying for a day (far beyond any access-token lifetime).
pub fn rotate_keys(config: &Config) -> anyhow::Result<()> {
    let keep = i64::try_from(config.auth.access_ttl_secs)
        .unwrap_or(i64::MAX)
        .max(86_400);
    let secrets = FileSource::in_dir(&config.data_dir)
        .rotate_signing_key(keep)
        .context("rotating the signing key")?;
    println!("new signing key {} is active", secrets.jwt_keys.active_kid);
    Ok(())
}

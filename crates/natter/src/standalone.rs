//! Standalone mode: every service in one process on one port, SQLite in the data dir,
//! in-memory state, secrets generated on first start.

use std::io::Write;

use anyhow::Context;
use natter_core::config::Config;
use natter_core::http::{Metrics, observe, ops_routes};
use natter_core::shutdown::Shutdown;

use crate::grpc;
use crate::parts::Parts;
use crate::secrets;
use crate::services::{SOCKET_DRAIN, assemble_auth, bind, chat_limits, chat_routes, serve};

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    create_private_dir(&config.data_dir)?;
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::new();
    let secrets = secrets::load(&mut config, shutdown.clone(), &metrics).await?;
    let parts = Parts::connect(&config, true, &shutdown).await?;
    metrics.watch_store(&parts.store);
    secrets::follow_database(&config, parts.store.clone(), secrets.clone());
    let keys = secrets.borrow().clone();
    let auth = assemble_auth(&config, &parts, &keys).await?;
    auth.verifier().register_metrics(&metrics);
    secrets::follow_signing_keys(auth.clone(), secrets.clone());
    let website = crate::services::assemble_website(
        &config,
        &parts,
        auth.verifier().clone(),
        keys.vapid.clone(),
        shutdown.clone(),
    )?;
    let (chat, chat_http, sockets) = chat_routes(
        &parts,
        auth.verifier().clone(),
        chat_limits(&config),
        shutdown.clone(),
        &metrics,
    );
    let listener = bind(config.http_addr).await?;
    let addr = listener.local_addr()?;
    // The web UI calls the services over gRPC as in a cluster: here, on this very port.
    let own = tonic::transport::Channel::from_shared(format!("http://{addr}"))?.connect_lazy();
    let frontend =
        natter_frontend::Frontend::new(own.clone(), own, secrets, config.frontend.secure_cookies);
    let router = natter_auth::routes(auth.clone(), config.trust_forwarded_for)
        .merge(chat_http)
        .merge(natter_website::routes(
            website.clone(),
            natter_auth::openapi(),
        ))
        .merge(grpc::router(Some(&auth), Some(&website), Some(&chat)).await)
        .merge(natter_frontend::routes(frontend))
        .merge(ops_routes(
            parts.readiness(shutdown.clone()),
            metrics.clone(),
        ));
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

//! Service mode: each service alone against PostgreSQL and Redis, `migrate`, and what
//! every mode shares (listening, serving until shutdown, following key rotations).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use natter_auth::Auth;
use natter_chat::{Chat, Limits, Sockets};
use natter_core::config::Config;
use natter_core::email::Mailer;
use natter_core::email::worker::DigestWorker;
use natter_core::http::{Metrics, observe, ops_routes};
use natter_core::kv::Kv;
use natter_core::outbox::{Outbox, OutboxParts};
use natter_core::push::{PushWorker, VapidKey, WorkerSettings};
use natter_core::secrets::Secrets;
use natter_core::shutdown::Shutdown;
use natter_core::store::Store;
use natter_core::token::{Denylist, JwkSet, TokenVerifier, jwks};
use natter_proto::auth::v1::GetJwksRequest;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use natter_website::{Website, WriteLimiter};
use tonic::transport::Channel;

use crate::grpc;
use crate::parts::Parts;
use crate::secrets;

/// How often other services re-fetch the auth service's key set.
const JWKS_POLL: Duration = Duration::from_secs(60);
/// How long shutdown waits for WebSocket clients to take their 1012 close.
pub const SOCKET_DRAIN: Duration = Duration::from_secs(10);
/// How long a service waits for the auth service's key set at start.
const JWKS_DEADLINE: Duration = Duration::from_secs(60);

fn require_cluster_dependencies(config: &Config, service: &str) -> anyhow::Result<()> {
    if config.database.url.is_none() {
        bail!(
            "`natter {service}` needs PostgreSQL: set NATTER_DATABASE_URL (config key database.url)"
        );
    }
    if config.redis_url.is_none() {
        bail!("`natter {service}` needs Redis: set NATTER_REDIS_URL (config key redis.url)");
    }
    Ok(())
}

/// `natter auth`: gRPC on `grpc.addr`, JSON + ops on `http.addr`.
pub async fn auth(mut config: Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::new();
    let (parts, secrets) = connect(&mut config, "auth", &shutdown, &metrics).await?;
    let secrets = secrets.expect("auth always reads its secrets");
    let keys = secrets.borrow().clone();
    let auth = assemble_auth(&config, &parts, &keys).await?;
    auth.verifier().register_metrics(&metrics);
    secrets::follow_signing_keys(auth.clone(), secrets);
    let http = natter_auth::routes(auth.clone(), config.trust_forwarded_for);
    let grpc = grpc::router(Some(&auth), None, None).await;
    serve_pair(&config, &parts, http, grpc, shutdown, metrics).await
}

/// Loads the secrets this service needs (their database and Redis connections go into
/// `config`), checks cluster dependencies and connects; database credential rotations
/// are followed from then on.
async fn connect(
    config: &mut Config,
    service: &str,
    shutdown: &Shutdown,
    metrics: &Metrics,
) -> anyhow::Result<(Parts, Option<tokio::sync::watch::Receiver<Secrets>>)> {
    let secrets = match secrets::needed_by(config, service == "auth") {
        true => Some(secrets::load(config, shutdown.clone(), metrics).await?),
        false => None,
    };
    require_cluster_dependencies(config, service)?;
    let parts = Parts::connect(config, false, shutdown).await?;
    if let Some(current) = &secrets {
        secrets::follow_database(config, parts.store.clone(), current.clone());
    }
    Ok((parts, secrets))
}

/// `natter website`: gRPC on `grpc.addr`, JSON + OpenAPI + ops on `http.addr`; tokens
/// verified with the key set fetched from the auth service.
pub async fn website(mut config: Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::new();
    let (parts, secrets) = connect(&mut config, "website", &shutdown, &metrics).await?;
    let verifier = verifier_from_auth(&config, parts.kv.clone(), shutdown.clone()).await?;
    verifier.register_metrics(&metrics);
    // The VAPID key comes with the secrets the website reads (Vault in a cluster).
    let vapid = secrets.and_then(|s| s.borrow().vapid.clone());
    let website = assemble_website(&config, &parts, verifier, vapid, shutdown.clone())?;
    let http = natter_website::routes(website.clone(), natter_auth::openapi());
    let grpc = grpc::router(None, Some(&website), None).await;
    serve_pair(&config, &parts, http, grpc, shutdown, metrics).await
}

/// The website service over `parts`, verifying tokens with `verifier`; its outbox to the
/// broker retries until `shutdown`. With a VAPID key (and pushes enabled) it accepts
/// browsers' subscriptions and runs the push worker.
pub fn assemble_website(
    config: &Config,
    parts: &Parts,
    verifier: TokenVerifier,
    vapid: Option<VapidKey>,
    shutdown: Shutdown,
) -> anyhow::Result<Website> {
    let window = Duration::from_secs(config.website_write_window_secs);
    let limiter = WriteLimiter::new(parts.kv.clone(), config.website_write_limit, window);
    let outbox = Outbox::start(OutboxParts::new(
        parts.broker.clone(),
        "website",
        shutdown.clone(),
    ));
    let website = Website::new(parts.store.clone(), outbox, verifier, limiter)
        .receipts_up_to(config.receipts_max_members.into());
    spawn_digests(config, parts, shutdown.clone())?;
    let Some(key) = vapid.filter(|_| config.push_enabled) else {
        tracing::info!("Web Push off (disabled, or no VAPID key in the secrets)");
        return Ok(website);
    };
    let sender = natter_core::push::Sender::new(key, &config.push_contact)?;
    let public_key = sender.public_key()?;
    let settings = WorkerSettings {
        delay: Duration::from_secs(config.push_delay_secs),
        ..WorkerSettings::default()
    };
    let worker = PushWorker::new(parts.store.clone(), sender, settings);
    tokio::spawn(worker.run(shutdown));
    Ok(website.with_push(public_key))
}

/// Runs the email digest worker when digests are enabled.
fn spawn_digests(config: &Config, parts: &Parts, shutdown: Shutdown) -> anyhow::Result<()> {
    let email = &config.email;
    if !email.enabled {
        return Ok(());
    }
    let url = (email.smtp_url.as_ref())
        .context("notify.email_enabled is true but notify.smtp_url is not set")?;
    let public_url =
        (email.public_url.clone()).unwrap_or_else(|| format!("http://{}", config.http_addr));
    let mailer = Mailer::new(url, &email.from, &public_url)?;
    let delay = Duration::from_secs(email.delay_secs);
    let worker = DigestWorker::new(parts.store.clone(), mailer, delay);
    tokio::spawn(worker.run(shutdown));
    tracing::info!(delay_secs = email.delay_secs, "email digests on");
    Ok(())
}

/// The chat service's limits as configured.
pub fn chat_limits(config: &Config) -> Limits {
    Limits {
        receipts_max_members: config.receipts_max_members.into(),
        ..Limits::default()
    }
}

/// `natter chat`: the WebSocket endpoint `/ws` and ops on `http.addr`, gRPC health on
/// `grpc.addr`; tokens verified with the key set fetched from the auth service.
pub async fn chat(mut config: Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::new();
    let (parts, _) = connect(&mut config, "chat", &shutdown, &metrics).await?;
    let verifier = verifier_from_auth(&config, parts.kv.clone(), shutdown.clone()).await?;
    verifier.register_metrics(&metrics);
    let limits = chat_limits(&config);
    let (chat, http, sockets) = chat_routes(&parts, verifier, limits, shutdown.clone(), &metrics);
    let grpc = grpc::router(None, None, Some(&chat)).await;
    serve_pair(&config, &parts, http, grpc, shutdown, metrics).await?;
    sockets.drained(SOCKET_DRAIN).await;
    Ok(())
}

/// The chat service's routes over `parts`, with its relay from other replicas running.
pub fn chat_routes(
    parts: &Parts,
    verifier: TokenVerifier,
    limits: Limits,
    shutdown: Shutdown,
    metrics: &Metrics,
) -> (Chat, Router, Sockets) {
    let chat = Chat::new(
        parts.store.clone(),
        verifier,
        parts.broker.clone(),
        shutdown,
        limits,
    );
    chat.register_metrics(metrics);
    tokio::spawn(chat.clone().relay());
    let sockets = Sockets::default();
    let routes = natter_chat::routes(chat.clone(), sockets.clone());
    (chat, routes, sockets)
}

/// `natter frontend`: the web UI on `http.addr`, calling auth and website over gRPC.
pub async fn frontend(mut config: Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals();
    let metrics = Metrics::new();
    let secrets = secrets::load(&mut config, shutdown.clone(), &metrics).await?;
    let channel = |url: &str| {
        Channel::from_shared(url.to_owned())
            .with_context(|| format!("bad gRPC URL {url}"))
            .map(|endpoint| endpoint.connect_lazy())
    };
    let frontend = natter_frontend::Frontend::new(
        channel(&config.auth.grpc_url)?,
        channel(&config.frontend.website_grpc_url)?,
        secrets,
        config.frontend.secure_cookies,
    );
    let routes = natter_frontend::routes(frontend).merge(ops_routes(
        natter_core::http::Readiness::new(shutdown.clone()),
        metrics.clone(),
    ));
    let listener = bind(config.http_addr).await?;
    tracing::info!(http = %config.http_addr, "listening");
    serve(listener, observe(routes, &metrics), shutdown).await
}

/// `natter migrate`: applies the migrations of the configured database.
pub async fn migrate(mut config: Config) -> anyhow::Result<()> {
    if secrets::needed_by(&config, false) {
        let (_trigger, shutdown) = Shutdown::new();
        secrets::load(&mut config, shutdown, &Metrics::new()).await?;
    }
    let store = Store::connect(&config.database_url(), 1)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!(backend = ?store.backend(), "migrations applied");
    Ok(())
}

/// The auth service over `parts` with the signing keys from `secrets`.
pub async fn assemble_auth(
    config: &Config,
    parts: &Parts,
    secrets: &Secrets,
) -> anyhow::Result<Auth> {
    let handles = natter_auth::Handles {
        store: parts.store.clone(),
        kv: parts.kv.clone(),
        broker: parts.broker.clone(),
    };
    Ok(natter_auth::assemble(config, handles, &secrets.jwt_keys).await?)
}

async fn verifier_from_auth(
    config: &Config,
    kv: std::sync::Arc<dyn Kv>,
    shutdown: Shutdown,
) -> anyhow::Result<TokenVerifier> {
    let url = config.auth.grpc_url.clone();
    let fetch = move || {
        let url = url.clone();
        async move {
            let channel = Channel::from_shared(url)
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            // The caller's trace context travels with the call.
            let mut client = AuthServiceClient::new(natter_core::grpc::traced(channel));
            let reply = client
                .get_jwks(GetJwksRequest {})
                .await
                .map_err(|e| e.to_string())?;
            serde_json::from_str::<JwkSet>(&reply.into_inner().jwks_json).map_err(|e| e.to_string())
        }
    };
    let initial = jwks::fetch_with_retry(&fetch, JWKS_DEADLINE)
        .await
        .map_err(|e| anyhow::anyhow!("fetching signing keys from {}: {e}", config.auth.grpc_url))?;
    let verifier = TokenVerifier::new(
        &initial,
        &config.auth.issuer,
        &config.auth.audience,
        Denylist::new(kv),
    );
    tokio::spawn(jwks::follow(verifier.clone(), fetch, JWKS_POLL, shutdown));
    Ok(verifier)
}

/// Serves `http` (plus ops routes) on `http.addr` and `grpc` on `grpc.addr`.
async fn serve_pair(
    config: &Config,
    parts: &Parts,
    http: Router,
    grpc: Router,
    shutdown: Shutdown,
    metrics: Metrics,
) -> anyhow::Result<()> {
    metrics.watch_store(&parts.store);
    let http = observe(
        http.merge(ops_routes(
            parts.readiness(shutdown.clone()),
            metrics.clone(),
        )),
        &metrics,
    );
    let grpc = observe(grpc, &metrics);
    let http_listener = bind(config.http_addr).await?;
    let grpc_listener = bind(config.grpc_addr).await?;
    tracing::info!(http = %config.http_addr, grpc = %config.grpc_addr, "listening");
    tokio::try_join!(
        serve(http_listener, http, shutdown.clone()),
        serve(grpc_listener, grpc, shutdown)
    )?;
    parts.store.close().await;
    Ok(())
}

/// Binds a listener, naming the address on failure.
/// A listener on `addr` whose accept queue holds a reconnect storm: std's backlog of 128
/// overflowed when a few hundred clients connected at once (each dropped SYN costs the
/// client a 1 s retransmission); the kernel caps 4096 at `net.core.somaxconn`.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listen = || -> std::io::Result<tokio::net::TcpListener> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().with_context(|| format!("cannot listen on {addr}"))
}

/// Connections the kernel may hold for a listener before they are accepted.
pub const LISTEN_BACKLOG: u32 = 4096;

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

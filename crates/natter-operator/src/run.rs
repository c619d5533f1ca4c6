//! `natter operator`: `/metrics` and `/healthz` on an HTTP port, leader election, then the
//! ChatCluster controller watching every namespace.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;

use crate::crd::ChatCluster;
use crate::leader::LeaseLock;
use crate::metrics::Metrics;
use crate::reconcile::{Context, MANAGER, error_policy, reconcile};

/// Where the operator runs and what it is called.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `/metrics` and `/healthz`.
    pub http_addr: SocketAddr,
    /// Namespace of the leader-election Lease.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
}

/// Runs until SIGTERM, or until leadership is lost (the process should then exit).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let metrics = Metrics::default();
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
    let routes = ops_routes(metrics.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await });

    let lock = LeaseLock::new(
        client.clone(),
        &settings.namespace,
        MANAGER,
        &settings.identity,
    );
    tracing::info!(identity = %settings.identity, "waiting for leadership");
    lock.acquire().await;
    tracing::info!("leading; starting the controller");
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: Some(settings.identity.clone()),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        Recorder::new(client.clone(), reporter),
        metrics,
    ));
    tokio::select! {
        () = controller(client, ctx) => Ok(()),
        () = lock.hold() => anyhow::bail!("lost the leader lease; exiting so another replica can lead"),
    }
}

/// `/metrics` (Prometheus text) and `/healthz`.
pub fn ops_routes(metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
}

async fn controller(client: Client, ctx: Arc<Context>) {
    let config = watcher::Config::default().labels("app.kubernetes.io/managed-by=natter-operator");
    Controller::new(
        Api::<ChatCluster>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Deployment>::all(client.clone()), config.clone())
    .owns(Api::<Service>::all(client.clone()), config.clone())
    .owns(Api::<ConfigMap>::all(client.clone()), config.clone())
    .owns(Api::<ServiceAccount>::all(client.clone()), config.clone())
    .owns(Api::<Ingress>::all(client.clone()), config.clone())
    .owns(
        Api::<HorizontalPodAutoscaler>::all(client.clone()),
        config.clone(),
    )
    .owns(
        Api::<PodDisruptionBudget>::all(client.clone()),
        config.clone(),
    )
    .owns(Api::<Job>::all(client), config)
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "controller event");
        }
    })
    .await;
}

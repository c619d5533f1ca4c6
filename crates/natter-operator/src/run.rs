//! `natter operator`: `/metrics` and `/healthz` on an HTTP port, leader election, then the
//! ChatCluster controller watching every namespace or the ones listed.

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
use k8s_openapi::apimachinery::pkg::version::Info;
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
    /// Namespaces whose ChatClusters it manages; empty: every namespace.
    pub watch_namespaces: Vec<String>,
}

/// Runs until SIGTERM, or until leadership is lost (the process should then exit).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster or KUBECONFIG)")?;
    let version = client
        .apiserver_version()
        .await
        .context("asking the API server its version")?;
    supported(&version).map_err(anyhow::Error::msg)?;
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
    let controllers = match settings.watch_namespaces.as_slice() {
        [] => vec![controller(client, None, ctx)],
        namespaces => namespaces
            .iter()
            .map(|ns| controller(client.clone(), Some(ns), ctx.clone()))
            .collect(),
    };
    tracing::info!(namespaces = ?settings.watch_namespaces, "watching ChatClusters (none listed: all)");
    tokio::select! {
        _ = futures::future::join_all(controllers) => {
            // Stopped by SIGTERM: hand the lease over rather than let it expire.
            match lock.release().await {
                Ok(()) => tracing::info!("released the leader lease"),
                Err(error) => tracing::warn!(%error, "could not release the leader lease"),
            }
            Ok(())
        }
        () = lock.hold() => anyhow::bail!("lost the leader lease; exiting so another replica can lead"),
    }
}

/// The oldest Kubernetes Natter runs on: its pods use the `sleep` preStop hook (1.30).
pub const OLDEST_KUBERNETES: (u32, u32) = (1, 30);

/// Refuses an API server older than [`OLDEST_KUBERNETES`] (the guard for installs without
/// Helm, whose chart states `kubeVersion`). Minor versions such as `30+` are understood.
pub fn supported(version: &Info) -> Result<(), String> {
    let number = |text: &str| {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    };
    let found = (number(&version.major), number(&version.minor));
    match found {
        (Some(major), Some(minor)) if (major, minor) >= OLDEST_KUBERNETES => Ok(()),
        (Some(_), Some(_)) => Err(format!(
            "Kubernetes {} is older than {}.{}, the oldest Natter supports",
            version.git_version, OLDEST_KUBERNETES.0, OLDEST_KUBERNETES.1
        )),
        _ => Err(format!(
            "cannot read the Kubernetes version {:?}.{:?}",
            version.major, version.minor
        )),
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

/// The ChatCluster controller over `namespace` (every namespace when `None`), until
/// SIGTERM.
async fn controller(client: Client, namespace: Option<&str>, ctx: Arc<Context>) {
    fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let config = watcher::Config::default().labels("app.kubernetes.io/managed-by=natter-operator");
    Controller::new(
        api::<ChatCluster>(&client, namespace),
        watcher::Config::default(),
    )
    .owns(api::<Deployment>(&client, namespace), config.clone())
    .owns(api::<Service>(&client, namespace), config.clone())
    .owns(api::<ConfigMap>(&client, namespace), config.clone())
    .owns(api::<ServiceAccount>(&client, namespace), config.clone())
    .owns(api::<Ingress>(&client, namespace), config.clone())
    .owns(
        api::<HorizontalPodAutoscaler>(&client, namespace),
        config.clone(),
    )
    .owns(
        api::<PodDisruptionBudget>(&client, namespace),
        config.clone(),
    )
    .owns(api::<Job>(&client, namespace), config)
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "controller event");
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(major: &str, minor: &str) -> Info {
        Info {
            major: major.into(),
            minor: minor.into(),
            git_version: format!("v{major}.{minor}"),
            ..Info::default()
        }
    }

    #[test]
    fn kubernetes_before_1_30_is_refused() {
        assert!(supported(&info("1", "33")).is_ok());
        assert!(
            supported(&info("1", "30+")).is_ok(),
            "managed clusters add a +"
        );
        assert!(supported(&info("2", "0")).is_ok());
        let refusal = supported(&info("1", "29")).unwrap_err();
        assert!(refusal.contains("older than 1.30"), "{refusal}");
        assert!(supported(&info("", "")).is_err());
    }
}

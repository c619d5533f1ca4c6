//! Operational endpoints every service serves: `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use http::StatusCode;

use super::Metrics;
use crate::shutdown::Shutdown;

/// One dependency check: its name and a probe.
pub type ReadinessCheck = (
    &'static str,
    Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
);

/// What `/readyz` checks: every dependency answers and shutdown has not begun.
#[derive(Clone)]
pub struct Readiness {
    checks: Vec<ReadinessCheck>,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Readiness").field("checks", &names).finish()
    }
}

impl Readiness {
    /// Readiness that turns false when `shutdown` triggers.
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            checks: Vec::new(),
            shutdown,
        }
    }

    /// Adds a dependency check.
    pub fn check<F>(mut self, name: &'static str, probe: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        self.checks.push((name, Arc::new(probe)));
        self
    }

    async fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.shutdown.is_triggered() {
            failures.push("shutting down".to_owned());
        }
        for (name, probe) in &self.checks {
            if let Err(error) = probe().await {
                failures.push(format!("{name}: {error}"));
            }
        }
        failures
    }
}

/// `/healthz` (the process is alive), `/readyz` (dependencies answer), `/metrics`.
pub fn ops_routes(readiness: Readiness, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state(readiness))
        .route("/metrics", get(scrape).with_state(metrics))
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let failures = readiness.failures().await;
    if failures.is_empty() {
        return (StatusCode::OK, "ready".to_owned());
    }
    tracing::warn!(?failures, "not ready");
    (StatusCode::SERVICE_UNAVAILABLE, failures.join("\n"))
}

async fn scrape(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

//! Prometheus metrics: one registry per process, request counts and latency per route.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The process's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the request metrics registered under the `natter_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("natter");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            });
        registry.register(
            "requests",
            "Requests served, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to serve a request, by method and route",
            durations.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            durations,
        }
    }

    /// Lets a service register its own metrics.
    pub fn register(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Adds a gauge named `natter_<name>` whose value `read` gives at each scrape (the
    /// gauge is left out while `read` gives `None`).
    pub fn gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Option<i64> + Send + Sync + 'static,
    ) {
        let gauge = GaugeFn {
            name,
            help,
            read: Box::new(read),
        };
        self.register(|registry| registry.register_collector(Box::new(gauge)));
    }

    /// Adds `natter_db_pool_connections`, `natter_db_pool_idle_connections` and
    /// `natter_db_pool_max_connections` for `store`.
    pub fn watch_store(&self, store: &crate::store::Store) {
        let max = store.pool_max();
        self.gauge_fn(
            "db_pool_max_connections",
            "Most database connections the pool opens",
            move || Some(i64::from(max)),
        );
        let open = store.clone();
        self.gauge_fn(
            "db_pool_connections",
            "Database connections the pool holds open",
            move || Some(i64::from(open.pool_usage().0)),
        );
        let idle = store.clone();
        self.gauge_fn(
            "db_pool_idle_connections",
            "Open database connections not in use",
            move || i64::try_from(idle.pool_usage().1).ok(),
        );
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.into(),
                route: route.into(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                method: method.into(),
                route: route.into(),
            })
            .observe(seconds);
    }
}

/// A gauge read at scrape time.
struct GaugeFn {
    name: &'static str,
    help: &'static str,
    read: Box<dyn Fn() -> Option<i64> + Send + Sync>,
}

impl std::fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaugeFn").field("name", &self.name).finish()
    }
}

impl Collector for GaugeFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(value) = (self.read)() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(value);
        let metric = encoder.encode_descriptor(self.name, self.help, None, gauge.metric_type())?;
        gauge.encode(metric)
    }
}

/// Axum middleware counting and timing every request by its route template (never by
/// raw path, so label values stay bounded).
pub async fn record_metrics(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics.observe(&method, &route, status, started.elapsed().as_secs_f64());
    response
}

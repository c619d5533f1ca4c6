//! What tests read of a service's telemetry: spans exported to an in-process OTLP
//! collector, and the Prometheus text of `/metrics`.

use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer, setup_tracer_provider};
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// Spans of this thread's tracing, exported to an in-process collector. Use it on a
/// current-thread runtime: the subscriber applies to the creating thread only, which then
/// runs every task of the servers under test. Spans whose last reference is dropped on
/// another thread (sqlx-sqlite's workers) never let their parents close here.
pub struct Traces {
    collector: FakeCollectorServer,
    provider: SdkTracerProvider,
    received: Vec<ExportedSpan>,
    _guard: DefaultGuard,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

impl Traces {
    /// Starts the collector and makes it receive this thread's spans (INFO and above).
    pub async fn capture() -> Self {
        let collector = FakeCollectorServer::start()
            .await
            .expect("start the OTLP collector");
        let provider = setup_tracer_provider(&collector).await;
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("natter-test"));
        let guard = tracing::subscriber::set_default(
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(layer),
        );
        Self {
            collector,
            provider,
            received: Vec::new(),
            _guard: guard,
        }
    }

    /// The spans of trace `trace` (hex), flushing until `at_least` spans named `last` are
    /// among them (a request span closes after its response is sent, so it may lag the
    /// client) or five seconds have passed. Spans of other traces are kept for later calls.
    pub async fn trace(&mut self, trace: &str, last: &str, at_least: usize) -> Vec<ExportedSpan> {
        let ours = |received: &[ExportedSpan]| -> Vec<ExportedSpan> {
            received
                .iter()
                .filter(|s| s.trace_id == trace)
                .cloned()
                .collect()
        };
        for _ in 0..50 {
            let spans = ours(&self.received);
            if spans.iter().filter(|s| s.name == last).count() >= at_least {
                return spans;
            }
            // Flushing blocks its thread until the export is done: not the runtime's.
            let flushing = self.provider.clone();
            let _ = tokio::task::spawn_blocking(move || flushing.force_flush()).await;
            // Waits up to 100 ms for the first span of a batch.
            let batch = self
                .collector
                .exported_spans(1, Duration::from_millis(100))
                .await;
            self.received.extend(batch);
        }
        ours(&self.received)
    }
}

/// The value of the sample `series` (a metric name, with its labels exactly as exposed
/// when it has any), when present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Checks `text` is Prometheus text: ends with `# EOF`, every other line a comment or
/// `natter_name[{labels}] value` with a valid name and number.
pub fn assert_exposition(text: &str) {
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            name.starts_with("natter_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line}"
        );
    }
}

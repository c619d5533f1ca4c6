//! `bench auth --spans`: the server exports its spans to an in-process OTLP collector;
//! per RPC, the duration percentiles of every span name in its traces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};

/// Receives spans in the background (the collector's own queue is small).
pub struct SpanSink {
    endpoint: String,
    spans: Arc<Mutex<Vec<ExportedSpan>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SpanSink {
    pub async fn start() -> anyhow::Result<Self> {
        let mut collector = FakeCollectorServer::start()
            .await
            .map_err(|e| anyhow::anyhow!("starting the OTLP collector: {e}"))?;
        let endpoint = collector.endpoint();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        let task = tokio::spawn(async move {
            loop {
                let batch = collector
                    .exported_spans(1, Duration::from_millis(200))
                    .await;
                sink.lock().expect("not poisoned").extend(batch);
            }
        });
        Ok(Self {
            endpoint,
            spans,
            task,
        })
    }

    /// The environment that makes a natter process export every span here.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint.clone()),
            ("NATTER_TRACE_SAMPLE_RATIO", "1".into()),
            // Small, frequent batches and room for a 10 s run at 200 requests/s.
            ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "65536".into()),
        ]
    }

    /// Everything received once the server's last batches are in.
    pub async fn take(&self) -> Vec<ExportedSpan> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        std::mem::take(&mut *self.spans.lock().expect("not poisoned"))
    }
}

impl Drop for SpanSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Prints, for each root span name (the RPC), every span name's count and p50/p99
/// duration in microseconds, slowest first.
pub fn print_breakdown(spans: &[ExportedSpan]) {
    let by_id: HashMap<&str, &ExportedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let root_of = |span: &ExportedSpan| {
        let mut current = span;
        while let Some(parent) = by_id.get(current.parent_span_id.as_str()) {
            current = parent;
        }
        current.name.clone()
    };
    let mut groups: HashMap<String, HashMap<String, Vec<u64>>> = HashMap::new();
    for span in spans {
        let micros = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano)
            / 1000;
        groups
            .entry(root_of(span))
            .or_default()
            .entry(span.name.clone())
            .or_default()
            .push(micros);
    }
    let mut roots: Vec<_> = groups.into_iter().collect();
    roots.sort_by(|a, b| a.0.cmp(&b.0));
    for (root, names) in roots {
        println!("  spans under {root}:");
        let mut rows: Vec<(String, usize, u64, u64)> = names
            .into_iter()
            .map(|(name, mut micros)| {
                micros.sort_unstable();
                let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
                (name, micros.len(), at(0.5), at(0.99))
            })
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.2));
        for (name, count, p50, p99) in rows {
            println!("    {name:<44} {count:>6}  p50 {p50:>7} µs  p99 {p99:>7} µs");
        }
    }
}

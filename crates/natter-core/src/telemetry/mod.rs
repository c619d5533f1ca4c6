//! The one place that builds tracing subscribers: `RUST_LOG` filter, pretty or JSON logs,
//! OTLP trace export when configured, and W3C trace-context propagation helpers.

mod fresh;

use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

/// Keeps the trace exporter alive; dropping it flushes pending spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("tracing subscriber: {0}")]
    Subscriber(String),
}

/// Installs the global subscriber for `service` (e.g. `natter-auth`).
pub fn init(config: &TelemetryConfig, service: &str) -> Result<Telemetry, TelemetryError> {
    // vaultrs and rustify log every non-2xx answer as an error, including the expected 404
    // of an optional secret; natter's Vault client reports what matters itself, once per
    // state change.
    let quiet = |filter: EnvFilter| {
        filter
            .add_directive("rustify=off".parse().expect("a valid directive"))
            .add_directive("vaultrs=off".parse().expect("a valid directive"))
    };
    let filter =
        quiet(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    // Logs go to stderr: stdout carries what a command prints (URLs, new key ids).
    let fmt = match config.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colours for a terminal only: not escape codes in a log file or a pipe.
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            // Every enclosing span's fields, among them the request span's trace_id.
            .with_span_list(true)
            .boxed(),
    };
    // `RUST_LOG` picks the log lines; INFO spans stay on whatever it says, so that a
    // quieter log neither empties the traces nor loses the request's ids in its lines.
    // Its level hint keeps `log` records of libraries (tungstenite logs every frame at
    // TRACE) from being built and bridged only to be dropped: 4–5 % of a busy chat
    // replica's CPU went there.
    let spans = tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_span() && *meta.level() <= tracing::Level::INFO
    })
    .with_max_level_hint(tracing_subscriber::filter::LevelFilter::INFO);
    let fmt = fmt.with_filter(fresh::Fresh(filter.or(spans)));
    // JSON logs carry trace ids, so traces exist (and are sampled) even with no collector.
    let wants_ids = config.log_format == LogFormat::Json;
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(
            Some(endpoint),
            config.sample_ratio,
            service,
        )?),
        None if wants_ids => Some(tracer_provider(None, config.sample_ratio, service)?),
        None => None,
    };
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("natter"))
            .with_filter(fresh::Fresh(quiet(EnvFilter::new("info"))))
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::Subscriber(e.to_string()))?;
    Ok(Telemetry { provider })
}

/// Spans sampled by `ratio` (parent-based), exported to `endpoint` when there is one.
fn tracer_provider(
    endpoint: Option<&str>,
    ratio: f64,
    service: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let mut resource = Resource::builder()
        .with_service_name(service.to_owned())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    // Set from the downward API in every pod the operator makes.
    for (variable, attribute) in [
        ("POD_NAME", "k8s.pod.name"),
        ("POD_NAMESPACE", "k8s.namespace.name"),
    ] {
        if let Ok(value) = std::env::var(variable) {
            resource = resource.with_attribute(KeyValue::new(attribute, value));
        }
    }
    let resource = resource.build();
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(resource);
    if let Some(endpoint) = endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

/// The trace context carried by `traceparent`/`tracestate` headers (or gRPC metadata,
/// which arrives as the same HTTP/2 headers).
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The trace context W3C `traceparent` and `tracestate` values name (empty when the
/// `traceparent` is malformed; a malformed `tracestate` is dropped).
pub fn context_from_w3c(traceparent: &str, tracestate: Option<&str>) -> Context {
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = traceparent.parse() {
        headers.insert("traceparent", value);
    }
    if let Some(Ok(value)) = tracestate.map(str::parse) {
        headers.insert("tracestate", value);
    }
    extract_context(&headers)
}

/// The current span's trace context, when its trace is sampled: what a message carries
/// across replicas so that its deliveries join the send's trace.
pub fn sampled() -> Option<Context> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    context
        .span()
        .span_context()
        .is_sampled()
        .then_some(context)
}

/// The W3C `traceparent` and `tracestate` (possibly empty) values of `context`, when it
/// holds a valid span.
pub fn w3c_of(context: &Context) -> Option<(String, String)> {
    let mut headers = http::HeaderMap::new();
    inject_context(context, &mut headers);
    let value = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Some((
        value("traceparent")?,
        value("tracestate").unwrap_or_default(),
    ))
}

/// Writes `context` as `traceparent`/`tracestate` into `headers`.
pub fn inject_context(context: &Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(context, &mut HeaderInjector(headers));
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn trace_context_round_trips_through_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        let context = extract_context(&headers);
        let span = context.span();
        assert_eq!(
            span.span_context().trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let mut out = http::HeaderMap::new();
        inject_context(&context, &mut out);
        assert_eq!(out["traceparent"], headers["traceparent"]);
    }

    #[test]
    fn trace_state_travels_with_the_parent() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let context = context_from_w3c(parent, Some("vendor=abc,other=1"));
        assert_eq!(
            w3c_of(&context),
            Some((parent.to_owned(), "vendor=abc,other=1".to_owned()))
        );
        let context = context_from_w3c(parent, Some("not a valid state"));
        assert_eq!(w3c_of(&context), Some((parent.to_owned(), String::new())));
        assert_eq!(w3c_of(&context_from_w3c("garbage", None)), None);
    }
}

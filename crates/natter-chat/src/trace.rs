//! Spans of a message's journey (send, publish, relay, deliver) and the trace context
//! that travels with it through the hub and the broker.

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// A messaging span named `chat <operation>`, child of `parent` when given.
pub(crate) fn span(
    operation: &'static str,
    kind: &'static str,
    system: &'static str,
    parent: Option<Context>,
) -> Span {
    // Static names: this runs for every send.
    let name = match operation {
        "send" => "chat send",
        "publish" => "chat publish",
        "relay" => "chat relay",
        "deliver" => "chat deliver",
        _ => "chat",
    };
    let span = tracing::info_span!(
        "chat",
        otel.name = name,
        otel.kind = kind,
        messaging.system = system,
        messaging.operation.type = operation,
    );
    if let Some(parent) = parent {
        let _ = span.set_parent(parent);
    }
    span
}

/// The context a client's `traceparent` (and `tracestate`) name.
pub(crate) fn from_w3c(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Context> {
    traceparent.map(|parent| natter_core::telemetry::context_from_w3c(parent, tracestate))
}

/// For a message from another replica: a `chat relay` span joining the sender's trace
/// (`traceparent` and `tracestate` from the room event, empty when absent), whose
/// context the deliveries then join.
pub(crate) fn relayed(traceparent: &str, tracestate: &str) -> Option<Context> {
    if traceparent.is_empty() {
        return None;
    }
    let tracestate = (!tracestate.is_empty()).then_some(tracestate);
    let relay = span(
        "relay",
        "consumer",
        "redis",
        from_w3c(Some(traceparent), tracestate),
    );
    let context = relay.context();
    context
        .span()
        .span_context()
        .is_sampled()
        .then_some(context)
}

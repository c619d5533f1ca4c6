//! HTTP plumbing shared by services: the JSON error body, request spans carrying the
//! caller's trace context, request metrics, `/healthz`, `/readyz`, `/metrics`, and the
//! client address behind an ingress.

mod caller;
mod error;
mod extract;
mod metrics;
mod openapi;
mod ops;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use http::{HeaderMap, Request};
use tower_http::trace::MakeSpan;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use caller::{Caller, MaybeCaller, bearer_token, missing_token};
pub use error::{ApiError, ErrorBody, ErrorDetail, RETRY_UNAVAILABLE_SECS};
pub use extract::{JsonBody, QueryParams, object_body};
pub use metrics::{Metrics, record_metrics};
pub use openapi::{BEARER, ErrorResponses, operations};
pub use ops::{Readiness, ReadinessCheck, ops_routes};

use crate::telemetry::extract_context;

/// Makes one server span per request (HTTP or gRPC), parented to the caller's trace.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let method = request.method();
        let path = request.uri().path();
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let span = if is_grpc {
            tracing::info_span!(
                "grpc",
                otel.name = path.trim_start_matches('/'),
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.method = path,
                rpc.grpc.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            )
        } else {
            let route = request
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or(path, |m| m.as_str());
            tracing::info_span!(
                "http",
                otel.name = format!("{method} {route}"),
                otel.kind = "server",
                http.request.method = %method,
                http.route = route,
                http.response.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            )
        };
        let _ = span.set_parent(extract_context(request.headers()));
        record_ids(&span);
        span
    }
}

/// Adds request spans (parented to the caller's trace, named in a `traceresponse`
/// header) and request metrics to `router`.
pub fn observe(router: axum::Router, metrics: &Metrics) -> axum::Router {
    router
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            record_metrics,
        ))
        .layer(axum::middleware::from_fn(trace_response))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(RequestSpan))
}

/// Headers of every JSON API response: never sniffed as another content type, and never
/// cached unless the handler said otherwise (they carry tokens and personal data; RFC 6749
/// §5.1 requires `no-store` for token responses).
pub async fn api_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Records the response's status on the request span (an error status for 5xx, or a
/// gRPC error sent in the headers) and tells the caller which span served it, in the W3C
/// `traceresponse` header (same format as `traceparent`).
async fn trace_response(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let span = Span::current();
    let served_by = crate::telemetry::w3c_of(&span.context());
    let mut response = next.run(request).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(code) = grpc_status {
        span.record("rpc.grpc.status_code", code);
    }
    // Server-side failures only, as the semantic conventions say: 5xx for HTTP; UNKNOWN,
    // DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS for gRPC.
    let failed = match grpc_status {
        Some(code) => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
        None => status.is_server_error(),
    };
    if failed {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(Ok(value)) = served_by.map(|(parent, _)| http::HeaderValue::try_from(parent)) {
        response.headers_mut().insert("traceresponse", value);
    }
    response
}

/// Serves HTTP/1 and HTTP/2 (gRPC) on `listener` until `shutdown`, then lets in-flight
/// requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: crate::shutdown::Shutdown,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small responses (gRPC trailers after data) must not wait for Nagle's algorithm.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.wait())
    .await
}

/// The address of the client that made a request: the first `X-Forwarded-For` entry when
/// the ingress is trusted to set it, else the socket peer.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    trust_forwarded_for: bool,
) -> String {
    if trust_forwarded_for
        && let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
    {
        return first.trim().to_owned();
    }
    peer.map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default()
}

/// Puts the span's trace and span ids among its fields, so that JSON log lines of the
/// request carry them (they exist when a tracer is installed: see `telemetry::init`).
fn record_ids(span: &Span) {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let ids = context.span().span_context().clone();
    if ids.is_valid() {
        span.record("trace_id", ids.trace_id().to_string());
        span.record("span_id", ids.span_id().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7, 10.0.0.1".parse().unwrap());
        let peer = ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000)));
        assert_eq!(client_ip(&headers, Some(&peer), true), "203.0.113.7");
        assert_eq!(client_ip(&headers, Some(&peer), false), "10.0.0.1");
    }
}

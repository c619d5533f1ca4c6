//! gRPC plumbing shared by services: trace-context injection for clients and the
//! client address of a request.

use tonic::metadata::{MetadataKey, MetadataValue};

use crate::token::{AccessClaims, TokenError, TokenVerifier};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry::inject_context;

/// A channel whose calls carry the calling span's trace context.
pub type TracedChannel = tonic::service::interceptor::InterceptedService<
    tonic::transport::Channel,
    fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
>;

/// Wraps `channel` so that every call sends the current span's trace context.
pub fn traced(channel: tonic::transport::Channel) -> TracedChannel {
    tonic::service::interceptor::InterceptedService::new(channel, inject_trace_context)
}

/// A client interceptor that sends the current span's W3C trace context as metadata.
pub fn inject_trace_context(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let context = tracing::Span::current().context();
    let mut headers = http::HeaderMap::new();
    inject_context(&context, &mut headers);
    for (name, value) in &headers {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(name.as_str().as_bytes()),
            MetadataValue::try_from(value.as_bytes()),
        ) {
            request.metadata_mut().insert(key, value);
        }
    }
    Ok(request)
}

/// The peer address of a request (from tonic's transport or axum's connect info), or an
/// empty string when unknown (in-memory transports).
pub fn peer_ip<T>(request: &tonic::Request<T>) -> String {
    let connect_info = || {
        request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0)
    };
    request
        .remote_addr()
        .or_else(connect_info)
        .map(|addr| addr.ip().to_string())
        .unwrap_or_default()
}

/// The end user a call acts for: the `authorization: Bearer <token>` metadata, verified
/// locally (signature, claims, deny-list).
pub async fn caller<T>(
    verifier: &TokenVerifier,
    request: &tonic::Request<T>,
) -> Result<AccessClaims, tonic::Status> {
    let token = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            tonic::Status::unauthenticated("an authorization: Bearer access token is required")
        })?;
    verifier.verify(token).await.map_err(|error| match error {
        TokenError::Unavailable(cause) => {
            tracing::error!(error = %cause, "deny-list unavailable");
            tonic::Status::unavailable("temporarily unavailable, retry")
        }
        other => tonic::Status::unauthenticated(other.to_string()),
    })
}

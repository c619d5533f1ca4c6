//! The gRPC services a process serves, with grpc.health.v1 reporting each as serving.

use axum::Router;
use natter_auth::{Auth, AuthGrpc};
use natter_chat::{Chat, ChatGrpc};
use natter_proto::auth::v1::auth_service_server::AuthServiceServer;
use natter_proto::chat::v1::chat_service_server::ChatServiceServer;
use natter_proto::website::v1::website_service_server::WebsiteServiceServer;
use natter_website::{Website, WebsiteGrpc};
use tonic::service::Routes;

/// The gRPC router for whichever services this process runs.
pub async fn router(auth: Option<&Auth>, website: Option<&Website>, chat: Option<&Chat>) -> Router {
    let (health, health_service) = tonic_health::server::health_reporter();
    let mut routes = Routes::new(health_service);
    if let Some(auth) = auth {
        health.set_serving::<AuthServiceServer<AuthGrpc>>().await;
        routes = routes.add_service(natter_auth::grpc_service(auth.clone()));
    }
    if let Some(website) = website {
        health
            .set_serving::<WebsiteServiceServer<WebsiteGrpc>>()
            .await;
        routes = routes.add_service(natter_website::grpc_service(website));
    }
    if let Some(chat) = chat {
        health.set_serving::<ChatServiceServer<ChatGrpc>>().await;
        routes = routes.add_service(natter_chat::grpc_service(chat));
    }
    // tonic answers every unknown path as an unimplemented gRPC call; where this router
    // shares a port with HTTP routes (standalone), only gRPC requests may get that answer.
    routes.into_axum_router().fallback(not_found)
}

/// An unknown path: `UNIMPLEMENTED` for a gRPC call, 404 with the JSON error body for
/// anything else.
async fn not_found(request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let grpc = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented("").into_http::<axum::body::Body>();
    }
    natter_core::http::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such path",
    )
    .into_response()
}

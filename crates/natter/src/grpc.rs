//! The gRPC services a process serves, with grpc.health.v1 reporting each as serving and
//! server reflection (v1) describing them, so `grpcurl` lists and calls them without the
//! .proto files.

use axum::Router;
use natter_auth::{Auth, AuthGrpc};
use natter_chat::{Chat, ChatGrpc};
use natter_proto::auth::v1::auth_service_server::AuthServiceServer;
use natter_proto::chat::v1::chat_service_server::ChatServiceServer;
use natter_proto::website::v1::website_service_server::WebsiteServiceServer;
use natter_website::{Website, WebsiteGrpc};
use tonic::server::NamedService;
use tonic::service::Routes;

/// The gRPC router for whichever services this process runs.
pub async fn router(auth: Option<&Auth>, website: Option<&Website>, chat: Option<&Chat>) -> Router {
    let (health, health_service) = tonic_health::server::health_reporter();
    let mut routes = Routes::new(health_service);
    let mut served = vec!["grpc.health.v1.Health"];
    if auth.is_some() {
        served.push(AuthServiceServer::<AuthGrpc>::NAME);
    }
    if website.is_some() {
        served.push(WebsiteServiceServer::<WebsiteGrpc>::NAME);
    }
    if chat.is_some() {
        served.push(ChatServiceServer::<ChatGrpc>::NAME);
    }
    // v1, and v1alpha for the clients (older grpcurl among them) that only speak it.
    let invalid = "the compiled descriptor sets are valid";
    routes = routes
        .add_service(reflection(&served).build_v1().expect(invalid))
        .add_service(reflection(&served).build_v1alpha().expect(invalid));
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

/// Reflection over the compiled descriptors, listing the `served` services.
fn reflection<'a>(served: &[&'a str]) -> tonic_reflection::server::Builder<'a> {
    served.iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(natter_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
        |builder, name| builder.with_service_name(*name),
    )
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

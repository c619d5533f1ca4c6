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
    routes.into_axum_router()
}

//! The JSON API under `/api/v1`: rooms, members, history, profiles, users; its OpenAPI
//! document at `/api/v1/openapi.json` and Swagger UI at `/api/docs`. Every route needs a
//! bearer access token, verified locally.

mod handlers;
mod json;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use natter_core::token::TokenVerifier;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::Website;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

impl FromRef<Website> for TokenVerifier {
    fn from_ref(website: &Website) -> Self {
        website.verifier().clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Natter API", description = "Rooms, members, history and profiles. Every call needs `Authorization: Bearer <access token>` from `/api/v1/auth/login`."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The website's routes, the OpenAPI document and Swagger UI.
pub fn routes(website: Website) -> Router {
    let (router, openapi) = api_router().with_state(website).split_for_parts();
    router
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(natter_core::http::api_headers))
        .merge(SwaggerUi::new("/api/docs").url(OPENAPI_PATH, openapi))
}

/// The OpenAPI document, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

fn api_router() -> OpenApiRouter<Website> {
    use handlers::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(public_rooms, create_room))
        .routes(routes!(my_rooms))
        .routes(routes!(room, rename, delete_room))
        .routes(routes!(join))
        .routes(routes!(leave))
        .routes(routes!(members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(set_role))
        .routes(routes!(transfer))
        .routes(routes!(history, post_message))
        .routes(routes!(open_direct))
        .routes(routes!(find_users))
        .routes(routes!(profile))
        .routes(routes!(my_profile, update_profile))
}

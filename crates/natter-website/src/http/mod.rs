//! The JSON API under `/api/v1`: rooms, members, history, profiles, users; the OpenAPI
//! document of the whole public API at `/api/v1/openapi.json` and Swagger UI at
//! `/api/docs`. Every route needs a bearer access token, verified locally.

mod handlers;
mod json;
mod links;
mod notify;
mod rich;
mod schemas;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use natter_core::http::ErrorResponses;
use natter_core::token::TokenVerifier;
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
    info(title = "Natter API", description = "Accounts and sessions (`/api/v1/auth`), rooms, members, history and profiles. Calls other than register, login and refresh need `Authorization: Bearer <access token>` from one of those three. Errors have one body, `{\"error\": {\"code\", \"message\"}}`; 429 and 503 carry `Retry-After`."),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// The website's routes, Swagger UI, and the OpenAPI document of the public JSON API:
/// the website's operations and `others`, the documents of the APIs served beside it
/// (the auth service's), so that one document describes the whole API.
pub fn routes(website: Website, others: utoipa::openapi::OpenApi) -> Router {
    let (router, openapi) = api_router().with_state(website).split_for_parts();
    let mut openapi = finish(openapi);
    openapi.merge(others);
    router
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(natter_core::http::api_headers))
        .merge(SwaggerUi::new("/api/docs").url(OPENAPI_PATH, openapi))
}

/// The website's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    finish(api_router().split_for_parts().1)
}

/// Adds the shared error answers (every write counts against the write limit) and the
/// links from the answers that name a room or a user to the operations on it.
fn finish(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let rate_limited = |method: &str, _: &str| method != "get";
    ErrorResponses { rate_limited }.modify(&mut document);
    links::add(&mut document);
    emoji_parameters(&mut document);
    document
}

/// Path parameters named `emoji` take one of the `Emoji` schema's values (utoipa's
/// parameter tuples cannot name a schema function).
fn emoji_parameters(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Ref, RefOr, schema::Schema};
    let components = document.components.get_or_insert_with(Default::default);
    let emoji = Schema::Object(schemas::emoji());
    components.schemas.insert("Emoji".into(), RefOr::T(emoji));
    for item in document.paths.paths.values_mut() {
        for (_, operation) in natter_core::http::operations(item) {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter
                    && parameter.name == "emoji"
                {
                    parameter.schema = Some(Ref::from_schema_name("Emoji").into());
                }
            }
        }
    }
}

fn api_router() -> OpenApiRouter<Website> {
    use handlers::*;
    use notify::*;
    use rich::*;
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
        .routes(routes!(add_reaction, remove_reaction))
        .routes(routes!(pin, unpin))
        .routes(routes!(pins))
        .routes(routes!(edits))
        .routes(routes!(threads))
        .routes(routes!(read_thread))
        .routes(routes!(unread))
        .routes(routes!(mark_read))
        .routes(routes!(set_level))
        .routes(routes!(receipts))
        .routes(routes!(settings, update_settings))
        .routes(routes!(push_key))
        .routes(routes!(subscribe_push, unsubscribe_push))
        .routes(routes!(open_direct))
        .routes(routes!(find_users))
        .routes(routes!(profile))
        .routes(routes!(my_profile, update_profile))
}

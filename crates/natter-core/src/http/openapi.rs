//! What every Natter OpenAPI document shares: the bearer security scheme, the error body,
//! and the error answers that the shared extractors and services give, added to each
//! operation from its shape so that a route's document lists every status it can answer.

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, PartialSchema, ToSchema};

use super::ErrorBody;

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";

/// Adds the bearer scheme, the error body and the error answers of every operation:
/// 401 where a token may be presented ([`super::Caller`], [`super::MaybeCaller`]), 400,
/// 413, 415 and 422 where a JSON body is read ([`super::JsonBody`]), 400 and 422 where a
/// query string is read ([`super::QueryParams`] and its checks), 429 on rate-limited
/// writes and 503 everywhere (a dependency is down; `Retry-After` says when to retry).
/// Statuses an operation documents itself are kept.
#[derive(Debug, Clone, Copy)]
pub struct ErrorResponses {
    /// Whether the operation of a (lower-case method, path) counts against a rate limit.
    pub rate_limited: fn(&str, &str) -> bool,
}

/// The shared error answers: (status, component name, description).
const ANSWERS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The body is not JSON, or the query string does not parse.",
    ),
    (
        "401",
        "Unauthorized",
        "The access token is missing, invalid, expired or revoked.",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the route accepts.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as `Content-Type: application/json`.",
    ),
    (
        "422",
        "Unprocessable",
        "A field breaks a rule the schema cannot express, or is missing; `code` names it.",
    ),
    (
        "429",
        "TooManyRequests",
        "Rate limited; retry after `Retry-After` seconds.",
    ),
    (
        "503",
        "Unavailable",
        "A dependency (database, Redis) is unavailable; retry after `Retry-After` seconds.",
    ),
];

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        register_components(openapi.components.get_or_insert_with(Default::default));
        let global_bearer = openapi.security.as_ref().is_some_and(|s| names_bearer(s));
        for (path, item) in &mut openapi.paths.paths {
            for (method, operation) in operations(item) {
                let token = match &operation.security {
                    None => global_bearer,
                    Some(requirements) => names_bearer(requirements),
                };
                let body = operation.request_body.is_some();
                let query = operation.parameters.iter().flatten().any(|p| match p {
                    RefOr::T(p) => p.parameter_in == ParameterIn::Query,
                    RefOr::Ref(_) => false,
                });
                let limited = (self.rate_limited)(method, path);
                let applies = |status: &str| match status {
                    "400" | "422" => body || query,
                    "401" => token,
                    "413" | "415" => body,
                    "429" => limited,
                    _ => true,
                };
                let responses = &mut operation.responses.responses;
                for (status, name, _) in ANSWERS.iter().filter(|(s, ..)| applies(s)) {
                    responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| Ref::from_response_name(*name).into());
                }
            }
        }
    }
}

fn register_components(components: &mut Components) {
    let scheme = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .build();
    components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    components
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    let mut nested = Vec::new();
    ErrorBody::schemas(&mut nested);
    components.schemas.extend(nested);
    for (status, name, description) in ANSWERS {
        components.responses.insert(
            (*name).to_owned(),
            RefOr::T(error_response(status, description)),
        );
    }
}

fn error_response(status: &str, description: &str) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    match status {
        "429" | "503" => response.header("Retry-After", retry_after()).build(),
        _ => response.build(),
    }
}

fn retry_after() -> Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        ))
        .description(Some("Seconds to wait before retrying."))
        .build()
}

/// Whether a list of alternative requirements lets a bearer token be presented.
fn names_bearer(requirements: &[SecurityRequirement]) -> bool {
    requirements
        .iter()
        .any(|r| *r != SecurityRequirement::default())
}

/// The operations of a path, with their lower-case methods.
pub fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

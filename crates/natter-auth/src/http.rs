//! JSON routes under `/api/v1/auth` and the JWKS document at `/.well-known/jwks.json`,
//! with their part of the OpenAPI document (served with the website's).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use natter_core::http::{
    ApiError, ErrorBody, ErrorResponses, JsonBody, bearer_token as bearer, client_ip,
    missing_token as missing_bearer, object_body,
};
use natter_core::store::{SessionRecord, UserRecord};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::validate::{email_pattern, username_pattern};
use crate::{Auth, AuthError, Client, LoginOutcome};

#[derive(Clone)]
struct HttpState {
    auth: Auth,
    trust_forwarded_for: bool,
}

#[derive(OpenApi)]
#[openapi(tags((name = "auth", description = "Accounts, sessions and tokens.")))]
struct AuthDoc;

/// The auth service's HTTP routes. `trust_forwarded_for` takes the client address from
/// `X-Forwarded-For` (behind an ingress).
pub fn routes(auth: Auth, trust_forwarded_for: bool) -> Router {
    let state = HttpState {
        auth,
        trust_forwarded_for,
    };
    api_router()
        .split_for_parts()
        .0
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::from_fn(natter_core::http::api_headers))
        .with_state(state)
}

/// The auth routes' part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = api_router().split_for_parts().1;
    let rate_limited = |_: &str, path: &str| path == "/api/v1/auth/login";
    ErrorResponses { rate_limited }.modify(&mut document);
    document
}

fn api_router() -> OpenApiRouter<HttpState> {
    OpenApiRouter::with_openapi(AuthDoc::openapi())
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(sessions))
        .routes(routes!(jwks))
}

/// Create an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    /// 3–32 of `a-z`, `0-9`, `_`, `.`, `-` (upper case is folded; white space around it
    /// is trimmed).
    #[schema(schema_with = username)]
    username: String,
    /// 8–256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    /// Optional; blank is none.
    #[serde(default)]
    #[schema(schema_with = email)]
    email: Option<String>,
    /// Open a session too and answer with its tokens (one password hash instead of a
    /// register and a login).
    #[serde(default)]
    session: bool,
}

fn username() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(username_pattern()))
        .build()
}

fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(254))
        .pattern(Some(email_pattern()))
        .description(Some("At most 254 characters; a dotted domain of ASCII letters, digits and hyphens (IDNs as `xn--`)."))
        .build()
}

/// Sign in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    /// Username or email address.
    login: String,
    /// Password.
    password: String,
}

/// Exchange a refresh token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    /// The refresh token of the last exchange; each is good once.
    refresh_token: String,
}

/// End a session (the bearer token's, or the refresh token's).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    /// The session's refresh token (needed when the access token has expired).
    #[serde(default)]
    refresh_token: Option<String>,
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
struct UserJson {
    /// User id.
    id: String,
    /// Username, lower case.
    username: String,
    /// Email address, if given.
    email: Option<String>,
    /// Unix milliseconds.
    created_at: i64,
}

/// A session's tokens.
#[derive(Debug, Serialize, ToSchema)]
struct TokensJson {
    /// Access token (JWT), for `Authorization: Bearer`.
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds the access token is valid.
    expires_in: i64,
    /// Refresh token, exchanged once at `/api/v1/auth/refresh`.
    refresh_token: String,
    /// Seconds the refresh token is valid.
    refresh_expires_in: i64,
    /// Session id.
    session_id: String,
    /// The signed-in account.
    user: UserJson,
}

/// The answer to a registration: the account, or with `session: true` a session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum RegisterReply {
    /// `session: true`: the tokens of a new session (and the account, as `user`).
    Session(TokensJson),
    /// The account.
    User(UserJson),
}

/// The bearer token's claims.
#[derive(Debug, Serialize, ToSchema)]
struct MeJson {
    /// User id.
    user_id: String,
    /// Username.
    username: String,
    /// Session id.
    session_id: String,
    /// Unix seconds when the access token expires.
    expires_at: i64,
}

/// A session of the caller's account.
#[derive(Debug, Serialize, ToSchema)]
struct SessionJson {
    /// Session id.
    id: String,
    /// User agent that opened or last refreshed it.
    user_agent: String,
    /// Client address that opened or last refreshed it.
    ip: String,
    /// Unix milliseconds.
    created_at: i64,
    /// Unix milliseconds.
    last_used_at: i64,
    /// Unix milliseconds, once ended.
    revoked_at: Option<i64>,
    /// Whether this is the bearer token's session.
    current: bool,
}

/// The public keys that verify access tokens.
#[derive(Debug, Serialize, ToSchema)]
struct Jwks {
    /// JSON Web Keys (RFC 7517): Ed25519 keys, `kty` `OKP`, `alg` `EdDSA`.
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterBody, security(()),
    responses((status = 201, body = RegisterReply, description = "Created: the account, or with `session: true` the session's tokens."),
        (status = 409, body = ErrorBody, description = "`username_taken` or `email_taken`.")))]
async fn register(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<Response, ApiError> {
    let registered = state
        .auth
        .register(&body.username, &body.password, body.email.as_deref())
        .await?;
    let reply = match body.session {
        false => RegisterReply::User(user_json(registered.user)),
        true => {
            let client = client(&state, peer.as_ref().map(|Extension(p)| p), &headers);
            let outcome = state.auth.open_session(registered.user, &client).await?;
            RegisterReply::Session(tokens_json(outcome))
        }
    };
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody, security(()),
    responses((status = 200, body = TokensJson),
        (status = 401, body = ErrorBody, description = "`invalid_credentials`: no such login, or a wrong password.")))]
async fn login(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<TokensJson>, ApiError> {
    let client = client(&state, peer.as_ref().map(|Extension(p)| p), &headers);
    let outcome = state
        .auth
        .login(&body.login, &body.password, &client)
        .await?;
    Ok(Json(tokens_json(outcome)))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody, security(()),
    responses((status = 200, body = TokensJson),
        (status = 401, body = ErrorBody, description = "`invalid_refresh_token`, or `refresh_token_reused` (the session is ended).")))]
async fn refresh(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Json<TokensJson>, ApiError> {
    let client = client(&state, peer.as_ref().map(|Extension(p)| p), &headers);
    let outcome = state.auth.refresh(&body.refresh_token, &client).await?;
    Ok(Json(tokens_json(outcome)))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security((), ("bearer" = [])),
    request_body(content = Option<LogoutBody>, description = "Optional: the refresh token, when the access token has expired."),
    responses((status = 204, description = "The session is ended; its access tokens are refused from now on.")))]
async fn logout(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    // The body is optional: none, `null` and `{}` alike carry no refresh token.
    let text = body.trim_ascii();
    let body: LogoutBody = match text {
        b"" | b"null" => LogoutBody::default(),
        _ => object_body(text)?,
    };
    let refresh = body.refresh_token;
    let access = bearer(&headers);
    if access.is_none() && refresh.is_none() {
        return Err(missing_bearer());
    }
    state.auth.logout(access, refresh.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeJson)))]
async fn me(State(state): State<HttpState>, headers: HeaderMap) -> Result<Json<MeJson>, ApiError> {
    let token = bearer(&headers).ok_or_else(missing_bearer)?;
    let claims = state.auth.validate(token).await?.claims;
    Ok(Json(MeJson {
        user_id: claims.sub,
        username: claims.name,
        session_id: claims.sid,
        expires_at: claims.exp,
    }))
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [SessionJson], description = "The account's sessions, newest first.")))]
async fn sessions(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Result<Json<Vec<SessionJson>>, ApiError> {
    let token = bearer(&headers).ok_or_else(missing_bearer)?;
    let claims = state.auth.validate(token).await?.claims;
    let sessions = state
        .auth
        .store()
        .sessions_of_user(&claims.sub)
        .await
        .map_err(AuthError::from)?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| session_json(s, &claims.sid))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    responses((status = 200, body = Jwks, content_type = "application/jwk-set+json")))]
async fn jwks(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.auth.jwks().to_string(),
    )
}

fn client(
    state: &HttpState,
    peer: Option<&ConnectInfo<SocketAddr>>,
    headers: &HeaderMap,
) -> Client {
    Client {
        ip: client_ip(headers, peer, state.trust_forwarded_for),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

fn user_json(user: UserRecord) -> UserJson {
    UserJson {
        id: user.id,
        username: user.username,
        email: user.email,
        created_at: user.created_at,
    }
}

fn tokens_json(outcome: LoginOutcome) -> TokensJson {
    TokensJson {
        access_token: outcome.access_token,
        token_type: "Bearer",
        expires_in: outcome.expires_in,
        refresh_token: outcome.refresh_token,
        refresh_expires_in: outcome.refresh_expires_in,
        session_id: outcome.session_id,
        user: user_json(outcome.user),
    }
}

fn session_json(session: SessionRecord, current: &str) -> SessionJson {
    SessionJson {
        current: session.id == current,
        id: session.id,
        user_agent: session.user_agent,
        ip: session.ip,
        created_at: session.created_at,
        last_used_at: session.last_used_at,
        revoked_at: session.revoked_at,
    }
}

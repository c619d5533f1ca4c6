//! JSON routes under `/api/v1/auth` and the JWKS document at `/.well-known/jwks.json`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use natter_core::http::{
    ApiError, JsonBody, bearer_token as bearer, client_ip, missing_token as missing_bearer,
};
use natter_core::store::{SessionRecord, UserRecord};
use serde::{Deserialize, Serialize};

use crate::{Auth, AuthError, Client, LoginOutcome};

#[derive(Clone)]
struct HttpState {
    auth: Auth,
    trust_forwarded_for: bool,
}

/// The auth service's HTTP routes. `trust_forwarded_for` takes the client address from
/// `X-Forwarded-For` (behind an ingress).
pub fn routes(auth: Auth, trust_forwarded_for: bool) -> Router {
    let state = HttpState {
        auth,
        trust_forwarded_for,
    };
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/auth/sessions", get(sessions))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::from_fn(natter_core::http::api_headers))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    login: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Debug, Serialize)]
struct UserJson {
    id: String,
    username: String,
    email: Option<String>,
    created_at: i64,
}

#[derive(Debug, Serialize)]
struct TokensJson {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    refresh_expires_in: i64,
    session_id: String,
    user: UserJson,
}

#[derive(Debug, Serialize)]
struct MeJson {
    user_id: String,
    username: String,
    session_id: String,
    expires_at: i64,
}

#[derive(Debug, Serialize)]
struct SessionJson {
    id: String,
    user_agent: String,
    ip: String,
    created_at: i64,
    last_used_at: i64,
    revoked_at: Option<i64>,
    current: bool,
}

async fn register(
    State(state): State<HttpState>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<Response, ApiError> {
    let registered = state
        .auth
        .register(&body.username, &body.password, body.email.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(user_json(registered.user))).into_response())
}

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

async fn logout(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let body: LogoutBody = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?
    };
    let refresh = body.refresh_token;
    let access = bearer(&headers);
    if access.is_none() && refresh.is_none() {
        return Err(missing_bearer());
    }
    state.auth.logout(access, refresh.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

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

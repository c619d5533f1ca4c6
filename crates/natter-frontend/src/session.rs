//! The browser session: the user's tokens in an encrypted, HttpOnly, SameSite=Lax cookie,
//! refreshed transparently before the access token expires and dropped when the refresh
//! token is refused; plus the CSRF tokens of signed-in and signed-out forms.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use natter_core::time::now_secs;
use natter_proto::auth::v1::RefreshTokenRequest;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::Frontend;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "natter_session";
/// Name of the signed-out forms' CSRF cookie (double submit).
pub const FORM_COOKIE: &str = "natter_form";
/// Refresh when the access token has less than this left.
const REFRESH_MARGIN_SECS: i64 = 60;

/// What the cookie holds (sealed; the browser sees only ciphertext).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// User id.
    pub user_id: String,
    /// User name.
    pub username: String,
    /// Access token for the services.
    pub access: String,
    /// Unix seconds when `access` expires.
    pub access_expires: i64,
    /// Refresh token (rotated at every refresh).
    pub refresh: String,
    /// Session id (the refresh token family).
    pub session_id: String,
    /// CSRF token of this session's forms.
    pub csrf: String,
}

/// A random token, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Equal in constant time (tokens from forms).
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl Frontend {
    /// A `Set-Cookie` header carrying `session` (or clearing it when `None`).
    pub fn session_cookie(&self, session: Option<&Session>) -> HeaderValue {
        let value = session.map(|s| {
            let json = serde_json::to_vec(s).expect("a session serialises");
            self.cookie_keys()
                .seal(&json)
                .expect("cookie keys were validated")
        });
        self.set_cookie(SESSION_COOKIE, value.as_deref(), "Lax")
    }

    /// `Set-Cookie` for `name`; `None` expires it.
    pub fn set_cookie(&self, name: &str, value: Option<&str>, same_site: &str) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let text = match value {
            Some(value) => {
                format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}{secure}")
            }
            None => format!("{name}=; Path=/; HttpOnly; SameSite={same_site}; Max-Age=0{secure}"),
        };
        HeaderValue::from_str(&text).expect("cookie values are base64url")
    }

    fn open_session(&self, headers: &HeaderMap) -> Option<Session> {
        let sealed = cookie(headers, SESSION_COOKIE)?;
        let json = self.cookie_keys().open(sealed, now_secs())?;
        serde_json::from_slice(&json).ok()
    }

    /// The session, refreshed through the auth service when its access token is about to
    /// expire; `Err` when the refresh token was refused (revoked, expired, reused).
    async fn fresh(&self, mut session: Session) -> Result<(Session, bool), ()> {
        if session.access_expires - now_secs() > REFRESH_MARGIN_SECS {
            return Ok((session, false));
        }
        let request = RefreshTokenRequest {
            refresh_token: session.refresh.clone(),
            client: None,
        };
        let pair = self.auth().refresh_token(request).await.map_err(|status| {
            tracing::info!(code = ?status.code(), "session refresh refused; signing out");
        })?;
        let pair = pair.into_inner();
        session.access = pair.access_token;
        session.access_expires = now_secs() + pair.expires_in;
        session.refresh = pair.refresh_token;
        Ok((session, true))
    }
}

/// Middleware: opens the session cookie, refreshes it when needed, hands it to handlers
/// as an extension, and writes the cookie back when it changed.
pub async fn layer(State(frontend): State<Frontend>, mut request: Request, next: Next) -> Response {
    let opened = frontend.open_session(request.headers());
    let had_cookie = cookie(request.headers(), SESSION_COOKIE).is_some();
    let (session, rewrite) = match opened {
        Some(session) => match frontend.fresh(session).await {
            Ok((session, refreshed)) => (Some(session), refreshed),
            Err(()) => (None, true),
        },
        None => (None, had_cookie),
    };
    request
        .extensions_mut()
        .insert(CurrentSession(session.clone()));
    let mut response = next.run(request).await;
    let handler_set_it = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(SESSION_COOKIE)));
    if rewrite && !handler_set_it {
        let value = frontend.session_cookie(session.as_ref());
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The session the middleware found, if any.
#[derive(Debug, Clone)]
pub struct CurrentSession(pub Option<Session>);

/// A signed-in user; any page needing one redirects to the login page otherwise.
#[derive(Debug, Clone)]
pub struct User(pub Session);

/// The session when there is one.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Session>);

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<CurrentSession>() {
            Some(CurrentSession(Some(session))) => Ok(User(session.clone())),
            _ => Err(Redirect::to("/login").into_response()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<CurrentSession>()
            .and_then(|s| s.0.clone());
        Ok(MaybeUser(session))
    }
}

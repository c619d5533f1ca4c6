//! Register, log in, log out. Signed-out forms carry a double-submit CSRF token (a
//! SameSite=Strict cookie and a hidden field that must match).

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use natter_core::time::now_secs;
use natter_proto::auth::v1::{ClientInfo, LoginRequest, LogoutRequest, RegisterRequest, TokenPair};
use serde::Deserialize;
use tonic::{Code, Status};

use super::{Page, check_csrf, csrf_refused, nav, render, service_error};
use crate::Frontend;
use crate::prefs::t;
use crate::session::{FORM_COOKIE, MaybeUser, Session, User, cookie, random_token, same_token};
use crate::views::{Login, Register};

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    form_token: String,
    login: String,
    password: String,
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    form_token: String,
    username: String,
    password: String,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The form token in the cookie, or a new one with the cookie that sets it.
fn form_token(
    frontend: &Frontend,
    headers: &HeaderMap,
) -> (String, Option<axum::http::HeaderValue>) {
    match cookie(headers, FORM_COOKIE) {
        Some(token) if token.len() >= 16 => (token.to_owned(), None),
        _ => {
            let token = random_token();
            let set = frontend.set_cookie(FORM_COOKIE, Some(&token), "Strict");
            (token, Some(set))
        }
    }
}

fn with_cookie(mut response: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn signed_out_form_ok(headers: &HeaderMap, token: &str) -> bool {
    cookie(headers, FORM_COOKIE).is_some_and(|expected| same_token(expected, token))
}

/// The browser's address for the auth service's per-address rate limit.
fn client_info(headers: &HeaderMap) -> ClientInfo {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    ClientInfo {
        ip: forwarded
            .and_then(|v| v.split(',').next())
            .unwrap_or("")
            .trim()
            .to_owned(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect(),
    }
}

/// `GET /login`.
pub async fn login_form(
    State(frontend): State<Frontend>,
    MaybeUser(session): MaybeUser,
    headers: HeaderMap,
) -> Response {
    signed_out_form(&frontend, session.as_ref(), &headers, |form_token| {
        render(&Login {
            nav: nav(None),
            error: None,
            form_token,
            login: String::new(),
        })
    })
}

/// A signed-out form page with its form token (and the cookie carrying it when new);
/// the signed-in go home instead.
fn signed_out_form(
    frontend: &Frontend,
    session: Option<&Session>,
    headers: &HeaderMap,
    page: impl FnOnce(String) -> Response,
) -> Response {
    if session.is_some() {
        return Redirect::to("/").into_response();
    }
    let (token, set) = form_token(frontend, headers);
    with_cookie(page(token), set)
}

/// `POST /login`: a session cookie and on to the home page, or the form with the reason.
pub async fn login(
    State(frontend): State<Frontend>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Page {
    if !signed_out_form_ok(&headers, &form.form_token) {
        return Err(csrf_refused(None).into());
    }
    let request = LoginRequest {
        login: form.login.clone(),
        password: form.password,
        client: Some(client_info(&headers)),
    };
    match frontend.auth().login(request).await {
        Ok(pair) => Ok(signed_in(&frontend, pair.into_inner())),
        Err(status) => {
            let error = match status.code() {
                Code::Unauthenticated | Code::InvalidArgument | Code::NotFound => t("login-wrong"),
                Code::ResourceExhausted => t("login-too-many"),
                _ => return Err(service_error(None, status).into()),
            };
            let page = Login {
                nav: nav(None),
                error: Some(error),
                form_token: form.form_token,
                login: form.login,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
    }
}

/// A new session from a token pair: the cookie, and the home page.
fn signed_in(frontend: &Frontend, pair: TokenPair) -> Response {
    let user = pair.user.unwrap_or_default();
    let session = Session {
        user_id: user.id,
        username: user.username,
        access: pair.access_token,
        access_expires: now_secs() + pair.expires_in,
        refresh: pair.refresh_token,
        session_id: pair.session_id,
        csrf: random_token(),
    };
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, frontend.session_cookie(Some(&session)));
    response
}

/// `GET /register`.
pub async fn register_form(
    State(frontend): State<Frontend>,
    MaybeUser(session): MaybeUser,
    headers: HeaderMap,
) -> Response {
    signed_out_form(&frontend, session.as_ref(), &headers, |form_token| {
        render(&Register {
            nav: nav(None),
            error: None,
            form_token,
            username: String::new(),
        })
    })
}

/// `POST /register`: the account, then logged in at once.
pub async fn register(
    State(frontend): State<Frontend>,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Page {
    if !signed_out_form_ok(&headers, &form.form_token) {
        return Err(csrf_refused(None).into());
    }
    let request = RegisterRequest {
        username: form.username.clone(),
        password: form.password,
        email: None,
        // One request and one password hash: the account and its first session.
        open_session: true,
        client: Some(client_info(&headers)),
    };
    match frontend.auth().register(request).await {
        Ok(registered) => match registered.into_inner().session {
            Some(pair) => Ok(signed_in(&frontend, pair)),
            None => Err(service_error(None, Status::internal("register opened no session")).into()),
        },
        Err(status) => {
            let error = match status.code() {
                Code::InvalidArgument | Code::AlreadyExists => status.message().to_owned(),
                _ => return Err(service_error(None, status).into()),
            };
            let page = Register {
                nav: nav(None),
                error: Some(error),
                form_token: form.form_token,
                username: form.username,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
    }
}

/// `POST /logout`: revokes the session at the auth service, clears the cookie.
pub async fn logout(
    State(frontend): State<Frontend>,
    User(session): User,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let request = LogoutRequest {
        access_token: session.access.clone(),
        refresh_token: session.refresh.clone(),
    };
    if let Err(status) = frontend.auth().logout(request).await {
        // The cookie goes either way; a failed revocation is worth a log line.
        tracing::warn!(code = ?status.code(), "logout could not revoke the session");
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, frontend.session_cookie(None));
    Ok(response)
}

//! Page handlers: each turns a request into gRPC calls and a rendered template; what they
//! share is here (rendering, CSRF checks, turning a service error into a page).

pub mod assets;
pub mod auth;
pub mod email;
pub mod members;
pub mod room;
pub mod rooms;
pub mod settings;
pub mod users;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use natter_proto::website::v1::{ListRoomsRequest, ListThreadsRequest};
use tonic::Code;

use crate::Frontend;
use crate::prefs::{Prefs, t};
use crate::session::{MaybeUser, Session, same_token};
use crate::views::{ErrorPage, Home, Nav, RoomView, Sidebar, ThreadView};

/// A page or a redirect, or an error page.
pub type Page = Result<Response, PageError>;

/// An error page, boxed so that results stay small.
#[derive(Debug)]
pub struct PageError(Box<Response>);

impl From<Response> for PageError {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Renders `template` as an HTML page.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The page frame for `session`, without the sidebar (signed-out and error pages).
pub fn nav(session: Option<&Session>) -> Nav {
    Nav {
        user: session.map(|s| s.username.clone()),
        csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
        theme: Prefs::current().theme,
        lang: Prefs::current().lang,
        sidebar: None,
    }
}

/// Rooms the sidebar lists (the first page of the reader's; the stream adds the rest).
const SIDEBAR_ROOMS: u32 = 100;
/// Followed threads the sidebar lists.
const SIDEBAR_THREADS: u32 = 20;

/// The app shell's frame for a signed-in page: `nav` with the reader's rooms, direct
/// chats and followed threads (empty for the shell's own navigation, which keeps its
/// sidebar). When they cannot be read the page still renders, with an empty sidebar the
/// event stream fills once connected.
pub async fn shell(frontend: &Frontend, session: &Session) -> Nav {
    let sidebar = match Prefs::current().partial {
        true => Ok(Sidebar::default()),
        false => sidebar(frontend, session).await,
    };
    let sidebar = match sidebar {
        Ok(sidebar) => sidebar,
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "sidebar not read");
            Sidebar::default()
        }
    };
    Nav {
        sidebar: Some(sidebar),
        ..nav(Some(session))
    }
}

async fn sidebar(frontend: &Frontend, session: &Session) -> Result<Sidebar, tonic::Status> {
    let mut website = frontend.website();
    let request = ListRoomsRequest {
        query: String::new(),
        cursor: String::new(),
        limit: SIDEBAR_ROOMS,
    };
    let threads = ListThreadsRequest {
        limit: SIDEBAR_THREADS,
    };
    let mut other = website.clone();
    let (rooms, threads) = tokio::try_join!(
        website.list_my_rooms(authed(session, request)),
        other.list_threads(authed(session, threads)),
    )?;
    let (directs, rooms): (Vec<_>, Vec<_>) = (rooms.into_inner().rooms.iter())
        .map(|room| RoomView::of(room, None))
        .partition(|room| room.kind == "direct");
    let room_name = |id: &str| {
        let room = rooms.iter().chain(&directs).find(|r| r.id == id);
        room.map_or_else(|| t("room-a-room"), |r| r.name.clone())
    };
    let threads = (threads.into_inner().threads.iter())
        .map(|t| ThreadView::of(t, &room_name(&t.room_id)))
        .collect();
    Ok(Sidebar {
        rooms,
        directs,
        threads,
    })
}

/// An error page with `status`.
pub fn error_page(
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let page = ErrorPage {
        nav: nav(session),
        title: title.into(),
        message: message.into(),
    };
    (status, render(&page)).into_response()
}

/// Refuses a signed-in form whose CSRF token is not the session's.
pub fn check_csrf(session: &Session, token: &str) -> Result<(), PageError> {
    match same_token(&session.csrf, token) {
        true => Ok(()),
        false => Err(csrf_refused(Some(session)).into()),
    }
}

/// The page for a form that came without its CSRF token (forged, or from an old page).
pub fn csrf_refused(session: Option<&Session>) -> Response {
    error_page(
        session,
        StatusCode::FORBIDDEN,
        &t("error-form-title"),
        &t("error-form"),
    )
}

/// A service error as a page: not found stays not found, refusals say why.
pub fn service_error(session: Option<&Session>, status: tonic::Status) -> Response {
    let (code, title) = match status.code() {
        Code::NotFound => (StatusCode::NOT_FOUND, "error-not-found"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "error-forbidden"),
        Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition => {
            (StatusCode::BAD_REQUEST, "error-bad-request")
        }
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "error-slow-down"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "error-log-in"),
        Code::Unavailable => {
            tracing::warn!(message = status.message(), "a service is unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "error-unavailable")
        }
        _ => {
            tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
            (StatusCode::BAD_GATEWAY, "error-trouble")
        }
    };
    // The services' own messages (what was wrong with the input) are in English.
    let message = match code {
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => t("error-retry"),
        _ => status.message().to_owned(),
    };
    let mut page = error_page(session, code, &t(title), &message);
    if code == StatusCode::SERVICE_UNAVAILABLE {
        let retry = natter_core::http::RETRY_UNAVAILABLE_SECS.into();
        page.headers_mut().insert(http::header::RETRY_AFTER, retry);
    }
    page
}

/// A gRPC request carrying the session's access token.
pub fn authed<T>(session: &Session, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let bearer = format!("Bearer {}", session.access);
    if let Ok(value) = bearer.parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// `/`: what Natter is, or the signed-in reader's start page (the shell's sidebar lists
/// their rooms).
pub async fn home(State(frontend): State<Frontend>, MaybeUser(session): MaybeUser) -> Page {
    let nav = match &session {
        Some(session) => shell(&frontend, session).await,
        None => nav(None),
    };
    Ok(render(&Home { nav }))
}

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
use natter_proto::website::v1::{ListRoomsRequest, ListThreadsRequest, RoomKind, RoomRequest};
use tonic::Code;

use crate::Frontend;
use crate::session::{MaybeUser, Session, same_token};
use crate::views::{ErrorPage, Home, Nav, RoomView, ThreadView};

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

/// Navigation for `session`.
pub fn nav(session: Option<&Session>) -> Nav {
    Nav {
        user: session.map(|s| s.username.clone()),
        csrf: session.map(|s| s.csrf.clone()).unwrap_or_default(),
    }
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
        "Form refused",
        "This form was not sent from a current Natter page. Reload the page and try again.",
    )
}

/// A service error as a page: not found stays not found, refusals say why.
pub fn service_error(session: Option<&Session>, status: tonic::Status) -> Response {
    let (code, title) = match status.code() {
        Code::NotFound => (StatusCode::NOT_FOUND, "Not found"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "Not allowed"),
        Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition => {
            (StatusCode::BAD_REQUEST, "That did not work")
        }
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "Slow down"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "Please log in again"),
        Code::Unavailable => {
            tracing::warn!(message = status.message(), "a service is unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Natter is briefly unavailable",
            )
        }
        _ => {
            tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
            (StatusCode::BAD_GATEWAY, "Natter is having trouble")
        }
    };
    let message = match code {
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => {
            "Please try again in a moment."
        }
        _ => status.message(),
    };
    let mut page = error_page(session, code, title, message);
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

/// `/`: what Natter is, or the user's rooms with unread counts.
pub async fn home(State(frontend): State<Frontend>, MaybeUser(session): MaybeUser) -> Page {
    let Some(session) = session else {
        return Ok(render(&Home {
            nav: nav(None),
            rooms: Vec::new(),
            threads: Vec::new(),
        }));
    };
    let request = ListRoomsRequest {
        query: String::new(),
        cursor: String::new(),
        limit: 100,
    };
    let page = frontend
        .website()
        .list_my_rooms(authed(&session, request))
        .await
        .map_err(|s| service_error(Some(&session), s))?
        .into_inner();
    let mut rooms = Vec::with_capacity(page.rooms.len());
    for room in &page.rooms {
        // A direct room has no name: show the other person's.
        let other = match room.kind() {
            RoomKind::Direct => other_member(&frontend, &session, &room.id).await,
            _ => None,
        };
        rooms.push(RoomView::of(room, other.as_deref()));
    }
    let threads = frontend
        .website()
        .list_threads(authed(&session, ListThreadsRequest { limit: 20 }))
        .await
        .map_err(|s| service_error(Some(&session), s))?
        .into_inner()
        .threads;
    let room_name = |id: &str| {
        let room = rooms.iter().find(|r| r.id == id);
        room.map_or_else(|| "a room".to_owned(), |r| r.name.clone())
    };
    let threads = (threads.iter())
        .map(|t| ThreadView::of(t, &room_name(&t.room_id)))
        .collect();
    Ok(render(&Home {
        nav: nav(Some(&session)),
        rooms,
        threads,
    }))
}

/// The user name of the other member of direct room `room_id`.
async fn other_member(frontend: &Frontend, session: &Session, room_id: &str) -> Option<String> {
    let request = RoomRequest {
        room_id: room_id.into(),
    };
    let members = frontend
        .website()
        .list_members(authed(session, request))
        .await
        .ok()?;
    let other = members
        .into_inner()
        .members
        .into_iter()
        .find(|m| m.user_id != session.user_id)?;
    Some(other.username)
}

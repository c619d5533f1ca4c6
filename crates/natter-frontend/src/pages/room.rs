//! The room page (latest history server-rendered; the app's room view makes it live) and
//! the token endpoint the script uses to authenticate its WebSocket.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use natter_proto::common::v1::{HistoryRequest, Message};
use natter_proto::website::v1::{Role, RoomKind, RoomRequest};

use super::{Page, authed, render, service_error, shell};
use crate::Frontend;
use crate::prefs::t;
use crate::session::{Session, User, same_token};
use crate::views::{MessageView, RoomPage, RoomView};

/// Messages shown when a room opens; older ones load on scroll-up.
const FIRST_PAGE: u32 = 50;

/// `GET /rooms/{room}`: the shell with the room's latest messages (its reads run at once).
pub async fn show(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(room_id): Path<String>,
) -> Page {
    let fail = |s| service_error(Some(&session), s);
    let (mut website, mut website2) = (frontend.website(), frontend.website());
    let room_request = || RoomRequest {
        room_id: room_id.clone(),
    };
    let (nav, room, members, history) = tokio::join!(
        shell(&frontend, &session),
        website.get_room(authed(&session, room_request())),
        website2.list_members(authed(&session, room_request())),
        first_page(&frontend, &session, &room_id),
    );
    let room = room.map_err(fail)?.into_inner();
    let members = members.map_err(fail)?.into_inner().members;
    let joined = room.my_role() != Role::Unspecified;
    let messages = match history {
        Ok(list) => list,
        Err(status) if !joined => {
            tracing::debug!(code = ?status.code(), "no history before joining");
            Vec::new()
        }
        Err(status) => return Err(fail(status).into()),
    };
    let names: BTreeMap<String, String> = members
        .iter()
        .map(|m| (m.user_id.clone(), m.username.clone()))
        .collect();
    let name_of = |id: &str| (names.get(id).cloned()).unwrap_or_else(|| t("message-someone"));
    let other = (room.kind() == RoomKind::Direct)
        .then(|| {
            members
                .iter()
                .find(|m| m.user_id != session.user_id)
                .map(|m| m.username.clone())
        })
        .flatten();
    // Where the reader had got to: the "new messages" divider goes after it.
    let read_seq = (nav.sidebar.as_ref())
        .and_then(|side| side.room(&room_id))
        .map_or(room.last_seq, |r| r.last_seq - r.unread);
    let page = RoomPage {
        nav,
        room: RoomView::of(&room, other.as_deref()),
        // History comes newest first; the page reads top to bottom.
        messages: messages
            .iter()
            .rev()
            .map(|m| MessageView::of(m, &session.user_id, name_of))
            .collect(),
        names_json: serde_json::to_string(&names).expect("names serialise"),
        me: session.user_id.clone(),
        joined,
        manage: matches!(room.my_role(), Role::Owner | Role::Admin),
        can_pin: joined
            && (room.kind() == RoomKind::Direct
                || matches!(room.my_role(), Role::Owner | Role::Admin)),
        last_seq: room.last_seq,
        read_seq,
    };
    Ok(render(&page))
}

/// The room's newest messages, newest first.
async fn first_page(
    frontend: &Frontend,
    session: &Session,
    room_id: &str,
) -> Result<Vec<Message>, tonic::Status> {
    let history = HistoryRequest {
        room_id: room_id.to_owned(),
        before: None,
        after: None,
        limit: FIRST_PAGE,
        thread: None,
    };
    let page = frontend
        .website()
        .get_history(authed(session, history))
        .await?;
    Ok(page.into_inner().messages)
}

/// `GET /session/socket-token` (same-origin script only: it must echo the session's
/// CSRF token in `X-CSRF-Token`): the access token for the WebSocket `auth` frame, as
/// JSON, never in a URL or the page.
pub async fn socket_token(User(session): User, headers: HeaderMap) -> Response {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same_token(&session.csrf, sent) {
        return (StatusCode::FORBIDDEN, "missing or wrong X-CSRF-Token").into_response();
    }
    Json(serde_json::json!({"token": session.access, "expires_at": session.access_expires}))
        .into_response()
}

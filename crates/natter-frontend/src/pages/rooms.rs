//! Public rooms (search, pages), creating a room, joining a public one.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use natter_proto::website::v1::{CreateRoomRequest, ListRoomsRequest, RoomKind, RoomRequest};
use serde::Deserialize;
use tonic::Code;

use super::auth::CsrfForm;
use super::settings::act;
use super::{Page, authed, check_csrf, render, service_error, shell};
use crate::Frontend;
use crate::session::User;
use crate::views::{NewRoom, RoomView, Rooms};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    name: String,
    kind: String,
}

/// `GET /rooms?q=&cursor=`: public rooms, 50 a page.
pub async fn list(
    State(frontend): State<Frontend>,
    User(session): User,
    Query(query): Query<ListQuery>,
) -> Page {
    let request = ListRoomsRequest {
        query: query.q.clone(),
        cursor: query.cursor,
        limit: 50,
    };
    let page = frontend
        .website()
        .list_public_rooms(authed(&session, request))
        .await
        .map_err(|s| service_error(Some(&session), s))?
        .into_inner();
    let rooms = page.rooms.iter().map(|r| RoomView::of(r, None)).collect();
    Ok(render(&Rooms {
        nav: shell(&frontend, &session).await,
        rooms,
        query: query.q,
        next_cursor: page.next_cursor,
    }))
}

/// `GET /rooms/new`.
pub async fn new_form(State(frontend): State<Frontend>, User(session): User) -> Page {
    Ok(render(&NewRoom {
        nav: shell(&frontend, &session).await,
        error: None,
    }))
}

/// `POST /rooms`: creates a public or group room and opens it.
pub async fn create(
    State(frontend): State<Frontend>,
    User(session): User,
    Form(form): Form<CreateForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let kind = match form.kind.as_str() {
        "group" => RoomKind::Group,
        _ => RoomKind::Public,
    };
    let request = CreateRoomRequest {
        kind: kind as i32,
        name: form.name,
    };
    match frontend
        .website()
        .create_room(authed(&session, request))
        .await
    {
        Ok(room) => Ok(Redirect::to(&format!("/rooms/{}", room.into_inner().id)).into_response()),
        Err(status) if status.code() == Code::InvalidArgument => {
            let page = NewRoom {
                nav: shell(&frontend, &session).await,
                error: Some(status.message().into()),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(status) => Err(service_error(Some(&session), status).into()),
    }
}

/// `POST /rooms/{room}/join`: joins a public room.
pub async fn join(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(room): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let request = RoomRequest {
        room_id: room.clone(),
    };
    let outcome = frontend
        .website()
        .join_room(authed(&session, request))
        .await;
    act(
        &frontend,
        &session,
        &room,
        &format!("/rooms/{room}"),
        outcome,
    )
    .await
}

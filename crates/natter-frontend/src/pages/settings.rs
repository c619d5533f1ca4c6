//! A room's own settings on its members page: rename (owners and admins), leave (anyone
//! but the owner), delete (the owner). The website service decides who may; its refusals
//! show on the page.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use natter_proto::website::v1::{RenameRoomRequest, RoomRequest};
use serde::Deserialize;
use tonic::Code;

use super::auth::CsrfForm;
use super::members::page;
use super::{Page, authed, check_csrf, service_error};
use crate::Frontend;
use crate::prefs::t;
use crate::session::{Session, User};

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

/// After a call about `room`: on success a redirect to `to`; a refusal a person can act
/// on (bad name, taken, not allowed) on the members page; anything else an error page.
pub(super) async fn act<T>(
    frontend: &Frontend,
    session: &Session,
    room: &str,
    to: &str,
    outcome: Result<T, tonic::Status>,
) -> Page {
    match outcome {
        Ok(_) => Ok(Redirect::to(to).into_response()),
        Err(s)
            if matches!(
                s.code(),
                Code::InvalidArgument
                    | Code::AlreadyExists
                    | Code::FailedPrecondition
                    | Code::PermissionDenied
            ) =>
        {
            page(frontend, session, room, Some(s.message().into())).await
        }
        Err(s) => Err(service_error(Some(session), s).into()),
    }
}

/// `POST /rooms/{room}/rename`.
pub async fn rename(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(room): Path<String>,
    Form(form): Form<RenameForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let request = RenameRoomRequest {
        room_id: room.clone(),
        name: form.name.trim().into(),
    };
    let outcome = frontend
        .website()
        .rename_room(authed(&session, request))
        .await;
    let to = format!("/rooms/{room}/members");
    act(&frontend, &session, &room, &to, outcome).await
}

/// `POST /rooms/{room}/leave`: back to the home page.
pub async fn leave(
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
        .leave_room(authed(&session, request))
        .await;
    act(&frontend, &session, &room, "/", outcome).await
}

/// `POST /rooms/{room}/delete`: back to the home page.
pub async fn delete(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(room): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    if form.confirm.is_none() {
        let error = t("members-delete-unticked");
        return page(&frontend, &session, &room, Some(error)).await;
    }
    let request = RoomRequest {
        room_id: room.clone(),
    };
    let outcome = frontend
        .website()
        .delete_room(authed(&session, request))
        .await;
    act(&frontend, &session, &room, "/", outcome).await
}

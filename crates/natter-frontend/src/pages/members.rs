//! Group members: who is in a room; owners and admins add (by user name), remove,
//! promote and demote.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use natter_proto::website::v1::{
    AddMemberRequest, FindUsersRequest, MemberRequest, Role, RoomKind, RoomRequest, SetRoleRequest,
};
use serde::Deserialize;

use super::auth::CsrfForm;
use super::settings::act;
use super::{Page, authed, check_csrf, render, service_error, shell};
use crate::Frontend;
use crate::prefs::t_with;
use crate::session::{Session, User};
use crate::views::{MemberView, Members, RoomView};

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    role: String,
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    username: String,
    #[serde(default)]
    admin: Option<String>,
}

/// The members page of `room_id`, with `error` shown above the list.
pub(super) async fn page(
    frontend: &Frontend,
    session: &Session,
    room_id: &str,
    error: Option<String>,
) -> Page {
    let fail = |s| service_error(Some(session), s);
    let mut website = frontend.website();
    let room = website
        .get_room(authed(
            session,
            RoomRequest {
                room_id: room_id.into(),
            },
        ))
        .await
        .map_err(fail)?
        .into_inner();
    let members = website
        .list_members(authed(
            session,
            RoomRequest {
                room_id: room_id.into(),
            },
        ))
        .await
        .map_err(fail)?
        .into_inner()
        .members;
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = Members {
        nav: shell(frontend, session).await,
        room: RoomView::of(&room, None),
        members: members.iter().map(MemberView::of).collect(),
        manage: matches!(room.my_role(), Role::Owner | Role::Admin),
        owner: room.my_role() == Role::Owner,
        direct: room.kind() == RoomKind::Direct,
        me: session.user_id.clone(),
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /rooms/{room}/members`.
pub async fn list(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(room): Path<String>,
) -> Page {
    page(&frontend, &session, &room, None).await
}

/// `POST /rooms/{room}/members`: adds the user with exactly that name.
pub async fn add(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(room): Path<String>,
    Form(form): Form<AddForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let wanted = form.username.trim().to_lowercase();
    let found = frontend
        .website()
        .find_users(authed(
            &session,
            FindUsersRequest {
                prefix: wanted.clone(),
                limit: 20,
            },
        ))
        .await
        .map_err(|s| service_error(Some(&session), s))?
        .into_inner()
        .profiles
        .into_iter()
        .find(|p| p.username.to_lowercase() == wanted);
    let Some(user) = found else {
        return page(
            &frontend,
            &session,
            &room,
            Some(t_with("members-no-user", "name", &form.username)),
        )
        .await;
    };
    let role = if form.admin.is_some() {
        Role::Admin
    } else {
        Role::Member
    };
    let request = AddMemberRequest {
        room_id: room.clone(),
        user_id: user.id,
        role: role as i32,
    };
    let outcome = frontend
        .website()
        .add_member(authed(&session, request))
        .await;
    let to = format!("/rooms/{room}/members");
    act(&frontend, &session, &room, &to, outcome).await
}

/// `POST /rooms/{room}/members/{user}/remove`.
pub async fn remove(
    State(frontend): State<Frontend>,
    User(session): User,
    Path((room, user)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let request = MemberRequest {
        room_id: room.clone(),
        user_id: user,
    };
    frontend
        .website()
        .remove_member(authed(&session, request))
        .await
        .map_err(|s| service_error(Some(&session), s))?;
    Ok(Redirect::to(&format!("/rooms/{room}/members")).into_response())
}

/// `POST /rooms/{room}/members/{user}/role`: promote to admin or back to member.
pub async fn set_role(
    State(frontend): State<Frontend>,
    User(session): User,
    Path((room, user)): Path<(String, String)>,
    Form(form): Form<RoleForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let role = if form.role == "admin" {
        Role::Admin
    } else {
        Role::Member
    };
    let request = SetRoleRequest {
        room_id: room.clone(),
        user_id: user,
        role: role as i32,
    };
    let outcome = frontend.website().set_role(authed(&session, request)).await;
    let to = format!("/rooms/{room}/members");
    act(&frontend, &session, &room, &to, outcome).await
}

//! Handlers of the JSON API, each with its OpenAPI description.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use natter_core::http::{ApiError, Caller, ErrorBody, JsonBody, QueryParams};
use natter_core::store::Role;

use super::json::*;
use crate::{HistoryQuery, Website};

pub(super) type Reply<T> = Result<Json<T>, ApiError>;

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", params(ListQuery),
    description = "Public rooms by name, optionally filtered by a name substring.",
    responses((status = 200, body = RoomPage)))]
pub async fn public_rooms(
    State(w): State<Website>,
    _caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> Reply<RoomPage> {
    let page = w
        .public_rooms(q.q.as_deref(), q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Json(room_page(page)))
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", request_body = CreateRoom,
    responses((status = 201, body = RoomJson), (status = 409, body = ErrorBody)))]
pub async fn create_room(
    State(w): State<Website>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<CreateRoom>,
) -> Result<Response, ApiError> {
    let kind = parse_kind(&body.kind)?;
    let room = w.create_room(&me.sub, kind, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(room_json(room, Some(Role::Owner))),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms/mine", tag = "rooms", params(MineQuery),
    description = "The caller's rooms, oldest first, with their role and unread count.",
    responses((status = 200, body = RoomPage)))]
pub async fn my_rooms(
    State(w): State<Website>,
    Caller(me): Caller,
    QueryParams(q): QueryParams<MineQuery>,
) -> Reply<RoomPage> {
    let page = w.my_rooms(&me.sub, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(my_room_page(page)))
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}", tag = "rooms", params(("room" = String, Path, description = "Room id.")),
    responses((status = 200, body = RoomJson), (status = 404, body = ErrorBody)))]
pub async fn room(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Reply<RoomJson> {
    let (room, role) = w.room(&me.sub, &room).await?;
    Ok(Json(room_json(room, role)))
}

#[utoipa::path(patch, path = "/api/v1/rooms/{room}", tag = "rooms", params(("room" = String, Path, description = "Room id.")), request_body = Rename,
    responses((status = 200, body = RoomJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rename(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<Rename>,
) -> Reply<RoomJson> {
    let (renamed, role) = w.rename(&me.sub, &room, &body.name).await?;
    Ok(Json(room_json(renamed, role)))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}", tag = "rooms", params(("room" = String, Path, description = "Room id.")),
    description = "Owner only. Removes members and messages; live subscribers are dropped.",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_room(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    w.delete(&me.sub, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/join", tag = "members", params(("room" = String, Path, description = "Room id.")),
    description = "Join a public room.",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn join(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    w.join(&me.sub, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/leave", tag = "members", params(("room" = String, Path, description = "Room id.")),
    description = "Leave a room; owners hand over ownership first.",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn leave(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    w.leave(&me.sub, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/members", tag = "members", params(("room" = String, Path, description = "Room id.")),
    responses((status = 200, body = [MemberJson]), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Reply<Vec<MemberJson>> {
    let members = w.members(&me.sub, &room).await?;
    Ok(Json(members.into_iter().map(member_json).collect()))
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/members", tag = "members", params(("room" = String, Path, description = "Room id.")), request_body = AddMember,
    description = "Owners and admins add members; only owners add admins.",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`conflict`: already a member; `unknown_user`: no user has this id.")))]
pub async fn add_member(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<AddMember>,
) -> Result<StatusCode, ApiError> {
    let role = body
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::Member);
    w.add_member(&me.sub, &room, &body.user_id, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/members/{user}", tag = "members", params(("room" = String, Path, description = "Room id."), ("user" = String, Path, description = "User id.")),
    description = "Remove a member of a lower role, or yourself.",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    w.remove_member(&me.sub, &room, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/members/{user}/role", tag = "members", params(("room" = String, Path, description = "Room id."), ("user" = String, Path, description = "User id.")), request_body = SetRole,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_role(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetRole>,
) -> Result<StatusCode, ApiError> {
    w.set_role(&me.sub, &room, &user, parse_role(&body.role)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/owner", tag = "members", params(("room" = String, Path, description = "Room id.")), request_body = Transfer,
    description = "Owner only: hand ownership to a member; you become an admin.",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`not_a_member`: `user_id` is not a member of the room.")))]
pub async fn transfer(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<Transfer>,
) -> Result<StatusCode, ApiError> {
    w.transfer(&me.sub, &room, &body.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/messages", tag = "messages", params(("room" = String, Path, description = "Room id."), HistoryParams),
    description = "A page of history by sequence number: `before` (newest first, the default) or `after` (oldest first).",
    responses((status = 200, body = [MessageJson]), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    QueryParams(q): QueryParams<HistoryParams>,
) -> Reply<Vec<MessageJson>> {
    let query = HistoryQuery {
        before: q.before,
        after: q.after,
        limit: q.limit,
        thread: q.thread,
    };
    let page = w.history(&me.sub, &room, query).await?;
    Ok(Json(history_json(page)))
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/messages", tag = "messages", params(("room" = String, Path, description = "Room id.")), request_body = PostMessage,
    description = "Store a message. 201 when stored, 200 when a send with the same client_id was stored before.",
    responses((status = 201, body = MessageJson), (status = 200, body = MessageJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`invalid_reply_to`: the room has no message with that seq; `invalid_thread_root`: no message of the room outside a thread has that seq")))]
pub async fn post_message(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<PostMessage>,
) -> Result<Response, ApiError> {
    let post = natter_core::messaging::Post {
        user: &me.sub,
        room: &room,
        client_id: &body.client_id,
        body: &body.body,
        reply_to: body.reply_to,
        thread_root: body.thread_root,
        also_to_room: body.also_to_room,
    };
    let (message, created) = w.post(post).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message_json(message))).into_response())
}

#[utoipa::path(put, path = "/api/v1/direct/{user}", tag = "rooms", params(("user" = String, Path, description = "User id.")),
    description = "The direct room with another user, opened if new.",
    responses((status = 200, body = RoomJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn open_direct(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(user): Path<String>,
) -> Reply<RoomJson> {
    let room = w.open_direct(&me.sub, &user).await?;
    Ok(Json(room_json(room, Some(Role::Member))))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UsersQuery),
    responses((status = 200, body = [ProfileJson])))]
pub async fn find_users(
    State(w): State<Website>,
    _caller: Caller,
    QueryParams(q): QueryParams<UsersQuery>,
) -> Reply<Vec<ProfileJson>> {
    let users = w
        .find_users(q.prefix.as_deref().unwrap_or_default(), q.limit)
        .await?;
    Ok(Json(users.into_iter().map(profile_json).collect()))
}

#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "users", params(("user" = String, Path, description = "User id.")),
    responses((status = 200, body = ProfileJson), (status = 404, body = ErrorBody)))]
pub async fn profile(
    State(w): State<Website>,
    _caller: Caller,
    Path(user): Path<String>,
) -> Reply<ProfileJson> {
    Ok(Json(profile_json(w.profile(&user).await?)))
}

#[utoipa::path(get, path = "/api/v1/profile", tag = "users",
    responses((status = 200, body = ProfileJson)))]
pub async fn my_profile(State(w): State<Website>, Caller(me): Caller) -> Reply<ProfileJson> {
    Ok(Json(profile_json(w.profile(&me.sub).await?)))
}

#[utoipa::path(put, path = "/api/v1/profile", tag = "users", request_body = UpdateProfile,
    responses((status = 200, body = ProfileJson)))]
pub async fn update_profile(
    State(w): State<Website>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<UpdateProfile>,
) -> Reply<ProfileJson> {
    let profile = w
        .update_profile(&me.sub, &body.display_name, &body.bio, &body.avatar_url)
        .await?;
    Ok(Json(profile_json(profile)))
}

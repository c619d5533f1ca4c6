//! The JSON API under `/api/v1`: rooms, members, history, profiles, users. Every route
//! needs a bearer access token, verified locally.

use axum::extract::{DefaultBodyLimit, FromRef, FromRequest, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use natter_core::http::{ApiError, Caller};
use natter_core::store::{
    MemberRecord, MessageRecord, Page, ProfileRecord, Role, RoomKind, RoomRecord,
};
use natter_core::token::TokenVerifier;
use serde::{Deserialize, Serialize};

use crate::{HistoryQuery, Website, WebsiteError};

impl FromRef<Website> for TokenVerifier {
    fn from_ref(website: &Website) -> Self {
        website.verifier().clone()
    }
}

/// The website's routes.
pub fn routes(website: Website) -> Router {
    Router::new()
        .route("/api/v1/rooms", get(public_rooms).post(create_room))
        .route("/api/v1/rooms/mine", get(my_rooms))
        .route(
            "/api/v1/rooms/{room}",
            get(room).patch(rename).delete(delete_room),
        )
        .route("/api/v1/rooms/{room}/join", post(join))
        .route("/api/v1/rooms/{room}/leave", post(leave))
        .route(
            "/api/v1/rooms/{room}/members",
            get(members).post(add_member),
        )
        .route(
            "/api/v1/rooms/{room}/members/{user}",
            axum::routing::delete(remove_member),
        )
        .route("/api/v1/rooms/{room}/members/{user}/role", put(set_role))
        .route("/api/v1/rooms/{room}/owner", put(transfer))
        .route(
            "/api/v1/rooms/{room}/messages",
            get(history).post(post_message),
        )
        .route("/api/v1/direct/{user}", put(open_direct))
        .route("/api/v1/users", get(find_users))
        .route("/api/v1/users/{user}", get(profile))
        .route("/api/v1/profile", get(my_profile).put(update_profile))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(website)
}

/// A JSON body whose rejections use the Natter error body.
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                "bad_request",
                rejection.body_text(),
            )),
        }
    }
}

/// Query strings whose rejections use the Natter error body.
struct Params<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                rejection.body_text(),
            )),
        }
    }
}

type Reply<T> = Result<Json<T>, ApiError>;

#[derive(Debug, Serialize)]
struct RoomJson {
    id: String,
    kind: &'static str,
    name: Option<String>,
    created_by: Option<String>,
    created_at: i64,
    last_seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    my_role: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct PageJson<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct MemberJson {
    user_id: String,
    username: String,
    role: &'static str,
    joined_at: i64,
    last_read_seq: i64,
}

#[derive(Debug, Serialize)]
struct MessageJson {
    room_id: String,
    seq: i64,
    sender_id: Option<String>,
    client_id: String,
    body: String,
    created_at: i64,
    edited_at: Option<i64>,
    deleted: bool,
}

#[derive(Debug, Serialize)]
struct ProfileJson {
    id: String,
    username: String,
    display_name: String,
    bio: String,
    avatar_url: String,
    created_at: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    kind: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    user_id: String,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRole {
    role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    user_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostMessage {
    client_id: String,
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProfile {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    bio: String,
    #[serde(default)]
    avatar_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersQuery {
    prefix: String,
    limit: Option<u32>,
}

fn room_json(room: RoomRecord, role: Option<Role>) -> RoomJson {
    RoomJson {
        kind: room.kind.as_str(),
        id: room.id,
        name: room.name,
        created_by: room.created_by,
        created_at: room.created_at,
        last_seq: room.last_seq,
        my_role: role.map(Role::as_str),
    }
}

fn page_json(page: Page<RoomRecord>) -> PageJson<RoomJson> {
    PageJson {
        items: page.items.into_iter().map(|r| room_json(r, None)).collect(),
        next_cursor: page.next,
    }
}

fn member_json(m: MemberRecord) -> MemberJson {
    MemberJson {
        role: m.role.as_str(),
        user_id: m.user_id,
        username: m.username,
        joined_at: m.joined_at,
        last_read_seq: m.last_read_seq,
    }
}

fn message_json(m: MessageRecord) -> MessageJson {
    let deleted = m.deleted_at.is_some();
    MessageJson {
        room_id: m.room_id,
        seq: m.seq,
        sender_id: m.sender_id,
        client_id: m.client_id,
        body: if deleted { String::new() } else { m.body },
        created_at: m.created_at,
        edited_at: m.edited_at,
        deleted,
    }
}

fn profile_json(p: ProfileRecord) -> ProfileJson {
    ProfileJson {
        id: p.id,
        username: p.username,
        display_name: p.display_name,
        bio: p.bio,
        avatar_url: p.avatar_url,
        created_at: p.created_at,
    }
}

fn parse_kind(kind: &str) -> Result<RoomKind, WebsiteError> {
    match RoomKind::parse(kind) {
        Some(kind @ (RoomKind::Public | RoomKind::Group)) => Ok(kind),
        _ => Err(WebsiteError::invalid(
            "invalid_kind",
            "kind must be `public` or `group`",
        )),
    }
}

fn parse_role(role: &str) -> Result<Role, WebsiteError> {
    match Role::parse(role) {
        Some(role @ (Role::Member | Role::Admin)) => Ok(role),
        _ => Err(WebsiteError::invalid(
            "invalid_role",
            "role must be `member` or `admin`",
        )),
    }
}

async fn public_rooms(
    State(w): State<Website>,
    _caller: Caller,
    Params(q): Params<ListQuery>,
) -> Reply<PageJson<RoomJson>> {
    let page = w
        .public_rooms(q.q.as_deref(), q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Json(page_json(page)))
}

async fn my_rooms(
    State(w): State<Website>,
    Caller(me): Caller,
    Params(q): Params<ListQuery>,
) -> Reply<PageJson<RoomJson>> {
    let page = w.my_rooms(&me.sub, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(page_json(page)))
}

async fn create_room(
    State(w): State<Website>,
    Caller(me): Caller,
    Body(body): Body<CreateRoom>,
) -> Result<Response, ApiError> {
    let kind = parse_kind(&body.kind)?;
    let room = w.create_room(&me.sub, kind, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(room_json(room, Some(Role::Owner))),
    )
        .into_response())
}

async fn room(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Reply<RoomJson> {
    let (room, role) = w.room(&me.sub, &room).await?;
    Ok(Json(room_json(room, role)))
}

async fn rename(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    Body(body): Body<Rename>,
) -> Reply<RoomJson> {
    let renamed = w.rename(&me.sub, &room, &body.name).await?;
    let role = w.room(&me.sub, &room).await?.1;
    Ok(Json(room_json(renamed, role)))
}

async fn delete_room(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    w.delete(&me.sub, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn join(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    w.join(&me.sub, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn leave(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    w.leave(&me.sub, &room).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Reply<Vec<MemberJson>> {
    let members = w.members(&me.sub, &room).await?;
    Ok(Json(members.into_iter().map(member_json).collect()))
}

async fn add_member(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    Body(body): Body<AddMember>,
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

async fn remove_member(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    w.remove_member(&me.sub, &room, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_role(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, user)): Path<(String, String)>,
    Body(body): Body<SetRole>,
) -> Result<StatusCode, ApiError> {
    w.set_role(&me.sub, &room, &user, parse_role(&body.role)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn transfer(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    Body(body): Body<Transfer>,
) -> Result<StatusCode, ApiError> {
    w.transfer(&me.sub, &room, &body.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn history(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    Params(q): Params<HistoryParams>,
) -> Reply<Vec<MessageJson>> {
    let query = HistoryQuery {
        before: q.before,
        after: q.after,
        limit: q.limit,
    };
    let messages = w.history(&me.sub, &room, query).await?;
    Ok(Json(messages.into_iter().map(message_json).collect()))
}

async fn post_message(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    Body(body): Body<PostMessage>,
) -> Result<Response, ApiError> {
    let (message, created) = w.post(&me.sub, &room, &body.client_id, &body.body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(message_json(message))).into_response())
}

async fn open_direct(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(user): Path<String>,
) -> Reply<RoomJson> {
    let room = w.open_direct(&me.sub, &user).await?;
    Ok(Json(room_json(room, Some(Role::Member))))
}

async fn find_users(
    State(w): State<Website>,
    _caller: Caller,
    Params(q): Params<UsersQuery>,
) -> Reply<Vec<ProfileJson>> {
    let users = w.find_users(&q.prefix, q.limit).await?;
    Ok(Json(users.into_iter().map(profile_json).collect()))
}

async fn profile(
    State(w): State<Website>,
    _caller: Caller,
    Path(user): Path<String>,
) -> Reply<ProfileJson> {
    Ok(Json(profile_json(w.profile(&user).await?)))
}

async fn my_profile(State(w): State<Website>, Caller(me): Caller) -> Reply<ProfileJson> {
    Ok(Json(profile_json(w.profile(&me.sub).await?)))
}

async fn update_profile(
    State(w): State<Website>,
    Caller(me): Caller,
    Body(body): Body<UpdateProfile>,
) -> Reply<ProfileJson> {
    let profile = w
        .update_profile(&me.sub, &body.display_name, &body.bio, &body.avatar_url)
        .await?;
    Ok(Json(profile_json(profile)))
}

//! Handlers of what rich messages add to the JSON API: reactions, pins and the earlier
//! texts of edited messages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use natter_core::http::{ApiError, Caller, ErrorBody, JsonBody, QueryParams};

use super::handlers::Reply;
use super::json::*;
use crate::{Website, WebsiteError};

#[utoipa::path(put, path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", tag = "messages",
    params(("room" = String, Path, description = "Room id."), ("seq" = i64, Path, description = "The message's sequence number."), ("emoji" = String, Path, description = "One Unicode emoji (percent-encoded UTF-8).")),
    description = "Add your reaction to a message (adding twice is adding once). Members who may post only; at most 20 different emoji per message. The room's WebSocket subscribers get a `reaction` frame.",
    responses((status = 200, body = ReactionJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`too_many_reactions`"), (status = 422, body = ErrorBody, description = "`invalid_emoji`")))]
pub async fn add_reaction(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, seq, emoji)): Path<(String, String, String)>,
) -> Reply<ReactionJson> {
    react(&w, &me.sub, &room, &seq, &emoji, true).await
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", tag = "messages",
    params(("room" = String, Path, description = "Room id."), ("seq" = i64, Path, description = "The message's sequence number."), ("emoji" = String, Path, description = "One Unicode emoji (percent-encoded UTF-8).")),
    description = "Remove your reaction (removing what is not there changes nothing).",
    responses((status = 200, body = ReactionJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "`invalid_emoji`")))]
pub async fn remove_reaction(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, seq, emoji)): Path<(String, String, String)>,
) -> Reply<ReactionJson> {
    react(&w, &me.sub, &room, &seq, &emoji, false).await
}

async fn react(
    w: &Website,
    user: &str,
    room: &str,
    seq: &str,
    emoji: &str,
    add: bool,
) -> Reply<ReactionJson> {
    let reaction = w.react(user, room, message_seq(seq)?, emoji, add).await?;
    Ok(Json(ReactionJson {
        emoji: reaction.emoji,
        count: reaction.count,
        me: add,
    }))
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/pins/{seq}", tag = "messages",
    params(("room" = String, Path, description = "Room id."), ("seq" = i64, Path, description = "The message's sequence number.")),
    description = "Pin a message (pinning twice keeps the first pin). Owners and admins (both people of a direct room); at most 100 pins per room. The room's WebSocket subscribers get a `message_updated` frame.",
    responses((status = 200, body = MessageJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`too_many_pins`")))]
pub async fn pin(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, seq)): Path<(String, String)>,
) -> Reply<MessageJson> {
    let message = w.pin(&me.sub, &room, message_seq(&seq)?, true).await?;
    Ok(Json(message_json(message)))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/pins/{seq}", tag = "messages",
    params(("room" = String, Path, description = "Room id."), ("seq" = i64, Path, description = "The message's sequence number.")),
    description = "Unpin a message (unpinning what is not pinned changes nothing). Owners and admins.",
    responses((status = 200, body = MessageJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unpin(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, seq)): Path<(String, String)>,
) -> Reply<MessageJson> {
    let message = w.pin(&me.sub, &room, message_seq(&seq)?, false).await?;
    Ok(Json(message_json(message)))
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/pins", tag = "messages",
    params(("room" = String, Path, description = "Room id.")),
    description = "The room's pinned messages, most recently pinned first.",
    responses((status = 200, body = Vec<MessageJson>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn pins(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Reply<Vec<MessageJson>> {
    let pins = w.pins(&me.sub, &room).await?;
    let pins = pins.iter().map(natter_core::events::message);
    Ok(Json(pins.map(message_json).collect()))
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/messages/{seq}/edits", tag = "messages",
    params(("room" = String, Path, description = "Room id."), ("seq" = i64, Path, description = "The message's sequence number.")),
    description = "The earlier texts of an edited message, oldest first (none for a message never edited, or deleted).",
    responses((status = 200, body = Vec<EditJson>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn edits(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, seq)): Path<(String, String)>,
) -> Reply<Vec<EditJson>> {
    let edits = w.edits(&me.sub, &room, message_seq(&seq)?).await?;
    Ok(Json(edits.iter().map(edit_json).collect()))
}

#[utoipa::path(get, path = "/api/v1/threads", tag = "messages", params(LimitQuery),
    description = "The threads you follow — you started, replied in or were mentioned in them — in rooms you are a member of, most recently active first, with the replies by others you have not read.",
    responses((status = 200, body = Vec<FollowedThreadJson>), (status = 422, body = ErrorBody)))]
pub async fn threads(
    State(w): State<Website>,
    Caller(me): Caller,
    QueryParams(q): QueryParams<LimitQuery>,
) -> Reply<Vec<FollowedThreadJson>> {
    let threads = w.threads(&me.sub, q.limit).await?;
    Ok(Json(
        threads.into_iter().map(followed_thread_json).collect(),
    ))
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/threads/{root}/read", tag = "messages",
    params(("room" = String, Path, description = "Room id."), ("root" = i64, Path, description = "The thread's root.")),
    request_body = ReadUpTo,
    description = "Move your read marker in a thread you follow forward (never back).",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "No such room, or a thread you do not follow")))]
pub async fn read_thread(
    State(w): State<Website>,
    Caller(me): Caller,
    Path((room, root)): Path<(String, String)>,
    JsonBody(body): JsonBody<ReadUpTo>,
) -> Result<StatusCode, ApiError> {
    // `seq` is required; only a JSON `null`, which the schema rules out, leaves it empty.
    let seq = body.seq.unwrap_or_default();
    w.read_thread(&me.sub, &room, message_seq(&root)?, seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A `seq` that is not a number names no message.
fn message_seq(seq: &str) -> Result<i64, WebsiteError> {
    seq.parse().map_err(|_| WebsiteError::NotFound("message"))
}

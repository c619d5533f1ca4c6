//! Handlers and bodies of what notifications add to the JSON API: read markers, unread
//! and mention counts, notification levels, read receipts ("seen by") and the setting
//! that shares them, and browsers' Web Push subscriptions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use natter_core::http::{ApiError, Caller, ErrorBody, JsonBody};
use natter_core::store::{PushSubscription, RoomCounts};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::handlers::Reply;
use super::json::ReadUpTo;
use crate::{UserSettings, Website};

/// One of your rooms with its counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomCountsJson {
    /// Room id.
    pub room_id: String,
    /// `public`, `group` or `direct`.
    pub kind: &'static str,
    /// Name; absent for direct rooms.
    pub name: Option<String>,
    /// Sequence number of the newest message.
    pub last_seq: i64,
    /// Your read marker.
    pub read_seq: i64,
    /// Messages after your marker.
    pub unread: i64,
    /// Of those, the ones by others that mention you or `@room` (every one in a direct
    /// room).
    pub mentions: i64,
    /// Your notification level: `all`, `mentions` or `nothing`.
    pub level: &'static str,
}

/// Your read marker in a room.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkerJson {
    /// The marker in effect.
    pub seq: i64,
}

/// Choose which messages of a room notify you.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelBody {
    /// `all`, `mentions` or `nothing`; `null` for the default (`all` in direct rooms,
    /// `mentions` elsewhere).
    #[schema(value_type = Option<String>, pattern = "^(all|mentions|nothing)$")]
    pub level: Option<String>,
}

/// Your notification level in a room.
#[derive(Debug, Serialize, ToSchema)]
pub struct LevelJson {
    /// The room.
    pub room_id: String,
    /// The level in effect.
    pub level: &'static str,
}

/// How far the members of a room have read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptsJson {
    /// False when the room shows no receipts (too many members) or you do not share
    /// yours; `receipts` is empty then.
    pub shown: bool,
    /// The markers of members who share them.
    pub receipts: Vec<ReceiptJson>,
}

/// One member's read marker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptJson {
    /// The member.
    pub user_id: String,
    /// Every message up to this one is read.
    pub seq: i64,
}

/// Your settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsJson {
    /// Whether members see how far you have read; without it you do not see theirs.
    pub share_receipts: bool,
    /// Whether you get email digests of unread mentions and direct messages (when the
    /// server sends digests and you have an email address).
    pub email_digests: bool,
}

/// Settings to change; those left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChangeJson {
    /// Whether members see how far you have read; without it you do not see theirs.
    #[serde(default)]
    pub share_receipts: Option<bool>,
    /// Whether you get email digests (turning them off drops what was waiting).
    #[serde(default)]
    pub email_digests: Option<bool>,
}

impl From<UserSettings> for SettingsJson {
    fn from(settings: UserSettings) -> Self {
        Self {
            share_receipts: settings.share_receipts,
            email_digests: settings.email_digests,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/unread", tag = "notifications",
    description = "Every room you are a member of with its unread and mention counts and your notification level (the WebSocket's `me` stream keeps the same live).",
    responses((status = 200, body = Vec<RoomCountsJson>)))]
pub async fn unread(State(w): State<Website>, Caller(me): Caller) -> Reply<Vec<RoomCountsJson>> {
    let rooms = w.room_counts(&me.sub).await?;
    Ok(Json(rooms.iter().map(room_counts_json).collect()))
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/read", tag = "notifications",
    params(("room" = String, Path, description = "Room id.")), request_body = ReadUpTo,
    description = "Move your read marker forward (never back, never past the newest message). Your other devices' counts follow; members of a room that shows receipts see it.",
    responses((status = 200, body = MarkerJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mark_read(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<ReadUpTo>,
) -> Reply<MarkerJson> {
    // `seq` is required; only a JSON `null`, which the schema rules out, leaves it empty.
    let seq = body.seq.unwrap_or_default();
    let marked = w.mark_read(&me.sub, &room, seq).await?;
    Ok(Json(MarkerJson { seq: marked.seq }))
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/notifications", tag = "notifications",
    params(("room" = String, Path, description = "Room id.")), request_body = LevelBody,
    description = "Choose which messages of a room notify you: all, mentions (of you or @room) or nothing (muted). Members only.",
    responses((status = 200, body = LevelJson), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "`invalid_level`")))]
pub async fn set_level(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
    JsonBody(body): JsonBody<LevelBody>,
) -> Reply<LevelJson> {
    let level = w.set_level(&me.sub, &room, body.level.as_deref()).await?;
    Ok(Json(LevelJson {
        room_id: room,
        level: level.as_str(),
    }))
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/receipts", tag = "notifications",
    params(("room" = String, Path, description = "Room id.")),
    description = "How far each member who shares read receipts has read (\"seen by\"), in rooms of up to the configured size.",
    responses((status = 200, body = ReceiptsJson), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn receipts(
    State(w): State<Website>,
    Caller(me): Caller,
    Path(room): Path<String>,
) -> Reply<ReceiptsJson> {
    let receipts = w.receipts(&me.sub, &room).await?;
    Ok(Json(ReceiptsJson {
        shown: receipts.is_some(),
        receipts: (receipts.into_iter().flatten())
            .map(|(user_id, seq)| ReceiptJson { user_id, seq })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/settings", tag = "notifications",
    responses((status = 200, body = SettingsJson)))]
pub async fn settings(State(w): State<Website>, Caller(me): Caller) -> Reply<SettingsJson> {
    Ok(Json(w.settings(&me.sub).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/settings", tag = "notifications", request_body = SettingsChangeJson,
    responses((status = 200, body = SettingsJson)))]
pub async fn update_settings(
    State(w): State<Website>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<SettingsChangeJson>,
) -> Reply<SettingsJson> {
    let (share, email) = (body.share_receipts, body.email_digests);
    Ok(Json(w.update_settings(&me.sub, share, email).await?.into()))
}

fn room_counts_json(counts: &RoomCounts) -> RoomCountsJson {
    RoomCountsJson {
        room_id: counts.room.id.clone(),
        kind: counts.room.kind.as_str(),
        name: counts.room.name.clone(),
        last_seq: counts.room.last_seq,
        read_seq: counts.read_seq,
        unread: counts.unread(),
        mentions: counts.mentions(),
        level: counts.level().as_str(),
    }
}

/// The key browsers subscribe to pushes with.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushKeyJson {
    /// The VAPID public key (`applicationServerKey`): an uncompressed P-256 point,
    /// base64url.
    pub public_key: String,
}

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushSubscriptionBody {
    /// The push service URL (https; http only to 127.0.0.1 or localhost).
    #[schema(max_length = 2048, pattern = "^https?://[^\\s]+$")]
    pub endpoint: String,
    /// The browser's keys.
    pub keys: PushKeys,
}

/// A push subscription's keys (RFC 8291).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushKeys {
    /// The browser's P-256 public key: the uncompressed point (65 bytes), base64url.
    #[schema(pattern = "^[A-Za-z0-9_-]{87}=?$")]
    pub p256dh: String,
    /// The 16-byte auth secret, base64url.
    #[schema(pattern = "^[A-Za-z0-9_-]{22}(==)?$")]
    pub auth: String,
}

/// Which subscription to forget.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    /// The push service URL it was saved with.
    pub endpoint: String,
}

#[utoipa::path(get, path = "/api/v1/push/key", tag = "notifications",
    description = "The VAPID public key to subscribe to Web Push with; 404 when this server sends no pushes.",
    responses((status = 200, body = PushKeyJson), (status = 404, body = ErrorBody)))]
pub async fn push_key(State(w): State<Website>, _caller: Caller) -> Reply<PushKeyJson> {
    let public_key = w.push_key()?.to_owned();
    Ok(Json(PushKeyJson { public_key }))
}

#[utoipa::path(put, path = "/api/v1/push/subscriptions", tag = "notifications",
    request_body = PushSubscriptionBody,
    description = "Save this browser's push subscription: notifications due while you have no page open arrive as pushes (mentions, direct messages, rooms at level all), a short delay after the message when it is still unread.",
    responses((status = 204), (status = 404, body = ErrorBody, description = "Pushes are off"), (status = 409, body = ErrorBody, description = "`unusable_subscription`: the key is no P-256 point, or an http endpoint not on this machine"), (status = 422, body = ErrorBody, description = "`invalid_subscription`")))]
pub async fn subscribe_push(
    State(w): State<Website>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<PushSubscriptionBody>,
) -> Result<StatusCode, ApiError> {
    let sub = PushSubscription {
        endpoint: body.endpoint,
        user_id: me.sub.clone(),
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
    };
    w.subscribe_push(&me.sub, sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/push/subscriptions", tag = "notifications",
    request_body = EndpointBody,
    description = "Forget one of your browsers' push subscriptions.",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unsubscribe_push(
    State(w): State<Website>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<EndpointBody>,
) -> Result<StatusCode, ApiError> {
    w.unsubscribe_push(&me.sub, &body.endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

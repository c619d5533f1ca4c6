//! Request and response bodies of the JSON API, with their OpenAPI schemas.

use natter_core::events;
use natter_core::messaging::HistoryPage;
use natter_core::store::{
    EditRecord, FollowedThread, MemberRecord, MyRoom, Page, ProfileRecord, Role, RoomKind,
    RoomRecord,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::schemas;
use crate::WebsiteError;

/// A room as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomJson {
    /// Room id.
    pub id: String,
    /// `public`, `group` or `direct`.
    pub kind: &'static str,
    /// Name; absent for direct rooms.
    pub name: Option<String>,
    /// Creator's user id.
    pub created_by: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Sequence number of the newest message.
    pub last_seq: i64,
    /// The caller's role, when a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_role: Option<&'static str>,
    /// Messages after the caller's read marker (in the caller's own room list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<i64>,
    /// In a direct room, the other person's user name (in the caller's own room list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<String>,
}

/// One page of rooms.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomPage {
    /// The rooms.
    pub items: Vec<RoomJson>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A member of a room.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberJson {
    /// User id.
    pub user_id: String,
    /// Username.
    pub username: String,
    /// `owner`, `admin` or `member`.
    pub role: &'static str,
    /// Unix milliseconds.
    pub joined_at: i64,
    /// Last sequence number the member has read.
    pub last_read_seq: i64,
}

/// A message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageJson {
    /// Room id.
    pub room_id: String,
    /// Position in the room, from 1, without gaps.
    pub seq: i64,
    /// Author's user id.
    pub sender_id: Option<String>,
    /// The sender's id for the send.
    pub client_id: String,
    /// Text; empty once deleted.
    pub body: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds, when edited.
    pub edited_at: Option<i64>,
    /// Whether the message was deleted.
    pub deleted: bool,
    /// The seq of the message of the room this one answers.
    pub reply_to: Option<i64>,
    /// Emoji reactions as the caller sees them, in the order each emoji was first used
    /// (in history pages; empty in other answers and once deleted).
    pub reactions: Vec<ReactionJson>,
    /// The text rendered from its Markdown subset to safe HTML; empty for plain text
    /// (show `body` as it is) and once deleted.
    pub html: String,
    /// The members the text mentions.
    pub mentions: Vec<MentionJson>,
    /// Whether the text mentions everyone in the room (`@room`).
    pub mentions_room: bool,
    /// Unix milliseconds, when pinned.
    pub pinned_at: Option<i64>,
    /// Who pinned it.
    pub pinned_by: Option<String>,
    /// The root of the thread this message is in.
    pub thread_root: Option<i64>,
    /// A thread message also shown in the room's timeline.
    pub also_to_room: bool,
    /// On a thread's root: the thread's summary.
    pub thread: Option<ThreadJson>,
}

/// A thread as its root shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadJson {
    /// How many replies.
    pub replies: i64,
    /// Unix milliseconds of the last reply.
    pub last_reply_at: i64,
    /// Who took part (user ids), the starter first; at most 20.
    pub participants: Vec<String>,
}

/// A member a message mentions.
#[derive(Debug, Serialize, ToSchema)]
pub struct MentionJson {
    /// User id.
    pub user_id: String,
    /// Username.
    pub username: String,
}

/// A thread the caller follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowedThreadJson {
    /// Room id.
    pub room_id: String,
    /// The thread's root.
    pub root_seq: i64,
    /// The root's text (empty once deleted).
    pub root_body: String,
    /// How many replies.
    pub replies: i64,
    /// Unix milliseconds of the last reply.
    pub last_reply_at: Option<i64>,
    /// Replies by others after the caller's read marker in the thread.
    pub unread: i64,
}

/// How far the caller has read a room or a thread (markers never move back, nor past the
/// newest message).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    /// The highest seq read (a whole number; `6.0` is `6`).
    #[serde(deserialize_with = "whole_number")]
    #[schema(value_type = i64)]
    pub seq: Option<i64>,
}

/// An earlier text of an edited message.
#[derive(Debug, Serialize, ToSchema)]
pub struct EditJson {
    /// The text.
    pub body: String,
    /// The text rendered as a message's `html` is.
    pub html: String,
    /// Unix milliseconds: when this text was written (sent, or by the edit that wrote it).
    pub written_at: i64,
}

/// How many people reacted to a message with one emoji.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionJson {
    /// The emoji (fully qualified).
    pub emoji: String,
    /// How many people reacted with it.
    pub count: i64,
    /// Whether the caller is one of them.
    pub me: bool,
}

/// A user's public profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileJson {
    /// User id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Free text.
    pub bio: String,
    /// http(s) URL or empty.
    pub avatar_url: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Create a room.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// `public` or `group`.
    #[schema(schema_with = schemas::new_room_kind)]
    pub kind: String,
    /// Unique among public rooms, case-insensitively.
    #[schema(schema_with = schemas::room_name)]
    pub name: String,
}

/// Rename a room.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// The new name.
    #[schema(schema_with = schemas::room_name)]
    pub name: String,
}

/// Add a member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user to add.
    #[schema(schema_with = schemas::id)]
    pub user_id: String,
    /// `member` (default) or `admin` (owner only).
    #[serde(default)]
    #[schema(schema_with = schemas::grantable_role)]
    pub role: Option<String>,
}

/// Change a member's role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `member` or `admin`.
    #[schema(schema_with = schemas::grantable_role)]
    pub role: String,
}

/// Hand over ownership.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The member who becomes owner.
    #[schema(schema_with = schemas::id)]
    pub user_id: String,
}

/// Send a message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// Chosen by the client; a retry with the same id returns the stored message.
    #[schema(schema_with = schemas::client_id)]
    pub client_id: String,
    /// The text.
    #[schema(schema_with = schemas::message_body)]
    pub body: String,
    /// The seq of the message of the room this one answers (409 `invalid_reply_to` when
    /// the room has no such message).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1)]
    pub reply_to: Option<i64>,
    /// The root of the thread this message goes to: a message of the room that is not
    /// in a thread (409 `invalid_thread_root` otherwise).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1)]
    pub thread_root: Option<i64>,
    /// A thread message also shown in the room's timeline.
    #[serde(default)]
    pub also_to_room: bool,
}

/// A JSON integer as JSON Schema counts them: `6` and `6.0` alike (what a client whose
/// numbers are floats writes for a whole number).
fn whole_number<'de, D: serde::Deserializer<'de>>(input: D) -> Result<Option<i64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(input)? else {
        return Ok(None);
    };
    // `as` saturates: a whole number past the i64 range names no message (409), rather
    // than being refused as malformed although the schema allows it.
    let whole = number.as_f64().filter(|f| f.fract() == 0.0);
    number
        .as_i64()
        .or(whole.map(|f| f as i64))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("expected a whole number"))
}

/// Replace the caller's profile fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    /// Display name.
    #[serde(default)]
    #[schema(schema_with = schemas::display_name)]
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    #[schema(schema_with = schemas::bio)]
    pub bio: String,
    /// Avatar image URL.
    #[serde(default)]
    #[schema(schema_with = schemas::avatar_url)]
    pub avatar_url: String,
}

/// Public room listing parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Name substring.
    #[param(schema_with = schemas::room_search)]
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = schemas::rooms_cursor)]
    pub cursor: Option<String>,
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The caller's room listing parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MineQuery {
    /// `next_cursor` of the previous page.
    #[param(schema_with = schemas::my_rooms_cursor)]
    pub cursor: Option<String>,
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// History paging parameters.
/// A page size alone.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Messages before this sequence number, newest first (the default order).
    pub before: Option<i64>,
    /// Messages after this sequence number, oldest first; with `before`, the messages
    /// between the two.
    pub after: Option<i64>,
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The messages of the thread of this root (the root not included) instead of the
    /// room's timeline, which holds no thread messages but those also sent to the room.
    pub thread: Option<i64>,
}

/// User look-up parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Username prefix.
    #[param(schema_with = schemas::user_prefix)]
    pub prefix: Option<String>,
    /// Page size, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

pub fn room_json(room: RoomRecord, role: Option<Role>) -> RoomJson {
    RoomJson {
        kind: room.kind.as_str(),
        id: room.id,
        name: room.name,
        created_by: room.created_by,
        created_at: room.created_at,
        last_seq: room.last_seq,
        my_role: role.map(Role::as_str),
        unread: None,
        peer_name: None,
    }
}

pub fn room_page(page: Page<RoomRecord>) -> RoomPage {
    RoomPage {
        items: page.items.into_iter().map(|r| room_json(r, None)).collect(),
        next_cursor: page.next,
    }
}

pub fn my_room_page(page: Page<MyRoom>) -> RoomPage {
    let item = |mine: MyRoom| RoomJson {
        unread: Some(mine.unread()),
        peer_name: mine.peer,
        ..room_json(mine.room, Some(mine.role))
    };
    RoomPage {
        items: page.items.into_iter().map(item).collect(),
        next_cursor: page.next,
    }
}

pub fn member_json(m: MemberRecord) -> MemberJson {
    MemberJson {
        role: m.role.as_str(),
        user_id: m.user_id,
        username: m.username,
        joined_at: m.joined_at,
        last_read_seq: m.last_read_seq,
    }
}

/// A message in its wire shape (rendered, with the reader's reactions when it has them).
pub fn message_json(m: events::pb::Message) -> MessageJson {
    MessageJson {
        body: m.body,
        deleted: m.deleted,
        room_id: m.room_id,
        seq: m.seq,
        sender_id: m.sender_id,
        client_id: m.client_id,
        created_at: m.created_at,
        edited_at: m.edited_at,
        reply_to: m.reply_to,
        reactions: (m.reactions.into_iter())
            .map(|r| ReactionJson {
                emoji: r.emoji,
                count: r.count,
                me: r.me,
            })
            .collect(),
        html: m.html,
        mentions: (m.mentions.into_iter())
            .map(|m| MentionJson {
                user_id: m.user_id,
                username: m.username,
            })
            .collect(),
        mentions_room: m.mentions_room,
        pinned_at: m.pinned_at,
        pinned_by: m.pinned_by,
        thread_root: m.thread_root,
        also_to_room: m.also_to_room,
        thread: m.thread.map(|t| ThreadJson {
            replies: t.replies,
            last_reply_at: t.last_reply_at,
            participants: t.participants,
        }),
    }
}

pub fn followed_thread_json(t: FollowedThread) -> FollowedThreadJson {
    FollowedThreadJson {
        room_id: t.room_id,
        root_seq: t.root_seq,
        root_body: t.root_body,
        replies: t.replies,
        last_reply_at: t.last_reply_at,
        unread: t.unread,
    }
}

pub fn edit_json(e: &EditRecord) -> EditJson {
    let e = events::edit(e);
    EditJson {
        body: e.body,
        html: e.html,
        written_at: e.written_at,
    }
}

/// The messages of a history page, each with its reactions.
pub fn history_json(page: HistoryPage) -> Vec<MessageJson> {
    page.to_wire().into_iter().map(message_json).collect()
}

pub fn profile_json(p: ProfileRecord) -> ProfileJson {
    ProfileJson {
        id: p.id,
        username: p.username,
        display_name: p.display_name,
        bio: p.bio,
        avatar_url: p.avatar_url,
        created_at: p.created_at,
    }
}

pub fn parse_kind(kind: &str) -> Result<RoomKind, WebsiteError> {
    match RoomKind::parse(kind) {
        Some(kind @ (RoomKind::Public | RoomKind::Group)) => Ok(kind),
        _ => Err(WebsiteError::invalid(
            "invalid_kind",
            "kind must be `public` or `group`",
        )),
    }
}

pub fn parse_role(role: &str) -> Result<Role, WebsiteError> {
    match Role::parse(role) {
        Some(role @ (Role::Member | Role::Admin)) => Ok(role),
        _ => Err(WebsiteError::invalid(
            "invalid_role",
            "role must be `member` or `admin`",
        )),
    }
}

//! The page templates (askama, HTML-escaped by default) and the view models they show.

use askama::Template;
use natter_proto::common::v1::Message;
use natter_proto::website::v1::{FollowedThread, Member, Profile, Role, Room, RoomKind, Settings};

/// What every page's navigation needs.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// Signed-in user name.
    pub user: Option<String>,
    /// The session's CSRF token (for the logout form).
    pub csrf: String,
}

/// A room as lists and headers show it.
#[derive(Debug, Clone)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub unread: i64,
    pub role: &'static str,
}

/// A message as the room page first shows it (the script takes over from there).
#[derive(Debug, Clone)]
pub struct MessageView {
    pub seq: i64,
    pub sender: String,
    pub sender_id: String,
    pub mine: bool,
    /// The source text (what an edit starts from).
    pub body: String,
    /// The text as the server rendered it: safe HTML (an allow-list cleaned it).
    pub html: String,
    pub pinned: bool,
    /// The root of the thread it is in (a thread message also sent to the room).
    pub thread_root: Option<i64>,
    /// On a thread's root: how many replies.
    pub thread_replies: i64,
    pub created_at: i64,
    pub edited: bool,
    pub deleted: bool,
    /// Emoji reactions as the reader sees them.
    pub reactions: Vec<ReactionView>,
    /// The seq of the message this one answers.
    pub reply_to: Option<i64>,
}

/// One emoji's reactions under a message.
#[derive(Debug, Clone)]
pub struct ReactionView {
    pub emoji: String,
    pub count: i64,
    /// Whether the reader reacted with it.
    pub me: bool,
}

/// A member row.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub user_id: String,
    pub username: String,
    pub role: &'static str,
}

impl RoomView {
    /// `room` for display; a direct room is named after the other person when known.
    pub fn of(room: &Room, direct_name: Option<&str>) -> Self {
        let kind = match room.kind() {
            RoomKind::Public => "public",
            RoomKind::Group => "group",
            RoomKind::Direct => "direct",
            RoomKind::Unspecified => "room",
        };
        let name = match (room.kind(), direct_name, &room.name) {
            (RoomKind::Direct, Some(other), _) => format!("Direct chat with {other}"),
            (RoomKind::Direct, None, _) => "Direct chat".into(),
            (_, _, Some(name)) => name.clone(),
            (_, _, None) => "(unnamed)".into(),
        };
        Self {
            id: room.id.clone(),
            name,
            kind,
            unread: room.unread.unwrap_or(0),
            role: role_name(room.my_role()),
        }
    }
}

/// The role's name in the UI.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
        Role::Unspecified => "",
    }
}

impl MessageView {
    /// `message`, with its sender's name from `name_of`.
    pub fn of(message: &Message, me: &str, name_of: impl Fn(&str) -> String) -> Self {
        let sender_id = message.sender_id.as_deref().unwrap_or("");
        Self {
            seq: message.seq,
            sender: name_of(sender_id),
            sender_id: sender_id.to_owned(),
            mine: sender_id == me,
            body: message.body.clone(),
            html: message.html.clone(),
            pinned: message.pinned_at.is_some(),
            thread_root: message.thread_root,
            thread_replies: message.thread.as_ref().map_or(0, |t| t.replies),
            created_at: message.created_at,
            edited: message.edited_at.is_some(),
            deleted: message.deleted,
            reply_to: message.reply_to,
            reactions: message
                .reactions
                .iter()
                .map(|r| ReactionView {
                    emoji: r.emoji.clone(),
                    count: r.count,
                    me: r.me,
                })
                .collect(),
        }
    }
}

impl MemberView {
    /// A member row.
    pub fn of(member: &Member) -> Self {
        Self {
            user_id: member.user_id.clone(),
            username: member.username.clone(),
            role: role_name(member.role()),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct Home {
    pub nav: Nav,
    pub rooms: Vec<RoomView>,
    /// Threads the user follows, most recently active first.
    pub threads: Vec<ThreadView>,
}

/// A followed thread on the home page.
#[derive(Debug, Clone)]
pub struct ThreadView {
    pub room_id: String,
    pub root_seq: i64,
    /// The room's name as the room list shows it.
    pub room: String,
    /// The start of the root's text.
    pub excerpt: String,
    pub replies: i64,
    pub unread: i64,
}

impl ThreadView {
    /// `thread`, in the room named `room`.
    pub fn of(thread: &FollowedThread, room: &str) -> Self {
        let mut excerpt: String = thread.root_body.chars().take(80).collect();
        if excerpt.len() < thread.root_body.len() {
            excerpt.push('…');
        }
        Self {
            room_id: thread.room_id.clone(),
            root_seq: thread.root_seq,
            room: room.to_owned(),
            excerpt,
            replies: thread.replies,
            unread: thread.unread,
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub nav: Nav,
    pub error: Option<String>,
    pub form_token: String,
    pub login: String,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct Register {
    pub nav: Nav,
    pub error: Option<String>,
    pub form_token: String,
    pub username: String,
}

#[derive(Template)]
#[template(path = "rooms.html")]
pub struct Rooms {
    pub nav: Nav,
    pub rooms: Vec<RoomView>,
    pub query: String,
    pub next_cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "new_room.html")]
pub struct NewRoom {
    pub nav: Nav,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "room.html")]
pub struct RoomPage {
    pub nav: Nav,
    pub room: RoomView,
    pub messages: Vec<MessageView>,
    pub names_json: String,
    pub me: String,
    pub joined: bool,
    pub manage: bool,
    /// May pin messages and mention @room (owners and admins; both people of a DM).
    pub can_pin: bool,
    pub last_seq: i64,
}

#[derive(Template)]
#[template(path = "members.html")]
pub struct Members {
    pub nav: Nav,
    pub room: RoomView,
    pub members: Vec<MemberView>,
    pub manage: bool,
    pub owner: bool,
    /// Direct rooms cannot be renamed, left or deleted.
    pub direct: bool,
    pub me: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct Users {
    pub nav: Nav,
    pub query: String,
    pub users: Vec<Profile>,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub nav: Nav,
    pub profile: Profile,
    pub mine: bool,
}

#[derive(Template)]
#[template(path = "edit_profile.html")]
pub struct EditProfile {
    pub nav: Nav,
    pub profile: Profile,
    pub settings: Settings,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "unsubscribe.html")]
pub struct Unsubscribe {
    pub nav: Nav,
    pub token: String,
    /// Whose digests were turned off, once they were.
    pub username: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub nav: Nav,
    pub title: String,
    pub message: String,
}

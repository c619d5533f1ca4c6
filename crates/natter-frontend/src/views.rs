//! The page templates (askama, HTML-escaped by default) and the view models they show.

use askama::Template;

use crate::i18n::{Lang, translate, translate_with};
use crate::prefs::{t, t_with};
use natter_proto::common::v1::Message;
use natter_proto::website::v1::{FollowedThread, Member, Profile, Role, Room, RoomKind, Settings};

/// What every page's frame needs: the header, and for a signed-in reader the sidebar.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// Signed-in user name.
    pub user: Option<String>,
    /// The session's CSRF token (for the logout form).
    pub csrf: String,
    /// The reader's colour scheme (`dark`, `light`, or empty: the system's).
    pub theme: &'static str,
    /// The reader's language.
    pub lang: Lang,
    /// The signed-in reader's rooms, direct chats and threads (not on error pages).
    pub sidebar: Option<Sidebar>,
}

impl Nav {
    /// Message `id` in the reader's language.
    pub fn t(&self, id: &str) -> String {
        translate(self.lang, id, None)
    }

    /// Message `id` with a string argument.
    pub fn ts(&self, id: &str, name: &str, value: &str) -> String {
        translate_with(self.lang, id, name, value)
    }

    /// Message `id` counting `n`.
    pub fn tn(&self, id: &str, n: &i64) -> String {
        translate_with(self.lang, id, "n", *n)
    }

    /// The languages to choose from, as (code, own name, chosen).
    pub fn languages(&self) -> Vec<(&'static str, &'static str, bool)> {
        (Lang::ALL.into_iter())
            .map(|l| (l.code(), l.name(), l == self.lang))
            .collect()
    }
}

/// The app shell's sidebar: what the reader is in, with unread counts as of rendering
/// (the page's event stream keeps them live).
#[derive(Debug, Clone, Default)]
pub struct Sidebar {
    /// Public and group rooms.
    pub rooms: Vec<RoomView>,
    /// Direct chats, named after the other person.
    pub directs: Vec<RoomView>,
    /// Followed threads, most recently active first.
    pub threads: Vec<ThreadView>,
}

impl Sidebar {
    /// The room `id` among the reader's, if it is one of them.
    pub fn room(&self, id: &str) -> Option<&RoomView> {
        self.rooms.iter().chain(&self.directs).find(|r| r.id == id)
    }
}

/// A room as lists and headers show it.
#[derive(Debug, Clone)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    /// What the sidebar calls it: its name, or the other person's in a direct room.
    pub label: String,
    pub kind: &'static str,
    pub unread: i64,
    /// The newest message's seq.
    pub last_seq: i64,
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
        let unnamed = || t("room-unnamed");
        let direct_name = direct_name.or(room.peer_name.as_deref());
        let (name, label) = match (room.kind(), direct_name, &room.name) {
            (RoomKind::Direct, Some(other), _) => {
                (t_with("room-direct-with", "name", other), other.to_owned())
            }
            (RoomKind::Direct, None, _) => (t("room-direct"), t("room-direct")),
            (_, _, Some(name)) => (name.clone(), name.clone()),
            (_, _, None) => (unnamed(), unnamed()),
        };
        Self {
            id: room.id.clone(),
            name,
            label,
            kind,
            unread: room.unread.unwrap_or(0),
            last_seq: room.last_seq,
        }
    }
}

impl RoomView {
    /// The sidebar's avatar letters.
    pub fn initials(&self) -> String {
        initials(&self.label)
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

/// Up to two letters standing for `name` where a picture would be (an avatar).
pub fn initials(name: &str) -> String {
    let mut words = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    let first = words.next().and_then(|w| w.chars().next());
    let second = words.next().and_then(|w| w.chars().next());
    first
        .into_iter()
        .chain(second)
        .flat_map(char::to_uppercase)
        .collect()
}

impl MessageView {
    /// The sender's avatar letters.
    pub fn initials(&self) -> String {
        initials(&self.sender)
    }
}

impl MemberView {
    /// The role as the reader's language names it.
    pub fn role_label(&self) -> String {
        t(&format!("role-{}", self.role))
    }

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
    /// How far the reader had read when the page was built (the "new" divider).
    pub read_seq: i64,
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

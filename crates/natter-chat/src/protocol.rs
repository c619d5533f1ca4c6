//! The wire protocol (version 1): JSON text frames with a `type` field. docs/protocol.md
//! describes every frame, field, error code and close code.

use serde::{Deserialize, Serialize};

/// The protocol version; also the WebSocket subprotocol `natter.v1`.
pub const VERSION: u32 = 1;

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Authenticate (first frame) or re-authenticate with a fresh access token.
    Auth {
        /// The access token.
        token: String,
        /// Receive presence and typing as one `presence_changes` frame per room and
        /// flush instead of `presence` and `typing` frames (and counts in large rooms).
        #[serde(default)]
        presence_changes: bool,
    },
    /// Receive a room's messages; with `since`, first every message after that sequence.
    Subscribe {
        /// The room, or `me` for the user's own event stream (counts, room list,
        /// notifications).
        room_id: String,
        /// The last sequence number the client has seen in this room.
        #[serde(default)]
        since: Option<i64>,
        /// Also receive the room's read receipts ("seen by"), where the room shows them.
        #[serde(default)]
        receipts: bool,
    },
    /// Stop receiving a room's messages.
    Unsubscribe {
        /// The room.
        room_id: String,
    },
    /// Send a message; acknowledged once stored.
    Send {
        /// The room.
        room_id: String,
        /// Chosen by the client; a retry with the same id is not stored twice.
        client_id: String,
        /// 1–4000 characters.
        body: String,
        /// The seq of the message of the room this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i64>,
        /// The root of the thread this message goes to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_root: Option<i64>,
        /// A thread message also shown in the room's timeline.
        #[serde(default)]
        also_to_room: bool,
        /// Optional W3C trace context: the send's spans (and every delivery's) join it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
        /// Optional W3C `tracestate` that goes with `traceparent`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracestate: Option<String>,
    },
    /// The user is typing in a subscribed room (ephemeral; at most one per 3 s is relayed).
    Typing {
        /// The room.
        room_id: String,
    },
    /// Everything up to `seq` has been read; unread counts follow from it.
    Read {
        /// The room.
        room_id: String,
        /// The highest sequence number read.
        seq: i64,
    },
    /// Replace the text of one of your messages.
    Edit {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
        /// The new text, 1–4000 characters.
        body: String,
    },
    /// Delete one of your messages (its place in the sequence stays).
    Delete {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
    },
    /// Add (or with `"add": false` remove) your emoji reaction to a message of a room you
    /// may post in; the room's subscribers get a `reaction` frame.
    React {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
        /// One Unicode emoji.
        emoji: String,
        /// Add (default) or remove.
        #[serde(default = "yes")]
        add: bool,
    },
    /// Pin (or with `"pinned": false` unpin) a message; owners and admins (both people
    /// of a direct room). The room's subscribers get a `message_updated` frame.
    Pin {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
        /// Pin (default) or unpin.
        #[serde(default = "yes")]
        pinned: bool,
    },
    /// A room's pinned messages, most recently pinned first; answered with `pins`.
    Pins {
        /// The room.
        room_id: String,
    },
    /// The earlier texts of an edited message, oldest first; answered with `edits`.
    Edits {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
    },
    /// The threads you follow, most recently active first; answered with `threads`.
    Threads {
        /// How many, 1–100 (default 50).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Everything up to `seq` in the thread of `root` has been read; answered with
    /// `thread_read_marker`.
    ReadThread {
        /// The room.
        room_id: String,
        /// The thread's root.
        root: i64,
        /// The highest seq of the thread read.
        seq: i64,
    },
    /// Choose which messages of a room notify you (`null`: the room kind's default);
    /// answered with `notify_level`.
    NotifyLevel {
        /// The room.
        room_id: String,
        /// `all`, `mentions` or `nothing`.
        level: Option<String>,
    },
    /// Application-level heartbeat; answered with `pong`.
    Ping,
}

fn yes() -> bool {
    true
}

fn is_false(value: &bool) -> bool {
    !value
}

/// A member a message mentions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The member.
    pub user_id: String,
    /// Their username.
    pub username: String,
}

/// A thread as its root shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// How many replies.
    pub replies: i64,
    /// Unix milliseconds of the last reply.
    pub last_reply_at: i64,
    /// Who took part (user ids), the starter first; at most 20.
    pub participants: Vec<String>,
}

impl Thread {
    /// The summary of a root, if it has replies.
    pub fn of(message: &natter_core::events::pb::Message) -> Option<Self> {
        message.thread.as_ref().map(|t| Self {
            replies: t.replies,
            last_reply_at: t.last_reply_at,
            participants: t.participants.clone(),
        })
    }
}

impl Mention {
    /// The mentions of a message.
    pub fn all(mentions: &[natter_core::events::pb::Mention]) -> Vec<Self> {
        (mentions.iter())
            .map(|m| Self {
                user_id: m.user_id.clone(),
                username: m.username.clone(),
            })
            .collect()
    }
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection.
    Hello {
        /// Protocol version.
        protocol: u32,
        /// Seconds the client has to authenticate.
        auth_timeout_secs: u64,
    },
    /// The token was accepted.
    Authenticated {
        /// The user.
        user_id: String,
        /// When the token expires (Unix seconds); re-authenticate before.
        expires_at: i64,
    },
    /// The subscription is live; messages after `from_seq` - 1 follow in order.
    Subscribed {
        /// The room.
        room_id: String,
        /// The first sequence number that will be delivered.
        from_seq: i64,
        /// True when more messages were missed than are replayed: fetch
        /// `since`+1 … `from_seq`-1 from the history API.
        truncated: bool,
    },
    /// The subscription ended (by request, or the room or membership is gone).
    Unsubscribed {
        /// The room.
        room_id: String,
        /// `requested`, `room_deleted` or `removed`.
        reason: String,
    },
    /// A message, in sequence order per room, once per subscription.
    Message {
        /// The room.
        room_id: String,
        /// Position in the room.
        seq: i64,
        /// Author.
        sender_id: Option<String>,
        /// The sender's id for the send.
        client_id: String,
        /// Text.
        body: String,
        /// Unix milliseconds.
        created_at: i64,
        /// The seq of the message of the room this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i64>,
        /// The text rendered to safe HTML (docs/protocol.md, "Message text"); absent
        /// for plain text, shown as it is.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        html: String,
        /// The members the text mentions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<Mention>,
        /// The text mentions everyone in the room.
        #[serde(default, skip_serializing_if = "is_false")]
        mentions_room: bool,
        /// The root of the thread this message is in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_root: Option<i64>,
        /// A thread message also shown in the room's timeline.
        #[serde(default, skip_serializing_if = "is_false")]
        also_to_room: bool,
        /// On a thread's root: the thread's summary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<Thread>,
    },
    /// The send with `client_id` is stored with `seq`.
    Ack {
        /// The room.
        room_id: String,
        /// The client's id for the send.
        client_id: String,
        /// Its sequence number.
        seq: i64,
        /// True when this was a retry of a send already stored.
        duplicate: bool,
    },
    /// A request failed; the connection stays open.
    Error {
        /// Stable code.
        code: String,
        /// Explanation.
        message: String,
        /// The room or client id the error is about, when there is one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        about: Option<String>,
    },
    /// Someone is typing in a subscribed room.
    Typing {
        /// The room.
        room_id: String,
        /// Who.
        user_id: String,
    },
    /// Your read marker in the room after a `read`.
    ReadMarker {
        /// The room.
        room_id: String,
        /// Highest sequence number read.
        seq: i64,
    },
    /// A delivered message was edited, deleted, pinned or unpinned: the message as it
    /// now is.
    MessageUpdated {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
        /// The new text (empty when deleted).
        body: String,
        /// Unix milliseconds of the edit.
        edited_at: Option<i64>,
        /// Whether it was deleted.
        deleted: bool,
        /// The text rendered to safe HTML; absent for plain text and when deleted.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        html: String,
        /// The members the text mentions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<Mention>,
        /// Unix milliseconds, when pinned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pinned_at: Option<i64>,
        /// Who pinned it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pinned_by: Option<String>,
        /// On a thread's root: the thread's summary.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<Thread>,
    },
    /// Someone added or removed a reaction to a message.
    Reaction {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
        /// The emoji.
        emoji: String,
        /// Who reacted.
        user_id: String,
        /// Added (true) or removed.
        added: bool,
        /// How many people have reacted to the message with this emoji now.
        count: i64,
    },
    /// Who is online in a room now; sent right after `subscribed`.
    PresenceList {
        /// The room.
        room_id: String,
        /// Users with a live subscription to it, on any replica (nobody by name when
        /// the room is large).
        user_ids: Vec<std::sync::Arc<str>>,
        /// How many users are online in it.
        count: usize,
    },
    /// What changed in a room's presence since the previous one (names only when the
    /// room is not large), to connections that asked for it in `auth`.
    PresenceChanges {
        /// The room.
        room_id: String,
        /// Who came online.
        online: Vec<String>,
        /// Who went offline.
        offline: Vec<String>,
        /// Who is typing.
        typing: Vec<String>,
        /// How many users are online in it now.
        count: usize,
    },
    /// A user came online in (subscribed to) or went offline from a room.
    Presence {
        /// The room.
        room_id: String,
        /// The user.
        user_id: String,
        /// Online or not.
        online: bool,
    },
    /// A room's pinned messages (each in the shape of a `message` frame), most recently
    /// pinned first.
    Pins {
        /// The room.
        room_id: String,
        /// The pinned messages.
        messages: Vec<ServerFrame>,
    },
    /// The earlier texts of a message, oldest first.
    Edits {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
        /// Its earlier texts.
        edits: Vec<Edit>,
    },
    /// The threads you follow, most recently active first.
    Threads {
        /// The threads.
        threads: Vec<Followed>,
    },
    /// Your read marker in a thread after `read_thread`.
    ThreadReadMarker {
        /// The room.
        room_id: String,
        /// The thread's root.
        root: i64,
        /// The seq given.
        seq: i64,
    },
    /// Your rooms with their counts: the start of your event stream (subscribing to
    /// `me`), sent again whenever the stream may have missed events.
    MyRooms {
        /// Every room you are a member of.
        rooms: Vec<RoomState>,
    },
    /// A room's counts changed (a message, your read marker from any device).
    Unread {
        /// The room.
        room_id: String,
        /// Its newest message.
        last_seq: i64,
        /// Your read marker.
        read_seq: i64,
        /// Messages after the marker.
        unread: i64,
        /// Of those, the ones that mention you (every one in a direct room).
        mentions: i64,
    },
    /// A message is due a notification by your level in its room.
    Notify {
        /// The room.
        room_id: String,
        /// The message.
        seq: i64,
        /// Its author.
        sender_id: Option<String>,
        /// `direct`, `mention`, `room` (`@room`) or `all`.
        reason: String,
        /// The start of its text.
        excerpt: String,
    },
    /// You became a member of a room.
    RoomAdded {
        /// The room with its counts.
        room: RoomState,
    },
    /// You are no longer a member of a room (`removed`, `room_deleted`).
    RoomRemoved {
        /// The room.
        room_id: String,
        /// Why.
        reason: String,
    },
    /// A room was renamed.
    RoomRenamed {
        /// The room.
        room_id: String,
        /// Its new name.
        name: String,
    },
    /// Your notification level in a room (after `notify_level` on any device).
    NotifyLevel {
        /// The room.
        room_id: String,
        /// The level in effect.
        level: String,
    },
    /// The threads you follow with their unread replies: right after `my_rooms`.
    MyThreads {
        /// Every thread you follow in your rooms.
        threads: Vec<ThreadState>,
    },
    /// A followed thread's counts changed (a reply, your marker in it from any device),
    /// or you started following one (you replied, were mentioned, or someone replied to
    /// your message).
    ThreadUnread(ThreadState),
    /// How far each member who shares receipts has read: right after `subscribed`,
    /// when asked for and the room shows them.
    ReadReceipts {
        /// The room.
        room_id: String,
        /// The members' markers.
        receipts: Vec<Receipt>,
    },
    /// A member's read marker moved, in a room whose receipts you receive.
    ReadReceipt {
        /// The room.
        room_id: String,
        /// The member.
        user_id: String,
        /// Their marker.
        seq: i64,
    },
    /// Answer to `ping`.
    Pong,
}

/// A thread you follow as your event stream shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadState {
    /// The room.
    pub room_id: String,
    /// The thread's root.
    pub root: i64,
    /// Your marker in the thread.
    pub read_seq: i64,
    /// Replies by others after it.
    pub unread: i64,
}

/// One of your rooms as your event stream shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// The room.
    pub room_id: String,
    /// `public`, `group` or `direct`.
    pub kind: String,
    /// Its name (none for a direct room).
    pub name: Option<String>,
    /// Its newest message.
    pub last_seq: i64,
    /// Your read marker.
    pub read_seq: i64,
    /// Messages after the marker.
    pub unread: i64,
    /// Of those, the ones that mention you (every one in a direct room).
    pub mentions: i64,
    /// Your notification level: `all`, `mentions` or `nothing`.
    pub level: String,
}

/// How far a member has read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The member.
    pub user_id: String,
    /// Their read marker.
    pub seq: i64,
}

/// An earlier text of an edited message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// The text.
    pub body: String,
    /// It rendered, when it has formatting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub html: String,
    /// Unix milliseconds: when this text was written.
    pub written_at: i64,
}

/// A thread someone follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followed {
    /// The room.
    pub room_id: String,
    /// The thread's root.
    pub root: i64,
    /// The root's text.
    pub root_body: String,
    /// How many replies.
    pub replies: i64,
    /// Unix milliseconds of the last reply.
    pub last_reply_at: Option<i64>,
    /// Replies by others after your read marker in the thread.
    pub unread: i64,
}

/// Close codes (RFC 6455 leaves 4000–4999 to applications).
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// A text frame that is not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A frame larger than 64 KiB.
    pub const TOO_BIG: u16 = 1009;
    /// The server is restarting: reconnect (elsewhere) and resume.
    pub const SERVICE_RESTART: u16 = 1012;
    /// A dependency (storage, deny-list) is unavailable: reconnect after a backoff and
    /// resume; nothing is lost.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// No `auth` frame in time.
    pub const AUTH_TIMEOUT: u16 = 4001;
    /// The token was refused, or its session was logged out or revoked.
    pub const AUTH_FAILED: u16 = 4003;
    /// The token expired without a fresh `auth`.
    pub const TOKEN_EXPIRED: u16 = 4004;
    /// Nothing heard from the client (not even a pong) for 60 s.
    pub const HEARTBEAT_TIMEOUT: u16 = 4002;
    /// A frame that is not valid protocol.
    pub const PROTOCOL_ERROR: u16 = 4400;
    /// The client fell behind: reconnect and subscribe with `since`.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Far too many frames.
    pub const ABUSE: u16 = 4029;
}

impl ServerFrame {
    /// The `message_updated` frame of a message as it now is.
    pub fn updated(message: &natter_core::events::pb::Message) -> Self {
        Self::MessageUpdated {
            room_id: message.room_id.clone(),
            seq: message.seq,
            body: message.body.clone(),
            edited_at: message.edited_at,
            deleted: message.deleted,
            html: message.html.clone(),
            mentions: Mention::all(&message.mentions),
            pinned_at: message.pinned_at,
            pinned_by: message.pinned_by.clone(),
            thread: Thread::of(message),
        }
    }

    /// The `reaction` frame of a reaction change in `room`.
    pub fn reaction(room: &str, reaction: &natter_core::events::pb::Reaction) -> Self {
        Self::Reaction {
            room_id: room.to_owned(),
            seq: reaction.seq,
            emoji: reaction.emoji.clone(),
            user_id: reaction.user_id.clone(),
            added: reaction.added,
            count: reaction.count,
        }
    }

    /// The frame as JSON text, written into a buffer of about its size (a presence list
    /// of 100 names grew serde_json's 128 bytes five times over: 2 % of a connect
    /// storm's CPU).
    pub fn encode(&self) -> String {
        let mut json = Vec::with_capacity(self.size_hint());
        serde_json::to_writer(&mut json, self).expect("server frames serialise");
        String::from_utf8(json).expect("JSON is UTF-8")
    }

    /// About how long the frame's JSON is: its names, quoted, and room for the rest.
    fn size_hint(&self) -> usize {
        fn quoted<S: AsRef<str>>(names: &[S]) -> usize {
            names.iter().map(|name| name.as_ref().len() + 3).sum()
        }
        let names = match self {
            Self::PresenceList { user_ids, .. } => quoted(user_ids),
            Self::PresenceChanges {
                online,
                offline,
                typing,
                ..
            } => quoted(online) + quoted(offline) + quoted(typing),
            _ => 0,
        };
        128 + names
    }

    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>, about: Option<&str>) -> Self {
        Self::Error {
            code: code.into(),
            message: message.into(),
            about: about.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_and_unknown_ones_do_not() {
        let send: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room_id":"r","client_id":"c","body":"hi"}"#)
                .unwrap();
        assert_eq!(
            send,
            ClientFrame::Send {
                room_id: "r".into(),
                client_id: "c".into(),
                body: "hi".into(),
                reply_to: None,
                thread_root: None,
                also_to_room: false,
                traceparent: None,
                tracestate: None,
            }
        );
        let resume: ClientFrame =
            serde_json::from_str(r#"{"type":"subscribe","room_id":"r","since":7}"#).unwrap();
        assert_eq!(
            resume,
            ClientFrame::Subscribe {
                room_id: "r".into(),
                since: Some(7),
                receipts: false,
            }
        );
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout"}"#).is_err());
        let typo = r#"{"type":"subscribe","room":"r"}"#;
        assert!(
            serde_json::from_str::<ClientFrame>(typo).is_err(),
            "misspelt fields are refused"
        );
    }

    #[test]
    fn a_presence_frame_is_written_into_a_buffer_it_fits() {
        let names = |n: usize| (0..n).map(|i| format!("user-{i:04}-\u{e9}"));
        let list = ServerFrame::PresenceList {
            room_id: "r".into(),
            user_ids: names(100).map(Into::into).collect(),
            count: 100,
        };
        let changes = ServerFrame::PresenceChanges {
            room_id: "r".into(),
            online: names(40).collect(),
            offline: names(30).collect(),
            typing: names(5).collect(),
            count: 110,
        };
        for frame in [list, changes] {
            let json = frame.encode();
            let parsed: ServerFrame = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed, frame);
            // User ids need no escaping: the hint counts each name's bytes and quotes.
            assert!(json.len() <= frame.size_hint(), "{} bytes", json.len());
        }
    }

    #[test]
    fn server_frames_have_a_type() {
        let json = ServerFrame::Pong.encode();
        assert_eq!(json, r#"{"type":"pong"}"#);
    }
}

//! The one owner of a message's life. Every transport — WebSocket sends, chat gRPC,
//! website JSON and gRPC — posts, edits and deletes through [`Messages`]: validation,
//! authorization through `policy`, the store transaction, the room event it produces and
//! its publication happen here, once, so a message posted through any of them reaches
//! every live subscriber on every replica. Transports only translate its answer.

use std::sync::Arc;

use crate::events::{self, Kind};
use crate::memberships::Memberships;
use crate::outbox::Outbox;
use crate::policy::{Action, Denial, Viewer, authorize};
use crate::store::{
    Edit, HistoryOrder, MessageRecord, NewMessage, Posted, ReactionCount, Role, RoomRecord, Store,
    StoreError, Timeline,
};
use crate::text;
use crate::time::now_ms;

/// Why a message operation was refused. Messages are safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A field failed validation.
    #[error("{message}")]
    Invalid {
        /// Stable code: `invalid_body` or `invalid_client_id`.
        code: &'static str,
        /// What the rule is.
        message: &'static str,
    },
    /// No such room, or the caller may not know of it.
    #[error("room not found")]
    RoomNotFound,
    /// The caller may see the room but not do this (a public room they did not join, or
    /// a power owners and admins have).
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such message of the caller's (or it is deleted).
    #[error("no such message of yours")]
    MessageNotFound,
    /// No such message in the room (or it is deleted).
    #[error("no such message")]
    NoSuchMessage,
    /// The room's state rules the request out (a reply to no message, a thread under no
    /// root, one reaction or pin too many).
    #[error("{message}")]
    Unmet {
        /// Stable code: `invalid_reply_to`, `invalid_thread_root`, `too_many_reactions`
        /// or `too_many_pins`.
        code: &'static str,
        /// What the rule is.
        message: &'static str,
    },
    /// Done too often (`@room`): retry after the given seconds.
    #[error("too many requests, retry in {0} s")]
    RateLimited(u64),
    /// The database could not be reached: retry later.
    #[error("temporarily unavailable, retry")]
    Unavailable(String),
    /// Anything else the store refused.
    #[error("internal error")]
    Internal(String),
}

/// Result of message operations.
pub type Result<T, E = MessageError> = std::result::Result<T, E>;

impl From<StoreError> for MessageError {
    fn from(error: StoreError) -> Self {
        match error.is_unavailable() {
            true => Self::Unavailable(error.to_string()),
            false => Self::Internal(error.to_string()),
        }
    }
}

impl From<Denial> for MessageError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::Forbidden => Self::Forbidden("not allowed in this room"),
            Denial::NotFound | Denial::Unauthenticated => Self::RoomNotFound,
        }
    }
}

/// Posts, edits and deletes messages. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Messages {
    store: Store,
    outbox: Outbox,
    /// Memberships remembered, when this owner hears of their end (the chat service's
    /// relay does); otherwise every check reads the store.
    remembered: Option<Remembered>,
    /// Reactions waiting to be applied, by message.
    reactions: Reactions,
    /// Sends waiting to be stored, by room.
    sends: Sends,
    /// Rooms with more members show no read receipts.
    receipts_up_to: i64,
}

/// Remembered memberships, and the authenticating users waiting for their rooms to be
/// read into them.
#[derive(Debug, Clone)]
struct Remembered {
    memberships: Memberships,
    rooms_of: RoomsOf,
}

/// A message this replica has just stored and published, for its own subscribers.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// The message in its wire shape, as published.
    pub wire: &'a Arc<events::pb::Message>,
    /// In a thread: its root as the message left it, in its wire shape.
    pub root: Option<&'a events::pb::Message>,
    /// The send's trace, when it is sampled.
    pub trace: Option<&'a opentelemetry::Context>,
}

/// Where a replica delivers the messages it stores to its own subscribers: at once (the
/// broker's copy is for the other replicas) and in seq order per room.
pub trait Local: Send + Sync + std::fmt::Debug + 'static {
    /// Delivers `stored`.
    fn stored(&self, stored: Stored<'_>);
}

/// The answer of a batch (`coalesce`) that ended without giving one: its task panicked,
/// or the runtime is shutting down.
fn answered<T>(answer: Option<Result<T>>) -> Result<T> {
    answer.unwrap_or_else(|| Err(MessageError::Internal("the batch ended unanswered".into())))
}

/// Which page of a room's history to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryQuery {
    /// Messages with a smaller sequence number, newest first.
    pub before: Option<i64>,
    /// Messages with a larger sequence number, oldest first.
    pub after: Option<i64>,
    /// Page size, 1–100 (default 50).
    pub limit: Option<u32>,
    /// The messages of the thread of this root instead of the room's timeline.
    pub thread: Option<i64>,
}

/// A new message as a transport received it.
#[derive(Debug, Clone, Copy)]
pub struct Post<'a> {
    /// The author (a verified user id).
    pub user: &'a str,
    /// The room.
    pub room: &'a str,
    /// Chosen by the client; a retry with the same id returns the stored message.
    pub client_id: &'a str,
    /// The text.
    pub body: &'a str,
    /// The seq of the message of the room this one answers.
    pub reply_to: Option<i64>,
    /// The root of the thread this message goes to.
    pub thread_root: Option<i64>,
    /// A thread message also shown in the room's timeline.
    pub also_to_room: bool,
}

impl HistoryQuery {
    /// The query of a gRPC history request (a `limit` of 0 is the default).
    pub fn of(request: &events::pb::HistoryRequest) -> Self {
        Self {
            before: request.before,
            after: request.after,
            limit: (request.limit != 0).then_some(request.limit),
            thread: request.thread,
        }
    }
}

impl Messages {
    /// Messages kept in `store`, their events published through `outbox`.
    pub fn new(store: Store, outbox: Outbox) -> Self {
        Self {
            reactions: Reactions::new(store.clone(), outbox.clone()),
            sends: Sends::new(store.clone(), outbox.clone(), None),
            store,
            outbox,
            remembered: None,
            receipts_up_to: notify::RECEIPTS_UP_TO,
        }
    }

    /// Shows read receipts ("seen by") in rooms of at most `members` members.
    pub fn with_receipts_up_to(self, members: i64) -> Self {
        Self {
            receipts_up_to: members,
            ..self
        }
    }

    /// Decides what any member may do from `memberships` when it remembers the member;
    /// whoever calls this must forget memberships when room events end them.
    pub fn remembering(self, memberships: Memberships) -> Self {
        let remembered = Remembered {
            rooms_of: RoomsOf::new(self.store.clone(), memberships.clone()),
            memberships,
        };
        Self {
            remembered: Some(remembered),
            ..self
        }
    }

    /// Hands each message this replica stores to `local` (its own subscribers) right
    /// after publishing it, in seq order per room.
    pub fn delivering_locally(self, local: Arc<dyn Local>) -> Self {
        Self {
            sends: Sends::new(self.store.clone(), self.outbox.clone(), Some(local)),
            ..self
        }
    }

    /// The outbox events go out through (the node they come from).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The room, if `user` may do `action` in it: what every operation on a room's
    /// messages asks first. Non-members of private rooms learn nothing.
    #[tracing::instrument(name = "room authorize", skip_all)]
    pub async fn authorized(&self, user: &str, room: &str, action: Action) -> Result<RoomRecord> {
        let before_read = self.memberships().map(|m| (m, m.epoch()));
        let Some((found, role)) = self.store.room_with_role(room, user).await? else {
            return Err(MessageError::RoomNotFound);
        };
        if let (Some((memberships, epoch)), Some(_)) = (before_read, role) {
            memberships.remember(epoch, room, found.kind, user);
        }
        authorize(found.kind, Viewer::SignedIn(role), action)?;
        Ok(found)
    }

    /// Remembers every room `user` is a member of (at most `limit`), read in one query
    /// (shared with the users who authenticate meanwhile), so that their subscriptions
    /// need no store read for authorization. Without remembered memberships, it does
    /// nothing.
    pub async fn remember_rooms_of(&self, user: &str, limit: u32) -> Result<()> {
        match &self.remembered {
            Some(remembered) => remembered.rooms_of.remember(user, limit).await,
            None => Ok(()),
        }
    }

    /// [`Messages::authorized`] without the room: what any member may do is decided
    /// from a remembered membership, without reading the store.
    pub async fn allowed(&self, user: &str, room: &str, action: Action) -> Result<()> {
        if self.remembered(user, room, action) {
            return Ok(());
        }
        self.authorized(user, room, action).await.map(drop)
    }

    /// The memberships remembered, if this owner remembers any.
    fn memberships(&self) -> Option<&Memberships> {
        self.remembered.as_ref().map(|r| &r.memberships)
    }

    /// Whether a remembered membership of `user` in `room` allows `action` (what any
    /// member may do); false when nothing is remembered.
    pub fn remembered(&self, user: &str, room: &str, action: Action) -> bool {
        let remembered = self.memberships().and_then(|m| m.member_of(room, user));
        let any_member = Viewer::SignedIn(Some(Role::Member));
        remembered.is_some_and(|kind| authorize(kind, any_member, action).is_ok())
    }

    /// Stores a message (idempotent per client id) and publishes it to every replica;
    /// nothing is acknowledged that was not committed. `created` is false for a retry.
    pub async fn post(&self, post: Post<'_>) -> Result<Posted> {
        Ok(self.post_wire(post).await?.0)
    }

    /// [`Messages::post`], with a new message in its wire shape as published (its text
    /// rendered once, shared with whoever delivers it too).
    pub async fn post_wire(
        &self,
        post: Post<'_>,
    ) -> Result<(Posted, Option<Arc<events::pb::Message>>)> {
        if !text::is_client_id(post.client_id) {
            return Err(MessageError::Invalid {
                code: "invalid_client_id",
                message: text::CLIENT_ID_RULE,
            });
        }
        check_body(post.body)?;
        self.allowed(post.user, post.room, Action::Post).await?;
        if let Some(original) = post.reply_to
            && !self.store.message_exists(post.room, original).await?
        {
            return Err(MessageError::Unmet {
                code: "invalid_reply_to",
                message: text::REPLY_RULE,
            });
        }
        if let Some(root) = post.thread_root
            && self.store.can_root_thread(post.room, root).await? != Some(true)
        {
            return Err(MessageError::Unmet {
                code: "invalid_thread_root",
                message: text::THREAD_RULE,
            });
        }
        let (mentions, mentions_room) = self.mentions(post.room, post.body).await?;
        let new = NewMessage {
            room_id: post.room,
            sender_id: post.user,
            client_id: post.client_id,
            body: post.body,
            reply_to: post.reply_to,
            mentions: &mentions,
            mentions_room,
            thread_root: post.thread_root,
            also_to_room: post.also_to_room && post.thread_root.is_some(),
            now: now_ms(),
        };
        if mentions_room && let Some(stored) = self.room_mention(&new).await? {
            return Ok((stored, None));
        }
        self.sends.post(&new, crate::telemetry::sampled()).await
    }

    /// Replaces the text of `user`'s message `seq` (`body` given) or deletes it, and
    /// publishes the message as it now is (returned in its wire shape).
    pub async fn update(
        &self,
        user: &str,
        room: &str,
        seq: i64,
        body: Option<&str>,
    ) -> Result<events::pb::Message> {
        if let Some(body) = body {
            check_body(body)?;
        }
        self.allowed(user, room, Action::Post).await?;
        let updated = match body {
            Some(body) => {
                let (mentions, _) = self.mentions(room, body).await?;
                let edit = Edit {
                    room_id: room,
                    seq,
                    sender_id: user,
                    body,
                    mentions: &mentions,
                    now: now_ms(),
                };
                self.store.edit_message(edit).await
            }
            None => self.store.delete_message(room, seq, user, now_ms()).await,
        };
        let message = updated?.ok_or(MessageError::MessageNotFound)?;
        Ok(published_update(&self.outbox, room, &message))
    }
}

/// Publishes `message` as it now is through `outbox`; returns its wire shape (rendered
/// once, for whoever answers or delivers it too).
fn published_update(outbox: &Outbox, room: &str, message: &MessageRecord) -> events::pb::Message {
    let wire = events::message(message);
    outbox.publish(room, Kind::Updated(wire.clone()), None);
    wire
}

impl Messages {
    /// A page of `room`'s history with its reactions as `user` sees them, if `user` may
    /// read it.
    pub async fn history(
        &self,
        user: &str,
        room: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage> {
        let limit = page_limit(query.limit)?;
        // `after` reads forwards (with `before` too, the messages between them);
        // `before` alone reads backwards from it, and nothing reads back from the newest.
        let order = match query.after {
            Some(_) => HistoryOrder::OldestFirst,
            None => HistoryOrder::NewestFirst,
        };
        self.allowed(user, room, Action::ReadHistory).await?;
        let timeline = match query.thread {
            Some(root) => Timeline::Thread(root),
            None => Timeline::Room,
        };
        let range = (query.after, query.before, limit);
        let messages = (self.store.timeline(room, timeline, order, range)).await?;
        let seqs = messages.iter().map(|m| m.seq);
        let reactions = match (seqs.clone().min(), seqs.max()) {
            (Some(first), Some(last)) => self.store.reactions(room, first, last, user).await?,
            _ => Vec::new(),
        };
        Ok(HistoryPage {
            messages,
            reactions,
        })
    }
}

/// A page of history, and the reactions on its messages as its reader sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryPage {
    /// The messages, in the order asked for.
    pub messages: Vec<MessageRecord>,
    /// Their reactions, ordered by seq (see [`HistoryPage::reactions_on`]).
    pub reactions: Vec<ReactionCount>,
}

impl HistoryPage {
    /// The reactions on message `seq` (the page's are ordered by seq).
    pub fn reactions_on(&self, seq: i64) -> impl Iterator<Item = &ReactionCount> {
        let first = self.reactions.partition_point(|r| r.seq < seq);
        self.reactions[first..]
            .iter()
            .take_while(move |r| r.seq == seq)
    }

    /// The messages in their wire shape, each with its reactions.
    pub fn to_wire(&self) -> Vec<events::pb::Message> {
        self.messages
            .iter()
            .map(|m| events::pb::Message {
                reactions: self
                    .reactions_on(m.seq)
                    .map(|r| events::pb::ReactionCount {
                        emoji: r.emoji.clone(),
                        count: r.count,
                        me: r.me,
                    })
                    .collect(),
                ..events::message(m)
            })
            .collect()
    }
}

mod notify;
mod reacting;
mod rich;
mod rooms_of;
mod sending;

use reacting::Reactions;
use rooms_of::RoomsOf;
use sending::Sends;

pub use notify::{Marked, RECEIPTS_UP_TO, level_named};
pub use rich::{MAX_DISTINCT_REACTIONS, MAX_PINS, ROOM_MENTION_INTERVAL_SECS, Reaction};

/// A page size as asked for: 1–100, 50 when not given.
pub fn page_limit(requested: Option<u32>) -> Result<u32> {
    match requested {
        None => Ok(50),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(MessageError::Invalid {
            code: "invalid_limit",
            message: "limit must be 1 to 100",
        }),
    }
}

fn check_body(body: &str) -> Result<()> {
    match text::is_message_body(body) {
        true => Ok(()),
        false => Err(MessageError::Invalid {
            code: "invalid_body",
            message: text::MESSAGE_RULE,
        }),
    }
}

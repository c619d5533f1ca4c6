//! What rich messages add to a message's life: reactions, mentions (and the `@room`
//! rules), pins and the earlier texts of edited messages. Each change is published to the
//! room like a post, through the same outbox.

use super::{MessageError, Messages, Result, published_update};
use crate::events::{self, Kind, pb};
use crate::markdown::{self, ROOM_MENTION};
use crate::policy::Action;
use crate::store::{
    EditRecord, FollowedThread, MessageRecord, NewMessage, Pinned, Posted, ThreadUnread,
};
use crate::text;
use crate::time::now_ms;

/// Most distinct emoji one message may carry (as Slack and Discord, a bound on the row
/// count and the space reactions take under a message).
pub const MAX_DISTINCT_REACTIONS: i64 = 20;

/// Most rows (a followed thread, an unread reply in one) an event stream reads of a
/// user's threads.
const THREAD_COUNT_ROWS: u32 = 5_000;

/// Most pinned messages in one room (Slack's long-standing limit).
pub const MAX_PINS: i64 = 100;

/// Shortest time between two `@room` mentions in one room.
pub const ROOM_MENTION_INTERVAL_SECS: u64 = 60;

/// One reaction added or removed, as published to the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// The message.
    pub seq: i64,
    /// The emoji, fully qualified.
    pub emoji: String,
    /// Who reacted.
    pub user_id: String,
    /// Added (true) or removed.
    pub added: bool,
    /// The emoji's count on the message after the change.
    pub count: i64,
}

impl Messages {
    /// Adds (or removes) `user`'s reaction `emoji` to message `seq` of `room` and publishes
    /// the change. Adding twice is adding once and removing what is not there changes
    /// nothing: the count is the same, answered and published again. Reactions to one
    /// message that arrive together share a transaction (see `reacting`).
    pub async fn react(
        &self,
        user: &str,
        room: &str,
        seq: i64,
        emoji: &str,
        add: bool,
    ) -> Result<Reaction> {
        let emoji = text::emoji(emoji).ok_or(MessageError::Invalid {
            code: "invalid_emoji",
            message: text::EMOJI_RULE,
        })?;
        self.allowed(user, room, Action::Post).await?;
        self.reactions.apply((room, seq), user, emoji, add).await
    }

    /// The members of `room` that `body` mentions as `(user id, username)`, and whether it
    /// mentions `@room`. Names of non-members stay plain text: a mention tells nobody
    /// about a room they cannot read.
    pub(super) async fn mentions(
        &self,
        room: &str,
        body: &str,
    ) -> Result<(Vec<(String, String)>, bool)> {
        let names = markdown::mentions(body);
        let everyone = names.iter().any(|name| name == ROOM_MENTION);
        let users: Vec<&str> = (names.iter().map(String::as_str))
            .filter(|name| *name != ROOM_MENTION)
            .collect();
        Ok((self.store.members_named(room, &users).await?, everyone))
    }

    /// Refuses `new`, which mentions `@room`, unless its sender is an owner or admin and
    /// the room was not mentioned in the last [`ROOM_MENTION_INTERVAL_SECS`]. A retry of
    /// a send already stored is answered with the stored message, never refused.
    pub(super) async fn room_mention(&self, new: &NewMessage<'_>) -> Result<Option<Posted>> {
        let only_admins = "only owners and admins may mention @room";
        match self
            .authorized(new.sender_id, new.room_id, Action::MentionRoom)
            .await
        {
            Err(MessageError::Forbidden(_)) => return Err(MessageError::Forbidden(only_admins)),
            other => drop(other?),
        }
        let interval = ROOM_MENTION_INTERVAL_SECS as i64 * 1000;
        let Some(last) = self.store.last_room_mention(new.room_id).await? else {
            return Ok(None);
        };
        let wait = last + interval - new.now;
        if wait <= 0 {
            return Ok(None);
        }
        if let Some(message) = self.store.message_by_client_id(new).await? {
            let created = false;
            let root = None;
            return Ok(Some(Posted {
                message,
                created,
                root,
            }));
        }
        Err(MessageError::RateLimited((wait as u64).div_ceil(1000)))
    }

    /// Pins (or unpins) message `seq` of `room` for `user`, an owner or admin, and
    /// publishes the message as it now is (returned in its wire shape).
    pub async fn pin(
        &self,
        user: &str,
        room: &str,
        seq: i64,
        pin: bool,
    ) -> Result<events::pb::Message> {
        match self.authorized(user, room, Action::Pin).await {
            Err(MessageError::Forbidden(_)) => {
                return Err(MessageError::Forbidden("only owners and admins may pin"));
            }
            other => drop(other?),
        }
        let by = pin.then_some(user);
        let message = match self.store.pin(room, seq, by, MAX_PINS, now_ms()).await? {
            Pinned::Message(message) => *message,
            Pinned::NoMessage => return Err(MessageError::NoSuchMessage),
            Pinned::TooMany => {
                return Err(MessageError::Unmet {
                    code: "too_many_pins",
                    message: "this room has the most pinned messages allowed (100)",
                });
            }
        };
        Ok(published_update(&self.outbox, room, &message))
    }

    /// `room`'s pinned messages, most recently pinned first, if `user` may read it.
    pub async fn pins(&self, user: &str, room: &str) -> Result<Vec<MessageRecord>> {
        self.allowed(user, room, Action::ReadHistory).await?;
        Ok(self.store.pins(room).await?)
    }

    /// The earlier texts of message `seq` of `room`, oldest first, if `user` may read it.
    pub async fn edits(&self, user: &str, room: &str, seq: i64) -> Result<Vec<EditRecord>> {
        self.allowed(user, room, Action::ReadHistory).await?;
        Ok(self.store.edits(room, seq).await?)
    }

    /// The threads `user` follows, in rooms they are still a member of, most recently
    /// active first, with what is unread in each (at most `limit`: 1–100, default 50).
    pub async fn followed_threads(
        &self,
        user: &str,
        limit: Option<u32>,
    ) -> Result<Vec<FollowedThread>> {
        let limit = super::page_limit(limit)?;
        Ok(self.store.followed_threads(user, limit).await?)
    }

    /// Moves `user`'s read marker in the thread of `root` forward to `seq`; a thread
    /// they do not follow is not found.
    pub async fn read_thread(&self, user: &str, room: &str, root: i64, seq: i64) -> Result<()> {
        self.allowed(user, room, Action::ReadHistory).await?;
        if !self.store.read_thread(user, room, root, seq).await? {
            return Err(MessageError::NoSuchMessage);
        }
        // The reader's event streams on every replica recount the thread.
        let read = pb::ThreadRead {
            user_id: user.into(),
            root,
            seq,
        };
        self.outbox.publish_for(user, room, Kind::ThreadRead(read));
        Ok(())
    }

    /// The threads `user` follows with their unread replies (only `only`'s, when given),
    /// for the user's event stream.
    pub async fn thread_counts(
        &self,
        user: &str,
        only: Option<(&str, i64)>,
    ) -> Result<Vec<ThreadUnread>> {
        Ok(self
            .store
            .followed_unread(user, only, THREAD_COUNT_ROWS)
            .await?)
    }
}

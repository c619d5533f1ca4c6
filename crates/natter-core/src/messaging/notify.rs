//! What notifications build on, through the messages owner like every change: read
//! markers (published so that every device's counts and others' "seen by" follow),
//! notification levels (published on the member's own topic), read receipts, and the
//! counts a user's event stream starts from.

use super::{MessageError, Messages, Result};
use crate::events::{Kind, pb};
use crate::policy::Action;
use crate::store::{Level, RoomCounts};

/// Rooms with more members than this show no read receipts, unless configured
/// otherwise ([`Messages::with_receipts_up_to`]).
pub const RECEIPTS_UP_TO: i64 = 50;

/// Why a public room's visitor has no markers, levels or receipts.
const MEMBERS_ONLY: &str = "join the room first: only members have read markers and notifications";

/// A read marker after a `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marked {
    /// The marker in effect.
    pub seq: i64,
    /// Whether it moved (and was published).
    pub moved: bool,
    /// Whether other members may see it.
    pub shared: bool,
}

/// The level a client named (`None`: the room kind's default), or why not.
pub fn level_named(name: Option<&str>) -> Result<Option<Level>> {
    name.map(|name| {
        Level::parse(name).ok_or(MessageError::Invalid {
            code: "invalid_level",
            message: "level is all, mentions or nothing (or null for the default)",
        })
    })
    .transpose()
}

impl Messages {
    /// Moves `user`'s read marker in `room` forward to `seq` and, when it moved,
    /// publishes it: the user's other devices recount, and members of a small room see
    /// it when the reader shares receipts.
    pub async fn mark_read(&self, user: &str, room: &str, seq: i64) -> Result<Marked> {
        self.allowed(user, room, Action::ReadHistory).await?;
        let marker = self.store.mark_read(room, user, seq).await?;
        let marker = marker.ok_or(MessageError::Forbidden(MEMBERS_ONLY))?;
        let shared = marker.shares && marker.members <= self.receipts_up_to;
        if marker.moved {
            let read = pb::ReadMarker {
                user_id: user.into(),
                seq: marker.seq,
                shared,
            };
            self.outbox.publish(room, Kind::Read(read), None);
        }
        Ok(Marked {
            seq: marker.seq,
            moved: marker.moved,
            shared,
        })
    }

    /// Sets (or with `None` clears) `user`'s notification level in `room` and tells the
    /// replicas serving the user; members only. Returns the level in effect.
    pub async fn set_level(&self, user: &str, room: &str, level: Option<Level>) -> Result<Level> {
        self.allowed(user, room, Action::ReadHistory).await?;
        if !self.store.set_level(room, user, level).await? {
            return Err(MessageError::Forbidden(MEMBERS_ONLY));
        }
        let chosen = pb::NotifyLevel {
            user_id: user.into(),
            level: level.map_or("", Level::as_str).into(),
        };
        self.outbox
            .publish_for(user, room, Kind::NotifyLevel(chosen));
        let effective = self.store.level(room, user).await?;
        effective.ok_or(MessageError::RoomNotFound)
    }

    /// How far each member of `room` who shares receipts has read, for `viewer` (a
    /// member): `None` when the room is larger than the receipt limit or the viewer
    /// does not share theirs.
    pub async fn receipts(&self, viewer: &str, room: &str) -> Result<Option<Vec<(String, i64)>>> {
        self.allowed(viewer, room, Action::ReadHistory).await?;
        if self.store.role(room, viewer).await?.is_none() {
            return Err(MessageError::Forbidden(MEMBERS_ONLY));
        }
        Ok(self
            .store
            .receipts(room, viewer, self.receipts_up_to)
            .await?)
    }

    /// Every room of `user` (at most `limit`) with its unread and mention counts.
    pub async fn room_counts(&self, user: &str, limit: u32) -> Result<Vec<RoomCounts>> {
        Ok(self.store.room_counts(user, None, limit).await?)
    }

    /// One room of `user` with its counts (`None` when not a member).
    pub async fn room_count(&self, user: &str, room: &str) -> Result<Option<RoomCounts>> {
        Ok(self.store.room_counts(user, Some(room), 1).await?.pop())
    }
}

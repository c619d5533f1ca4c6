//! What notifications are computed from: each member's notification level per room,
//! whether a user shares read receipts, read markers with what their movement reveals,
//! and the unread and mention counts a user's event stream starts from.

use std::collections::HashMap;

use super::rooms::{RoomKind, RoomRecord, corrupt, room};
use super::{Result, Store};
use crate::text::is_id;

/// Which messages of a room notify a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Every message.
    All,
    /// Messages that mention them (or `@room`); the default outside direct rooms.
    Mentions,
    /// None (muted).
    Nothing,
}

impl Level {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Mentions => "mentions",
            Self::Nothing => "nothing",
        }
    }

    /// The level a name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(Self::All),
            "mentions" => Some(Self::Mentions),
            "nothing" => Some(Self::Nothing),
            _ => None,
        }
    }

    /// The level of a member who chose none: everything in a direct room, mentions
    /// elsewhere.
    pub fn default_for(kind: RoomKind) -> Self {
        match kind {
            RoomKind::Direct => Self::All,
            _ => Self::Mentions,
        }
    }
}

/// One of a user's rooms with what their stream counts in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomCounts {
    /// The room (`last_seq` is its newest message).
    pub room: RoomRecord,
    /// The user's read marker.
    pub read_seq: i64,
    /// The messages by others after the marker that mention the user or `@room`,
    /// ascending (not kept for direct rooms, where every message counts).
    pub mentioned: Vec<i64>,
    /// The level the user chose, if any.
    pub chosen: Option<Level>,
}

impl RoomCounts {
    /// Messages after the read marker.
    pub fn unread(&self) -> i64 {
        (self.room.last_seq - self.read_seq).max(0)
    }

    /// Messages after the marker that count as mentions: those of `mentioned`, and in
    /// a direct room every unread one.
    pub fn mentions(&self) -> i64 {
        match self.room.kind {
            RoomKind::Direct => self.unread(),
            _ => self.mentioned.len() as i64,
        }
    }

    /// The level in effect.
    pub fn level(&self) -> Level {
        (self.chosen).unwrap_or_else(|| Level::default_for(self.room.kind))
    }
}

/// A read marker after a `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMarker {
    /// The marker in effect.
    pub seq: i64,
    /// Whether it moved.
    pub moved: bool,
    /// Whether the reader shares read receipts (the caller decides from this and
    /// `members` whether others see the marker).
    pub shares: bool,
    /// The room's member count.
    pub members: i64,
}

type CountsRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    Option<String>,
);

impl Store {
    /// Every room of `user` (at most `limit`; only `only` when given) with its counts:
    /// what the user's event stream starts from. Two reads: the rooms with the
    /// markers, then the mentions after them (by the mention index, not by scanning
    /// unread messages).
    #[tracing::instrument(name = "db.room_counts", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn room_counts(
        &self,
        user: &str,
        only: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RoomCounts>> {
        if !is_id(user) || only.is_some_and(|room| !is_id(room)) {
            return Ok(Vec::new());
        }
        let sql = "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq, \
                   m.last_read_seq, m.notify \
                   FROM room_members m JOIN rooms r ON r.id = m.room_id \
                   WHERE m.user_id = $1 AND ($2 = '' OR r.id = $2) ORDER BY r.id LIMIT $3";
        let rows: Vec<CountsRow> = sqlx::query_as(sql)
            .bind(user)
            .bind(only.unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut mentioned = self.mentions_after_markers(user, only).await?;
        rows.into_iter()
            .map(|(id, kind, name, by, at, last_seq, read_seq, notify)| {
                let room = room((id, kind, name, by, at, last_seq))?;
                let chosen = notify
                    .map(|n| Level::parse(&n).ok_or_else(|| corrupt("room_members.notify", &n)))
                    .transpose()?;
                let mut mentioned = mentioned.remove(&room.id).unwrap_or_default();
                mentioned.sort_unstable();
                Ok(RoomCounts {
                    room,
                    read_seq,
                    mentioned,
                    chosen,
                })
            })
            .collect()
    }

    /// Per room of `user` (or only `only`): the live messages by others after the
    /// user's marker that mention them by name or mention `@room`.
    async fn mentions_after_markers(
        &self,
        user: &str,
        only: Option<&str>,
    ) -> Result<HashMap<String, Vec<i64>>> {
        let sql = "SELECT g.room_id, g.seq FROM message_mentions mm \
                   JOIN room_members m ON m.room_id = mm.room_id AND m.user_id = mm.user_id \
                   JOIN messages g ON g.room_id = mm.room_id AND g.seq = mm.seq \
                   WHERE mm.user_id = $1 AND mm.seq > m.last_read_seq AND ($2 = '' OR m.room_id = $2) \
                   AND g.deleted_at IS NULL AND g.sender_id <> $1 \
                   UNION \
                   SELECT g.room_id, g.seq FROM room_members m \
                   JOIN messages g ON g.room_id = m.room_id AND g.room_mentioned_at IS NOT NULL \
                   WHERE m.user_id = $1 AND g.seq > m.last_read_seq AND ($2 = '' OR m.room_id = $2) \
                   AND g.deleted_at IS NULL AND g.sender_id <> $1";
        let rows: Vec<(String, i64)> = sqlx::query_as(sql)
            .bind(user)
            .bind(only.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        let mut seqs: HashMap<String, Vec<i64>> = HashMap::new();
        for (room, seq) in rows {
            seqs.entry(room).or_default().push(seq);
        }
        Ok(seqs)
    }

    /// Sets (or, with `None`, clears) `user`'s level in `room`; false when not a member.
    #[tracing::instrument(name = "db.set_level", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn set_level(&self, room: &str, user: &str, level: Option<Level>) -> Result<bool> {
        let done =
            sqlx::query("UPDATE room_members SET notify = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(level.map(Level::as_str))
                .bind(room)
                .bind(user)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `user`'s level in `room` (`None` when not a member).
    pub async fn level(&self, room: &str, user: &str) -> Result<Option<Level>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT r.kind, m.notify FROM room_members m JOIN rooms r ON r.id = m.room_id \
             WHERE m.room_id = $1 AND m.user_id = $2",
        )
        .bind(room)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        let Some((kind, notify)) = row else {
            return Ok(None);
        };
        let kind = RoomKind::parse(&kind).ok_or_else(|| corrupt("rooms.kind", &kind))?;
        Ok(Some(
            notify
                .as_deref()
                .and_then(Level::parse)
                .unwrap_or_else(|| Level::default_for(kind)),
        ))
    }

    /// Whether `user` shares read receipts and gets email digests, in one read; `None`
    /// for no such user.
    pub async fn user_settings(&self, user: &str) -> Result<Option<(bool, bool)>> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT share_receipts, email_digests FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(shares, digests)| (shares == 1, digests == 1)))
    }

    /// Whether `user` shares read receipts (false for no such user).
    pub async fn shares_receipts(&self, user: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT share_receipts FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|(shares,)| shares == 1))
    }

    /// Sets whether `user` shares read receipts; false for no such user.
    #[tracing::instrument(name = "db.set_share_receipts", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn set_share_receipts(&self, user: &str, shares: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET share_receipts = $1 WHERE id = $2")
            .bind(i64::from(shares))
            .bind(user)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How far each member of `room` who shares receipts has read, when `viewer` shares
    /// them too and the room has at most `max_members` members; `None` otherwise (no
    /// receipts are shown there).
    #[tracing::instrument(name = "db.receipts", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn receipts(
        &self,
        room: &str,
        viewer: &str,
        max_members: i64,
    ) -> Result<Option<Vec<(String, i64)>>> {
        let allowed: Option<(i64,)> = sqlx::query_as(
            "SELECT r.members FROM rooms r, users u \
             WHERE r.id = $1 AND u.id = $2 AND u.share_receipts = 1 AND r.members <= $3",
        )
        .bind(room)
        .bind(viewer)
        .bind(max_members)
        .fetch_optional(&self.pool)
        .await?;
        if allowed.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query_as(
            "SELECT m.user_id, m.last_read_seq FROM room_members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 AND u.share_receipts = 1 AND m.last_read_seq > 0 \
             ORDER BY m.user_id",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(rows))
    }

    /// Moves `user`'s read marker in `room` forward to `seq` (never back, never past the
    /// newest message); returns the marker in effect, whether it moved, and what decides
    /// who may see it (`None` when `user` is not a member).
    #[tracing::instrument(name = "db.mark_read", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn mark_read(
        &self,
        room_id: &str,
        user_id: &str,
        seq: i64,
    ) -> Result<Option<ReadMarker>> {
        let moved = sqlx::query(
            "UPDATE room_members SET last_read_seq = \
               (SELECT CASE WHEN r.last_seq < $1 THEN r.last_seq ELSE $1 END FROM rooms r WHERE r.id = $2) \
             WHERE room_id = $2 AND user_id = $3 AND last_read_seq < \
               (SELECT CASE WHEN r.last_seq < $1 THEN r.last_seq ELSE $1 END FROM rooms r WHERE r.id = $2)",
        )
        .bind(seq)
        .bind(room_id)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT m.last_read_seq, r.members, u.share_receipts FROM room_members m \
             JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 AND m.user_id = $2",
        )
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|(seq, members, shares)| ReadMarker {
            seq,
            moved: moved.rows_affected() == 1,
            shares: shares == 1,
            members,
        }))
    }
}

//! A message's later life: edits (each keeps the text it replaces, with the time that text
//! was written), deletion (which drops the text, its earlier versions, its reactions and
//! its pin), and pins by owners and admins.

use super::messages::{insert_mentions, mentions_column, message_columns};
use super::{Backend, Result, Store};
use crate::store::MessageRecord;

/// The text a live message of a sender holds now, and when it was written.
macro_rules! current_text {
    () => {
        "SELECT body, COALESCE(edited_at, created_at) FROM messages \
         WHERE room_id = $1 AND seq = $2 AND sender_id = $3 AND deleted_at IS NULL"
    };
}

/// Most earlier texts kept per message (the latest ones).
pub const MAX_EDITS_KEPT: i64 = 50;

/// A new text for a sender's message.
#[derive(Debug, Clone, Copy)]
pub struct Edit<'a> {
    /// The room.
    pub room_id: &'a str,
    /// The message.
    pub seq: i64,
    /// Its author (nobody else edits).
    pub sender_id: &'a str,
    /// The new text.
    pub body: &'a str,
    /// The members the new text mentions, as `(user id, username)`.
    pub mentions: &'a [(String, String)],
    /// Unix milliseconds.
    pub now: i64,
}

/// An earlier text of an edited message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EditRecord {
    /// The text.
    pub body: String,
    /// Unix milliseconds: when it was written (sent, or the edit that wrote it).
    pub written_at: i64,
}

/// What a pin or unpin did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// Done (or already so): the message as it now is.
    Message(Box<MessageRecord>),
    /// No such live message.
    NoMessage,
    /// The room has the most pins allowed.
    TooMany,
}

impl Store {
    /// Replaces the text (and the mentions) of the sender's message, keeping the text it
    /// replaces; `None` when there is no such live message of theirs.
    #[tracing::instrument(name = "db.edit_message", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn edit_message(&self, edit: Edit<'_>) -> Result<Option<MessageRecord>> {
        let Edit {
            room_id,
            seq,
            sender_id,
            body,
            mentions,
            now,
        } = edit;
        let mut tx = self.writer.begin().await?;
        // The row is locked (PostgreSQL; SQLite has one writer) before the text it holds
        // is kept, so two edits each keep the text the other replaced.
        let current = match self.backend {
            Backend::Postgres => concat!(current_text!(), " FOR UPDATE"),
            Backend::Sqlite => current_text!(),
        };
        let current: Option<(String, i64)> = sqlx::query_as(current)
            .bind(room_id)
            .bind(seq)
            .bind(sender_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((previous, written_at)) = current else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO message_edits (room_id, seq, version, body, written_at) \
             SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4 FROM message_edits \
             WHERE room_id = $1 AND seq = $2",
        )
        .bind(room_id)
        .bind(seq)
        .bind(previous)
        .bind(written_at)
        .execute(&mut *tx)
        .await?;
        // Only the latest texts are kept: a message edited without end holds no more.
        sqlx::query(
            "DELETE FROM message_edits WHERE room_id = $1 AND seq = $2 \
             AND version <= (SELECT MAX(version) FROM message_edits \
             WHERE room_id = $1 AND seq = $2) - $3",
        )
        .bind(room_id)
        .bind(seq)
        .bind(MAX_EDITS_KEPT)
        .execute(&mut *tx)
        .await?;
        let edited = sqlx::query_as(concat!(
            "UPDATE messages SET body = $1, edited_at = $2, mentions = $3 \
             WHERE room_id = $4 AND seq = $5 RETURNING ",
            message_columns!()
        ))
        .bind(body)
        .bind(now)
        .bind(mentions_column(mentions))
        .bind(room_id)
        .bind(seq)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM message_mentions WHERE room_id = $1 AND seq = $2")
            .bind(room_id)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        insert_mentions(&mut tx, room_id, seq, mentions).await?;
        tx.commit().await?;
        Ok(Some(edited))
    }

    /// Deletes `sender`'s message `seq`: its text, earlier texts, reactions and pin are
    /// erased, its place in the sequence stays; `None` when there is no such live message
    /// of theirs.
    #[tracing::instrument(name = "db.delete_message", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn delete_message(
        &self,
        room_id: &str,
        seq: i64,
        sender_id: &str,
        now: i64,
    ) -> Result<Option<MessageRecord>> {
        let mut tx = self.writer.begin().await?;
        let deleted: Option<MessageRecord> = sqlx::query_as(concat!(
            "UPDATE messages SET body = '', deleted_at = $1, mentions = '', \
             room_mentioned_at = NULL, pinned_at = NULL, pinned_by = NULL \
             WHERE room_id = $2 AND seq = $3 AND sender_id = $4 AND deleted_at IS NULL \
             RETURNING ",
            message_columns!()
        ))
        .bind(now)
        .bind(room_id)
        .bind(seq)
        .bind(sender_id)
        .fetch_optional(&mut *tx)
        .await?;
        if deleted.is_some() {
            for erase in [
                "DELETE FROM message_reactions WHERE room_id = $1 AND seq = $2",
                "DELETE FROM message_edits WHERE room_id = $1 AND seq = $2",
                "DELETE FROM message_mentions WHERE room_id = $1 AND seq = $2",
            ] {
                sqlx::query(erase)
                    .bind(room_id)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// The earlier texts of message `seq`, oldest first (none for a message never
    /// edited, or deleted).
    #[tracing::instrument(name = "db.edits", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn edits(&self, room_id: &str, seq: i64) -> Result<Vec<EditRecord>> {
        Ok(sqlx::query_as(
            "SELECT body, written_at FROM message_edits WHERE room_id = $1 AND seq = $2 \
             ORDER BY version",
        )
        .bind(room_id)
        .bind(seq)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pins message `seq` (`by` given; pinning twice keeps the first pin) or unpins it.
    /// A room holds at most `max` pins (two pins racing past the limit may both land).
    #[tracing::instrument(name = "db.pin", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn pin(
        &self,
        room_id: &str,
        seq: i64,
        by: Option<&str>,
        max: i64,
        now: i64,
    ) -> Result<Pinned> {
        let updated: Option<MessageRecord> = match by {
            Some(by) => {
                sqlx::query_as(concat!(
                    "UPDATE messages SET pinned_at = COALESCE(pinned_at, $3), \
                     pinned_by = COALESCE(pinned_by, $4) \
                     WHERE room_id = $1 AND seq = $2 AND deleted_at IS NULL \
                     AND (pinned_at IS NOT NULL OR (SELECT COUNT(*) FROM messages \
                     WHERE room_id = $1 AND pinned_at IS NOT NULL) < $5) RETURNING ",
                    message_columns!()
                ))
                .bind(room_id)
                .bind(seq)
                .bind(now)
                .bind(by)
                .bind(max)
                .fetch_optional(&self.writer)
                .await?
            }
            None => {
                sqlx::query_as(concat!(
                    "UPDATE messages SET pinned_at = NULL, pinned_by = NULL \
                     WHERE room_id = $1 AND seq = $2 AND deleted_at IS NULL RETURNING ",
                    message_columns!()
                ))
                .bind(room_id)
                .bind(seq)
                .fetch_optional(&self.writer)
                .await?
            }
        };
        if let Some(message) = updated {
            return Ok(Pinned::Message(Box::new(message)));
        }
        Ok(match self.live_message(room_id, seq).await? {
            true => Pinned::TooMany,
            false => Pinned::NoMessage,
        })
    }

    /// A room's pinned messages, most recently pinned first.
    #[tracing::instrument(name = "db.pins", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn pins(&self, room_id: &str) -> Result<Vec<MessageRecord>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE room_id = $1 AND pinned_at IS NOT NULL \
             ORDER BY pinned_at DESC, seq DESC"
        ))
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn live_message(&self, room_id: &str, seq: i64) -> Result<bool> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT seq FROM messages WHERE room_id = $1 AND seq = $2 AND deleted_at IS NULL",
        )
        .bind(room_id)
        .bind(seq)
        .fetch_optional(&self.writer)
        .await?;
        Ok(found.is_some())
    }
}

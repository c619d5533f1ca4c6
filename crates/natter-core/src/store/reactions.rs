//! Emoji reactions to messages: one row per message, user and emoji (adding twice is
//! adding once), counts read in the changing transaction with the message row locked, so
//! concurrent reactions to one message never report a stale count; several changes to one
//! message can share that transaction.

use std::collections::HashMap;

use super::{Backend, Result, Store};

/// One user adding or removing one emoji on one message.
#[derive(Debug, Clone, Copy)]
pub struct ReactionChange<'a> {
    /// The room.
    pub room_id: &'a str,
    /// The message.
    pub seq: i64,
    /// Who reacts.
    pub user_id: &'a str,
    /// The emoji (validated by the caller).
    pub emoji: &'a str,
    /// Add (true) or remove (false).
    pub add: bool,
    /// Most distinct emoji a message may carry; adding a new one beyond is refused.
    pub max_distinct: i64,
    /// Unix milliseconds.
    pub now: i64,
}

/// What a reaction change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacted {
    /// Done (or already so): the emoji's count on the message now.
    Count(i64),
    /// No such live message.
    NoMessage,
    /// The message already carries the most distinct emoji allowed.
    TooMany,
}

/// The reactions of one emoji on one message, as one reader sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    /// The message.
    pub seq: i64,
    /// The emoji.
    pub emoji: String,
    /// How many people reacted with it.
    pub count: i64,
    /// Whether the reader is one of them.
    pub me: bool,
}

impl Store {
    /// Adds or removes one reaction and returns the emoji's count after it.
    pub async fn react(&self, change: ReactionChange<'_>) -> Result<Reacted> {
        let reacted = self.react_together(&[change]).await?;
        Ok(reacted[0])
    }

    /// Applies `changes`, all to one message, in their order, in one transaction, and
    /// returns what each did: a burst of reactions to one message takes its lock and
    /// commits once, not once per reaction.
    ///
    /// # Panics
    ///
    /// If the changes are not all to the same message: only the first one's is locked.
    #[tracing::instrument(name = "db.react", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT", db.operation.batch.size = changes.len()))]
    pub async fn react_together(&self, changes: &[ReactionChange<'_>]) -> Result<Vec<Reacted>> {
        let Some(first) = changes.first() else {
            return Ok(Vec::new());
        };
        let message = (first.room_id, first.seq);
        assert!(
            changes.iter().all(|c| (c.room_id, c.seq) == message),
            "reactions applied together are to one message"
        );
        let mut tx = self.writer.begin().await?;
        // The message row is locked (PostgreSQL; SQLite has one writer), so reactions to
        // it apply one after the other and each count includes every earlier one. The
        // counts are read by a statement after the lock is held: one statement that both
        // waited for the lock and counted would count from its snapshot taken before the
        // wait, missing the change it waited for.
        let lock = match self.backend {
            Backend::Postgres => {
                "SELECT seq FROM messages WHERE room_id = $1 AND seq = $2 \
                 AND deleted_at IS NULL FOR UPDATE"
            }
            Backend::Sqlite => {
                "SELECT seq FROM messages WHERE room_id = $1 AND seq = $2 AND deleted_at IS NULL"
            }
        };
        let live: Option<(i64,)> = sqlx::query_as(lock)
            .bind(first.room_id)
            .bind(first.seq)
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_none() {
            return Ok(vec![Reacted::NoMessage; changes.len()]);
        }
        let counted: Vec<(String, i64)> = sqlx::query_as(
            "SELECT emoji, COUNT(*) FROM message_reactions WHERE room_id = $1 AND seq = $2 \
             GROUP BY emoji",
        )
        .bind(first.room_id)
        .bind(first.seq)
        .fetch_all(&mut *tx)
        .await?;
        let mut counts: HashMap<String, i64> = counted.into_iter().collect();
        let mut reacted = Vec::with_capacity(changes.len());
        for change in changes {
            reacted.push(apply(&mut tx, change, &mut counts).await?);
        }
        tx.commit().await?;
        Ok(reacted)
    }

    /// The reactions on `room`'s messages `first..=last` as `reader` sees them, by seq,
    /// each message's emoji in the order they were first used.
    #[tracing::instrument(name = "db.reactions", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn reactions(
        &self,
        room_id: &str,
        first: i64,
        last: i64,
        reader: &str,
    ) -> Result<Vec<ReactionCount>> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, emoji, COUNT(*), \
               CAST(MAX(CASE WHEN user_id = $4 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM message_reactions WHERE room_id = $1 AND seq >= $2 AND seq <= $3 \
             GROUP BY seq, emoji ORDER BY seq, MIN(created_at), emoji",
        )
        .bind(room_id)
        .bind(first)
        .bind(last)
        .bind(reader)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, emoji, count, me)| ReactionCount {
                seq,
                emoji,
                count,
                me: me == 1,
            })
            .collect())
    }
}

/// One change, with the message locked and `counts` (by emoji) as the changes before it
/// left them: refused when it adds an emoji beyond `max_distinct`, else written.
async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    change: &ReactionChange<'_>,
    counts: &mut HashMap<String, i64>,
) -> Result<Reacted> {
    let before = counts.get(change.emoji).copied().unwrap_or(0);
    let distinct = counts.values().filter(|count| **count > 0).count() as i64;
    if change.add && before == 0 && distinct >= change.max_distinct {
        return Ok(Reacted::TooMany);
    }
    let write = match change.add {
        true => sqlx::query(
            "INSERT INTO message_reactions (room_id, seq, emoji, user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        ),
        false => sqlx::query(
            "DELETE FROM message_reactions \
             WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
        ),
    };
    let write = write
        .bind(change.room_id)
        .bind(change.seq)
        .bind(change.emoji)
        .bind(change.user_id);
    let write = match change.add {
        true => write.bind(change.now),
        false => write,
    };
    let changed = write.execute(&mut **tx).await?.rows_affected() as i64;
    let count = match change.add {
        true => before + changed,
        false => before - changed,
    };
    counts.insert(change.emoji.to_owned(), count);
    Ok(Reacted::Count(count))
}

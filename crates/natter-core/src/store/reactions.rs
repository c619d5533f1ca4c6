//! Emoji reactions to messages: one row per message, user and emoji (adding twice is
//! adding once), counts read in the changing transaction with the message row locked, so
//! concurrent reactions to one message never report a stale count.

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
    #[tracing::instrument(name = "db.react", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn react(&self, change: ReactionChange<'_>) -> Result<Reacted> {
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
            .bind(change.room_id)
            .bind(change.seq)
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_none() {
            return Ok(Reacted::NoMessage);
        }
        let (others, before, changed) = match self.backend {
            Backend::Postgres => count_and_change_pg(&mut tx, &change).await?,
            Backend::Sqlite => count_and_change(&mut tx, &change).await?,
        };
        if change.add && before == 0 && others >= change.max_distinct {
            return Ok(Reacted::TooMany);
        }
        tx.commit().await?;
        let count = if change.add {
            before + changed
        } else {
            before - changed
        };
        Ok(Reacted::Count(count))
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

/// What a reaction change finds and does with the message locked: the other emoji on the
/// message, this emoji's count before the change, and the rows changed.
type Counted = (i64, i64, i64);

/// The counts of a reaction change, read after the lock is held: a statement that
/// waited for the lock itself would count from its snapshot taken before the wait.
macro_rules! counts {
    () => {
        "SELECT COUNT(DISTINCT CASE WHEN emoji <> $3 THEN emoji END) AS others, \
           CAST(COALESCE(SUM(CASE WHEN emoji = $3 THEN 1 ELSE 0 END), 0) AS BIGINT) AS count \
         FROM message_reactions WHERE room_id = $1 AND seq = $2"
    };
}

/// PostgreSQL: counts and change in one statement, so the message stays locked for it and
/// the commit only (a burst of reactions to one message queues on that lock). Its parts
/// share one snapshot: the count is the one before the change. A new emoji beyond
/// `max_distinct` is not added (the caller refuses it).
async fn count_and_change_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    change: &ReactionChange<'_>,
) -> Result<Counted> {
    let query = match change.add {
        true => sqlx::query_as(concat!(
            "WITH before AS (",
            counts!(),
            "), changed AS (INSERT INTO message_reactions \
             (room_id, seq, emoji, user_id, created_at) \
             SELECT $1, $2, $3, $4, $5 FROM before WHERE before.count > 0 OR before.others < $6 \
             ON CONFLICT DO NOTHING RETURNING 1) \
             SELECT before.others, before.count, (SELECT COUNT(*) FROM changed) FROM before"
        ))
        .bind(change.room_id)
        .bind(change.seq)
        .bind(change.emoji)
        .bind(change.user_id)
        .bind(change.now)
        .bind(change.max_distinct),
        false => sqlx::query_as(concat!(
            "WITH before AS (",
            counts!(),
            "), changed AS (DELETE FROM message_reactions \
             WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4 RETURNING 1) \
             SELECT before.others, before.count, (SELECT COUNT(*) FROM changed) FROM before"
        ))
        .bind(change.room_id)
        .bind(change.seq)
        .bind(change.emoji)
        .bind(change.user_id),
    };
    Ok(query.fetch_one(&mut **tx).await?)
}

/// SQLite (whose `WITH` cannot change rows; its one writer applies changes one after
/// the other): the counts, then the change unless it is a new emoji beyond
/// `max_distinct`.
async fn count_and_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    change: &ReactionChange<'_>,
) -> Result<Counted> {
    let (others, before): (i64, i64) = sqlx::query_as(counts!())
        .bind(change.room_id)
        .bind(change.seq)
        .bind(change.emoji)
        .fetch_one(&mut **tx)
        .await?;
    if change.add && before == 0 && others >= change.max_distinct {
        return Ok((others, before, 0));
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
    Ok((
        others,
        before,
        write.execute(&mut **tx).await?.rows_affected() as i64,
    ))
}

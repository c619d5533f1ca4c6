//! Threads: a reply's effect on its root (the summary: reply count, last reply time,
//! participants) and on who follows the thread, written in the reply's own transaction
//! with the root's row locked, so concurrent replies never lose a count; and the threads
//! a user follows, with what is unread in each.

use super::messages::{NewMessage, message_columns};
use super::{MessageRecord, Result, Store, StoreError};

/// Most participants a root lists (the starter and the first repliers).
pub const MAX_PARTICIPANTS: usize = 20;

/// A thread a user follows.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FollowedThread {
    /// The room.
    pub room_id: String,
    /// The thread's root.
    pub root_seq: i64,
    /// The root's text (empty once deleted).
    pub root_body: String,
    /// How many replies the thread has.
    pub replies: i64,
    /// Unix milliseconds of the last reply.
    pub last_reply_at: Option<i64>,
    /// Replies by others after the follower's read marker in the thread.
    pub unread: i64,
}

/// How far a follower has read a thread and which replies by others are unread (the
/// counts of a user's event stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadUnread {
    /// The room.
    pub room_id: String,
    /// The thread's root.
    pub root_seq: i64,
    /// The follower's marker in the thread.
    pub read_seq: i64,
    /// Replies by others after the marker, oldest first.
    pub unread: Vec<i64>,
}

impl Store {
    /// Whether `seq` of `room` can start or hold a thread: `Some(true)` for a message
    /// that is in no thread, `Some(false)` for a thread message, `None` for no message.
    #[tracing::instrument(name = "db.thread_root", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn can_root_thread(&self, room: &str, seq: i64) -> Result<Option<bool>> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT thread_root FROM messages WHERE room_id = $1 AND seq = $2")
                .bind(room)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(root,)| root.is_none()))
    }

    /// In the transaction of replies to one root (in their order): adds them to the
    /// root's summary (the update locks the root's row, so concurrent replies count one
    /// after the other) and their senders, the root's author and the people they mention
    /// to the followers; returns the root as each reply leaves it. Two or three
    /// statements, whatever the number of replies and followers.
    ///
    /// # Panics
    ///
    /// If `replies` is empty.
    pub(super) async fn thread_replies(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        root: i64,
        replies: &[&NewMessage<'_>],
    ) -> Result<Vec<MessageRecord>> {
        let first = replies[0];
        // Each reply's time was taken before it queued: the latest is not always last.
        let last_at = replies.iter().map(|reply| reply.now).max();
        let updated: MessageRecord = sqlx::query_as(concat!(
            "UPDATE messages SET thread_replies = thread_replies + $3, thread_last_at = $4 \
             WHERE room_id = $1 AND seq = $2 RETURNING ",
            message_columns!()
        ))
        .bind(first.room_id)
        .bind(root)
        .bind(replies.len() as i64)
        .bind(last_at)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
        let starter = updated.sender_id.as_deref();
        let mut joined: Vec<&str> = updated.participants().collect();
        let before = joined.len();
        if let Some(starter) = starter {
            join(&mut joined, starter);
        }
        let mut followers: Vec<&str> = starter.into_iter().collect();
        let mut roots = Vec::with_capacity(replies.len());
        let replied_before = updated.thread_replies - replies.len() as i64;
        let mut latest = None;
        for (n, reply) in (1..).zip(replies) {
            latest = latest.max(Some(reply.now));
            join(&mut joined, reply.sender_id);
            let mentioned = reply.mentions.iter().map(|(id, _)| id.as_str());
            followers.extend([reply.sender_id].into_iter().chain(mentioned));
            roots.push(MessageRecord {
                thread_replies: replied_before + n,
                thread_last_at: latest,
                thread_participants: joined.join(" "),
                ..updated.clone()
            });
        }
        if joined.len() > before {
            sqlx::query(
                "UPDATE messages SET thread_participants = $3 WHERE room_id = $1 AND seq = $2",
            )
            .bind(first.room_id)
            .bind(root)
            .bind(joined.join(" "))
            .execute(&mut **tx)
            .await?;
        }
        followers.sort_unstable();
        followers.dedup();
        follow(tx, first.room_id, root, &followers).await?;
        Ok(roots)
    }

    /// The threads `user` follows in rooms they are still a member of, most recently
    /// active first, at most `limit`.
    #[tracing::instrument(name = "db.followed_threads", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn followed_threads(&self, user: &str, limit: u32) -> Result<Vec<FollowedThread>> {
        Ok(sqlx::query_as(
            "SELECT f.room_id, f.root_seq, m.body AS root_body, m.thread_replies AS replies, \
             m.thread_last_at AS last_reply_at, \
             (SELECT COUNT(*) FROM messages r WHERE r.room_id = f.room_id \
              AND r.thread_root = f.root_seq AND r.seq > f.read_seq \
              AND (r.sender_id IS NULL OR r.sender_id <> f.user_id)) AS unread \
             FROM thread_follows f \
             JOIN messages m ON m.room_id = f.room_id AND m.seq = f.root_seq \
             JOIN room_members rm ON rm.room_id = f.room_id AND rm.user_id = f.user_id \
             WHERE f.user_id = $1 \
             ORDER BY m.thread_last_at DESC, f.room_id, f.root_seq LIMIT $2",
        )
        .bind(user)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The threads `user` follows in rooms they are still a member of (only the thread of
    /// `only`'s root in its room, when given), each with the seqs of its unread replies
    /// by others; at most `limit` rows (a thread and an unread reply each).
    #[tracing::instrument(name = "db.followed_unread", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn followed_unread(
        &self,
        user: &str,
        only: Option<(&str, i64)>,
        limit: u32,
    ) -> Result<Vec<ThreadUnread>> {
        let (room, root) = only.unwrap_or(("", 0));
        let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT f.room_id, f.root_seq, f.read_seq, r.seq FROM thread_follows f \
             JOIN room_members rm ON rm.room_id = f.room_id AND rm.user_id = f.user_id \
             LEFT JOIN messages r ON r.room_id = f.room_id AND r.thread_root = f.root_seq \
               AND r.seq > f.read_seq AND (r.sender_id IS NULL OR r.sender_id <> f.user_id) \
             WHERE f.user_id = $1 AND ($2 = '' OR (f.room_id = $2 AND f.root_seq = $3)) \
             ORDER BY f.room_id, f.root_seq, r.seq LIMIT $4",
        )
        .bind(user)
        .bind(room)
        .bind(root)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut threads: Vec<ThreadUnread> = Vec::new();
        for (room_id, root_seq, read_seq, reply) in rows {
            let same = |t: &ThreadUnread| t.room_id == room_id && t.root_seq == root_seq;
            if !threads.last().is_some_and(same) {
                threads.push(ThreadUnread {
                    room_id,
                    root_seq,
                    read_seq,
                    unread: Vec::new(),
                });
            }
            let thread = threads.last_mut().expect("pushed above");
            thread.unread.extend(reply);
        }
        Ok(threads)
    }

    /// Moves `user`'s read marker in the thread of `root` forward to `seq`; false when
    /// they do not follow it.
    #[tracing::instrument(name = "db.read_thread", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn read_thread(&self, user: &str, room: &str, root: i64, seq: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE thread_follows SET read_seq = CASE WHEN read_seq < $4 THEN $4 ELSE read_seq END \
             WHERE user_id = $1 AND room_id = $2 AND root_seq = $3",
        )
        .bind(user)
        .bind(room)
        .bind(root)
        .bind(seq)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Makes `users` follow the thread of `root` (those who already do stay as they are), in
/// one statement.
async fn follow(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    room: &str,
    root: i64,
    users: &[&str],
) -> Result<()> {
    let rows: Vec<String> = (0..users.len())
        .map(|i| format!("(${}, $1, $2)", i + 3))
        .collect();
    // Only numbered placeholders are formatted into the statement.
    let sql = format!(
        "INSERT INTO thread_follows (user_id, room_id, root_seq) VALUES {} \
         ON CONFLICT DO NOTHING",
        rows.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room).bind(root);
    for user in users {
        query = query.bind(*user);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Adds `who` to a thread's participants unless they are in it or it is full.
fn join<'a>(joined: &mut Vec<&'a str>, who: &'a str) {
    if joined.len() < MAX_PARTICIPANTS && !joined.contains(&who) {
        joined.push(who);
    }
}

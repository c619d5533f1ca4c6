//! Messages to one room stored together: a burst of sends (or of replies in one thread)
//! takes the room's row lock, and each root's, once and commits once, instead of queuing
//! one transaction after the other on those locks. On PostgreSQL the batch's messages are
//! inserted by one statement: a burst of 33 took 33 round trips in its transaction.

use std::collections::HashSet;

use serde::Serialize;

use super::messages::{insert_mentions, insert_message_sqlite, mentioned_ids, mentions_column};
use super::{Backend, MessageRecord, NewMessage, Posted, Result, Store, StoreError};

impl Store {
    /// Stores `news`, all to one room, in one transaction: each takes the room's next seq
    /// in their order and, in a thread, adds to its root's summary (each `root` is the
    /// root as that reply leaves it). All or nothing: a client id stored before, or twice
    /// in `news`, fails the whole batch with [`StoreError::Conflict`]; storing each with
    /// [`Store::post_message`] then answers the retries with what they stored.
    ///
    /// # Panics
    ///
    /// If the messages are not all to one room: only its row is locked.
    #[tracing::instrument(name = "db.post_messages", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT", db.operation.batch.size = news.len()))]
    pub async fn post_together(&self, news: &[NewMessage<'_>]) -> Result<Vec<Posted>> {
        let Some(first) = news.first() else {
            return Ok(Vec::new());
        };
        assert!(
            news.iter().all(|new| new.room_id == first.room_id),
            "messages stored together are to one room"
        );
        let mut ids = HashSet::with_capacity(news.len());
        if !news
            .iter()
            .all(|new| ids.insert((new.sender_id, new.client_id)))
        {
            return Err(StoreError::Conflict(
                "one client id twice in a batch".into(),
            ));
        }
        let mut replies: Vec<(i64, usize)> = (news.iter().enumerate())
            .filter_map(|(at, new)| Some((new.thread_root?, at)))
            .collect();
        if matches!(self.backend, Backend::Postgres) && replies.is_empty() {
            // One statement, so no transaction to begin and commit around it.
            let first = insert_messages_pg(&self.writer, news).await?;
            return Ok(posted(news, first.., vec![None; news.len()]));
        }
        let mut tx = self.writer.begin().await?;
        // The roots first, in the order of their seqs (two batches of a room lock them in
        // the same order, so they never wait for each other crosswise), each updated once
        // for all its replies; the room's row last, from the first insert to the commit,
        // as for a lone reply.
        replies.sort_unstable();
        let mut roots = vec![None; news.len()];
        for thread in replies.chunk_by(|a, b| a.0 == b.0) {
            let of_root: Vec<&NewMessage<'_>> = thread.iter().map(|&(_, at)| &news[at]).collect();
            let updated = self.thread_replies(&mut tx, thread[0].0, &of_root).await?;
            for (&(_, at), root) in thread.iter().zip(updated) {
                roots[at] = Some(root);
            }
        }
        let posted = match self.backend {
            Backend::Postgres => {
                let first = insert_messages_pg(&mut *tx, news).await?;
                posted(news, first.., roots)
            }
            Backend::Sqlite => {
                let mut seqs = Vec::with_capacity(news.len());
                for new in news {
                    let seq = insert_message_sqlite(&mut *tx, new).await?;
                    insert_mentions(&mut tx, new.room_id, seq, new.mentions).await?;
                    seqs.push(seq);
                }
                posted(news, seqs, roots)
            }
        };
        tx.commit().await?;
        Ok(posted)
    }
}

/// `news` stored with `seqs` (in their order), each reply with its root as it left it.
fn posted(
    news: &[NewMessage<'_>],
    seqs: impl IntoIterator<Item = i64>,
    roots: Vec<Option<MessageRecord>>,
) -> Vec<Posted> {
    (news.iter().zip(seqs).zip(roots))
        .map(|((new, seq), root)| Posted {
            message: new.stored(seq),
            created: true,
            root,
        })
        .collect()
}

/// One message of a batch as [`insert_messages_pg`] sends it: a row of its JSON array.
#[derive(Serialize)]
struct Row<'a> {
    /// Its place in the batch, from 0: its seq is the batch's first plus this.
    at: usize,
    sender_id: &'a str,
    client_id: &'a str,
    body: &'a str,
    created_at: i64,
    reply_to: Option<i64>,
    mentions: String,
    room_mentioned_at: Option<i64>,
    thread_root: Option<i64>,
    also_to_room: i64,
    /// The mentioned users' ids, spaced (none: null).
    mentioned: Option<String>,
}

/// PostgreSQL: moves the room's counter by the batch's length and inserts its messages
/// (and their mentions) in one statement, the messages sent as one JSON array (the
/// pool is sqlx's `Any`, which binds no arrays); the first message's seq, the others
/// following in their order. A client id stored before fails the whole statement.
async fn insert_messages_pg<'c, E>(executor: E, news: &[NewMessage<'_>]) -> Result<i64>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let rows: Vec<Row<'_>> = (news.iter().enumerate())
        .map(|(at, new)| Row {
            at,
            sender_id: new.sender_id,
            client_id: new.client_id,
            body: new.body,
            created_at: new.now,
            reply_to: new.reply_to,
            mentions: mentions_column(new.mentions),
            room_mentioned_at: new.mentions_room.then_some(new.now),
            thread_root: new.thread_root,
            also_to_room: i64::from(new.also_to_room),
            mentioned: (!new.mentions.is_empty()).then(|| mentioned_ids(new.mentions)),
        })
        .collect();
    let rows = serde_json::to_string(&rows).expect("strings and numbers always serialize");
    let (first,): (i64,) = sqlx::query_as(
        "WITH batch AS (SELECT * FROM json_to_recordset(CAST($2 AS json)) AS b(at BIGINT, \
         sender_id TEXT, client_id TEXT, body TEXT, created_at BIGINT, reply_to BIGINT, \
         mentions TEXT, room_mentioned_at BIGINT, thread_root BIGINT, also_to_room BIGINT, \
         mentioned TEXT)), \
         next AS (UPDATE rooms SET last_seq = last_seq + $3 WHERE id = $1 \
         RETURNING last_seq - $3 + 1 AS first), \
         message AS (INSERT INTO messages (room_id, seq, sender_id, client_id, body, \
         created_at, reply_to, mentions, room_mentioned_at, thread_root, also_to_room) \
         SELECT $1, next.first + b.at, b.sender_id, b.client_id, b.body, b.created_at, \
         b.reply_to, b.mentions, b.room_mentioned_at, b.thread_root, b.also_to_room \
         FROM next, batch b ORDER BY b.at), \
         mentioned AS (INSERT INTO message_mentions (room_id, seq, user_id) \
         SELECT $1, next.first + b.at, m FROM next, batch b, \
         unnest(string_to_array(b.mentioned, ' ')) AS m) \
         SELECT first FROM next",
    )
    .bind(news[0].room_id)
    .bind(rows)
    .bind(news.len() as i64)
    .fetch_optional(executor)
    .await
    .map_err(super::map_conflict)?
    .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
    Ok(first)
}

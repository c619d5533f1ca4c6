//! Messages: stored with a per-room, gap-free sequence number allocated in the inserting
//! transaction, idempotent per client id, read back by cursor.

use super::{Backend, Result, Store, StoreError};

/// The columns of a [`MessageRecord`], for `SELECT` and `RETURNING` lists.
macro_rules! message_columns {
    () => {
        "room_id, seq, sender_id, client_id, body, created_at, edited_at, deleted_at, \
         reply_to, mentions, room_mentioned_at, pinned_at, pinned_by, thread_root, also_to_room, \
         thread_replies, thread_last_at, thread_participants"
    };
}
pub(crate) use message_columns;

/// A message to store.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// The room.
    pub room_id: &'a str,
    /// The author.
    pub sender_id: &'a str,
    /// Chosen by the client; a retry with the same id returns the stored message.
    pub client_id: &'a str,
    /// The text.
    pub body: &'a str,
    /// The seq of the message of the room this one answers.
    pub reply_to: Option<i64>,
    /// The members the text mentions, as `(user id, username)`.
    pub mentions: &'a [(String, String)],
    /// The text mentions @room.
    pub mentions_room: bool,
    /// The root of the thread this message is in (validated by the caller: a message of
    /// the room that is not in a thread).
    pub thread_root: Option<i64>,
    /// A thread message also shown in the room's timeline.
    pub also_to_room: bool,
    /// Unix milliseconds.
    pub now: i64,
}

impl<'a> NewMessage<'a> {
    /// Plain text: no reply, no mention, not in a thread.
    pub fn text(
        room_id: &'a str,
        sender_id: &'a str,
        client_id: &'a str,
        body: &'a str,
        now: i64,
    ) -> Self {
        Self {
            room_id,
            sender_id,
            client_id,
            body,
            reply_to: None,
            mentions: &[],
            mentions_room: false,
            thread_root: None,
            also_to_room: false,
            now,
        }
    }

    /// The message as stored with `seq` (nothing about it is set by the database but
    /// its seq).
    pub(super) fn stored(&self, seq: i64) -> MessageRecord {
        MessageRecord {
            room_id: self.room_id.into(),
            seq,
            sender_id: Some(self.sender_id.into()),
            client_id: self.client_id.into(),
            body: self.body.into(),
            created_at: self.now,
            edited_at: None,
            deleted_at: None,
            reply_to: self.reply_to,
            mentions: mentions_column(self.mentions),
            room_mentioned_at: self.mentions_room.then_some(self.now),
            pinned_at: None,
            pinned_by: None,
            thread_root: self.thread_root,
            also_to_room: i64::from(self.also_to_room),
            thread_replies: 0,
            thread_last_at: None,
            thread_participants: String::new(),
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageRecord {
    /// The room.
    pub room_id: String,
    /// Position in the room, from 1, without gaps.
    pub seq: i64,
    /// The author, if still registered.
    pub sender_id: Option<String>,
    /// The client's id for the send.
    pub client_id: String,
    /// The text (empty once deleted).
    pub body: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds, when edited.
    pub edited_at: Option<i64>,
    /// Unix milliseconds, when deleted.
    pub deleted_at: Option<i64>,
    /// The seq of the message of the room this one answers.
    pub reply_to: Option<i64>,
    /// The members the text mentions: `user_id:username` pairs separated by spaces
    /// (see [`MessageRecord::mentioned`]).
    pub mentions: String,
    /// Unix milliseconds: when the message, which mentions @room, was sent.
    pub room_mentioned_at: Option<i64>,
    /// Unix milliseconds, when pinned.
    pub pinned_at: Option<i64>,
    /// Who pinned it.
    pub pinned_by: Option<String>,
    /// The root of the thread this message is in.
    pub thread_root: Option<i64>,
    /// 1 when a thread message is also shown in the room's timeline (see
    /// [`MessageRecord::also_to_room`]).
    pub(crate) also_to_room: i64,
    /// On a thread's root: how many replies it has.
    pub thread_replies: i64,
    /// On a thread's root: Unix milliseconds of the last reply.
    pub thread_last_at: Option<i64>,
    /// On a thread's root: who took part (the first [`super::threads::MAX_PARTICIPANTS`]
    /// user ids, separated by spaces; see [`MessageRecord::participants`]).
    pub thread_participants: String,
}

impl MessageRecord {
    /// Whether a thread message is also shown in the room's timeline.
    pub fn also_to_room(&self) -> bool {
        self.also_to_room != 0
    }

    /// On a thread's root: who took part, starter first.
    pub fn participants(&self) -> impl Iterator<Item = &str> {
        self.thread_participants
            .split(' ')
            .filter(|id| !id.is_empty())
    }

    /// Whether the text mentions @room.
    pub fn mentions_room(&self) -> bool {
        self.room_mentioned_at.is_some()
    }

    /// The members the text mentions, as `(user id, username)`.
    pub fn mentioned(&self) -> impl Iterator<Item = (&str, &str)> {
        self.mentions
            .split(' ')
            .filter_map(|pair| pair.split_once(':'))
    }

    /// Whether the message was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The text clients may see: empty once deleted.
    pub fn visible_body(&self) -> &str {
        if self.is_deleted() { "" } else { &self.body }
    }
}

/// The result of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The stored message.
    pub message: MessageRecord,
    /// False when this was a retry of an earlier send with the same client id.
    pub created: bool,
    /// For a new thread message: the thread's root as the message left it (its summary).
    pub root: Option<MessageRecord>,
}

/// Which end of the history a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryOrder {
    /// Messages before the cursor (or the newest), newest first.
    NewestFirst,
    /// Messages after the cursor (or the oldest), oldest first.
    OldestFirst,
}

impl Store {
    /// Stores a message with the room's next sequence number, or returns the message an
    /// earlier send with the same client id stored. The sender's read marker does not
    /// move here (one more row write per send cost the 450/s step of `bench chat`):
    /// clients mark their own messages read as they show them.
    #[tracing::instrument(name = "db.post_message", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn post_message(&self, new: NewMessage<'_>) -> Result<Posted> {
        // Insert first: a retry hits the unique client id, its transaction (sequence
        // increment included) rolls back, and the stored message is read instead. The
        // common first attempt costs no extra read.
        match self.insert_message(&new).await {
            Ok((message, root)) => Ok(Posted {
                message,
                created: true,
                root,
            }),
            Err(StoreError::Conflict(_)) => {
                let message = self
                    .message_by_client_id(&new)
                    .await?
                    .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))?;
                Ok(Posted {
                    message,
                    created: false,
                    root: None,
                })
            }
            Err(other) => Err(other),
        }
    }

    async fn insert_message(
        &self,
        new: &NewMessage<'_>,
    ) -> Result<(MessageRecord, Option<MessageRecord>)> {
        let (seq, root) = match (self.backend, new.thread_root) {
            (Backend::Postgres, None) => (insert_message_pg(&self.writer, new).await?, None),
            (Backend::Postgres, Some(root)) => {
                // The root's summary first, the seq last: the room's row is locked for
                // the final statement and the commit only, as for any send.
                let mut tx = self.writer.begin().await?;
                let root = self.thread_replies(&mut tx, root, &[new]).await?.remove(0);
                let seq = insert_message_pg(&mut *tx, new).await?;
                tx.commit().await?;
                (seq, Some(root))
            }
            // Most sends: one statement, no transaction round trips.
            (Backend::Sqlite, None) if new.mentions.is_empty() => {
                (insert_message_sqlite(&self.writer, new).await?, None)
            }
            (Backend::Sqlite, root) => {
                let mut tx = self.writer.begin().await?;
                let root = match root {
                    Some(root) => Some(self.thread_replies(&mut tx, root, &[new]).await?.remove(0)),
                    None => None,
                };
                let seq = insert_message_sqlite(&mut *tx, new).await?;
                insert_mentions(&mut tx, new.room_id, seq, new.mentions).await?;
                tx.commit().await?;
                (seq, root)
            }
        };
        Ok((new.stored(seq), root))
    }

    /// The message an earlier send with the same client id stored.
    pub(crate) async fn message_by_client_id(
        &self,
        new: &NewMessage<'_>,
    ) -> Result<Option<MessageRecord>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE room_id = $1 AND sender_id = $2 AND client_id = $3"
        );
        Ok(sqlx::query_as(sql)
            .bind(new.room_id)
            .bind(new.sender_id)
            .bind(new.client_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Whether `room` has a message `seq` (deleted or not): what a reply may answer.
    pub async fn message_exists(&self, room_id: &str, seq: i64) -> Result<bool> {
        Ok(self.can_root_thread(room_id, seq).await?.is_some())
    }

    /// A page of a room's history: up to `limit` messages with sequence numbers strictly
    /// between `after` and `before` (each unbounded when absent), newest or oldest first;
    /// every message, thread messages included (what a resume replays).
    pub async fn history(
        &self,
        room_id: &str,
        order: HistoryOrder,
        after: Option<i64>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>> {
        let range = (after, before, limit);
        self.timeline(room_id, Timeline::Everything, order, range)
            .await
    }

    /// [`Store::history`] of one timeline: the room's, or a thread's. `range` is
    /// `(after, before, limit)`.
    #[tracing::instrument(name = "db.history", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn timeline(
        &self,
        room_id: &str,
        timeline: Timeline,
        order: HistoryOrder,
        (after, before, limit): (Option<i64>, Option<i64>, u32),
    ) -> Result<Vec<MessageRecord>> {
        macro_rules! page {
            ($only:literal, $order:literal) => {
                concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE room_id = $1 AND seq > $2 AND seq < $3",
                    $only,
                    " ORDER BY seq ",
                    $order,
                    " LIMIT $4"
                )
            };
        }
        let sql = match (timeline, order) {
            (Timeline::Everything, HistoryOrder::NewestFirst) => page!("", "DESC"),
            (Timeline::Everything, HistoryOrder::OldestFirst) => page!("", "ASC"),
            (Timeline::Room, HistoryOrder::NewestFirst) => {
                page!(" AND (thread_root IS NULL OR also_to_room = 1)", "DESC")
            }
            (Timeline::Room, HistoryOrder::OldestFirst) => {
                page!(" AND (thread_root IS NULL OR also_to_room = 1)", "ASC")
            }
            (Timeline::Thread(_), HistoryOrder::NewestFirst) => {
                page!(" AND thread_root = $5", "DESC")
            }
            (Timeline::Thread(_), HistoryOrder::OldestFirst) => {
                page!(" AND thread_root = $5", "ASC")
            }
        };
        let mut query = sqlx::query_as(sql)
            .bind(room_id)
            .bind(after.unwrap_or(i64::MIN))
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit));
        if let Timeline::Thread(root) = timeline {
            query = query.bind(root);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }
}

/// Which of a room's messages a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeline {
    /// All of them, thread messages included.
    Everything,
    /// The room's timeline: no thread messages but those also sent to the room.
    Room,
    /// The messages of the thread of this root (the root itself not included).
    Thread(i64),
}

/// One `message_mentions` row per mentioned member.
pub(super) async fn insert_mentions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    room_id: &str,
    seq: i64,
    mentions: &[(String, String)],
) -> Result<()> {
    for (user_id, _) in mentions {
        sqlx::query("INSERT INTO message_mentions (room_id, seq, user_id) VALUES ($1, $2, $3)")
            .bind(room_id)
            .bind(seq)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// [`MessageRecord::mentions`] of `(user id, username)` pairs.
pub(super) fn mentions_column(mentions: &[(String, String)]) -> String {
    let pairs: Vec<String> = mentions
        .iter()
        .map(|(id, name)| format!("{id}:{name}"))
        .collect();
    pairs.join(" ")
}

/// The ids of the users `mentions` names, spaced: the one parameter PostgreSQL's send
/// statements split into their `message_mentions` rows (sqlx's `Any` binds no arrays).
pub(super) fn mentioned_ids(mentions: &[(String, String)]) -> String {
    let ids: Vec<&str> = mentions.iter().map(|(id, _)| id.as_str()).collect();
    ids.join(" ")
}

/// PostgreSQL: the sequence is taken and the message inserted in one statement, so
/// the room's row is locked for that statement and its commit only (one round trip),
/// not across a transaction's four; a unique-violation rolls the increment back.
pub(super) async fn insert_message_pg<'c, E>(executor: E, new: &NewMessage<'_>) -> Result<i64>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    macro_rules! insert {
        ($mentioned:literal) => {
            concat!(
                "WITH next AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 \
                 RETURNING last_seq), \
                 message AS (INSERT INTO messages (room_id, seq, sender_id, client_id, body, \
                 created_at, reply_to, mentions, room_mentioned_at, thread_root, also_to_room) \
                 SELECT $1, next.last_seq, $2, $3, $4, $5, CAST($6 AS BIGINT), $7, \
                 CAST($8 AS BIGINT), CAST($9 AS BIGINT), $10 FROM next RETURNING seq)",
                $mentioned,
                " SELECT seq FROM message"
            )
        };
    }
    // Most messages mention nobody: their statement has no mention rows to write. The
    // pool is sqlx's `Any`, which binds no arrays: mentioned ids go as one spaced string.
    let sql = match new.mentions.is_empty() {
        true => insert!(""),
        false => insert!(
            ", mentioned AS (INSERT INTO message_mentions (room_id, seq, user_id) \
             SELECT $1, message.seq, m FROM message, unnest(string_to_array($11, ' ')) AS m)"
        ),
    };
    let mut query = sqlx::query_as(sql)
        .bind(new.room_id)
        .bind(new.sender_id)
        .bind(new.client_id)
        .bind(new.body)
        .bind(new.now)
        .bind(new.reply_to)
        .bind(mentions_column(new.mentions))
        .bind(new.mentions_room.then_some(new.now))
        .bind(new.thread_root)
        .bind(i64::from(new.also_to_room));
    if !new.mentions.is_empty() {
        query = query.bind(mentioned_ids(new.mentions));
    }
    let inserted: Option<(i64,)> = query
        .fetch_optional(executor)
        .await
        .map_err(super::map_conflict)?;
    inserted
        .map(|(seq,)| seq)
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
}

/// SQLite: inserts a message with its room's next seq in one statement, on the one
/// writer connection (its CTEs cannot update, so a trigger moves the room's counter: see
/// the migration `send_in_one_statement`); its seq.
pub(super) async fn insert_message_sqlite<'c, E>(executor: E, new: &NewMessage<'_>) -> Result<i64>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO messages (room_id, seq, sender_id, client_id, body, created_at, \
             reply_to, mentions, room_mentioned_at, thread_root, also_to_room) \
             VALUES ($1, (SELECT last_seq + 1 FROM rooms WHERE id = $1), $2, $3, $4, $5, $6, \
             $7, $8, $9, $10) RETURNING seq",
    )
    .bind(new.room_id)
    .bind(new.sender_id)
    .bind(new.client_id)
    .bind(new.body)
    .bind(new.now)
    .bind(new.reply_to)
    .bind(mentions_column(new.mentions))
    .bind(new.mentions_room.then_some(new.now))
    .bind(new.thread_root)
    .bind(i64::from(new.also_to_room))
    .fetch_one(executor)
    .await
    .map_err(super::map_conflict)?;
    Ok(seq)
}

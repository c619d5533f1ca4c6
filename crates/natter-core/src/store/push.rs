//! Web Push in the store: browsers' subscriptions, and the durable outbox of pushes due.
//! Rows are produced per room from a cursor that one replica at a time advances (in the
//! same transaction as the rows), and claimed for sending with a lease, so two replicas
//! running the worker produce and send each (user, room, message) push once.

use std::sync::LazyLock;

use super::{Backend, Result, Store};

/// A browser's push subscription.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushSubscription {
    /// The push service URL to post to (unique per browser).
    pub endpoint: String,
    /// Whose it is.
    pub user_id: String,
    /// The browser's P-256 public key (base64url).
    pub p256dh: String,
    /// The browser's auth secret (base64url).
    pub auth: String,
}

/// A push claimed for sending, with what its notification shows.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DuePush {
    /// The recipient.
    pub user_id: String,
    /// The room.
    pub room_id: String,
    /// The message.
    pub seq: i64,
    /// `direct`, `mention`, `room` or `all`.
    pub reason: String,
    /// Tries so far, this one included.
    pub attempts: i64,
}

/// What a due push's notification shows, and whether it is still due.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushContent {
    /// The room's name (none for a direct room).
    pub room_name: Option<String>,
    /// The author's user name.
    pub sender: Option<String>,
    /// The text.
    pub body: String,
    /// Whether the recipient has read the message meanwhile (or left, or it was
    /// deleted): then no push is sent.
    pub settled: i64,
}

/// Rooms looked at per round of [`Store::produce_behind`].
const ROOMS_PER_ROUND: u32 = 200;
/// Messages of one room looked at per statement.
const RANGE: i64 = 500;

/// An outbox that new messages are looked at for, room by room from a cursor: Web
/// Push, or email digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A push per due message (mentions, `@room`, direct messages, rooms at level `all`)
    /// to recipients with a push subscription.
    Push,
    /// Unread mentions, `@room` and direct messages, for digests to recipients with an
    /// email address who want them.
    Email,
}

impl Channel {
    fn cursors(self) -> &'static str {
        match self {
            Self::Push => "push_cursors",
            Self::Email => "email_cursors",
        }
    }

    /// Whether user `id` can be reached on this channel (an SQL condition).
    fn reachable(self, id: &str) -> String {
        match self {
            Self::Push => {
                format!("EXISTS (SELECT 1 FROM push_subscriptions p WHERE p.user_id = {id})")
            }
            Self::Email => format!(
                "EXISTS (SELECT 1 FROM users u WHERE u.id = {id} \
                 AND u.email IS NOT NULL AND u.email_digests = 1)"
            ),
        }
    }

    /// Whether a member of room `r` can be reached (an SQL condition). Pushes start from
    /// the few subscriptions, digests from the room's members (most have an address).
    fn any_member_reachable(self) -> String {
        match self {
            Self::Push => "EXISTS (SELECT 1 FROM push_subscriptions p \
                 JOIN room_members m ON m.user_id = p.user_id AND m.room_id = r.id)"
                .into(),
            Self::Email => format!(
                "EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND {})",
                self.reachable("m.user_id")
            ),
        }
    }

    /// The statement queuing a range of a room's messages.
    fn produce(self) -> &'static str {
        static PUSH: LazyLock<String> = LazyLock::new(|| produce_statement(Channel::Push));
        static EMAIL: LazyLock<String> = LazyLock::new(|| produce_statement(Channel::Email));
        match self {
            Self::Push => &PUSH,
            Self::Email => &EMAIL,
        }
    }
}

/// The candidates of a range (`$2`, `$3`] of room `$1`'s messages sent since `$5`, best
/// reason first (mention, @room, direct, all), kept when still unread, not muted, not
/// their own and reachable on `channel`; due at `$4` (a push) or `$4` ms after the
/// message was sent (a digest, which takes no room at level `all`). Each part reads by
/// an index: mentions by the message, `@room` members only for such a message, members
/// at level `all` by a partial index, a direct room's two people only in a direct room —
/// a plain message in a room of 10,000 reads none of its members.
fn produce_statement(channel: Channel) -> String {
    let (outbox, due, having) = match channel {
        Channel::Push => ("push_outbox", "$4", ""),
        Channel::Email => (
            "email_outbox",
            "MAX(g.created_at) + $4",
            "HAVING MIN(c.rank) <= 3",
        ),
    };
    let reachable = channel.reachable("c.user_id");
    format!(
        "INSERT INTO {outbox} (user_id, room_id, seq, reason, due_at) \
    SELECT c.user_id, $1, c.seq, \
      CASE MIN(c.rank) WHEN 1 THEN 'mention' WHEN 2 THEN 'room' WHEN 3 THEN 'direct' ELSE 'all' END, {due} \
    FROM ( \
      SELECT mm.user_id, mm.seq, 1 AS rank FROM message_mentions mm \
        WHERE mm.room_id = $1 AND mm.seq > $2 AND mm.seq <= $3 \
      UNION ALL \
      SELECT m.user_id, g.seq, 2 AS rank FROM messages g JOIN room_members m ON m.room_id = g.room_id \
        WHERE g.room_id = $1 AND g.seq > $2 AND g.seq <= $3 AND g.room_mentioned_at IS NOT NULL \
        AND (g.thread_root IS NULL OR g.also_to_room = 1) \
      UNION ALL \
      SELECT m.user_id, g.seq, CASE WHEN r.kind = 'direct' THEN 3 ELSE 4 END AS rank \
        FROM messages g JOIN rooms r ON r.id = g.room_id JOIN room_members m ON m.room_id = g.room_id \
        WHERE g.room_id = $1 AND g.seq > $2 AND g.seq <= $3 \
        AND (g.thread_root IS NULL OR g.also_to_room = 1) AND m.notify = 'all' \
      UNION ALL \
      SELECT m.user_id, g.seq, 3 AS rank \
        FROM rooms r JOIN messages g ON g.room_id = r.id JOIN room_members m ON m.room_id = r.id \
        WHERE r.id = $1 AND r.kind = 'direct' AND g.seq > $2 AND g.seq <= $3 \
        AND (g.thread_root IS NULL OR g.also_to_room = 1) AND m.notify IS NULL \
    ) c \
    JOIN messages g ON g.room_id = $1 AND g.seq = c.seq \
    JOIN room_members m ON m.room_id = $1 AND m.user_id = c.user_id \
    WHERE g.deleted_at IS NULL AND g.created_at >= $5 AND c.user_id <> COALESCE(g.sender_id, '') \
      AND m.last_read_seq < c.seq AND (m.notify IS NULL OR m.notify <> 'nothing') AND {reachable} \
    GROUP BY c.user_id, c.seq {having} \
    ON CONFLICT (user_id, room_id, seq) DO NOTHING"
    )
}

impl Store {
    /// Saves a browser's subscription for `user` (a browser subscribing again replaces
    /// its keys, and its owner when another user signs in on it).
    #[tracing::instrument(name = "db.save_push_subscription", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn save_push_subscription(&self, sub: &PushSubscription, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint) DO UPDATE \
             SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
        )
        .bind(&sub.endpoint)
        .bind(&sub.user_id)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Forgets a subscription: `user`'s own (`Some`), or any (a push service said it is
    /// gone). Whether there was one.
    pub async fn delete_push_subscription(
        &self,
        endpoint: &str,
        user: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM push_subscriptions WHERE endpoint = $1 AND ($2 = '' OR user_id = $2)",
        )
        .bind(endpoint)
        .bind(user.unwrap_or_default())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `user`'s subscriptions (one per browser).
    pub async fn push_subscriptions(&self, user: &str) -> Result<Vec<PushSubscription>> {
        Ok(sqlx::query_as(
            "SELECT endpoint, user_id, p256dh, auth FROM push_subscriptions WHERE user_id = $1",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One round of a worker's production for `channel`: up to [`ROOMS_PER_ROUND`] rooms
    /// with messages not yet looked at, each for up to [`RANGE`] of them sent since
    /// `since`, due at `due` (see [`Store::produce`]).
    pub async fn produce_behind(&self, channel: Channel, since: i64, due: i64) -> Result<()> {
        for (room, from, last) in self.rooms_behind(channel, ROOMS_PER_ROUND).await? {
            let range = (from, last.min(from + RANGE));
            // False: another replica took this range; it is queued once either way.
            self.produce(channel, &room, range, since, due).await?;
        }
        Ok(())
    }

    /// Rooms with messages not yet looked at for `channel` and a member reachable on it
    /// (at most `limit`): id, how far they were looked at, newest seq. Rooms nobody there
    /// could be told about cost no write (their cursor waits; messages older than the age
    /// limit are skipped when it moves).
    async fn rooms_behind(&self, channel: Channel, limit: u32) -> Result<Vec<(String, i64, i64)>> {
        let sql = format!(
            "SELECT r.id, COALESCE(c.seq, 0), r.last_seq FROM rooms r \
             LEFT JOIN {cursors} c ON c.room_id = r.id \
             WHERE r.last_seq > COALESCE(c.seq, 0) AND {reachable} LIMIT $1",
            cursors = channel.cursors(),
            reachable = channel.any_member_reachable(),
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Looks at `room`'s messages `from` + 1 … `to` sent since `since` for `channel`,
    /// due at `due` (a push) or `due` ms after they were sent (a digest): moves the room's
    /// cursor from `from` to `to` and queues what is due in one transaction. False when
    /// another replica moved the cursor first (nothing is queued twice).
    #[tracing::instrument(name = "db.produce", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn produce(
        &self,
        channel: Channel,
        room: &str,
        (from, to): (i64, i64),
        since: i64,
        due: i64,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let cursors = channel.cursors();
        let moved = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {cursors} (room_id, seq) VALUES ($1, $3) ON CONFLICT (room_id) \
             DO UPDATE SET seq = $3 WHERE {cursors}.seq = $2"
        )))
        .bind(room)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        // A room without a cursor row is at 0: of two replicas inserting it, the second
        // finds the row moved past 0 and updates nothing.
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        if self.backend == Backend::Postgres {
            // Planned for the room and range at hand: a generic plan of this statement
            // (what a prepared statement gets after five runs) took 20 times longer for
            // `@room` in a room of 10,000 (`cargo xtask bench notify`).
            sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(channel.produce()))
            .bind(room)
            .bind(from)
            .bind(to)
            .bind(due)
            .bind(since)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` pushes due at `now` for `lease_ms` (another sender takes a
    /// push over only after its lease ran out), counting the attempt.
    #[tracing::instrument(name = "db.claim_pushes", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn claim_pushes(&self, now: i64, lease_ms: i64, limit: u32) -> Result<Vec<DuePush>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // One writer connection: claims never run at once.
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE push_outbox SET claimed_until = $1 + $2, attempts = attempts + 1 \
             WHERE (user_id, room_id, seq) IN (SELECT user_id, room_id, seq FROM push_outbox \
               WHERE due_at <= $1 AND claimed_until <= $1 ORDER BY due_at LIMIT $3 {lock}) \
             RETURNING user_id, room_id, seq, reason, attempts"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(lease_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await?)
    }

    /// What `push`'s notification shows, or `None` when the message or membership is gone.
    pub async fn push_content(&self, push: &DuePush) -> Result<Option<PushContent>> {
        Ok(sqlx::query_as(
            "SELECT r.name AS room_name, u.username AS sender, g.body, \
               CASE WHEN m.last_read_seq >= g.seq OR g.deleted_at IS NOT NULL THEN 1 ELSE 0 END AS settled \
             FROM messages g JOIN rooms r ON r.id = g.room_id \
             JOIN room_members m ON m.room_id = g.room_id AND m.user_id = $3 \
             LEFT JOIN users u ON u.id = g.sender_id \
             WHERE g.room_id = $1 AND g.seq = $2",
        )
        .bind(&push.room_id)
        .bind(push.seq)
        .bind(&push.user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Pushes waiting in `room`'s outbox.
    pub async fn pushes_queued(&self, room: &str) -> Result<i64> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM push_outbox WHERE room_id = $1")
                .bind(room)
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }

    /// The push is done with (sent, not due any more, or given up).
    pub async fn finish_push(&self, push: &DuePush) -> Result<()> {
        sqlx::query("DELETE FROM push_outbox WHERE user_id = $1 AND room_id = $2 AND seq = $3")
            .bind(&push.user_id)
            .bind(&push.room_id)
            .bind(push.seq)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Tries the push again at `due_at`.
    pub async fn retry_push(&self, push: &DuePush, due_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE push_outbox SET due_at = $4, claimed_until = 0 \
             WHERE user_id = $1 AND room_id = $2 AND seq = $3",
        )
        .bind(&push.user_id)
        .bind(&push.room_id)
        .bind(push.seq)
        .bind(due_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

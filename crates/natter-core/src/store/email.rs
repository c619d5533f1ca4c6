//! Email digests in the store: the outbox of unread mentions and direct messages (filled
//! room by room like pushes, [`super::Channel::Email`]), users due a digest claimed with a
//! lease so one replica sends each, what a digest lists, and the unsubscribe token.

use super::{Result, Store};

/// A user claimed for a digest: where it goes and its unsubscribe token.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueDigest {
    /// The recipient.
    pub user_id: String,
    /// Their user name.
    pub username: String,
    /// Their address.
    pub email: String,
    /// The secret of their unsubscribe link.
    pub unsubscribe: String,
}

/// One unread message of a digest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DigestItem {
    /// The room.
    pub room_id: String,
    /// Its name (none for a direct room).
    pub room_name: Option<String>,
    /// The message.
    pub seq: i64,
    /// The author's user name.
    pub sender: Option<String>,
    /// The text.
    pub body: String,
    /// `mention`, `room` or `direct`.
    pub reason: String,
    /// When it was sent (Unix ms).
    pub created_at: i64,
}

/// Most messages listed in one digest (the rest are counted, not listed).
pub const DIGEST_ITEMS: i64 = 50;

impl Store {
    /// Claims, for `lease_ms`, up to `limit` users with queued messages due at `now` and
    /// no digest since their last one's delay; each is the caller's alone until the lease
    /// ends or [`Store::finish_digest`]. A user's first claim gives them an unsubscribe
    /// token (`token` when they had none).
    #[tracing::instrument(name = "db.claim_digests", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn claim_digests(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
        token: impl Fn() -> String,
    ) -> Result<Vec<DueDigest>> {
        let candidates: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT o.user_id FROM email_outbox o \
             LEFT JOIN email_digests d ON d.user_id = o.user_id \
             WHERE o.due_at <= $1 AND COALESCE(d.next_at, 0) <= $1 \
               AND COALESCE(d.claimed_until, 0) <= $1 \
             LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for (user,) in candidates {
            // Of two replicas claiming one user, the second finds the row claimed.
            let done = sqlx::query(
                "INSERT INTO email_digests (user_id, claimed_until, unsubscribe) \
                 VALUES ($1, $2 + $3, $4) ON CONFLICT (user_id) DO UPDATE \
                 SET claimed_until = excluded.claimed_until \
                 WHERE email_digests.claimed_until <= $2 AND email_digests.next_at <= $2",
            )
            .bind(&user)
            .bind(now)
            .bind(lease_ms)
            .bind(token())
            .execute(&self.writer)
            .await?;
            if done.rows_affected() != 1 {
                continue;
            }
            let due: Option<DueDigest> = sqlx::query_as(
                "SELECT u.id AS user_id, u.username, u.email, d.unsubscribe \
                 FROM users u JOIN email_digests d ON d.user_id = u.id \
                 WHERE u.id = $1 AND u.email IS NOT NULL AND u.email_digests = 1",
            )
            .bind(&user)
            .fetch_optional(&self.writer)
            .await?;
            match due {
                Some(due) => claimed.push(due),
                // Turned digests off (or lost the address) since: nothing to send.
                None => self.finish_digest(&user, now, None).await?,
            }
        }
        Ok(claimed)
    }

    /// The messages of `user`'s digest at `now` (queued, due, still unread, not deleted,
    /// still a member, room not muted), oldest first per room, at most
    /// [`DIGEST_ITEMS`], and how many there are in all.
    pub async fn digest_items(&self, user: &str, now: i64) -> Result<(Vec<DigestItem>, i64)> {
        const FROM: &str = "FROM email_outbox o \
             JOIN messages g ON g.room_id = o.room_id AND g.seq = o.seq \
             JOIN rooms r ON r.id = o.room_id \
             JOIN room_members m ON m.room_id = o.room_id AND m.user_id = o.user_id \
             LEFT JOIN users u ON u.id = g.sender_id \
             WHERE o.user_id = $1 AND o.due_at <= $2 AND g.deleted_at IS NULL \
               AND m.last_read_seq < o.seq AND (m.notify IS NULL OR m.notify <> 'nothing')";
        let items = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT o.room_id, r.name AS room_name, o.seq, u.username AS sender, g.body, \
               o.reason, g.created_at {FROM} ORDER BY o.room_id, o.seq LIMIT $3"
        )))
        .bind(user)
        .bind(now)
        .bind(DIGEST_ITEMS)
        .fetch_all(&self.pool)
        .await?;
        let count = format!("SELECT COUNT(*) {FROM}");
        let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(count))
            .bind(user)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok((items, total))
    }

    /// Done with `user`'s digest at `now`: what was due is dequeued and the claim ends;
    /// `next_at` (when one was sent) is the earliest the next may go.
    #[tracing::instrument(name = "db.finish_digest", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "DELETE"))]
    pub async fn finish_digest(&self, user: &str, now: i64, next_at: Option<i64>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM email_outbox WHERE user_id = $1 AND due_at <= $2")
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE email_digests SET claimed_until = 0, next_at = COALESCE($2, next_at) \
             WHERE user_id = $1",
        )
        .bind(user)
        .bind(next_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `user`'s digest could not be sent: it is tried again from `at`.
    pub async fn retry_digest(&self, user: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE email_digests SET claimed_until = $2 WHERE user_id = $1")
            .bind(user)
            .bind(at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Digests queued for `user` (waiting or due).
    pub async fn digests_queued(&self, user: &str) -> Result<i64> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM email_outbox WHERE user_id = $1")
                .bind(user)
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }

    /// Turns `user`'s digests on or off (off also drops what was queued); false for no
    /// such user.
    #[tracing::instrument(name = "db.set_email_digests", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn set_email_digests(&self, user: &str, on: bool) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("UPDATE users SET email_digests = $1 WHERE id = $2")
            .bind(i64::from(on))
            .bind(user)
            .execute(&mut *tx)
            .await?;
        if !on {
            sqlx::query("DELETE FROM email_outbox WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Turns off the digests of the user whose unsubscribe token is `token`; their user
    /// name, or `None` for an unknown token.
    pub async fn unsubscribe_digests(&self, token: &str) -> Result<Option<String>> {
        let user: Option<(String, String)> = sqlx::query_as(
            "SELECT u.id, u.username FROM email_digests d JOIN users u ON u.id = d.user_id \
             WHERE d.unsubscribe = $1",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, username)) = user else {
            return Ok(None);
        };
        self.set_email_digests(&id, false).await?;
        Ok(Some(username))
    }
}

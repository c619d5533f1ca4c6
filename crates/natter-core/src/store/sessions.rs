//! Sessions (refresh-token families) and their refresh tokens: create, rotate with reuse
//! detection, revoke, list.

use uuid::Uuid;

use super::{Result, Store};

/// A session to open with its first refresh token.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    /// Owner.
    pub user_id: &'a str,
    /// Client's user agent, for the session list.
    pub user_agent: &'a str,
    /// Client's address, for the session list.
    pub ip: &'a str,
    /// SHA-256 of the first refresh token.
    pub token_hash: &'a [u8],
    /// When that token expires, Unix milliseconds.
    pub expires_at: i64,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// A session as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    /// Session id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// User agent at the last use.
    pub user_agent: String,
    /// Client address at the last use.
    pub ip: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub last_used_at: i64,
    /// Unix milliseconds, when revoked.
    pub revoked_at: Option<i64>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now used and `new_hash` replaces it.
    Rotated {
        /// The session.
        session_id: String,
        /// Its owner.
        user_id: String,
    },
    /// The token had already been rotated: the whole session is now revoked.
    Reused {
        /// The revoked session.
        session_id: String,
    },
    /// The token's session was revoked earlier (logout, or an earlier reuse).
    Revoked,
    /// The token is past its expiry.
    Expired,
    /// No such token.
    Unknown,
}

/// Details of one rotation.
#[derive(Debug, Clone, Copy)]
pub struct RotateRequest<'a> {
    /// SHA-256 of the presented token.
    pub old_hash: &'a [u8],
    /// SHA-256 of its replacement.
    pub new_hash: &'a [u8],
    /// When the replacement expires, Unix milliseconds.
    pub expires_at: i64,
    /// Client's user agent.
    pub user_agent: &'a str,
    /// Client's address.
    pub ip: &'a str,
    /// Now, Unix milliseconds.
    pub now: i64,
}

impl Store {
    /// Opens a session with its first refresh token; returns the session id.
    #[tracing::instrument(name = "db.create_session", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn create_session(&self, new: NewSession<'_>) -> Result<String> {
        let id = Uuid::now_v7().to_string();
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, user_agent, ip, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(new.user_id)
        .bind(new.user_agent)
        .bind(new.ip)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        insert_token(&mut tx, new.token_hash, &id, new.now, new.expires_at).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Rotates a refresh token in one transaction. Presenting a token that was already
    /// rotated revokes its session (reuse means it leaked).
    #[tracing::instrument(name = "db.rotate_refresh", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn rotate_refresh(&self, req: RotateRequest<'_>) -> Result<Rotation> {
        let mut tx = self.writer.begin().await?;
        let claimed: Option<(String, i64)> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL RETURNING session_id, expires_at",
        )
        .bind(req.now)
        .bind(req.old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session_id, expires_at)) = claimed else {
            let reused: Option<(String,)> =
                sqlx::query_as("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
                    .bind(req.old_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((session_id,)) = reused else {
                return Ok(Rotation::Unknown);
            };
            revoke(&mut tx, &session_id, "refresh token reused", req.now).await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { session_id });
        };
        let (user_id, revoked_at): (String, Option<i64>) =
            sqlx::query_as("SELECT user_id, revoked_at FROM sessions WHERE id = $1")
                .bind(&session_id)
                .fetch_one(&mut *tx)
                .await?;
        if revoked_at.is_some() {
            return Ok(Rotation::Revoked);
        }
        if expires_at <= req.now {
            return Ok(Rotation::Expired);
        }
        insert_token(&mut tx, req.new_hash, &session_id, req.now, req.expires_at).await?;
        sqlx::query(
            "UPDATE sessions SET last_used_at = $1, user_agent = $2, ip = $3 WHERE id = $4",
        )
        .bind(req.now)
        .bind(req.user_agent)
        .bind(req.ip)
        .bind(&session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            session_id,
            user_id,
        })
    }

    /// The session a refresh token belongs to, whatever its state.
    #[tracing::instrument(name = "db.session_of_token", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn session_of_token(&self, token_hash: &[u8]) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Revokes a session; returns whether it was live until now.
    #[tracing::instrument(name = "db.revoke_session", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn revoke_session(&self, session_id: &str, reason: &str, now: i64) -> Result<bool> {
        let mut conn = self.writer.acquire().await?;
        revoke(&mut conn, session_id, reason, now).await
    }

    /// Sessions revoked at or after `since` (Unix ms) with when: what the deny-list must
    /// hold again after a restart lost it.
    #[tracing::instrument(name = "db.sessions_revoked_since", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn sessions_revoked_since(&self, since: i64) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT id, revoked_at FROM sessions WHERE revoked_at >= $1")
                .bind(since)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// A user's sessions, newest first.
    #[tracing::instrument(name = "db.sessions_of_user", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<SessionRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, user_agent, ip, created_at, last_used_at, revoked_at \
             FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

async fn insert_token(
    conn: &mut sqlx::AnyConnection,
    token_hash: &[u8],
    session_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(session_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn revoke(
    conn: &mut sqlx::AnyConnection,
    session_id: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(session_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

//! Accounts: create, look up by id, username or email, and update the password hash.

use uuid::Uuid;

use super::{Result, Store, map_conflict};
use crate::text::fold_case;
use crate::time::now_ms;

/// A user to create. The username is already normalised and validated.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// Lower-case username.
    pub username: &'a str,
    /// Optional email address.
    pub email: Option<&'a str>,
    /// PHC string of the password hash.
    pub password_hash: &'a str,
}

/// A stored user.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    /// UUID text.
    pub id: String,
    /// Lower-case username.
    pub username: String,
    /// Optional email address.
    pub email: Option<String>,
    /// PHC string of the password hash.
    pub password_hash: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a user; a taken username or email is [`super::StoreError::Conflict`] naming
    /// `users_username_key` or `users_email_key`.
    #[tracing::instrument(name = "db.create_user", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<UserRecord> {
        let record = UserRecord {
            id: Uuid::now_v7().to_string(),
            username: new.username.into(),
            email: new.email.map(str::to_owned),
            password_hash: new.password_hash.into(),
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO users (id, username, email, email_key, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(&record.username)
        .bind(&record.email)
        .bind(record.email.as_deref().map(fold_case))
        .bind(&record.password_hash)
        .bind(record.created_at)
        .execute(&self.writer)
        .await
        .map_err(map_conflict)?;
        Ok(record)
    }

    /// The user whose username or email (containing `@`) is `login`, case-insensitively.
    #[tracing::instrument(name = "db.user_by_login", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
        // Usernames are ASCII (auth's rule), so lower() folds them on every backend.
        let sql = if login.contains('@') {
            "SELECT id, username, email, password_hash, created_at FROM users \
             WHERE email_key = $1"
        } else {
            "SELECT id, username, email, password_hash, created_at FROM users \
             WHERE lower(username) = $1"
        };
        Ok(sqlx::query_as(sql)
            .bind(fold_case(login))
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The user with this id.
    #[tracing::instrument(name = "db.user_by_id", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>> {
        Ok(sqlx::query_as(
            "SELECT id, username, email, password_hash, created_at FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Replaces a user's password hash (re-hash after a parameter change).
    #[tracing::instrument(name = "db.set_password_hash", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

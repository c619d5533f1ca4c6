//! Public profiles: display name, bio, avatar URL; look-up by username prefix.

use super::{Result, Store};

/// What anyone signed in may see of a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileRecord {
    /// User id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Display name (empty when unset).
    pub display_name: String,
    /// Free text.
    pub bio: String,
    /// An http(s) URL, or empty.
    pub avatar_url: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// New profile fields.
#[derive(Debug, Clone, Copy)]
pub struct ProfileUpdate<'a> {
    /// Display name.
    pub display_name: &'a str,
    /// Free text.
    pub bio: &'a str,
    /// An http(s) URL, or empty.
    pub avatar_url: &'a str,
}

impl Store {
    /// A user's profile.
    #[tracing::instrument(name = "db.profile", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn profile(&self, user_id: &str) -> Result<Option<ProfileRecord>> {
        if !crate::text::is_id(user_id) {
            return Ok(None);
        }
        Ok(sqlx::query_as(
            "SELECT id, username, display_name, bio, avatar_url, created_at FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Replaces a user's profile fields; returns whether the user exists.
    #[tracing::instrument(name = "db.update_profile", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn update_profile(&self, user_id: &str, update: ProfileUpdate<'_>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET display_name = $1, bio = $2, avatar_url = $3 WHERE id = $4",
        )
        .bind(update.display_name)
        .bind(update.bio)
        .bind(update.avatar_url)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Users whose username starts with `prefix`, case-insensitively, in username order;
    /// `%`, `_` and `\` in the prefix are literal.
    #[tracing::instrument(name = "db.users_by_prefix", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn users_by_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<ProfileRecord>> {
        let pattern = format!("{}%", super::escape_like(&prefix.to_lowercase()));
        Ok(sqlx::query_as(
            "SELECT id, username, display_name, bio, avatar_url, created_at FROM users \
             WHERE lower(username) LIKE $1 ESCAPE '\\' ORDER BY lower(username) LIMIT $2",
        )
        .bind(&pattern)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}

//! Who a message's `@names` are: members of its room only, so a mention never reaches (or
//! tells anything to) someone who cannot read the room; and when the room was last
//! mentioned as a whole, for the `@room` rate limit.

use super::{Result, Store, placeholders};

impl Store {
    /// The members of `room` among the lower-cased usernames `names`, as
    /// `(user id, username)`.
    #[tracing::instrument(name = "db.members_named", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn members_named(&self, room: &str, names: &[&str]) -> Result<Vec<(String, String)>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT u.id, u.username FROM users u \
             JOIN room_members m ON m.user_id = u.id AND m.room_id = $1 \
             WHERE lower(u.username) IN ({})",
            placeholders(2, names.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(room);
        for name in names {
            query = query.bind(*name);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// When `room` was last mentioned as a whole (`@room`), in Unix milliseconds.
    #[tracing::instrument(name = "db.last_room_mention", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn last_room_mention(&self, room: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT room_mentioned_at FROM messages \
             WHERE room_id = $1 AND room_mentioned_at IS NOT NULL \
             ORDER BY room_mentioned_at DESC LIMIT 1",
        )
        .bind(room)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|(at,)| at))
    }
}

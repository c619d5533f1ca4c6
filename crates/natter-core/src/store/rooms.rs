//! Rooms and their members: create, open a direct room, find, list with cursors, search,
//! join, leave, change roles, delete.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use uuid::Uuid;

use super::{Backend, Result, Store, StoreError, map_conflict, placeholders};
use crate::text::{fold_case, is_id};
use crate::time::now_ms;

/// A room's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomKind {
    /// Anyone signed in can find, read and join it.
    Public,
    /// Invite-only.
    Group,
    /// Exactly two users.
    Direct,
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads and writes.
    Member,
    /// Also manages members.
    Admin,
    /// Also renames, deletes and transfers ownership.
    Owner,
}

/// A stored room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// UUID text.
    pub id: String,
    /// Kind.
    pub kind: RoomKind,
    /// Name; `None` for direct rooms.
    pub name: Option<String>,
    /// Creator, if still registered.
    pub created_by: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Sequence number of the newest message (0 when empty).
    pub last_seq: i64,
}

/// One of a user's rooms, with what the user has read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyRoom {
    /// The room.
    pub room: RoomRecord,
    /// The user's role.
    pub role: Role,
    /// The last sequence number the user has read.
    pub last_read_seq: i64,
    /// In a direct room, the other person's user name (what the room is called).
    pub peer: Option<String>,
}

impl MyRoom {
    /// Messages after the read marker.
    pub fn unread(&self) -> i64 {
        (self.room.last_seq - self.last_read_seq).max(0)
    }
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The user.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Unix milliseconds.
    pub joined_at: i64,
    /// Last sequence number they have read (0 when they do not share read receipts).
    pub last_read_seq: i64,
}

/// One page of a listing and the cursor of the next, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Pass back to get the next page.
    pub next: Option<String>,
}

pub(crate) type RoomRow = (String, String, Option<String>, Option<String>, i64, i64);
type MyRoomRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    String,
    i64,
    Option<String>,
);
type RoomRoleRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<String>,
);

impl RoomKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Group => "group",
            Self::Direct => "direct",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(Self::Public),
            "group" => Some(Self::Group),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

pub(crate) fn room(row: RoomRow) -> Result<RoomRecord> {
    let (id, kind, name, created_by, created_at, last_seq) = row;
    let kind = RoomKind::parse(&kind).ok_or_else(|| corrupt("rooms.kind", &kind))?;
    Ok(RoomRecord {
        id,
        kind,
        name,
        created_by,
        created_at,
        last_seq,
    })
}

pub(crate) fn corrupt(column: &str, value: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(
        format!("unexpected {column} value `{value}`").into(),
    ))
}

impl Store {
    /// Creates a public or group room with `owner` as its owner. A public room whose name
    /// is taken (case-insensitively) is a conflict naming `name_key` (the index on
    /// PostgreSQL, the column on SQLite).
    #[tracing::instrument(name = "db.create_room", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn create_room(&self, kind: RoomKind, name: &str, owner: &str) -> Result<RoomRecord> {
        let id = Uuid::now_v7().to_string();
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO rooms (id, kind, name, name_key, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(name)
        .bind(fold_case(name))
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_conflict)?;
        add_member_in(&mut tx, &id, owner, Role::Owner, now).await?;
        tx.commit().await?;
        Ok(RoomRecord {
            id,
            kind,
            name: Some(name.to_owned()),
            created_by: Some(owner.to_owned()),
            created_at: now,
            last_seq: 0,
        })
    }

    /// The direct room of two users, created (both as members) if they have none yet.
    /// Concurrent calls for the same pair return the same room.
    #[tracing::instrument(name = "db.open_direct", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn open_direct(&self, me: &str, other: &str) -> Result<RoomRecord> {
        let key = if me < other {
            format!("{me}:{other}")
        } else {
            format!("{other}:{me}")
        };
        let id = Uuid::now_v7().to_string();
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO rooms (id, kind, direct_key, created_by, created_at) \
             VALUES ($1, 'direct', $2, $3, $4) ON CONFLICT (direct_key) DO NOTHING",
        )
        .bind(&id)
        .bind(&key)
        .bind(me)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            add_member_in(&mut tx, &id, me, Role::Member, now).await?;
            add_member_in(&mut tx, &id, other, Role::Member, now).await?;
        }
        tx.commit().await?;
        let sql = "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq \
                   FROM rooms r WHERE r.direct_key = $1";
        let row: RoomRow = sqlx::query_as(sql)
            .bind(&key)
            .fetch_one(&self.writer)
            .await?;
        room(row)
    }

    /// The room with this id.
    #[tracing::instrument(name = "db.room", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn room(&self, id: &str) -> Result<Option<RoomRecord>> {
        if !is_id(id) {
            return Ok(None);
        }
        let sql = "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq \
                   FROM rooms r WHERE r.id = $1";
        let row: Option<RoomRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(room).transpose()
    }

    /// The newest sequence number of each of `ids` that exists, in as few queries as the
    /// bind-parameter limits allow: what a replica needs to catch its subscribers up.
    #[tracing::instrument(name = "db.room_heads", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn room_heads(&self, ids: &[&str]) -> Result<Vec<(String, i64)>> {
        let mut heads = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, last_seq FROM rooms WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            heads.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(heads)
    }

    /// The room and `user`'s role in it (if a member), in one query: what every
    /// authorization needs.
    #[tracing::instrument(name = "db.room_with_role", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn room_with_role(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<(RoomRecord, Option<Role>)>> {
        if !is_id(id) {
            return Ok(None);
        }
        let sql = "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq, m.role \
                   FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 \
                   WHERE r.id = $1";
        let row: Option<RoomRoleRow> = sqlx::query_as(sql)
            .bind(id)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        let Some((id, kind, name, created_by, created_at, last_seq, role)) = row else {
            return Ok(None);
        };
        let role = role
            .map(|r| Role::parse(&r).ok_or_else(|| corrupt("room_members.role", &r)))
            .transpose()?;
        Ok(Some((
            room((id, kind, name, created_by, created_at, last_seq))?,
            role,
        )))
    }

    /// Renames a public or group room.
    #[tracing::instrument(name = "db.rename_room", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn rename_room(&self, id: &str, name: &str) -> Result<()> {
        sqlx::query("UPDATE rooms SET name = $1, name_key = $2 WHERE id = $3")
            .bind(name)
            .bind(fold_case(name))
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(map_conflict)?;
        Ok(())
    }

    /// Deletes a room with its members and messages; returns whether it existed.
    #[tracing::instrument(name = "db.delete_room", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "DELETE"))]
    pub async fn delete_room(&self, id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM messages WHERE room_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM room_members WHERE room_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Public rooms by name (case-insensitive), then id; `after` is a cursor from a
    /// previous page. `query` filters by substring, `%`, `_` and `\` taken literally.
    #[tracing::instrument(name = "db.public_rooms", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn public_rooms(
        &self,
        query: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<RoomRecord>> {
        let pattern = format!("%{}%", escape_like(&fold_case(query.unwrap_or_default())));
        let (after_name, after_id) = split_cursor(after)?;
        let sql = "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq FROM rooms r \
                   WHERE r.kind = 'public' AND r.name_key LIKE $1 ESCAPE '\\' \
                   AND (r.name_key > $2 OR (r.name_key = $2 AND r.id > $3)) \
                   ORDER BY r.name_key, r.id LIMIT $4";
        let rows: Vec<RoomRow> = sqlx::query_as(sql)
            .bind(&pattern)
            .bind(&after_name)
            .bind(&after_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let rooms = rows.into_iter().map(room).collect::<Result<Vec<_>>>()?;
        Ok(paginate(rooms, limit, |r| {
            join_cursor(&fold_case(r.name.as_deref().unwrap_or_default()), &r.id)
        }))
    }

    /// The rooms `user` is a member of, oldest first by id; `after` is a room id cursor.
    #[tracing::instrument(name = "db.rooms_of_user", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn rooms_of_user(
        &self,
        user: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<MyRoom>> {
        if after.is_some_and(|id| !is_id(id)) {
            return Err(StoreError::InvalidCursor);
        }
        let sql = "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, r.last_seq, \
                   m.role, m.last_read_seq, \
                   CASE WHEN r.kind = 'direct' THEN (SELECT u.username FROM room_members o \
                   JOIN users u ON u.id = o.user_id \
                   WHERE o.room_id = r.id AND o.user_id <> m.user_id LIMIT 1) END \
                   FROM room_members m JOIN rooms r ON r.id = m.room_id \
                   WHERE m.user_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3";
        let rows: Vec<MyRoomRow> = sqlx::query_as(sql)
            .bind(user)
            .bind(after.unwrap_or_default())
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let rooms = rows
            .into_iter()
            .map(
                |(id, kind, name, created_by, created_at, last_seq, role, last_read_seq, peer)| {
                    let role =
                        Role::parse(&role).ok_or_else(|| corrupt("room_members.role", &role))?;
                    let room = room((id, kind, name, created_by, created_at, last_seq))?;
                    Ok(MyRoom {
                        room,
                        role,
                        last_read_seq,
                        peer,
                    })
                },
            )
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(rooms, limit, |r| r.room.id.clone()))
    }

    /// The rooms each of `users` is a member of (at most `limit` each) and their kinds,
    /// as `(user, room, kind)`: what their chat connections may subscribe to, read once
    /// when they authenticate — in one query for the many that authenticate at once.
    #[tracing::instrument(name = "db.member_rooms", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT", users = users.len()))]
    pub async fn member_rooms(
        &self,
        users: &[&str],
        limit: u32,
    ) -> Result<Vec<(String, String, RoomKind)>> {
        let mut users: Vec<&str> = users.iter().copied().filter(|u| is_id(u)).collect();
        users.sort_unstable();
        users.dedup();
        let Some(&last) = users.last() else {
            return Ok(Vec::new());
        };
        // The rows come back as one JSON array: one row to hand over instead of one per
        // membership (SQLite's worker passes rows one at a time across a channel, and
        // the `Any` driver converts each), which was most of a storm's read.
        let joined;
        let (rows, ids, binds) = match self.backend {
            // One statement for every batch, the ids joined by commas (an id has none).
            // PostgreSQL plans a prepared statement for its parameters' values five
            // times on each connection, then keeps a generic plan if it costs no more
            // (an index lookup per id). With padded `IN` lists of four sizes, nearly
            // every read of a storm was planned anew, 64 values at a time
            // (docs/latency.md).
            Backend::Postgres => {
                joined = users.join(",");
                let rows =
                    "COALESCE(json_agg(json_build_array(user_id, room_id, kind)), '[]')::TEXT";
                let ids = "SELECT unnest(string_to_array($2, ','))".to_owned();
                (rows, ids, vec![joined.as_str()])
            }
            // A few statement shapes serve every batch (each is prepared once per
            // connection): the list is padded with its last id, which changes no answer.
            Backend::Sqlite => {
                let shape = [1, 4, 16, 64].into_iter().find(|&n| n >= users.len());
                users.resize(shape.unwrap_or(users.len()), last);
                let rows = "json_group_array(json_array(user_id, room_id, kind))";
                (rows, placeholders(2, users.len()), users)
            }
        };
        let sql = format!(
            "SELECT {rows} FROM (\
               SELECT m.user_id, m.room_id, r.kind, \
                 ROW_NUMBER() OVER (PARTITION BY m.user_id ORDER BY m.room_id) AS n \
               FROM room_members m JOIN rooms r ON r.id = m.room_id \
               WHERE m.user_id IN ({ids})) AS mine \
             WHERE n <= $1"
        );
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit));
        let query = binds.into_iter().fold(query, |query, id| query.bind(id));
        let json: String = query.fetch_one(&self.pool).await?;
        let rows: Vec<(String, String, String)> = serde_json::from_str(&json)
            .map_err(|error| corrupt("member_rooms", &error.to_string()))?;
        rows.into_iter()
            .map(|(user, room, kind)| {
                let kind = RoomKind::parse(&kind).ok_or_else(|| corrupt("rooms.kind", &kind))?;
                Ok((user, room, kind))
            })
            .collect()
    }

    /// `user`'s role in `room`, if a member.
    #[tracing::instrument(name = "db.role", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn role(&self, room: &str, user: &str) -> Result<Option<Role>> {
        if !is_id(room) || !is_id(user) {
            return Ok(None);
        }
        let row: Option<(String,)> =
            sqlx::query_as("SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(role,)| Role::parse(&role).ok_or_else(|| corrupt("room_members.role", &role)))
            .transpose()
    }

    /// Adds a member (no-op when already one); returns whether they were added.
    #[tracing::instrument(name = "db.add_member", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT"))]
    pub async fn add_member(&self, room: &str, user: &str, role: Role) -> Result<bool> {
        let mut conn = self.writer.acquire().await?;
        add_member_in(&mut conn, room, user, role, now_ms()).await
    }

    /// Removes a member; returns whether they were one.
    #[tracing::instrument(name = "db.remove_member", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "DELETE"))]
    pub async fn remove_member(&self, room: &str, user: &str) -> Result<bool> {
        if !is_id(room) || !is_id(user) {
            return Ok(false);
        }
        let done = sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
            .bind(room)
            .bind(user)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a member's role; returns whether they were a member.
    #[tracing::instrument(name = "db.set_role", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn set_role(&self, room: &str, user: &str, role: Role) -> Result<bool> {
        if !is_id(room) || !is_id(user) {
            return Ok(false);
        }
        let done =
            sqlx::query("UPDATE room_members SET role = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(room)
                .bind(user)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Makes `to` the owner and `from` an admin, in one transaction.
    #[tracing::instrument(name = "db.transfer_ownership", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "UPDATE"))]
    pub async fn transfer_ownership(&self, room: &str, from: &str, to: &str) -> Result<bool> {
        if !is_id(room) || !is_id(to) {
            return Ok(false);
        }
        let mut tx = self.writer.begin().await?;
        let promoted = sqlx::query(
            "UPDATE room_members SET role = 'owner' WHERE room_id = $1 AND user_id = $2",
        )
        .bind(room)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        if promoted.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE room_members SET role = 'admin' WHERE room_id = $1 AND user_id = $2")
            .bind(room)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A room's members, by join time then user id.
    #[tracing::instrument(name = "db.members", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "SELECT"))]
    pub async fn members(&self, room: &str) -> Result<Vec<MemberRecord>> {
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT m.user_id, u.username, m.role, m.joined_at, \
             CASE WHEN u.share_receipts = 1 THEN m.last_read_seq ELSE 0 END \
             FROM room_members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 ORDER BY m.joined_at, m.user_id",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(user_id, username, role, joined_at, last_read_seq)| {
                let role = Role::parse(&role).ok_or_else(|| corrupt("room_members.role", &role))?;
                Ok(MemberRecord {
                    user_id,
                    username,
                    role,
                    joined_at,
                    last_read_seq,
                })
            })
            .collect()
    }
}

async fn add_member_in(
    conn: &mut sqlx::AnyConnection,
    room: &str,
    user: &str,
    role: Role,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room)
    .bind(user)
    .bind(role.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Keeps `limit` items and makes the cursor of the next page from the last one kept.
pub(crate) fn paginate<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(cursor) } else { None };
    Page { items, next }
}

/// Most characters in a cursor of the public room list.
pub const CURSOR_MAX: usize = 1024;

/// An opaque cursor for a (name, id) position.
fn join_cursor(name: &str, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}\u{1f}{name}"))
}

fn split_cursor(cursor: Option<&str>) -> Result<(String, String)> {
    let Some(cursor) = cursor else {
        return Ok((String::new(), String::new()));
    };
    if cursor.len() > CURSOR_MAX
        || !cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(StoreError::InvalidCursor);
    }
    // Any string of base64url characters reads as some position, so that a cursor the
    // store did not make is never an error: a dangling last character is dropped,
    // trailing bits are allowed, and what does not decode to UTF-8 or holds NUL is
    // replaced.
    let whole = &cursor[..cursor.len() - usize::from(cursor.len() % 4 == 1)];
    let bytes = LENIENT
        .decode(whole)
        .map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8_lossy(&bytes).replace('\0', "\u{fffd}");
    let (id, name) = text.split_once('\u{1f}').unwrap_or(("", &text));
    Ok((name.to_owned(), id.to_owned()))
}

/// Decodes any unpadded base64url text of a valid length.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

-- Profiles (on users), rooms, members and messages.

ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar_url TEXT NOT NULL DEFAULT '';

CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('public', 'group', 'direct')),
    -- NULL for direct rooms.
    name       TEXT,
    -- For direct rooms: the two user ids in order, so a pair has at most one room.
    direct_key TEXT UNIQUE,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    -- The last message sequence number handed out; messages get last_seq + 1 in the
    -- transaction that inserts them, so sequences have no gaps.
    last_seq   INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rooms_public_name_key ON rooms (lower(name)) WHERE kind = 'public';
CREATE INDEX rooms_name_idx ON rooms (lower(name), id);

CREATE TABLE room_members (
    room_id       TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user_idx ON room_members (user_id, room_id);

CREATE TABLE messages (
    room_id    TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    sender_id  TEXT REFERENCES users (id) ON DELETE SET NULL,
    -- Chosen by the sending client; a retry with the same id returns the same message.
    client_id  TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    deleted_at INTEGER,
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX messages_client_key ON messages (room_id, sender_id, client_id);

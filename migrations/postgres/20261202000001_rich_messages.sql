-- Rich messages: mentions (kept with the message for reading, and one row per mentioned
-- member for finding a user's mentions), pins, and the earlier texts of edited messages.
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';
-- When the message mentions @room: its creation time (for the @room rate limit).
ALTER TABLE messages ADD COLUMN room_mentioned_at BIGINT;
ALTER TABLE messages ADD COLUMN pinned_at BIGINT;
ALTER TABLE messages ADD COLUMN pinned_by TEXT;
CREATE INDEX messages_pinned ON messages (room_id, pinned_at) WHERE pinned_at IS NOT NULL;
CREATE INDEX messages_room_mentions ON messages (room_id, room_mentioned_at)
    WHERE room_mentioned_at IS NOT NULL;

CREATE TABLE message_mentions (
    room_id TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (room_id, seq, user_id),
    FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
CREATE INDEX message_mentions_user ON message_mentions (user_id, room_id, seq);

CREATE TABLE message_edits (
    room_id    TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    written_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq, version),
    FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);

-- Emoji reactions: one row per message, user and emoji, so adding is idempotent and a
-- count is the number of rows (no counter to lose an update).
CREATE TABLE message_reactions (
    room_id    TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id),
    FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);

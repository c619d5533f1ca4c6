-- Email digests: whether a user wants them, the outbox of unread mentions and direct
-- messages waiting for one (one row per user, room and message), how far each room's
-- messages were looked at for them, and each user's digest schedule and unsubscribe
-- token.
ALTER TABLE users ADD COLUMN email_digests BIGINT NOT NULL DEFAULT 1;

CREATE TABLE email_outbox (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    -- 'mention', 'room' or 'direct'.
    reason     TEXT NOT NULL,
    -- When it may go into a digest (Unix ms): the digest delay after it was sent.
    due_at     BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
);
CREATE INDEX email_outbox_due ON email_outbox (due_at);

CREATE TABLE email_cursors (
    room_id TEXT PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL
);

CREATE TABLE email_digests (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- No digest to this user before then (Unix ms): one per delay at most.
    next_at       BIGINT NOT NULL DEFAULT 0,
    -- A sender holds the user until then; another takes over after.
    claimed_until BIGINT NOT NULL DEFAULT 0,
    -- The secret of the digests' unsubscribe link (it can only stop digests).
    unsubscribe   TEXT NOT NULL UNIQUE
);

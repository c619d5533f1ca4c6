-- Web Push: browsers' push subscriptions, the durable outbox of pushes due (one row per
-- user, room and message, so two replicas never send one twice), and how far each room's
-- messages have been looked at for pushes.
CREATE TABLE push_subscriptions (
    endpoint   TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The browser's P-256 public key and auth secret (base64url), RFC 8291.
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

CREATE TABLE push_outbox (
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id       TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    -- 'direct', 'mention', 'room' or 'all'.
    reason        TEXT NOT NULL,
    due_at        BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    -- A sender holds the row until then; another takes it over after.
    claimed_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, room_id, seq)
);
CREATE INDEX push_outbox_due ON push_outbox (due_at);

-- The members a plain message may notify: those who chose level 'all'.
CREATE INDEX room_members_loud ON room_members (room_id, user_id) WHERE notify = 'all';

CREATE TABLE push_cursors (
    room_id TEXT PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL
);

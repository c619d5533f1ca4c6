-- Threads: a thread message names its root (a message of the same room that is not in a
-- thread) and takes the room's next seq like any message; it stays out of the room's
-- timeline unless also sent to the room. The root keeps the thread's summary, updated in
-- the transaction of each reply; followers keep a read marker per thread.
ALTER TABLE messages ADD COLUMN thread_root BIGINT;
-- 1 when a thread message is also shown in the room's timeline.
ALTER TABLE messages ADD COLUMN also_to_room BIGINT NOT NULL DEFAULT 0;
-- On a root: how many replies, when the last came, and who took part (user ids,
-- separated by spaces, the first 20).
ALTER TABLE messages ADD COLUMN thread_replies BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_last_at BIGINT;
ALTER TABLE messages ADD COLUMN thread_participants TEXT NOT NULL DEFAULT '';
CREATE INDEX messages_thread ON messages (room_id, thread_root, seq)
    WHERE thread_root IS NOT NULL;

CREATE TABLE thread_follows (
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id  TEXT NOT NULL,
    root_seq BIGINT NOT NULL,
    -- The highest seq of the thread the follower has read.
    read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, room_id, root_seq),
    FOREIGN KEY (room_id, root_seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);

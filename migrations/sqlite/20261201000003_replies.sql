-- Replies: the seq of the message of the same room a message answers (it stays in the
-- room's one ordered log; the original may be deleted later and is then shown as such).
ALTER TABLE messages ADD COLUMN reply_to BIGINT;

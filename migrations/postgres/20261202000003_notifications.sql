-- Notifications: a member's notification level per room, whether a user shares read
-- receipts, and each room's member count (receipts are shown in rooms up to a size).

-- 'all', 'mentions' or 'nothing'; NULL for the default (all in direct rooms, mentions
-- elsewhere).
ALTER TABLE room_members ADD COLUMN notify TEXT
    CHECK (notify IS NULL OR notify IN ('all', 'mentions', 'nothing'));
-- 1 when others may see how far this user has read (and they see others').
ALTER TABLE users ADD COLUMN share_receipts BIGINT NOT NULL DEFAULT 1;
-- Kept by the triggers below in the transaction of every membership change.
ALTER TABLE rooms ADD COLUMN members BIGINT NOT NULL DEFAULT 0;
UPDATE rooms SET members = (SELECT count(*) FROM room_members m WHERE m.room_id = rooms.id);

CREATE FUNCTION room_members_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE rooms SET members = members + 1 WHERE id = NEW.room_id;
    ELSE
        UPDATE rooms SET members = members - 1 WHERE id = OLD.room_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER room_members_count AFTER INSERT OR DELETE ON room_members
    FOR EACH ROW EXECUTE FUNCTION room_members_count();

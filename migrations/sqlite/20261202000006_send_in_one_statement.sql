-- A send is one statement on SQLite: the message takes the room's next seq in its own
-- INSERT, and this trigger moves the room's counter in the same statement, so a send
-- needs no BEGIN/COMMIT round trips, and a duplicate client id rolls both back.
CREATE TRIGGER messages_take_seq AFTER INSERT ON messages BEGIN
    UPDATE rooms SET last_seq = NEW.seq WHERE id = NEW.room_id AND last_seq < NEW.seq;
END;

-- Case-insensitive uniqueness and search use keys folded in Rust (Unicode lower case), the
-- same on every backend and whatever the database locale (lower() folds ASCII only under
-- the C locale). Rows whose text is ASCII get their key here; the others are folded by the
-- store right after migrating.
ALTER TABLE rooms ADD COLUMN name_key TEXT;
UPDATE rooms SET name_key = lower(name) WHERE name !~ '[^ -~]';
DROP INDEX rooms_public_name_key;
DROP INDEX rooms_name_idx;
DROP INDEX rooms_name_trgm_idx;
CREATE UNIQUE INDEX rooms_public_name_key ON rooms (name_key) WHERE kind = 'public';
CREATE INDEX rooms_name_idx ON rooms (name_key, id);
CREATE INDEX rooms_name_trgm_idx ON rooms USING gin (name_key gin_trgm_ops);

ALTER TABLE users ADD COLUMN email_key TEXT;
UPDATE users SET email_key = lower(email) WHERE email !~ '[^ -~]';
DROP INDEX users_email_key;
CREATE UNIQUE INDEX users_email_key ON users (email_key);

-- Sessions revoked lately go back on the deny-list at start.
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

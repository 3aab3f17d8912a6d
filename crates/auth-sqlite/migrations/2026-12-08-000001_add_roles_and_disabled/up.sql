-- Roles and the disabled state (administration), as in PostgreSQL. Every account is a 'user';
-- an 'admin' may administer the others. A disabled account (disabled_at set, UTC text like
-- the other times) has no sessions and cannot log in.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'));
ALTER TABLE users ADD COLUMN disabled_at TEXT;

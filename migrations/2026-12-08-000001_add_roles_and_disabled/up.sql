-- Roles and the disabled state (administration). Every account is a 'user'; an 'admin' may
-- administer the others. A disabled account (disabled_at set) has no sessions and cannot log
-- in. Neither change moves updated_at, which tracks the credentials.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'user';
ALTER TABLE users ADD CONSTRAINT users_role_known CHECK (role IN ('user', 'admin'));
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

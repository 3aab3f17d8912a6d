ALTER TABLE users DROP COLUMN disabled_at;
ALTER TABLE users DROP CONSTRAINT users_role_known;
ALTER TABLE users DROP COLUMN role;

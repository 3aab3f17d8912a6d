-- The languages an account's mail is written in: the signup request's Accept-Language,
-- bounded by the application (at most 128 printable ASCII characters).
ALTER TABLE users ADD COLUMN language TEXT CHECK (length(language) <= 128);

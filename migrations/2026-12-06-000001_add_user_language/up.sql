-- The languages an account's mail is written in: the signup request's Accept-Language,
-- bounded by the application (at most 128 printable ASCII characters).
ALTER TABLE users ADD COLUMN language text;
ALTER TABLE users ADD CONSTRAINT users_language_bounded CHECK (char_length(language) <= 128);

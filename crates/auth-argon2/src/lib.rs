//! Argon2id PasswordHasher adapter for SecureAuth, off the async executor with bounded concurrency.

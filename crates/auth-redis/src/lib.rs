//! Redis SessionStore and OtpStore adapters for SecureAuth (deadpool-redis).

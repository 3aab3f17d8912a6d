//! SMTP Mailer adapter for SecureAuth (lettre).

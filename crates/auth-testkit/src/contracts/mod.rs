//! Contract suites: `async fn`s that take a fresh, empty implementation of a port and panic
//! when it breaks the port's documented contract.

pub mod mail_with_changes;
pub mod otp_store;
pub mod outbox;
pub mod passkeys;
pub mod rate_limiter;
pub mod security_events;
pub mod session_store;
pub mod totp_store;
pub mod user_repository;
pub mod webhooks;

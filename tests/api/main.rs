//! Black-box tests of the REST API. Every test runs twice from the same code: once on the
//! server profile (real PostgreSQL, Redis and a loopback SMTP server) and once on the embedded
//! profile (SQLite, in-memory store, `.eml` files), so the two cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod helpers;

/// Generates `server::name` and `embedded::name` tests from `async fn name(profile: Profile)`.
#[macro_export]
macro_rules! both_profiles {
    ($($name:ident),* $(,)?) => {
        mod server {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Profile::Server).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Profile::Embedded).await
                }
            )*
        }
    };
}

mod abuse;
mod addresses;
mod admin;
mod audit;
mod breached;
mod devices;
mod email_change;
mod embedded;
mod events;
mod failures;
mod fuzz;
mod hardening;
mod lifecycle;
mod lockout;
mod logs;
mod metrics;
mod mfa;
mod outbox;
mod passkey_revocation;
mod passkeys;
mod slow_clients;
mod startup;
mod takeover;
mod tokens;
mod webhooks;

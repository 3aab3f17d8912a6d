//! # auth-core
//!
//! The SecureAuth domain: e-mail + password accounts with verified addresses, server-side
//! revocable sessions and password reset by e-mailed one-time code.
//!
//! This crate is pure: it defines the domain types ([`EmailAddress`], [`Password`],
//! [`OtpCode`], [`SessionToken`], [`UserId`], [`User`]), the ports the domain needs
//! ([`UserRepository`], [`SessionStore`], [`OtpStore`], [`Mailer`], [`PasswordHasher`],
//! [`Clock`], [`RandomSource`], [`RateLimiter`]), and the [`AuthService`] that implements every
//! rule against those ports, including its own abuse policy ([`throttle`]: request budgets per
//! client and per address, re-authentication budgets, a fair share of the password hasher).
//! It depends on no database, cache, mailer, web framework or async runtime; adapters live in
//! their own crates (`auth-memory` has every in-process one).
//!
//! # Implementing a port
//! Ports are object-safe `async_trait` traits. Everything their signatures name is re-exported
//! here ([`async_trait`](macro@async_trait), [`DateTime`], [`Utc`], [`SecretString`],
//! [`Duration`]), so an adapter crate needs no extra dependency:
//! ```
//! use auth_core::{async_trait, EmailAddress, MailMessage, Mailer, MailerError};
//!
//! #[derive(Debug)]
//! struct StdoutMailer;
//!
//! #[async_trait]
//! impl Mailer for StdoutMailer {
//!     async fn send(&self, to: &EmailAddress, message: &MailMessage) -> Result<(), MailerError> {
//!         println!("to {to}: {message:?}");
//!         Ok(())
//!     }
//! }
//! ```
//! Writing `async fn` in the `impl` without `#[async_trait]` fails with E0195 ("lifetime
//! parameters or bounds on method do not match the trait declaration"): add the attribute.
//!
//! # Testing code that embeds the service
//! With the `mocks` feature, mockall mocks of every port are exported
//! ([`MockUserRepository`], ...), with a hand-moved clock ([`testing::ManualClock`]) and
//! [`testing::MockPorts`], which builds a service from mocks in one line.

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, see Cargo.toml) marks what needs the `mocks` feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod domain;
pub mod outbox;
pub mod ports;
pub mod seal;
pub mod service;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub mod testing;
pub mod throttle;
pub mod webhooks;

pub use domain::device::{DeviceCredential, DeviceId, MAX_DEVICE_CREDENTIAL_LEN};
pub use domain::email::{EmailAddress, EmailError, MAX_EMAIL_LEN};
pub use domain::mfa::{
    ClientBinding, MfaToken, RecoveryCode, RecoveryCodeHash, SecondFactor, SecondFactorError,
    RECOVERY_CODE_COUNT,
};
pub use domain::otp::{
    OtpAttempt, OtpCode, OtpError, OtpMac, OtpPurpose, OtpSecret, OtpSecretError, StoredOtp,
};
pub use domain::passkey::{
    outer_credential_id, CeremonyId, CredentialShapeError, PasskeyId, PasskeyName,
    PasskeyNameError, MAX_CREDENTIAL_ID_BYTES, MAX_PASSKEY_NAME_CHARS, MIN_CREDENTIAL_ID_BYTES,
};
pub use domain::password::{
    common_password_count, Password, PasswordAttempt, PasswordError, PasswordHash, PasswordPolicy,
    DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS,
};
pub use domain::session::{
    ClientInfo, Session, SessionBinding, SessionId, SessionToken, TokenHash, TOKEN_BYTES,
    TOKEN_CHARS,
};
pub use domain::totp::{Totp, TotpError, TotpSecret, TOTP_STEP_SECS};
pub use domain::user::{
    AccountState, AccountStatus, AccountSummary, NewUser, Role, User, UserCredentials, UserId,
    UserQuery,
};
pub use ports::*;
pub use service::*;
pub use throttle::{budget_ip, Action, ActionLimits, RateLimit, ThrottleConfig};

pub use async_trait::async_trait;
pub use chrono::{DateTime, Utc};
pub use secrecy::{ExposeSecret, SecretString};
pub use std::time::Duration;

//! # auth-core
//!
//! The SecureAuth domain: e-mail + password accounts with verified addresses, server-side
//! revocable sessions and password reset by e-mailed one-time code.
//!
//! This crate is pure: it defines the domain types ([`EmailAddress`], [`Password`],
//! [`OtpCode`], [`SessionToken`], [`UserId`], [`User`]), the ports the domain needs
//! ([`UserRepository`], [`SessionStore`], [`OtpStore`], [`Mailer`], [`PasswordHasher`],
//! [`Clock`], [`RandomSource`], [`RateLimiter`]), the [`AuthService`] that implements every
//! rule against those ports, and the [`throttle`] policy (request budgets per client IP and
//! per address) that an application runs before each unauthenticated action. It depends on no database, cache, mailer, web framework or async runtime;
//! adapters live in their own crates.
//!
//! With the `mocks` feature, mockall mocks of every port are exported
//! ([`MockUserRepository`], ...), so you can unit-test code that embeds the service, together
//! with a hand-moved clock ([`testing::ManualClock`]).

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, see Cargo.toml) marks what needs the `mocks` feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod domain;
pub mod ports;
pub mod service;
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub mod testing;
pub mod throttle;

pub use domain::email::{EmailAddress, EmailError, MAX_EMAIL_LEN};
pub use domain::otp::{OtpAttempt, OtpCode, OtpError, OtpMac, OtpPurpose, OtpSecret, StoredOtp};
pub use domain::password::{
    common_password_count, Password, PasswordAttempt, PasswordError, PasswordHash, PasswordPolicy,
    DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS,
};
pub use domain::session::{
    ClientInfo, Session, SessionId, SessionToken, TokenHash, TOKEN_BYTES, TOKEN_CHARS,
};
pub use domain::user::{NewUser, User, UserCredentials, UserId};
pub use ports::*;
pub use service::*;
pub use throttle::{Action, ActionLimits, RateLimit, Throttle, ThrottleConfig, ThrottleError};

//! Helpers for unit-testing code that embeds [`crate::AuthService`] (available with the `mocks`
//! feature, next to the mocks of every port).
//!
//! Time-based rules (code lifetime, session lifetime) are easier to test with a clock you move
//! by hand than with [`crate::MockClock`] and a fixed `returning`: see [`ManualClock`].
//!
//! # Example: a unit test of a time-based rule
//! The store holds a code that is valid for ten minutes; ten minutes later it is refused.
//! The service is async but needs no runtime: any executor drives it.
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use auth_core::testing::MockPorts;
//! use auth_core::*;
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use futures::executor::block_on;
//!
//! let issued_at = Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap();
//! let secret = || OtpSecret::new(vec![7u8; 32].into_boxed_slice().into()).unwrap();
//! // MockPorts uses this key; a test that computes MACs uses it too.
//! assert_eq!(testing::MOCK_OTP_KEY, [7u8; 32]);
//! let email = EmailAddress::parse("ada@example.com").unwrap();
//! let code = OtpCode::parse("042917").unwrap();
//!
//! let stored = StoredOtp {
//!     mac: secret().mac(OtpPurpose::VerifyEmail, &email, &code),
//!     expires_at: issued_at + TimeDelta::minutes(10),
//!     pending_password: None,
//!     requested_by: None,
//! };
//! let mut otps = MockOtpStore::new();
//! otps.expect_record_attempt()
//!     .returning(move |_, _| Ok(Some(OtpAttempt { codes: vec![stored.clone()], attempts: 1 })));
//! otps.expect_consume().never();
//!
//! let mut ports = MockPorts::new(issued_at);
//! ports.otps = otps;
//! let clock = ports.clock.clone();
//! let service = ports.service();
//!
//! clock.advance(Duration::from_secs(10 * 60));
//! let result = block_on(service.verify_otp(&email, &code, &ClientInfo::default()));
//! assert!(matches!(result, Err(OtpCheckError::OtpExpired)));
//! ```

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::ports::Clock;

/// A [`Clock`] that stands still until you move it.
///
/// Keep an `Arc<ManualClock>` in the test and hand a clone to the service; `set` and `advance`
/// then move the service's "now".
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use auth_core::testing::ManualClock;
/// use auth_core::Clock;
/// use chrono::{TimeZone, Utc};
///
/// let start = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
/// let clock = Arc::new(ManualClock::new(start));
/// let for_the_service: Arc<dyn Clock> = clock.clone();
///
/// clock.advance(Duration::from_secs(10 * 60));
/// assert_eq!(for_the_service.now(), start + chrono::TimeDelta::minutes(10));
///
/// clock.set(start);
/// assert_eq!(for_the_service.now(), start);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `at` (backwards too).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    /// Moves the clock forward by `by` (saturating at the latest representable time).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = TimeDelta::from_std(by)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        // A test that panicked while holding the lock left a valid time behind.
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The code secret a service built by [`MockPorts::service`] uses.
pub const MOCK_OTP_KEY: [u8; 32] = [7; 32];

/// Every port of the service as a mock (or a test double), ready for expectations; then
/// [`MockPorts::service`] builds the service in one line. The rate limiter is
/// [`Unlimited`](crate::Unlimited) and the configuration the default unless you replace them.
///
/// ```
/// use auth_core::testing::MockPorts;
/// use auth_core::*;
/// use futures::executor::block_on;
///
/// let mut ports = MockPorts::new(Utc::now());
/// ports.sessions.expect_get().returning(|_| Ok(None));
/// let service = ports.service();
/// let token = SessionToken::from_bytes([1; 32]);
/// assert!(matches!(
///     block_on(service.authenticate(&token)),
///     Err(AuthenticateError::Unauthenticated)
/// ));
/// ```
pub struct MockPorts {
    /// Accounts.
    pub users: crate::MockUserRepository,
    /// Sessions.
    pub sessions: crate::MockSessionStore,
    /// Codes and cooldowns.
    pub otps: crate::MockOtpStore,
    /// Mail.
    pub mailer: crate::MockMailer,
    /// Hashing. Unless you set expectations on `is_saturated` and `capacity`, it is never
    /// saturated and has no total bound.
    pub hasher: crate::MockPasswordHasher,
    /// A clock moved by hand.
    pub clock: std::sync::Arc<ManualClock>,
    /// Randomness (the operating system's by default).
    pub random: std::sync::Arc<dyn crate::RandomSource>,
    /// Request budgets ([`Unlimited`](crate::Unlimited) by default).
    pub limiter: std::sync::Arc<dyn crate::RateLimiter>,
    /// Second factors. Unless you set expectations on `get`, every user has TOTP off.
    pub totp: crate::MockTotpStore,
    /// The service's configuration.
    pub config: crate::AuthConfig,
    /// The security event store: `None` (the default) records nothing; `Some` is attached
    /// with [`SecurityEventConfig::default`](crate::SecurityEventConfig).
    pub events: Option<crate::MockSecurityEvents>,
}

impl std::fmt::Debug for MockPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockPorts")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MockPorts {
    /// Fresh mocks with no expectations, a clock at `now`.
    pub fn new(now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            users: crate::MockUserRepository::new(),
            sessions: crate::MockSessionStore::new(),
            otps: crate::MockOtpStore::new(),
            mailer: crate::MockMailer::new(),
            hasher: crate::MockPasswordHasher::new(),
            clock: std::sync::Arc::new(ManualClock::new(now)),
            random: std::sync::Arc::new(crate::OsRandom),
            limiter: std::sync::Arc::new(crate::Unlimited),
            totp: crate::MockTotpStore::new(),
            config: crate::AuthConfig::default(),
            events: None,
        }
    }

    /// The service on these ports, with [`MOCK_OTP_KEY`] as its code secret.
    pub fn service(mut self) -> crate::AuthService {
        // A fallback after the test's own expectations (mockall tries them in order).
        self.totp.expect_get().returning(|_| Ok(None));
        self.hasher.expect_is_saturated().return_const(false);
        self.hasher.expect_capacity().return_const(None::<usize>);
        let ports = crate::AuthPorts {
            users: std::sync::Arc::new(self.users),
            sessions: std::sync::Arc::new(self.sessions),
            otps: std::sync::Arc::new(self.otps),
            mailer: std::sync::Arc::new(self.mailer),
            hasher: std::sync::Arc::new(self.hasher),
            clock: self.clock,
            random: self.random,
            limiter: self.limiter,
            totp: std::sync::Arc::new(self.totp),
        };
        let secret = crate::OtpSecret::new(Box::<[u8]>::from(MOCK_OTP_KEY).into());
        #[allow(clippy::expect_used)]
        let service = crate::AuthService::new(
            ports,
            self.config,
            secret.expect("MOCK_OTP_KEY is long enough"),
        );
        match self.events {
            Some(events) => service.with_security_events(
                std::sync::Arc::new(events),
                crate::SecurityEventConfig::default(),
            ),
            None => service,
        }
    }
}

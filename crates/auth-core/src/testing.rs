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
//! use auth_core::testing::ManualClock;
//! use auth_core::*;
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use futures::executor::block_on;
//!
//! let issued_at = Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap();
//! let clock = Arc::new(ManualClock::new(issued_at));
//! let secret = || OtpSecret::new(vec![7u8; 32].into_boxed_slice().into()).unwrap();
//! let email = EmailAddress::parse("ada@example.com").unwrap();
//! let code = OtpCode::parse("042917").unwrap();
//!
//! let stored = StoredOtp {
//!     mac: secret().mac(OtpPurpose::VerifyEmail, &email, &code),
//!     expires_at: issued_at + TimeDelta::minutes(10),
//! };
//! let mut otps = MockOtpStore::new();
//! otps.expect_record_attempt()
//!     .returning(move |_, _| Ok(Some(OtpAttempt { otp: stored, attempts: 1 })));
//! otps.expect_consume().never();
//!
//! let service = AuthService::new(
//!     AuthPorts {
//!         users: Arc::new(MockUserRepository::new()),
//!         sessions: Arc::new(MockSessionStore::new()),
//!         otps: Arc::new(otps),
//!         mailer: Arc::new(MockMailer::new()),
//!         hasher: Arc::new(MockPasswordHasher::new()),
//!         clock: clock.clone(),
//!         random: Arc::new(OsRandom),
//!     },
//!     AuthConfig::default(),
//!     secret(),
//! );
//!
//! clock.advance(Duration::from_secs(10 * 60));
//! let result = block_on(service.verify_otp(&email, &code));
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

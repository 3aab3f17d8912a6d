//! [`Throttle`]: the abuse-resistance policy. It names the request budgets of every
//! unauthenticated action, per client IP and per target address, and spends them on a
//! [`RateLimiter`] before the action runs.
//!
//! | budget | key | what it stops |
//! |---|---|---|
//! | `{action}:ip` | client IP | one client hammering any endpoint (credential stuffing, signup spam) |
//! | `{action}:email` | target address, any IP | distributed attacks on one address |
//! | `login:email-ip` | (address, IP) | password guessing: a soft lock growing with failures, that only the guessing client feels |
//! | `mail:email` | target address | flooding a mailbox through signup, resend-otp and forgot-password |
//!
//! A budget is a list of [`Quota`] tiers that all have to allow the request, so a lock can grow
//! with the failures (e.g. 5 per minute, then 20 per hour: 12 s, then 3 minutes between
//! guesses). Every budget is keyed on the address whether or not it has an account, so a
//! refusal tells nothing about accounts.
//!
//! Login spends its `login:email-ip` budget *before* the password is checked (parallel guesses
//! cannot slip through between check and count) and refills it after a correct password, so
//! the owner's own typos never add up. Because that lock is keyed on the IP too, an attacker
//! cannot lock the owner out; the per-address `login:email` budget is softer (larger) and only
//! bounds attacks spread over many IPs.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::domain::email::EmailAddress;
use crate::ports::{Quota, RateDecision, RateKey, RateLimiter, RateSubject};
use crate::service::Failure;

/// One budget: every tier has to allow a request. Empty: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit(pub Vec<Quota>);

impl RateLimit {
    /// No limit.
    pub fn off() -> Self {
        Self(Vec::new())
    }

    /// A single tier of `limit` per `period` (no limit if `limit` is zero).
    pub fn per(limit: u32, period: Duration) -> Self {
        Self(Quota::new(limit, period).into_iter().collect())
    }

    /// Adds a tier.
    pub fn and(mut self, limit: u32, period: Duration) -> Self {
        self.0.extend(Quota::new(limit, period));
        self
    }

    /// The tiers.
    pub fn tiers(&self) -> &[Quota] {
        &self.0
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("off");
        }
        for (i, q) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{q}")?;
        }
        Ok(())
    }
}

/// An unauthenticated action with its own budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `signup`.
    Signup,
    /// `login`.
    Login,
    /// `verify-otp`.
    VerifyOtp,
    /// `resend-otp`.
    ResendOtp,
    /// `forgot-password`.
    ForgotPassword,
    /// `reset-password`.
    ResetPassword,
}

impl Action {
    /// Stable name, used in budget keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Login => "login",
            Self::VerifyOtp => "verify-otp",
            Self::ResendOtp => "resend-otp",
            Self::ForgotPassword => "forgot-password",
            Self::ResetPassword => "reset-password",
        }
    }

    fn buckets(self) -> (&'static str, &'static str) {
        match self {
            Self::Signup => ("signup:ip", "signup:email"),
            Self::Login => ("login:ip", "login:email"),
            Self::VerifyOtp => ("verify-otp:ip", "verify-otp:email"),
            Self::ResendOtp => ("resend-otp:ip", "resend-otp:email"),
            Self::ForgotPassword => ("forgot-password:ip", "forgot-password:email"),
            Self::ResetPassword => ("reset-password:ip", "reset-password:email"),
        }
    }

    /// Whether the action may mail the address (a code or a notice).
    fn mails(self) -> bool {
        matches!(self, Self::Signup | Self::ResendOtp | Self::ForgotPassword)
    }
}

/// The budgets of one action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionLimits {
    /// Requests per client IP.
    pub per_ip: RateLimit,
    /// Requests per target address, from any IP.
    pub per_email: RateLimit,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn limits(per_ip: RateLimit, per_email: RateLimit) -> ActionLimits {
    ActionLimits { per_ip, per_email }
}

/// Every budget. `Default` gives the documented defaults: far above what a person does by
/// hand, far below what a script needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Signup (default 20/h per IP, 10/h per address).
    pub signup: ActionLimits,
    /// Login attempts (default 100/10 min per IP, 50/30 min per address from any IP).
    pub login: ActionLimits,
    /// Login attempts per (address, IP) not followed by a correct password: the soft lock
    /// (default 5/min and 20/h: 12 s between guesses after five, 3 min after twenty).
    pub login_per_email_ip: RateLimit,
    /// Code checks at verify-otp (default 30/10 min per IP, 10/h per address).
    pub verify_otp: ActionLimits,
    /// Resend-otp (default 20/10 min per IP, 10/h per address).
    pub resend_otp: ActionLimits,
    /// Forgot-password (default 20/10 min per IP, 10/h per address).
    pub forgot_password: ActionLimits,
    /// Code checks at reset-password (default 30/10 min per IP, 10/h per address).
    pub reset_password: ActionLimits,
    /// Requests that may mail an address (signup, resend-otp, forgot-password), per address
    /// (default 10/h), on top of the per-address cooldown between mails.
    pub mail_per_email: RateLimit,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            signup: limits(RateLimit::per(20, HOUR), RateLimit::per(10, HOUR)),
            login: limits(
                RateLimit::per(100, 10 * MINUTE),
                RateLimit::per(50, 30 * MINUTE),
            ),
            login_per_email_ip: RateLimit::per(5, MINUTE).and(20, HOUR),
            verify_otp: limits(RateLimit::per(30, 10 * MINUTE), RateLimit::per(10, HOUR)),
            resend_otp: limits(RateLimit::per(20, 10 * MINUTE), RateLimit::per(10, HOUR)),
            forgot_password: limits(RateLimit::per(20, 10 * MINUTE), RateLimit::per(10, HOUR)),
            reset_password: limits(RateLimit::per(30, 10 * MINUTE), RateLimit::per(10, HOUR)),
            mail_per_email: RateLimit::per(10, HOUR),
        }
    }
}

impl ThrottleConfig {
    /// The budgets of `action`.
    pub fn action(&self, action: Action) -> &ActionLimits {
        match action {
            Action::Signup => &self.signup,
            Action::Login => &self.login,
            Action::VerifyOtp => &self.verify_otp,
            Action::ResendOtp => &self.resend_otp,
            Action::ForgotPassword => &self.forgot_password,
            Action::ResetPassword => &self.reset_password,
        }
    }
}

/// Why a request may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// A budget is spent; the same answer whether or not the address has an account.
    #[error("too many requests; retry after {retry_after:?}")]
    Limited {
        /// Time until the budget that refused allows one more request.
        retry_after: Duration,
    },
    /// The limiter's store failed.
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<crate::ports::RateLimiterError> for ThrottleError {
    fn from(e: crate::ports::RateLimiterError) -> Self {
        Self::Failure(e.into())
    }
}

/// The abuse-resistance policy (see the [module documentation](self)).
pub struct Throttle {
    limiter: Arc<dyn RateLimiter>,
    config: ThrottleConfig,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// The policy `config` on `limiter`.
    pub fn new(limiter: Arc<dyn RateLimiter>, config: ThrottleConfig) -> Self {
        Self { limiter, config }
    }

    /// The budgets in force.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Spends one unit of every budget of `action` for this client and address; refuses with
    /// [`ThrottleError::Limited`] at the first spent one (and logs a security event). Call it
    /// before the action; for [`Action::Login`], call [`Throttle::login_succeeded`] after a
    /// correct password.
    pub async fn check(
        &self,
        action: Action,
        client_ip: Option<IpAddr>,
        email: &EmailAddress,
    ) -> Result<(), ThrottleError> {
        let limits = self.config.action(action);
        let (ip_bucket, email_bucket) = action.buckets();
        let mut budgets: Vec<(&'static str, RateSubject, &RateLimit)> = Vec::with_capacity(4);
        if let Some(ip) = client_ip {
            budgets.push((ip_bucket, RateSubject::Ip(ip), &limits.per_ip));
            if action == Action::Login {
                budgets.push((
                    "login:email-ip",
                    RateSubject::EmailIp(email.clone(), ip),
                    &self.config.login_per_email_ip,
                ));
            }
        }
        budgets.push((
            email_bucket,
            RateSubject::Email(email.clone()),
            &limits.per_email,
        ));
        if action.mails() {
            budgets.push((
                "mail:email",
                RateSubject::Email(email.clone()),
                &self.config.mail_per_email,
            ));
        }
        for (bucket, subject, limit) in budgets {
            let key = RateKey { bucket, subject };
            for quota in limit.tiers() {
                if let RateDecision::Limited { retry_after } =
                    self.limiter.acquire(&key, *quota).await?
                {
                    warn!(
                        security_event = "rate_limited",
                        action = action.as_str(),
                        budget = bucket,
                        quota = %quota,
                        client_ip = client_ip.map(|ip| ip.to_string()),
                        retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                        "request refused: rate limit exceeded"
                    );
                    return Err(ThrottleError::Limited { retry_after });
                }
            }
        }
        Ok(())
    }

    /// A correct password was given for `email` from `client_ip`: the soft lock of that
    /// (address, IP) starts over.
    pub async fn login_succeeded(
        &self,
        client_ip: Option<IpAddr>,
        email: &EmailAddress,
    ) -> Result<(), ThrottleError> {
        let Some(ip) = client_ip else {
            return Ok(());
        };
        let key = RateKey {
            bucket: "login:email-ip",
            subject: RateSubject::EmailIp(email.clone(), ip),
        };
        for quota in self.config.login_per_email_ip.tiers() {
            self.limiter.reset(&key, *quota).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockRateLimiter, RateLimiterError};
    use futures::executor::block_on;
    use mockall::predicate::always;

    fn email() -> EmailAddress {
        EmailAddress::parse("ada@example.com").unwrap()
    }

    fn ip() -> Option<IpAddr> {
        Some("192.0.2.7".parse().unwrap())
    }

    #[test]
    fn login_spends_ip_then_email_ip_then_email_budgets() {
        let mut limiter = MockRateLimiter::new();
        let mut seq = mockall::Sequence::new();
        for bucket in [
            "login:ip",
            "login:email-ip",
            "login:email-ip",
            "login:email",
        ] {
            limiter
                .expect_acquire()
                .withf(move |k, _| k.bucket == bucket)
                .times(1)
                .in_sequence(&mut seq)
                .returning(|_, _| Ok(RateDecision::Allowed));
        }
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        block_on(t.check(Action::Login, ip(), &email())).unwrap();
    }

    #[test]
    fn the_first_spent_budget_refuses_and_later_ones_are_untouched() {
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_acquire()
            .withf(|k, _| k.bucket == "resend-otp:ip")
            .returning(|_, _| Ok(RateDecision::Allowed));
        limiter
            .expect_acquire()
            .withf(|k, _| k.bucket == "resend-otp:email")
            .returning(|_, _| {
                Ok(RateDecision::Limited {
                    retry_after: Duration::from_secs(7),
                })
            });
        limiter
            .expect_acquire()
            .withf(|k, _| k.bucket == "mail:email")
            .never();
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        let res = block_on(t.check(Action::ResendOtp, ip(), &email()));
        assert!(matches!(
            res,
            Err(ThrottleError::Limited { retry_after }) if retry_after == Duration::from_secs(7)
        ));
    }

    #[test]
    fn mail_actions_also_spend_the_mail_budget_and_off_spends_nothing() {
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_acquire()
            .withf(|k, _| k.bucket == "mail:email")
            .times(1)
            .returning(|_, _| Ok(RateDecision::Allowed));
        let config = ThrottleConfig {
            forgot_password: ActionLimits::default(),
            ..ThrottleConfig::default()
        };
        let t = Throttle::new(Arc::new(limiter), config);
        block_on(t.check(Action::ForgotPassword, ip(), &email())).unwrap();
    }

    #[test]
    fn a_correct_password_resets_the_soft_lock_and_outages_are_failures() {
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_reset()
            .withf(|k, _| {
                k.bucket == "login:email-ip"
                    && k.subject == RateSubject::EmailIp(email(), ip().unwrap())
            })
            .times(2)
            .returning(|_, _| Ok(()));
        limiter
            .expect_acquire()
            .with(always(), always())
            .returning(|_, _| Err(RateLimiterError::Unavailable("down".into())));
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        block_on(t.login_succeeded(ip(), &email())).unwrap();
        let res = block_on(t.check(Action::Signup, ip(), &email()));
        assert!(matches!(res, Err(ThrottleError::Failure(f)) if f.is_unavailable()));
    }
}

//! The abuse-resistance policy that [`AuthService`](crate::AuthService) applies to itself: the
//! request budgets of every action, per client IP and per target address, spent on the
//! [`RateLimiter`] port before the action runs. An application configures it
//! ([`ThrottleConfig`], part of [`AuthConfig`](crate::AuthConfig)) and passes the client's
//! [`ClientInfo`] to each operation; it never calls the policy itself.
//!
//! | budget | key | what it stops |
//! |---|---|---|
//! | `{action}:ip` | client IP (IPv6: its /64) | one client hammering any endpoint (credential stuffing, signup spam) |
//! | `{action}:email` | target address, any IP | distributed attacks on one address |
//! | `login:email-ip` | (address, IP) | password guessing: a soft lock growing with failures, that only the guessing client feels |
//! | `login:device` | (address, known device) | the owner's known devices: a login carrying a valid device credential spends only this budget, so strangers' failures never lock it out |
//! | `{reset,login}-code:requester` | (address, IP that asked for the code) | guessing a reset or login code: the client that asked for the code has its own attempts |
//! | `{reset,login}-code:others` | address | the attempts of every other client on the codes of an address: strangers cannot kill the owner's code |
//! | `mail:email` | target address | flooding a mailbox through signup, resend-otp and forgot-password |
//! | `reauth:user`, `reauth:ip` | account; client IP | guessing the password through a stolen session (change password, delete account) |
//! | `reauth-failures:session` | session | the hard limit: a session that keeps guessing is ended |
//!
//! A budget is a list of [`Quota`] tiers that all have to allow the request, so a lock can grow
//! with the failures (e.g. 5 per minute, then 20 per hour: 12 s, then 3 minutes between
//! guesses). Every budget is keyed on the address whether or not it has an account, so a
//! refusal tells nothing about accounts. IPv6 clients are keyed by their network prefix
//! ([`ThrottleConfig::ipv6_prefix_len`], /64 by default): one host usually owns a whole /64.
//!
//! Login spends its `login:email-ip` budget *before* the password is checked (parallel guesses
//! cannot slip through between check and count) and refills it after a correct password, so
//! the owner's own typos never add up. Re-authentication inside a session spends its budgets
//! before the check too, but a correct password refills nothing: whoever holds the session may
//! be the attacker.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::domain::device::DeviceId;
use crate::domain::email::EmailAddress;
use crate::domain::session::{ClientInfo, SessionId};
use crate::domain::user::UserId;
use crate::ports::{Quota, RateDecision, RateKey, RateLimiter, RateSubject};
use crate::service::Failure;

/// One budget: every tier has to allow a request. Empty: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit(pub Vec<Quota>);

impl RateLimit {
    /// No limit. (The same value as `default()`; `const`, so it also serves in constants.)
    pub const fn off() -> Self {
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
    /// `login/code`: asking for a login code by mail.
    LoginCode,
    /// `login/code/verify`: logging in with a mailed code.
    LoginCodeVerify,
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
            Self::LoginCode => "login-code",
            Self::LoginCodeVerify => "login-code-verify",
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
            Self::LoginCode => ("login-code:ip", "login-code:email"),
            Self::LoginCodeVerify => ("login-code-verify:ip", "login-code-verify:email"),
        }
    }

    /// Whether the action may mail the address (a code or a notice).
    fn mails(self) -> bool {
        matches!(
            self,
            Self::Signup | Self::ResendOtp | Self::ForgotPassword | Self::LoginCode
        )
    }

    /// Whether the action checks a reset or login code, whose attempts are counted per
    /// requesting client (see [`Throttle::code_attempt`]): its per-address budget is spent only
    /// by clients that did not ask for the code.
    fn checks_guarded_code(self) -> bool {
        matches!(self, Self::ResetPassword | Self::LoginCodeVerify)
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
    /// Code checks at reset-password (default 30/10 min per IP, 10/h per address; the
    /// per-address budget is spent only by clients that did not ask for the code).
    pub reset_password: ActionLimits,
    /// Login-code requests (default 20/10 min per IP, 10/h per address).
    pub login_code: ActionLimits,
    /// Login-code checks (default 30/10 min per IP, 10/h per address; the per-address budget
    /// is spent only by clients that did not ask for the code).
    pub login_code_verify: ActionLimits,
    /// Login attempts per known device (a valid device credential for the address), in place
    /// of every other login budget (default 5/min and 20/h).
    pub login_per_device: RateLimit,
    /// Requests that may mail an address (signup, resend-otp, forgot-password, login-code), per address
    /// (default 10/h), on top of the per-address cooldown between mails.
    pub mail_per_email: RateLimit,
    /// Password checks inside a session (change password, delete account), per account from
    /// any session (default 5 per 15 min). Spent before the check; a correct password does
    /// not refill it.
    pub reauth_per_user: RateLimit,
    /// Password checks inside a session, per client IP over all accounts (default 20 per
    /// 15 min).
    pub reauth_per_ip: RateLimit,
    /// The hard limit: wrong passwords (and refused checks) per session (default 10 per day).
    /// The check that goes past it ends the session and mails the owner.
    pub reauth_failures_per_session: RateLimit,
    /// Length of the network prefix that identifies an IPv6 client (default 64); IPv4 clients
    /// are identified by their address.
    pub ipv6_prefix_len: u8,
    /// Password hashes one client (IP or IPv6 prefix) and one account may have in flight at
    /// once, on this instance (default 2; 0: no bound). The rest are refused at once, so one
    /// client cannot take every hashing worker from everybody else.
    pub hashes_in_flight_per_client: u32,
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
            login_code: limits(RateLimit::per(20, 10 * MINUTE), RateLimit::per(10, HOUR)),
            login_code_verify: limits(RateLimit::per(30, 10 * MINUTE), RateLimit::per(10, HOUR)),
            login_per_device: RateLimit::per(5, MINUTE).and(20, HOUR),
            mail_per_email: RateLimit::per(10, HOUR),
            reauth_per_user: RateLimit::per(5, 15 * MINUTE),
            reauth_per_ip: RateLimit::per(20, 15 * MINUTE),
            reauth_failures_per_session: RateLimit::per(10, 24 * HOUR),
            ipv6_prefix_len: 64,
            hashes_in_flight_per_client: 2,
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
            Action::LoginCode => &self.login_code,
            Action::LoginCodeVerify => &self.login_code_verify,
        }
    }
}

/// The client address a budget is keyed on: IPv4 as is (IPv4-mapped IPv6 too), IPv6 cut to
/// its first `prefix_len` bits.
pub fn budget_ip(ip: IpAddr, prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let bits = u128::from(v6);
            let keep = u32::from(prefix_len.min(128));
            let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// What a spent budget answers: the time until it allows one more request.
pub(crate) type Refusal = Duration;

/// Why a code check was refused before the code was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeRefusal {
    /// This client's (or, for strangers, everyone else's) attempts on the codes are spent.
    AttemptsSpent,
    /// The action's per-address budget is spent: retry after this long.
    Retry(Duration),
}

/// The policy (see the [module documentation](self)), run by the service.
pub(crate) struct Throttle {
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
    pub(crate) fn new(limiter: Arc<dyn RateLimiter>, config: ThrottleConfig) -> Self {
        Self { limiter, config }
    }

    pub(crate) fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn ip(&self, client: &ClientInfo) -> Option<IpAddr> {
        client
            .ip
            .map(|ip| budget_ip(ip, self.config.ipv6_prefix_len))
    }

    /// Spends one unit of every budget in `budgets`; the first spent one refuses (and logs a
    /// security event).
    async fn spend(
        &self,
        action: &'static str,
        client: &ClientInfo,
        budgets: Vec<(&'static str, RateSubject, &RateLimit)>,
    ) -> Result<Result<(), Refusal>, Failure> {
        for (bucket, subject, limit) in budgets {
            let key = RateKey { bucket, subject };
            for quota in limit.tiers() {
                if let RateDecision::Limited { retry_after } =
                    self.limiter.acquire(&key, *quota).await?
                {
                    warn!(
                        security_event = "rate_limited",
                        action,
                        budget = bucket,
                        quota = %quota,
                        client_ip = client.ip.map(|ip| ip.to_string()),
                        retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                        "request refused: rate limit exceeded"
                    );
                    return Ok(Err(retry_after));
                }
            }
        }
        Ok(Ok(()))
    }

    /// Spends one unit of every budget of `action` for this client and address. For
    /// [`Action::Login`], [`Throttle::login_succeeded`] follows a correct password.
    pub(crate) async fn check(
        &self,
        action: Action,
        client: &ClientInfo,
        email: &EmailAddress,
    ) -> Result<Result<(), Refusal>, Failure> {
        let limits = self.config.action(action);
        let (ip_bucket, email_bucket) = action.buckets();
        let mut budgets: Vec<(&'static str, RateSubject, &RateLimit)> = Vec::with_capacity(4);
        if let Some(ip) = self.ip(client) {
            budgets.push((ip_bucket, RateSubject::Ip(ip), &limits.per_ip));
            if action == Action::Login {
                budgets.push((
                    "login:email-ip",
                    RateSubject::EmailIp(email.clone(), ip),
                    &self.config.login_per_email_ip,
                ));
            }
        }
        if !action.checks_guarded_code() {
            budgets.push((
                email_bucket,
                RateSubject::Email(email.clone()),
                &limits.per_email,
            ));
        }
        if action.mails() {
            budgets.push((
                "mail:email",
                RateSubject::Email(email.clone()),
                &self.config.mail_per_email,
            ));
        }
        self.spend(action.as_str(), client, budgets).await
    }

    /// A correct password was given for `email` from this client: the soft lock of that
    /// (address, IP) starts over.
    pub(crate) async fn login_succeeded(
        &self,
        client: &ClientInfo,
        email: &EmailAddress,
    ) -> Result<(), Failure> {
        let Some(ip) = self.ip(client) else {
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

    /// Spends the budget of a known device (a valid device credential for `email`): the only
    /// budget of such a login, untouched by anyone without the device.
    pub(crate) async fn check_device_login(
        &self,
        client: &ClientInfo,
        email: &EmailAddress,
        device: DeviceId,
    ) -> Result<Result<(), Refusal>, Failure> {
        let budgets = vec![(
            "login:device",
            RateSubject::Device(email.clone(), device.as_uuid()),
            &self.config.login_per_device,
        )];
        self.spend(Action::Login.as_str(), client, budgets).await
    }

    /// A correct password was given from a known device: its budget starts over.
    pub(crate) async fn device_login_succeeded(
        &self,
        email: &EmailAddress,
        device: DeviceId,
    ) -> Result<(), Failure> {
        let key = RateKey {
            bucket: "login:device",
            subject: RateSubject::Device(email.clone(), device.as_uuid()),
        };
        for quota in self.config.login_per_device.tiers() {
            self.limiter.reset(&key, *quota).await?;
        }
        Ok(())
    }

    /// The budget one code check spends for `action` (reset-password or login-code-verify): a
    /// client that asked for one of the live codes (`requester`) spends its own
    /// `{purpose}-code:requester` budget of `attempts` per `window`; every other client spends
    /// the address's `{purpose}-code:others` budget of the same size, and the action's
    /// per-address budget. `Ok(Err(_))` when spent.
    pub(crate) async fn code_attempt(
        &self,
        action: Action,
        client: &ClientInfo,
        email: &EmailAddress,
        requester: bool,
        attempts: Option<Quota>,
    ) -> Result<Result<(), CodeRefusal>, Failure> {
        let (requester_bucket, others_bucket) = match action {
            Action::LoginCodeVerify => ("login-code:requester", "login-code:others"),
            _ => ("reset-code:requester", "reset-code:others"),
        };
        let attempts = RateLimit(attempts.into_iter().collect());
        let ip = self.ip(client);
        if let (true, Some(ip)) = (requester, ip) {
            let budgets = vec![(
                requester_bucket,
                RateSubject::EmailIp(email.clone(), ip),
                &attempts,
            )];
            return Ok(self
                .spend(action.as_str(), client, budgets)
                .await?
                .map_err(|_| CodeRefusal::AttemptsSpent));
        }
        let limits = self.config.action(action);
        let (_, email_bucket) = action.buckets();
        let budgets = vec![(
            email_bucket,
            RateSubject::Email(email.clone()),
            &limits.per_email,
        )];
        if let Err(retry_after) = self.spend(action.as_str(), client, budgets).await? {
            return Ok(Err(CodeRefusal::Retry(retry_after)));
        }
        let budgets = vec![(others_bucket, RateSubject::Email(email.clone()), &attempts)];
        Ok(self
            .spend(action.as_str(), client, budgets)
            .await?
            .map_err(|_| CodeRefusal::AttemptsSpent))
    }

    /// A new code was mailed at the request of this client: its attempts start over (the
    /// other clients' do not).
    pub(crate) async fn code_requested(
        &self,
        action: Action,
        client: &ClientInfo,
        email: &EmailAddress,
        attempts: Option<Quota>,
    ) -> Result<(), Failure> {
        let (Some(ip), Some(quota)) = (self.ip(client), attempts) else {
            return Ok(());
        };
        let bucket = match action {
            Action::LoginCodeVerify => "login-code:requester",
            _ => "reset-code:requester",
        };
        let key = RateKey {
            bucket,
            subject: RateSubject::EmailIp(email.clone(), ip),
        };
        self.limiter.reset(&key, quota).await?;
        Ok(())
    }

    /// The budget-keyed form of this client's IP (IPv6: its prefix).
    pub(crate) fn client_key(&self, client: &ClientInfo) -> Option<IpAddr> {
        self.ip(client)
    }

    /// Spends the re-authentication budgets of the account and the client, before a password
    /// is checked inside a session.
    pub(crate) async fn reauth(
        &self,
        user: UserId,
        client: &ClientInfo,
    ) -> Result<Result<(), Refusal>, Failure> {
        let mut budgets = vec![(
            "reauth:user",
            RateSubject::User(user),
            &self.config.reauth_per_user,
        )];
        if let Some(ip) = self.ip(client) {
            budgets.push(("reauth:ip", RateSubject::Ip(ip), &self.config.reauth_per_ip));
        }
        self.spend("reauthenticate", client, budgets).await
    }

    /// Spends the client's passkey budget (the per-IP quota of `login`, in a bucket of its
    /// own) before a passkey ceremony is started or answered without a session: ceremonies
    /// are stored server-side, so starting them has a price.
    pub(crate) async fn passkey(
        &self,
        client: &ClientInfo,
    ) -> Result<Result<(), Refusal>, Failure> {
        let Some(ip) = self.ip(client) else {
            return Ok(Ok(()));
        };
        let budgets = vec![("passkey:ip", RateSubject::Ip(ip), &self.config.login.per_ip)];
        self.spend("passkey", client, budgets).await
    }

    /// Spends the second-factor budgets of the account and the client (the re-authentication
    /// quotas, in buckets of their own) before a TOTP or recovery code is checked, so parallel
    /// guesses are counted too. [`Throttle::second_factor_succeeded`] refills the account's
    /// after a right code: only wrong codes add up.
    pub(crate) async fn second_factor(
        &self,
        user: UserId,
        client: &ClientInfo,
    ) -> Result<Result<(), Refusal>, Failure> {
        let mut budgets = vec![(
            "mfa:user",
            RateSubject::User(user),
            &self.config.reauth_per_user,
        )];
        if let Some(ip) = self.ip(client) {
            budgets.push(("mfa:ip", RateSubject::Ip(ip), &self.config.reauth_per_ip));
        }
        self.spend("second-factor", client, budgets).await
    }

    /// A right second factor: the account's second-factor budget starts over (the client's
    /// does not, so one client cannot try many accounts).
    pub(crate) async fn second_factor_succeeded(&self, user: UserId) -> Result<(), Failure> {
        let key = RateKey {
            bucket: "mfa:user",
            subject: RateSubject::User(user),
        };
        for quota in self.config.reauth_per_user.tiers() {
            self.limiter.reset(&key, *quota).await?;
        }
        Ok(())
    }

    /// Counts a failed or refused re-authentication against the session's hard limit;
    /// `Ok(false)` once it is past the limit (the session must end).
    pub(crate) async fn reauth_failed(
        &self,
        session: SessionId,
        client: &ClientInfo,
    ) -> Result<bool, Failure> {
        let budgets = vec![(
            "reauth-failures:session",
            RateSubject::Session(session),
            &self.config.reauth_failures_per_session,
        )];
        Ok(self.spend("reauthenticate", client, budgets).await?.is_ok())
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

    fn client() -> ClientInfo {
        ClientInfo::new(ip(), None)
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
        block_on(t.check(Action::Login, &client(), &email()))
            .unwrap()
            .unwrap();
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
        let res = block_on(t.check(Action::ResendOtp, &client(), &email())).unwrap();
        assert_eq!(res, Err(Duration::from_secs(7)));
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
        block_on(t.check(Action::ForgotPassword, &client(), &email()))
            .unwrap()
            .unwrap();
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
        block_on(t.login_succeeded(&client(), &email())).unwrap();
        let res = block_on(t.check(Action::Signup, &client(), &email()));
        assert!(matches!(res, Err(f) if f.is_unavailable()));
    }

    #[test]
    fn a_known_device_spends_only_its_own_budget() {
        let device = DeviceId::from_uuid(uuid::Uuid::from_u128(3));
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_acquire()
            .withf(move |k, _| {
                k.bucket == "login:device"
                    && k.subject == RateSubject::Device(email(), uuid::Uuid::from_u128(3))
            })
            .times(2)
            .returning(|_, _| Ok(RateDecision::Allowed));
        limiter
            .expect_reset()
            .withf(|k, _| k.bucket == "login:device")
            .times(2)
            .returning(|_, _| Ok(()));
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        block_on(t.check_device_login(&client(), &email(), device))
            .unwrap()
            .unwrap();
        block_on(t.device_login_succeeded(&email(), device)).unwrap();
    }

    /// Two known devices of one address never share a budget: failures that carry the laptop's
    /// credential cannot slow the owner's phone.
    #[test]
    fn each_known_device_of_an_address_spends_a_budget_of_its_own() {
        let subjects = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&subjects);
        let mut limiter = MockRateLimiter::new();
        limiter.expect_acquire().returning(move |k, _| {
            seen.lock().unwrap().push(k.subject.clone());
            Ok(RateDecision::Allowed)
        });
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        for n in [3, 4] {
            let device = DeviceId::from_uuid(uuid::Uuid::from_u128(n));
            block_on(t.check_device_login(&client(), &email(), device))
                .unwrap()
                .unwrap();
        }
        let subjects = subjects.lock().unwrap();
        for n in [3, 4] {
            let own = RateSubject::Device(email(), uuid::Uuid::from_u128(n));
            assert!(subjects.contains(&own), "{subjects:?}");
        }
    }

    #[test]
    fn code_checks_spend_the_per_address_budget_only_for_strangers() {
        let quota = Quota::new(5, 10 * MINUTE);
        // The requester: only its own attempts, keyed on (address, IP).
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_acquire()
            .withf(|k, _| {
                k.bucket == "reset-code:requester"
                    && k.subject == RateSubject::EmailIp(email(), ip().unwrap())
            })
            .times(1)
            .returning(|_, _| Ok(RateDecision::Allowed));
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        block_on(t.code_attempt(Action::ResetPassword, &client(), &email(), true, quota))
            .unwrap()
            .unwrap();
        // A stranger: the action's per-address budget, then the strangers' attempts.
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_acquire()
            .withf(|k, _| {
                k.bucket == "login-code-verify:email" && k.subject == RateSubject::Email(email())
            })
            .times(1)
            .returning(|_, _| {
                Ok(RateDecision::Limited {
                    retry_after: Duration::from_secs(3),
                })
            });
        limiter
            .expect_acquire()
            .withf(|k, _| k.bucket == "login-code:others")
            .never();
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        let first =
            block_on(t.code_attempt(Action::LoginCodeVerify, &client(), &email(), false, quota));
        assert_eq!(
            first.unwrap(),
            Err(CodeRefusal::Retry(Duration::from_secs(3)))
        );
        // And the action's admission spends no per-address budget for code checks.
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_acquire()
            .withf(|k, _| k.bucket == "reset-password:ip")
            .times(1)
            .returning(|_, _| Ok(RateDecision::Allowed));
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        block_on(t.check(Action::ResetPassword, &client(), &email()))
            .unwrap()
            .unwrap();
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_prefix_and_ipv4_by_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(budget_ip(a, 64), budget_ip(b, 64));
        assert_eq!(
            budget_ip(a, 64),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(budget_ip(a, 64), budget_ip(other, 64));
        assert_ne!(budget_ip(a, 128), budget_ip(b, 128));
        assert_eq!(budget_ip(a, 128), a);
        assert_eq!(budget_ip(a, 0), "::".parse::<IpAddr>().unwrap());
        assert_eq!(budget_ip(a, 200), a);
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(budget_ip(v4, 64), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(budget_ip(mapped, 64), v4);
    }

    #[test]
    fn neighbours_in_one_ipv6_prefix_spend_one_budget() {
        let mut limiter = MockRateLimiter::new();
        limiter
            .expect_acquire()
            .withf(|k, _| {
                k.bucket == "signup:ip"
                    && k.subject == RateSubject::Ip("2001:db8::".parse().unwrap())
            })
            .times(2)
            .returning(|_, _| Ok(RateDecision::Allowed));
        limiter
            .expect_acquire()
            .withf(|k, _| k.bucket != "signup:ip")
            .returning(|_, _| Ok(RateDecision::Allowed));
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        for host in ["2001:db8::1", "2001:db8::ffff:2"] {
            let c = ClientInfo::new(Some(host.parse().unwrap()), None);
            block_on(t.check(Action::Signup, &c, &email()))
                .unwrap()
                .unwrap();
        }
    }

    #[test]
    fn reauth_spends_the_account_and_client_budgets_and_counts_failures_per_session() {
        let user = UserId::from_uuid(uuid::Uuid::from_u128(7));
        let session = SessionId::from_uuid(uuid::Uuid::from_u128(9));
        let mut limiter = MockRateLimiter::new();
        let mut seq = mockall::Sequence::new();
        limiter
            .expect_acquire()
            .withf(move |k, q| {
                k.bucket == "reauth:user"
                    && k.subject == RateSubject::User(user)
                    && *q == Quota::new(5, 15 * MINUTE).unwrap()
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(RateDecision::Allowed));
        limiter
            .expect_acquire()
            .withf(|k, q| {
                k.bucket == "reauth:ip"
                    && k.subject == RateSubject::Ip(ip().unwrap())
                    && *q == Quota::new(20, 15 * MINUTE).unwrap()
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(RateDecision::Allowed));
        limiter
            .expect_acquire()
            .withf(move |k, q| {
                k.bucket == "reauth-failures:session"
                    && k.subject == RateSubject::Session(session)
                    && *q == Quota::new(10, 24 * HOUR).unwrap()
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| {
                Ok(RateDecision::Limited {
                    retry_after: Duration::from_secs(1),
                })
            });
        let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
        block_on(t.reauth(user, &client())).unwrap().unwrap();
        assert!(!block_on(t.reauth_failed(session, &client())).unwrap());
    }

    #[test]
    fn actions_have_stable_names() {
        let names: Vec<&str> = [
            Action::Signup,
            Action::Login,
            Action::VerifyOtp,
            Action::ResendOtp,
            Action::ForgotPassword,
            Action::ResetPassword,
        ]
        .iter()
        .map(|a| a.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "signup",
                "login",
                "verify-otp",
                "resend-otp",
                "forgot-password",
                "reset-password"
            ]
        );
    }

    #[test]
    fn login_codes_and_reset_codes_have_their_own_requester_budgets() {
        for (action, bucket) in [
            (Action::LoginCodeVerify, "login-code:requester"),
            (Action::ResetPassword, "reset-code:requester"),
        ] {
            let mut limiter = MockRateLimiter::new();
            limiter
                .expect_acquire()
                .withf(move |k, _| k.bucket == bucket)
                .times(1)
                .returning(|_, _| Ok(RateDecision::Allowed));
            let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
            let quota = Quota::new(5, Duration::from_secs(600));
            block_on(t.code_attempt(action, &client(), &email(), true, quota))
                .unwrap()
                .unwrap();
        }
    }

    #[test]
    fn asking_for_a_login_code_refills_the_login_code_requester_budget() {
        for (action, bucket) in [
            (Action::LoginCodeVerify, "login-code:requester"),
            (Action::ResetPassword, "reset-code:requester"),
        ] {
            let mut limiter = MockRateLimiter::new();
            limiter
                .expect_reset()
                .withf(move |k, _| k.bucket == bucket)
                .times(1)
                .returning(|_, _| Ok(()));
            let t = Throttle::new(Arc::new(limiter), ThrottleConfig::default());
            let quota = Quota::new(5, Duration::from_secs(600));
            block_on(t.code_requested(action, &client(), &email(), quota)).unwrap();
        }
    }
}

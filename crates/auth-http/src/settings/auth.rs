//! The authentication section: the code key, lifetimes, the password rules, the abuse
//! budgets, two-factor authentication and the security history.

use std::time::Duration;

use auth_core::{AuthConfig, PasswordPolicy, Quota, RateLimit, ThrottleConfig};
use secrecy::{ExposeSecret as _, SecretString};
use std::path::PathBuf;

use super::env::{err, parse_duration, Env};
use super::ConfigError;

/// How the service authenticates: what [`AuthConfig`] is built from, plus the secrets and
/// lists only the binary holds.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `AUTH_SECRET`: HMAC key for one-time codes and the seal of queued mail (at least 32
    /// bytes; required in production, where it must look random).
    pub secret: Option<SecretString>,
    /// `SESSION_TTL`: absolute session lifetime (default `24h`, at least `60s`).
    pub session_ttl: Duration,
    /// `SESSION_IDLE_TIMEOUT`: a session unused this long ends (default `30m`; `off`: never).
    pub session_idle_timeout: Option<Duration>,
    /// `OTP_TTL`: code lifetime (default and most `10m`).
    pub otp_ttl: Duration,
    /// `MAIL_COOLDOWN`: minimum time between code mails to one address (default `60s`).
    pub mail_cooldown: Duration,
    /// `PASSWORD_MIN_LENGTH`: minimum password length (default 8, at least 8).
    pub password_min_length: usize,
    /// `ENUMERATION_PROTECTION` (default on): signup, resend-otp, forgot-password and
    /// login-by-code answer the same for new, pending and verified addresses (cooldowns are
    /// enforced silently); off: signup for a verified address answers 409.
    pub enumeration_protection: bool,
    /// `UNIFORM_ANSWER_TIME`: signup, resend-otp, forgot-password and login-code requests
    /// answer no sooner than this after they were read (default `50ms`; `0`: as soon as
    /// done), so the few milliseconds that writing a code and queueing its mail take for an
    /// existing account do not show (with `ENUMERATION_PROTECTION` on).
    pub uniform_answer_time: Duration,
    /// `RATE_LIMIT_*`, `HASHES_IN_FLIGHT_PER_CLIENT`, `IPV6_PREFIX_LEN`: request budgets per
    /// client and per address (see [`RATE_LIMIT_VARS`]).
    pub throttle: ThrottleConfig,
    /// `ADMIN_REAUTH_WINDOW`: how long an administrator's password, given again inside a
    /// session (`POST /admin/reauth`), opens that session's administrative requests (default
    /// `10m`; from `1s` to `1h`).
    pub admin_reauth_window: Duration,
    /// `BREACHED_PASSWORDS_*`: the list of breached passwords new passwords are checked against.
    pub breached_passwords: BreachedPasswordSettings,
    /// `MFA_ISSUER`, `MFA_TOKEN_TTL`: two-factor authentication.
    pub mfa: MfaSettings,
    /// `SESSION_BINDING`, `SESSION_IP_PREFIX_V4`, `SESSION_IP_PREFIX_V6`, `NEW_DEVICE_MAIL`:
    /// how sessions are tied to their devices and shown.
    pub devices: DeviceSettings,
}

impl AuthSettings {
    pub(super) fn read(env: &Env<'_>, dev: bool) -> Result<Self, ConfigError> {
        // At least 32 bytes, like every token; production also wants it to look random.
        let secret = env.token("AUTH_SECRET")?;
        match &secret {
            Some(s) if !dev => check_secret_looks_random(s.expose_secret())?,
            None if !dev => {
                return Err(err(
                    "AUTH_SECRET",
                    "required in production (the HMAC key of one-time codes, shared by every \
                     instance); generate one with `openssl rand -hex 32`",
                ))
            }
            _ => {}
        }
        let session_idle_timeout = if env.is_off("SESSION_IDLE_TIMEOUT") {
            None
        } else {
            Some(env.duration_in(
                "SESSION_IDLE_TIMEOUT",
                Duration::from_secs(30 * 60),
                Duration::from_secs(1)..=Duration::MAX,
                "must be at least 1s (or off)",
            )?)
        };
        Ok(Self {
            secret,
            session_ttl: env.duration_in(
                "SESSION_TTL",
                Duration::from_secs(24 * 60 * 60),
                Duration::from_secs(60)..=Duration::MAX,
                "must be at least 60s",
            )?,
            session_idle_timeout,
            otp_ttl: env.duration_in(
                "OTP_TTL",
                Duration::from_secs(600),
                Duration::from_secs(1)..=Duration::from_secs(600),
                "must be between 1s and 10m",
            )?,
            mail_cooldown: env.duration("MAIL_COOLDOWN", Duration::from_secs(60))?,
            password_min_length: env.number("PASSWORD_MIN_LENGTH", 8)?,
            enumeration_protection: env.flag("ENUMERATION_PROTECTION", true)?,
            uniform_answer_time: env.duration("UNIFORM_ANSWER_TIME", Duration::from_millis(50))?,
            throttle: read_throttle(env)?,
            admin_reauth_window: env.duration_in(
                "ADMIN_REAUTH_WINDOW",
                Duration::from_secs(10 * 60),
                Duration::from_secs(1)..=Duration::from_secs(60 * 60),
                "must be between 1s and 1h",
            )?,
            breached_passwords: BreachedPasswordSettings::read(env)?,
            mfa: MfaSettings::read(env)?,
            devices: DeviceSettings::read(env)?,
        })
    }

    /// The service's settings.
    pub fn config(&self) -> AuthConfig {
        AuthConfig {
            otp_ttl: self.otp_ttl,
            mail_cooldown: self.mail_cooldown,
            session_ttl: self.session_ttl,
            session_idle_timeout: self.session_idle_timeout,
            password_policy: PasswordPolicy::with_min_chars(self.password_min_length),
            enumeration_protection: self.enumeration_protection,
            throttle: self.throttle.clone(),
            totp_issuer: self.mfa.issuer.clone(),
            mfa_token_ttl: self.mfa.token_ttl,
            admin_reauth_window: self.admin_reauth_window,
            session_binding: self.devices.binding(),
            new_device_mail: self.devices.new_device_mail,
            ..AuthConfig::default()
        }
    }
}

fn read_throttle(env: &Env<'_>) -> Result<ThrottleConfig, ConfigError> {
    let mut throttle = ThrottleConfig::default();
    for var in RATE_LIMIT_VARS {
        if let (Some(raw), Some(slot)) = (env.string(var), throttle_slot(&mut throttle, var)) {
            *slot = parse_rate_limit(&raw).map_err(|m| err(var, m))?;
        }
    }
    if let Some(v) = env.string("HASHES_IN_FLIGHT_PER_CLIENT") {
        throttle.hashes_in_flight_per_client = v.parse().map_err(|_| {
            err(
                "HASHES_IN_FLIGHT_PER_CLIENT",
                format!("{v:?} is not a number (0: no bound)"),
            )
        })?;
    }
    if let Some(v) = env.string("IPV6_PREFIX_LEN") {
        throttle.ipv6_prefix_len = v
            .parse()
            .ok()
            .filter(|n| (1..=128).contains(n))
            .ok_or_else(|| {
                err(
                    "IPV6_PREFIX_LEN",
                    format!("{v:?} is not a prefix length (1-128)"),
                )
            })?;
    }
    Ok(throttle)
}

/// Every `RATE_LIMIT_*` variable and the budget it sets. A value is `off` or a comma-separated
/// list of `N/duration` tiers that all apply, e.g. `5/1m,20/1h`.
pub const RATE_LIMIT_VARS: [&str; 22] = [
    "RATE_LIMIT_SIGNUP_PER_IP",
    "RATE_LIMIT_SIGNUP_PER_EMAIL",
    "RATE_LIMIT_LOGIN_PER_IP",
    "RATE_LIMIT_LOGIN_PER_EMAIL",
    "RATE_LIMIT_LOGIN_PER_EMAIL_IP",
    "RATE_LIMIT_LOGIN_PER_DEVICE",
    "RATE_LIMIT_LOGIN_CODE_PER_IP",
    "RATE_LIMIT_LOGIN_CODE_PER_EMAIL",
    "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_IP",
    "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_EMAIL",
    "RATE_LIMIT_VERIFY_OTP_PER_IP",
    "RATE_LIMIT_VERIFY_OTP_PER_EMAIL",
    "RATE_LIMIT_RESEND_OTP_PER_IP",
    "RATE_LIMIT_RESEND_OTP_PER_EMAIL",
    "RATE_LIMIT_FORGOT_PASSWORD_PER_IP",
    "RATE_LIMIT_FORGOT_PASSWORD_PER_EMAIL",
    "RATE_LIMIT_RESET_PASSWORD_PER_IP",
    "RATE_LIMIT_RESET_PASSWORD_PER_EMAIL",
    "RATE_LIMIT_MAIL_PER_EMAIL",
    "RATE_LIMIT_REAUTH_PER_USER",
    "RATE_LIMIT_REAUTH_PER_IP",
    "RATE_LIMIT_REAUTH_FAILURES_PER_SESSION",
];

fn throttle_slot<'a>(t: &'a mut ThrottleConfig, var: &str) -> Option<&'a mut RateLimit> {
    Some(match var {
        "RATE_LIMIT_SIGNUP_PER_IP" => &mut t.signup.per_ip,
        "RATE_LIMIT_SIGNUP_PER_EMAIL" => &mut t.signup.per_email,
        "RATE_LIMIT_LOGIN_PER_IP" => &mut t.login.per_ip,
        "RATE_LIMIT_LOGIN_PER_EMAIL" => &mut t.login.per_email,
        "RATE_LIMIT_LOGIN_PER_EMAIL_IP" => &mut t.login_per_email_ip,
        "RATE_LIMIT_LOGIN_PER_DEVICE" => &mut t.login_per_device,
        "RATE_LIMIT_LOGIN_CODE_PER_IP" => &mut t.login_code.per_ip,
        "RATE_LIMIT_LOGIN_CODE_PER_EMAIL" => &mut t.login_code.per_email,
        "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_IP" => &mut t.login_code_verify.per_ip,
        "RATE_LIMIT_LOGIN_CODE_VERIFY_PER_EMAIL" => &mut t.login_code_verify.per_email,
        "RATE_LIMIT_VERIFY_OTP_PER_IP" => &mut t.verify_otp.per_ip,
        "RATE_LIMIT_VERIFY_OTP_PER_EMAIL" => &mut t.verify_otp.per_email,
        "RATE_LIMIT_RESEND_OTP_PER_IP" => &mut t.resend_otp.per_ip,
        "RATE_LIMIT_RESEND_OTP_PER_EMAIL" => &mut t.resend_otp.per_email,
        "RATE_LIMIT_FORGOT_PASSWORD_PER_IP" => &mut t.forgot_password.per_ip,
        "RATE_LIMIT_FORGOT_PASSWORD_PER_EMAIL" => &mut t.forgot_password.per_email,
        "RATE_LIMIT_RESET_PASSWORD_PER_IP" => &mut t.reset_password.per_ip,
        "RATE_LIMIT_RESET_PASSWORD_PER_EMAIL" => &mut t.reset_password.per_email,
        "RATE_LIMIT_MAIL_PER_EMAIL" => &mut t.mail_per_email,
        "RATE_LIMIT_REAUTH_PER_USER" => &mut t.reauth_per_user,
        "RATE_LIMIT_REAUTH_PER_IP" => &mut t.reauth_per_ip,
        "RATE_LIMIT_REAUTH_FAILURES_PER_SESSION" => &mut t.reauth_failures_per_session,
        _ => return None,
    })
}

/// Parses `off` or `N/duration[,N/duration...]` (a bare duration number means seconds).
pub fn parse_rate_limit(raw: &str) -> Result<RateLimit, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") {
        return Ok(RateLimit::off());
    }
    let mut tiers = Vec::new();
    for tier in raw.split(',').map(str::trim) {
        let (n, period) = tier
            .split_once('/')
            .ok_or_else(|| format!("{tier:?} is not N/duration, e.g. 5/1m"))?;
        let limit: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a positive number"))?;
        let period = period.trim();
        let period = parse_duration(period)?;
        tiers.push(Quota::new(limit, period).ok_or_else(|| {
            format!("{tier:?}: the limit must be at least 1 and the period at least 1ms")
        })?);
    }
    Ok(RateLimit(tiers))
}

/// Where the list of breached passwords is (ASVS 6.2.12); off by default. A new password on
/// it (signup, change, reset) is refused with 422 `weak_password`; when the list cannot be
/// asked the password is accepted and a warning logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreachedPasswordSettings {
    /// No check (the default).
    Off,
    /// `BREACHED_PASSWORDS_API`: a k-anonymity range service, e.g.
    /// `https://api.pwnedpasswords.com/range/` (only five hex digits of the password's SHA-1
    /// are sent), with `BREACHED_PASSWORDS_TIMEOUT` per query (default `2s`).
    RangeApi {
        /// The base URL.
        url: String,
        /// The bound on one query.
        timeout: Duration,
    },
    /// `BREACHED_PASSWORDS_FILE`: a file of SHA-1 hashes (`HASH` or `HASH:COUNT` per line),
    /// read into memory at start-up.
    File(PathBuf),
}

impl BreachedPasswordSettings {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let timeout = env.duration(
            "BREACHED_PASSWORDS_TIMEOUT",
            auth_breached::DEFAULT_RANGE_TIMEOUT,
        )?;
        match (
            env.string("BREACHED_PASSWORDS_API"),
            env.path("BREACHED_PASSWORDS_FILE"),
        ) {
            (None, None) => Ok(Self::Off),
            (Some(url), None) => Ok(Self::RangeApi { url, timeout }),
            (None, Some(path)) => Ok(Self::File(path)),
            (Some(_), Some(_)) => Err(err(
                "BREACHED_PASSWORDS_FILE",
                "set BREACHED_PASSWORDS_API or BREACHED_PASSWORDS_FILE, not both",
            )),
        }
    }
}

/// Least estimated entropy of a production `AUTH_SECRET`, in bits.
pub const MIN_SECRET_BITS: f64 = 128.0;

/// A rough upper estimate of the entropy of `secret`, in bits: the Shannon entropy of its
/// character frequencies times the length of its shortest repeating unit (the whole string
/// when it does not repeat). Few distinct characters or repetition score low: `32 × 'a'` is 0
/// bits, `abab...` 2, `password` eight times 22, `0123456789abcdef` twice 64; 64 random hex
/// digits score about 245, 44 base64 characters about 210. It cannot see other structure (a
/// phrase of varied words scores well), so it only catches the obviously non-random.
pub fn estimated_entropy_bits(secret: &str) -> f64 {
    let chars: Vec<char> = secret.chars().collect();
    if chars.is_empty() {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::<char, usize>::new();
    for c in &chars {
        *counts.entry(*c).or_default() += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let total = chars.len() as f64;
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            #[allow(clippy::cast_precision_loss)]
            let p = k as f64 / total;
            -p * p.log2()
        })
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let unit = shortest_period(&chars) as f64;
    per_char * unit
}

/// Length of the shortest `p` such that `s[i] == s[i + p]` for every `i` (KMP failure function).
pub(super) fn shortest_period(s: &[char]) -> usize {
    let mut fail = vec![0usize; s.len()];
    let mut k = 0;
    for i in 1..s.len() {
        while k > 0 && s[i] != s[k] {
            k = fail[k - 1];
        }
        if s[i] == s[k] {
            k += 1;
        }
        fail[i] = k;
    }
    s.len() - fail.last().copied().unwrap_or(0)
}

/// Secrets published in this repository (docker/compose.yaml's development default).
const PUBLIC_SECRETS: &[&str] = &["compose-development-only-secret-not-for-production"];

/// Production refuses an `AUTH_SECRET` that does not look random: one-time codes are only as
/// unguessable as their HMAC key.
fn check_secret_looks_random(secret: &str) -> Result<(), ConfigError> {
    if PUBLIC_SECRETS.contains(&secret) {
        return Err(err(
            "AUTH_SECRET",
            "is the public development value of docker/compose.yaml; generate one with \
             `openssl rand -hex 32`",
        ));
    }
    let bits = estimated_entropy_bits(secret);
    if bits < MIN_SECRET_BITS {
        return Err(err(
            "AUTH_SECRET",
            format!(
                "does not look random (estimated {bits:.0} bits of entropy, at least \
                 {MIN_SECRET_BITS:.0} required in production: too few distinct characters or \
                 too much repetition); generate one with `openssl rand -hex 32`"
            ),
        ));
    }
    Ok(())
}

/// Two-factor authentication (TOTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSettings {
    /// `MFA_ISSUER`: the name authenticator apps show next to the account (default
    /// [`DEFAULT_MFA_ISSUER`]; at most [`MAX_MFA_ISSUER_CHARS`] characters, no colon, no
    /// control characters). Apps file codes under it: changing it later shows enrolled users
    /// a new name only when they enrol again.
    pub issuer: String,
    /// `MFA_TOKEN_TTL`: how long the token of a login waiting for its second factor works
    /// (default and most `5m`, least `30s`).
    pub token_ttl: Duration,
}

/// Default of `MFA_ISSUER`.
pub const DEFAULT_MFA_ISSUER: &str = "SecureAuth";
/// Longest `MFA_ISSUER`, in characters.
pub const MAX_MFA_ISSUER_CHARS: usize = 64;
/// Longest (and default) `MFA_TOKEN_TTL`: a password that was right stays usable for the
/// second step no longer than this.
pub const MAX_MFA_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Shortest `MFA_TOKEN_TTL`: time to open the app and type a code.
pub const MIN_MFA_TOKEN_TTL: Duration = Duration::from_secs(30);

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            issuer: DEFAULT_MFA_ISSUER.to_owned(),
            token_ttl: MAX_MFA_TOKEN_TTL,
        }
    }
}

impl MfaSettings {
    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some(issuer) = env.string("MFA_ISSUER") {
            if issuer.contains(':') || issuer.chars().any(char::is_control) {
                return Err(err(
                    "MFA_ISSUER",
                    "must not contain a colon or control characters",
                ));
            }
            if issuer.chars().count() > MAX_MFA_ISSUER_CHARS {
                return Err(err(
                    "MFA_ISSUER",
                    format!("must be at most {MAX_MFA_ISSUER_CHARS} characters"),
                ));
            }
            settings.issuer = issuer;
        }
        settings.token_ttl = env.duration_in(
            "MFA_TOKEN_TTL",
            MAX_MFA_TOKEN_TTL,
            MIN_MFA_TOKEN_TTL..=MAX_MFA_TOKEN_TTL,
            "must be between 30s and 5m",
        )?;
        Ok(settings)
    }
}

/// How sessions are tied to the devices that opened them, and how `GET /sessions` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSettings {
    /// `SESSION_BINDING`: `off` (default), `user-agent` (a session used with another
    /// `User-Agent` than at login is ended) or `ip-prefix` (likewise from another network, as
    /// cut by the prefixes below).
    pub binding: BindingMode,
    /// `SESSION_IP_PREFIX_V4`: leading bits of an IPv4 address a session shows and binds to
    /// (default 24; 0 to 32).
    pub ipv4_prefix: u8,
    /// `SESSION_IP_PREFIX_V6`: leading bits of an IPv6 address a session shows and binds to
    /// (default 48; 0 to 128).
    pub ipv6_prefix: u8,
    /// `NEW_DEVICE_MAIL`: mail the owner when a login comes from a device never seen for the
    /// account (default `true`).
    pub new_device_mail: bool,
}

/// The value of `SESSION_BINDING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingMode {
    /// `off`.
    Off,
    /// `user-agent`.
    UserAgent,
    /// `ip-prefix`.
    IpPrefix,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            binding: BindingMode::Off,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            new_device_mail: true,
        }
    }
}

impl DeviceSettings {
    /// The binding the service enforces.
    pub fn binding(&self) -> auth_core::SessionBinding {
        match self.binding {
            BindingMode::Off => auth_core::SessionBinding::Off,
            BindingMode::UserAgent => auth_core::SessionBinding::UserAgent,
            BindingMode::IpPrefix => auth_core::SessionBinding::IpPrefix {
                ipv4_prefix: self.ipv4_prefix,
                ipv6_prefix: self.ipv6_prefix,
            },
        }
    }

    fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            binding: env.choice(
                "SESSION_BINDING",
                &[
                    (&["off"], BindingMode::Off),
                    (&["user-agent"], BindingMode::UserAgent),
                    (&["ip-prefix"], BindingMode::IpPrefix),
                ],
                d.binding,
                "off, user-agent or ip-prefix",
            )?,
            ipv4_prefix: env.number_in("SESSION_IP_PREFIX_V4", 0..=32, d.ipv4_prefix)?,
            ipv6_prefix: env.number_in("SESSION_IP_PREFIX_V6", 0..=128, d.ipv6_prefix)?,
            new_device_mail: env.flag("NEW_DEVICE_MAIL", d.new_device_mail)?,
        })
    }
}

/// Each account's security history (`GET /me/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityEventSettings {
    /// `SECURITY_EVENT_RETENTION_DAYS`: events older than this many days are deleted
    /// (default 365; 1 to 3650).
    pub retention_days: u32,
    /// `SECURITY_EVENT_IP_PREFIX_V4`: leading bits of an IPv4 client address kept (default
    /// 24; 0 to 32).
    pub ipv4_prefix: u8,
    /// `SECURITY_EVENT_IP_PREFIX_V6`: leading bits of an IPv6 client address kept (default
    /// 48; 0 to 128).
    pub ipv6_prefix: u8,
}

impl Default for SecurityEventSettings {
    fn default() -> Self {
        let core = auth_core::SecurityEventConfig::default();
        Self {
            retention_days: 365,
            ipv4_prefix: core.ipv4_prefix,
            ipv6_prefix: core.ipv6_prefix,
        }
    }
}

impl SecurityEventSettings {
    /// The retention as a duration.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 24 * 60 * 60)
    }

    /// What the service records with.
    pub fn config(&self) -> auth_core::SecurityEventConfig {
        auth_core::SecurityEventConfig {
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
        }
    }
}

impl SecurityEventSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            retention_days: env.number_in(
                "SECURITY_EVENT_RETENTION_DAYS",
                1..=3650,
                d.retention_days,
            )?,
            ipv4_prefix: env.number_in("SECURITY_EVENT_IP_PREFIX_V4", 0..=32, d.ipv4_prefix)?,
            ipv6_prefix: env.number_in("SECURITY_EVENT_IP_PREFIX_V6", 0..=128, d.ipv6_prefix)?,
        })
    }
}

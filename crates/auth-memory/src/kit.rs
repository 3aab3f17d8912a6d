//! [`InProcessKit`]: every in-process port in one call.

use std::fmt;
use std::sync::Arc;

use auth_argon2::{Argon2ConfigError, Argon2Hasher, Argon2Settings};
use auth_core::{
    AuthPorts, Clock, Mailer, OsRandom, OtpStore, PasskeyVerifier, Passkeys, PasswordHasher,
    RandomSource, RateLimiter, SecurityEvents, SessionStore, SystemClock, TotpStore,
    UserRepository,
};

use crate::{
    CaptureMailer, MemoryPasskeyChallenges, MemoryPasskeyStore, MemorySecurityEvents,
    MemorySetupError, MemoryStore, MemoryTotpStore, MemoryUserRepository,
};

/// Why an [`InProcessKit`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// The session/code/rate-limit store could not start its sweeper thread.
    #[error("cannot build the in-memory store")]
    Store(#[from] MemorySetupError),
    /// The Argon2id hasher refused its settings or could not start its worker threads.
    #[error("cannot build the Argon2id hasher")]
    Hasher(#[from] Argon2ConfigError),
}

/// Every port `auth_core::AuthService` needs, in process, for an embedder who brings only a
/// [`Mailer`]: accounts in a [`MemoryUserRepository`], sessions, one-time codes and request
/// budgets in one [`MemoryStore`], an [`Argon2Hasher`] with the OWASP defaults (or your own
/// [`PasswordHasher`]), the [`SystemClock`] and [`OsRandom`].
///
/// **Everything is lost on restart and serves one instance only** (see the
/// [crate documentation](crate)). For tests, demos, and embedders whose accounts live
/// elsewhere. Needs no async runtime: the store sweeps expired entries on a thread of its own
/// and the hasher runs Argon2 on its own worker threads, so any executor drives the service.
///
/// [`auth_ports`](Self::auth_ports) is the [`AuthPorts`] an `AuthService` runs on;
/// [`ports`](Self::ports) hands out the same pieces one by one.
///
/// ```
/// use auth_core::{AuthConfig, AuthService, ClientInfo, EmailAddress, OtpSecret, PasswordPolicy};
/// use auth_memory::InProcessKit;
/// use futures::executor::block_on;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (kit, mail) = InProcessKit::capturing()?;
/// let secret = OtpSecret::new(vec![7u8; 32].into_boxed_slice().into())?;
/// let service = AuthService::new(kit.auth_ports(), AuthConfig::default(), secret);
///
/// let email = EmailAddress::parse("ada@example.com")?;
/// let password =
///     PasswordPolicy::default().parse("correct horse battery staple".into(), &email)?;
/// block_on(service.signup(email.clone(), password, &ClientInfo::default()))?;
/// // The code the person would have received:
/// let code = mail.last_code(&email).ok_or("no code mailed")?;
/// block_on(service.verify_otp(&email, &code, &ClientInfo::default()))?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct InProcessKit {
    users: MemoryUserRepository,
    store: MemoryStore,
    totp: MemoryTotpStore,
    events: MemorySecurityEvents,
    passkeys: MemoryPasskeyStore,
    challenges: MemoryPasskeyChallenges,
    mailer: Arc<dyn Mailer>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
}

/// The ports of an [`InProcessKit`], each as the `Arc<dyn Port>` that [`AuthPorts`] holds
/// (`AuthPorts::from` converts). `sessions`, `otps` and `limiter` are the same [`MemoryStore`].
#[derive(Clone)]
pub struct InProcessPorts {
    /// Accounts ([`MemoryUserRepository`]).
    pub users: Arc<dyn UserRepository>,
    /// Sessions ([`MemoryStore`]).
    pub sessions: Arc<dyn SessionStore>,
    /// One-time codes and mail cooldowns ([`MemoryStore`]).
    pub otps: Arc<dyn OtpStore>,
    /// Request budgets ([`MemoryStore`]).
    pub limiter: Arc<dyn RateLimiter>,
    /// The mailer the kit was given.
    pub mailer: Arc<dyn Mailer>,
    /// Password hashing ([`Argon2Hasher`] unless the kit was given another).
    pub hasher: Arc<dyn PasswordHasher>,
    /// [`SystemClock`].
    pub clock: Arc<dyn Clock>,
    /// [`OsRandom`].
    pub random: Arc<dyn RandomSource>,
    /// Second factors ([`MemoryTotpStore`]).
    pub totp: Arc<dyn TotpStore>,
    /// Security history ([`MemorySecurityEvents`]); not part of [`AuthPorts`]: hand it to
    /// `AuthService::with_security_events`.
    pub events: Arc<dyn SecurityEvents>,
}

impl InProcessKit {
    /// Every in-process port around `mailer`, with an [`Argon2Hasher`] on
    /// [`Argon2Settings::default`] (OWASP parameters, one worker thread per core).
    pub fn new(mailer: Arc<dyn Mailer>) -> Result<Self, KitError> {
        let hasher = Argon2Hasher::new(Argon2Settings::default())?;
        Self::with_hasher(mailer, Arc::new(hasher))
    }

    /// Every in-process port around `mailer` and `hasher` (a hasher with other settings, or
    /// a cheap fake for tests that hash a lot).
    pub fn with_hasher(
        mailer: Arc<dyn Mailer>,
        hasher: Arc<dyn PasswordHasher>,
    ) -> Result<Self, KitError> {
        let totp = MemoryTotpStore::new();
        let passkeys = MemoryPasskeyStore::new();
        Ok(Self {
            users: MemoryUserRepository::with_totp(&totp).also_forgetting_passkeys(&passkeys),
            passkeys,
            challenges: MemoryPasskeyChallenges::new(),
            store: MemoryStore::new()?,
            totp,
            events: MemorySecurityEvents::new(),
            mailer,
            hasher,
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
        })
    }

    /// [`new`](Self::new) with a [`CaptureMailer`], and a clone of that mailer to read the
    /// sent messages from: the usual set-up of a test.
    pub fn capturing() -> Result<(Self, CaptureMailer), KitError> {
        let mail = CaptureMailer::new();
        let kit = Self::new(Arc::new(mail.clone()))?;
        Ok((kit, mail))
    }

    /// The ports an `AuthService` runs on.
    pub fn auth_ports(&self) -> AuthPorts {
        self.ports().into()
    }

    /// The ports one by one (to wrap or replace some before building [`AuthPorts`]).
    pub fn ports(&self) -> InProcessPorts {
        InProcessPorts {
            users: Arc::new(self.users.clone()),
            sessions: Arc::new(self.store.clone()),
            otps: Arc::new(self.store.clone()),
            limiter: Arc::new(self.store.clone()),
            totp: Arc::new(self.totp.clone()),
            events: Arc::new(self.events.clone()),
            mailer: Arc::clone(&self.mailer),
            hasher: Arc::clone(&self.hasher),
            clock: Arc::clone(&self.clock),
            random: Arc::clone(&self.random),
        }
    }

    /// The kit's passkey stores with `verifier` (the relying party, say `auth-webauthn`'s),
    /// for [`AuthService::with_passkeys`](auth_core::AuthService::with_passkeys); ceremonies
    /// live five minutes.
    pub fn passkeys(&self, verifier: Arc<dyn PasskeyVerifier>) -> Passkeys {
        Passkeys {
            store: Arc::new(self.passkeys.clone()),
            challenges: Arc::new(self.challenges.clone()),
            verifier,
            ceremony_ttl: std::time::Duration::from_secs(5 * 60),
        }
    }

    /// The account repository (to inspect or seed it).
    pub fn users(&self) -> &MemoryUserRepository {
        &self.users
    }

    /// The session, code and rate-limit store (to inspect it, e.g. [`MemoryStore::stats`]).
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The security history store, for `AuthService::with_security_events` (and to inspect
    /// it).
    pub fn security_events(&self) -> &MemorySecurityEvents {
        &self.events
    }
}

impl From<InProcessPorts> for AuthPorts {
    fn from(ports: InProcessPorts) -> Self {
        AuthPorts {
            users: ports.users,
            sessions: ports.sessions,
            otps: ports.otps,
            mailer: ports.mailer,
            hasher: ports.hasher,
            clock: ports.clock,
            random: ports.random,
            limiter: ports.limiter,
            totp: ports.totp,
        }
    }
}

impl fmt::Debug for InProcessKit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessKit")
            .field("users", &self.users)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for InProcessPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessPorts").finish_non_exhaustive()
    }
}

/// [`InProcessKit::new`]: every in-process port around `mailer`.
pub fn kit(mailer: Arc<dyn Mailer>) -> Result<InProcessKit, KitError> {
    InProcessKit::new(mailer)
}

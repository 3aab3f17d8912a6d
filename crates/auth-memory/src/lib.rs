//! # auth-memory
//!
//! In-process adapters for SecureAuth's embedded profile and for tests:
//!
//! - [`MemoryStore`] implements [`auth_core::SessionStore`], [`auth_core::OtpStore`] and
//!   [`auth_core::RateLimiter`] in the memory of the running process;
//! - [`MemoryUserRepository`] implements [`auth_core::UserRepository`] the same way, and
//!   [`MemoryTotpStore`] [`auth_core::TotpStore`] (second factors);
//! - [`MemoryOutbox`] implements [`auth_core::OutboxStore`], the mail outbox;
//! - [`InProcessKit`] builds all of them (plus a clock, a random source and an Argon2id
//!   hasher) in one call for an embedder who brings only a [`auth_core::Mailer`];
//! - [`CaptureMailer`] is a `Mailer` that keeps what it is asked to send, so a test can read
//!   the last code mailed to an address.
//!
//! **One instance only.** Sessions, one-time codes and mail cooldowns live in this process:
//! they are lost on restart, and two server instances behind a load balancer would each have
//! their own (a session created on one is unknown to the other, and each enforces its own
//! cooldown and attempt counts). Use `auth-redis` as soon as more than one instance serves
//! traffic.
//!
//! **Any executor.** Nothing here needs a Tokio runtime: the stores never `.await` anything
//! but their own lock-free work, and the expiry sweeper is a plain OS thread. They run under
//! Tokio, `futures::executor::block_on`, async-std, smol or a hand-written executor alike.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{OtpStore, SessionStore};
//! use auth_memory::MemoryStore;
//!
//! # fn main() -> Result<(), auth_memory::MemorySetupError> {
//! // No runtime needed: the expiry sweeper is a thread of its own.
//! let store = Arc::new(MemoryStore::new()?);
//! let sessions: Arc<dyn SessionStore> = store.clone();
//! let otps: Arc<dyn OtpStore> = store;
//! # let _ = (sessions, otps);
//! # Ok(())
//! # }
//! ```
//!
//! ## Semantics (the same as the Redis adapter)
//!
//! - Every entry (session, code, cooldown) has a deadline. Reads never return an entry past it,
//!   and a **background sweeper thread** (one per store, named `auth-mem-sweep`) removes
//!   expired entries every [`MemorySettings::sweep_interval`], so memory is freed even when
//!   nothing reads them. Deadlines are kept in an ordered index, so a sweep only touches what
//!   has expired. The sweeper stops as soon as the last clone of the store is dropped.
//! - Every operation takes one short-lived lock over the whole state (never held across an
//!   `.await`), so multi-step updates are atomic exactly like the Redis Lua scripts: of
//!   concurrent `consume` calls with the right MAC exactly one wins, concurrent
//!   `record_attempt` calls each see a distinct count, a session and its entry in the user's
//!   index come and go together.
//! - Stored data is the same as in Redis: token hashes (never tokens) and code MACs (never
//!   codes). Nothing is logged.
//!
//! No operation can fail: the error variants of the ports are never returned, and `ping`
//! always answers `Ok`.

#![warn(missing_docs)]

mod capture;
mod events;
mod kit;
mod otp;
mod outbox;
mod passkeys;
mod rate;
mod session;
mod state;
mod totp;
mod users;
mod webhooks;

use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

pub use capture::{CaptureMailer, SentMail};
pub use events::MemorySecurityEvents;
pub use kit::{kit, InProcessKit, InProcessPorts, KitError};
pub use outbox::MemoryOutbox;
pub use passkeys::{MemoryPasskeyChallenges, MemoryPasskeyStore};
pub use totp::MemoryTotpStore;
pub use users::MemoryUserRepository;
pub use webhooks::MemoryWebhooks;

use state::State;

/// Default [`MemorySettings::sweep_interval`].
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// At most this many expired entries are removed per lock acquisition, so a mass expiry does
/// not stall requests.
const SWEEP_BATCH: usize = 1_000;

/// Settings of a [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySettings {
    /// How often the background sweeper removes expired entries: the longest an expired entry
    /// keeps its memory (it is invisible to reads from its deadline on). Values below one
    /// millisecond are raised to one millisecond.
    pub sweep_interval: Duration,
    /// Most live sessions one user may have (0: no cap). Inserting one more ends the user's
    /// session nearest its end first: the least recently used one, or among sessions used
    /// alike the oldest (the same rule as the Redis adapter).
    pub max_sessions_per_user: usize,
}

/// Default [`MemorySettings::max_sessions_per_user`].
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 100;

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
        }
    }
}

/// Why a [`MemoryStore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemorySetupError {
    /// The operating system refused to start the expiry sweeper thread.
    #[error("cannot start the in-memory store's expiry sweeper thread")]
    Sweeper(#[source] std::io::Error),
}

/// How many entries a [`MemoryStore`] holds right now (expired ones included until the
/// sweeper removes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Stored sessions.
    pub sessions: usize,
    /// Users with at least one entry in the per-user session index.
    pub indexed_users: usize,
    /// Stored one-time codes.
    pub codes: usize,
    /// Running mail cooldowns.
    pub cooldowns: usize,
    /// Rate-limit budgets that are not full.
    pub rate_limits: usize,
}

impl MemoryStats {
    /// Sum of every kind of entry: zero means the store holds nothing.
    pub fn total(&self) -> usize {
        self.sessions + self.indexed_users + self.codes + self.cooldowns + self.rate_limits
    }
}

/// In-process [`auth_core::SessionStore`], [`auth_core::OtpStore`] and
/// [`auth_core::RateLimiter`].
///
/// **Serves one instance only**: the data lives in this process and is lost on restart (see the
/// [crate documentation](crate)). Cheap to clone; clones share the same data. `Send + Sync +
/// 'static`, usable as `Arc<dyn SessionStore>`, `Arc<dyn OtpStore>` and
/// `Arc<dyn RateLimiter>`. Works on any async executor, or none.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    max_sessions_per_user: usize,
    /// Dropped with the last clone of the store: the sweeper thread sees its channel close
    /// and ends at once instead of at its next tick.
    _stop_sweeper: mpsc::Sender<()>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock, and every update leaves the state
        // consistent before anything that could fail, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStore {
    /// An empty store with [`MemorySettings::default`]; starts its expiry sweeper thread.
    /// Needs no async runtime.
    pub fn new() -> Result<Self, MemorySetupError> {
        Self::with_settings(&MemorySettings::default())
    }

    /// An empty store; starts its expiry sweeper thread. Needs no async runtime. Fails only
    /// when the operating system refuses to start a thread.
    pub fn with_settings(settings: &MemorySettings) -> Result<Self, MemorySetupError> {
        let (stop, stopped) = mpsc::channel();
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            max_sessions_per_user: settings.max_sessions_per_user,
            _stop_sweeper: stop,
        });
        let interval = settings.sweep_interval.max(Duration::from_millis(1));
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("auth-mem-sweep".into())
            .spawn(move || sweep_forever(&weak, &stopped, interval))
            .map_err(MemorySetupError::Sweeper)?;
        Ok(Self { inner })
    }

    /// How many entries the store holds now.
    pub fn stats(&self) -> MemoryStats {
        self.inner.lock().stats()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    pub(crate) fn max_sessions_per_user(&self) -> usize {
        self.inner.max_sessions_per_user
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: the entries hold e-mail addresses.
        f.debug_struct("MemoryStore")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Removes expired entries every `interval` until the store is dropped (its `stop` sender
/// closes).
fn sweep_forever(store: &Weak<Inner>, stop: &mpsc::Receiver<()>, interval: Duration) {
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            // Nothing is ever sent: any other outcome means the store is gone.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(inner) = store.upgrade() else {
            return;
        };
        let now = Instant::now();
        loop {
            let removed = inner.lock().sweep(now, SWEEP_BATCH);
            if removed < SWEEP_BATCH {
                break;
            }
            // Let requests waiting for the lock in between batches.
            std::thread::yield_now();
        }
    }
}

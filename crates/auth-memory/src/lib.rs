//! # auth-memory
//!
//! In-process adapters for SecureAuth's embedded profile: [`MemoryStore`] implements
//! [`auth_core::SessionStore`], [`auth_core::OtpStore`] and [`auth_core::RateLimiter`] in the
//! memory of the running process.
//!
//! **One instance only.** Sessions, one-time codes and mail cooldowns live in this process:
//! they are lost on restart, and two server instances behind a load balancer would each have
//! their own (a session created on one is unknown to the other, and each enforces its own
//! cooldown and attempt counts). Use `auth-redis` as soon as more than one instance serves
//! traffic.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{OtpStore, SessionStore};
//! use auth_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), auth_memory::MemorySetupError> {
//! // Inside a tokio runtime: the store starts its expiry sweeper on it.
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
//!   and a **background sweeper task** on the tokio runtime removes expired entries every
//!   [`MemorySettings::sweep_interval`], so memory is freed even when nothing reads them.
//!   Deadlines are kept in an ordered index, so a sweep only touches what has expired.
//!   The sweeper stops when the last clone of the store is dropped.
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

mod otp;
mod rate;
mod session;
mod state;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

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
pub enum MemorySetupError {
    /// The store was built outside a tokio runtime, where its expiry sweeper cannot run.
    #[error("the in-memory store must be created inside a tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
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

/// In-process [`auth_core::SessionStore`] and [`auth_core::OtpStore`].
///
/// **Serves one instance only**: the data lives in this process and is lost on restart (see the
/// [crate documentation](crate)). Cheap to clone; clones share the same data. `Send + Sync +
/// 'static`, usable as `Arc<dyn SessionStore>` and `Arc<dyn OtpStore>`.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    sweeper: Mutex<Option<AbortHandle>>,
    max_sessions_per_user: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let sweeper = self
            .sweeper
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = sweeper.take() {
            handle.abort();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock, and every update leaves the state
        // consistent before anything that could fail, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStore {
    /// An empty store with [`MemorySettings::default`]. Must be called inside a tokio runtime,
    /// which runs the expiry sweeper.
    pub fn new() -> Result<Self, MemorySetupError> {
        Self::with_settings(&MemorySettings::default())
    }

    /// An empty store. Must be called inside a tokio runtime, which runs the expiry sweeper.
    pub fn with_settings(settings: &MemorySettings) -> Result<Self, MemorySetupError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(MemorySetupError::NoRuntime)?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            sweeper: Mutex::new(None),
            max_sessions_per_user: settings.max_sessions_per_user,
        });
        let interval = settings.sweep_interval.max(Duration::from_millis(1));
        let task = runtime.spawn(sweep_forever(Arc::downgrade(&inner), interval));
        *inner.sweeper.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
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

/// Removes expired entries every `interval` until the store is dropped.
async fn sweep_forever(store: std::sync::Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        let now = Instant::now();
        loop {
            let removed = inner.lock().sweep(now, SWEEP_BATCH);
            if removed < SWEEP_BATCH {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

//! # auth-redis
//!
//! Redis adapters for SecureAuth: [`RedisStore`] implements [`auth_core::SessionStore`],
//! [`auth_core::OtpStore`] and [`auth_core::RateLimiter`] on one connection pool.
//!
//! ```no_run
//! use std::sync::Arc;
//! use auth_core::{OtpStore, SessionStore};
//! use auth_redis::RedisSettings;
//! use secrecy::SecretString;
//!
//! # fn main() -> Result<(), auth_redis::RedisSetupError> {
//! let settings = RedisSettings::new(SecretString::from("redis://127.0.0.1:6379"), "secureauth");
//! let store = Arc::new(settings.store()?);
//! let sessions: Arc<dyn SessionStore> = store.clone();
//! let otps: Arc<dyn OtpStore> = store;
//! # let _ = (sessions, otps);
//! # Ok(())
//! # }
//! ```
//!
//! ## Key layout
//!
//! Every key starts with the configured prefix `P` (see [`RedisSettings::key_prefix`]); no key
//! or value holds a raw session token, a code or (in key names) an e-mail address.
//!
//! | key | type | value | expiry |
//! |---|---|---|---|
//! | `P:session:{sha256(token) hex}` | string | session JSON (id, user snapshot, times incl. last use, IP, user agent) | the `ttl` of `insert`, renewed by `touch` |
//! | `P:user-sessions:{user uuid}` | sorted set | `{token hash}:{session id}`, scored by expiry (Unix ms, Redis clock; raised by `touch`); at most `max_sessions_per_user` | its longest-lived session |
//! | `P:user-session-ids:{user uuid}` | hash | session id → token hash, so `delete_by_id` reads one session | its longest-lived session |
//! | `P:otp:{verify\|reset}:{sha256(email) hex}` | hash | `mac` (hex), `exp` (RFC 3339), `attempts` | `retain_for` |
//! | `P:otp-cooldown:{verify\|reset}:{sha256(email) hex}` | string | `1` | the cooldown |
//! | `P:rate:{bucket}:{limit}/{period ms}:{sha256(subject) hex}` | string | GCRA theoretical arrival time (µs, Redis clock) | until the budget is full again |
//!
//! Multi-key updates run as Lua scripts (or `MULTI`), so they are atomic. The scripts reach
//! session keys named inside the script, so the adapter needs a standalone Redis (or a
//! single-shard deployment), not Redis Cluster. Redis 5 or newer.
//!
//! ## TLS
//!
//! A `rediss://` URL connects over TLS (rustls) and verifies the server's certificate and host
//! name against the system's CA store (`SSL_CERT_FILE` / `SSL_CERT_DIR` point it elsewhere).
//! There is no switch to skip verification.
//!
//! ## Failures
//!
//! Connection refused, timeouts, broken connections and pool errors become `Unavailable`;
//! corrupt records and script errors become `Other`. Every operation returns within
//! [`RedisSettings::timeout`]. A connection that fails is dropped (with the idle ones), so the
//! store recovers by itself once Redis is back.

#![warn(missing_docs)]

mod keys;
mod otp;
mod passkeys;
mod pool;
mod rate;
mod session;
mod settings;

use std::fmt;
use std::sync::Arc;

use redis::Script;

pub use settings::{
    RedisSettings, RedisSetupError, DEFAULT_IDLE_RECHECK_AFTER, DEFAULT_MAX_SESSIONS_PER_USER,
    DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT, MAX_KEY_PREFIX_LEN,
};

use keys::Keys;
use pool::{Executor, Failure, Request, Retry};

/// Redis-backed [`auth_core::SessionStore`], [`auth_core::OtpStore`] and
/// [`auth_core::RateLimiter`].
///
/// Cheap to clone: clones share one pool. Build it with [`RedisStore::new`] or
/// [`RedisSettings::store`].
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    exec: Executor,
    keys: Keys,
    scripts: Scripts,
    max_sessions_per_user: usize,
}

/// Compiled once; `Script` sends EVALSHA and loads the body only when Redis lacks it.
struct Scripts {
    session_insert: Script,
    session_touch: Script,
    session_list: Script,
    session_delete: Script,
    session_delete_by_id: Script,
    session_delete_all: Script,
    otp_put: Script,
    otp_record_attempt: Script,
    otp_consume: Script,
    otp_claim_slot: Script,
    rate_acquire: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            session_insert: Script::new(include_str!("lua/session_insert.lua")),
            session_touch: Script::new(include_str!("lua/session_touch.lua")),
            session_list: Script::new(include_str!("lua/session_list.lua")),
            session_delete: Script::new(include_str!("lua/session_delete.lua")),
            session_delete_by_id: Script::new(include_str!("lua/session_delete_by_id.lua")),
            session_delete_all: Script::new(include_str!("lua/session_delete_all.lua")),
            otp_put: Script::new(include_str!("lua/otp_put.lua")),
            otp_record_attempt: Script::new(include_str!("lua/otp_record_attempt.lua")),
            otp_consume: Script::new(include_str!("lua/otp_consume.lua")),
            otp_claim_slot: Script::new(include_str!("lua/otp_claim_slot.lua")),
            rate_acquire: Script::new(include_str!("lua/rate_acquire.lua")),
        }
    }
}

impl RedisStore {
    /// Validates the settings and builds the pool. Does not connect: connections are opened
    /// on first use, so the service can start while Redis is down (readiness says so).
    ///
    /// For `rediss://`, redis-rs builds its TLS client on rustls' process-wide crypto
    /// provider, which rustls cannot pick by itself when a build enables more than one; this
    /// installs *ring* as that default unless the process already chose one.
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisSetupError> {
        settings.validate()?;
        // Err only when a provider is installed already, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            inner: Arc::new(Inner {
                exec: Executor::new(settings)?,
                keys: Keys::new(settings::normalise_key_prefix(&settings.key_prefix)),
                scripts: Scripts::new(),
                max_sessions_per_user: settings.max_sessions_per_user,
            }),
        })
    }

    /// The prefix of every key this store writes, without the trailing `:`.
    pub fn key_prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// The connection pool's size, idle connections and waiting callers (for metrics).
    /// Connections held by lanes count as in use.
    pub fn pool_status(&self) -> deadpool_redis::Status {
        self.inner.exec.pool_status()
    }
}

impl Inner {
    async fn ping(&self) -> Result<(), Failure> {
        let cmd = redis::cmd("PING");
        let pong: String = self.exec.run(Request::Cmd(&cmd), Retry::Idempotent).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Failure::corrupt("PING", "unexpected reply"))
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

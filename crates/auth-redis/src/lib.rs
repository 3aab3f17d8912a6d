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
//! | `P:user-sessions:{user uuid}` | sorted set | session ids, scored by the time of insert (Unix µs, Redis clock): the order of `list_for_user`; at most `max_sessions_per_user` | its longest-lived session |
//! | `P:user-session-ids:{user uuid}` | hash | session id → token hash, so `delete_by_id` reads one session | its longest-lived session |
//!
//! No script on the request path walks a user's whole index: a page of `list_for_user` reads
//! `limit + 1` entries after an O(log n) seek, `delete_by_id` one, `insert` at most 4 + 256
//! (dead entries at the old end, then the oldest beyond the cap), and `delete_all_for_user`
//! runs as a series of scripts of 128 entries each, so Redis serves other clients in between.
//! Index members written by earlier versions (`{token hash}:{session id}` scored by expiry in
//! ms, or a bare token hash) are still read, sort as the oldest, and move to the current form
//! when their session is next used.
//! | `P:privilege-window:{session id}` | string | when the session's administrative privilege window closes (µs) | the window's `ttl` |
//! | `P:revocation-epoch:{sha256(email) hex}` | string | counter raised before every sweep of the address's sessions | 30 days after its last raise |
//! | `P:otp:{verify\|reset}:{sha256(email) hex}` | hash | `mac` (hex), `exp` (RFC 3339), `attempts` | `retain_for` |
//! | `P:otp-cooldown:{verify\|reset}:{sha256(email) hex}` | string | `1` | the cooldown |
//! | `P:rate:{bucket}:{limit}/{period ms}:{sha256(subject) hex}` | string | GCRA theoretical arrival time (µs, Redis clock) | until the budget is full again |
//!
//! Multi-key updates run as Lua scripts (or `MULTI`), so they are atomic. On one server the
//! session scripts reach session keys named inside the script. Redis 5 or newer.
//!
//! ## Redis Cluster
//!
//! With [`RedisSettings::cluster`] (or a `url` naming several nodes) the pool is a cluster
//! pool, and the per-user keys wrap the user id in braces (`P:user-sessions:{uuid}`), Redis
//! Cluster's hash tag, so a user's index and id map share a slot. Every other script touches
//! one key. A session key is found by its token hash alone, so it lives in a slot of its own:
//! the session operations run as steps, each atomic in one slot, in an order that keeps every
//! stored session in its user's index (see `cluster.rs`). A node that fails makes only the
//! keys of its slots unavailable until its replica takes over; the cluster connection finds
//! the new master by itself.
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

mod cluster;
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
    /// Redis Cluster: the session operations run as per-slot steps (see `cluster.rs`).
    cluster: bool,
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
    device_remember: Script,
    cluster_index_add: Script,
    cluster_index_drop: Script,
    cluster_index_touch: Script,
    cluster_index_page: Script,
    cluster_session_end: Script,
    cluster_session_take: Script,
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
            device_remember: Script::new(include_str!("lua/device_remember.lua")),
            cluster_index_add: Script::new(include_str!("lua/cluster_index_add.lua")),
            cluster_index_drop: Script::new(include_str!("lua/cluster_index_drop.lua")),
            cluster_index_touch: Script::new(include_str!("lua/cluster_index_touch.lua")),
            cluster_index_page: Script::new(include_str!("lua/cluster_index_page.lua")),
            cluster_session_end: Script::new(include_str!("lua/cluster_session_end.lua")),
            cluster_session_take: Script::new(include_str!("lua/cluster_session_take.lua")),
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
                keys: Keys::new(
                    settings::normalise_key_prefix(&settings.key_prefix),
                    settings.is_cluster(),
                ),
                cluster: settings.is_cluster(),
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

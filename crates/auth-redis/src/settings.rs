//! [`RedisSettings`]: everything needed to build a [`RedisStore`].

use std::time::Duration;

use secrecy::SecretString;

use crate::RedisStore;

/// Default number of pooled connections. Each one is multiplexed, so a few go a long way.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Default bound on one store operation, from pool checkout to reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default idle time after which a pooled connection is PINGed before it is reused.
pub const DEFAULT_IDLE_RECHECK_AFTER: Duration = Duration::from_secs(5);
/// Default of [`RedisSettings::max_sessions_per_user`].
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 100;
/// Longest accepted key prefix, in bytes.
pub const MAX_KEY_PREFIX_LEN: usize = 64;

/// Connection settings of the Redis adapter.
///
/// `Debug` does not show the URL (it may carry a password), and nothing in this crate logs it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS); for a Redis Cluster,
    /// one or more of its nodes, comma-separated.
    pub url: SecretString,
    /// Namespace of every key this adapter writes (`{key_prefix}:session:...`), so tests,
    /// tenants and environments can share one Redis. ASCII letters, digits and `_ - . :`, at
    /// most [`MAX_KEY_PREFIX_LEN`] bytes. One trailing `:` is taken as the separator, so
    /// `secureauth` and `secureauth:` name the same keys.
    pub key_prefix: String,
    /// Maximum number of pooled connections (at least 1).
    pub pool_size: usize,
    /// Upper bound of one store operation: waiting for a pooled connection, connecting and
    /// the reply together. Past it the operation fails with `Unavailable`.
    pub timeout: Duration,
    /// A pooled connection unused for longer than this is PINGed before it is handed out, so
    /// one that died while idle (server restart, NAT timeout) is replaced instead of failing
    /// a request. Connections in steady use are not PINGed: that keeps a session lookup to
    /// one round trip.
    pub idle_recheck_after: Duration,
    /// Most live sessions one user may have (0: no cap). Inserting one more ends the user's
    /// oldest session first (at most 256 per insert, so an index left over from a higher cap
    /// shrinks over a few logins rather than in one long script).
    pub max_sessions_per_user: usize,
    /// Whether Redis is a Redis Cluster (implied when `url` names several nodes): keys that a
    /// script touches together then share a hash tag, and the pool is a cluster pool.
    pub cluster: bool,
}

impl RedisSettings {
    /// Settings with the defaults ([`DEFAULT_POOL_SIZE`], [`DEFAULT_TIMEOUT`],
    /// [`DEFAULT_IDLE_RECHECK_AFTER`]).
    pub fn new(url: SecretString, key_prefix: impl Into<String>) -> Self {
        Self {
            url,
            key_prefix: key_prefix.into(),
            pool_size: DEFAULT_POOL_SIZE,
            timeout: DEFAULT_TIMEOUT,
            idle_recheck_after: DEFAULT_IDLE_RECHECK_AFTER,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            cluster: false,
        }
    }

    /// The node URLs of `url` (one unless it is a comma-separated list).
    pub(crate) fn urls(&self) -> Vec<String> {
        use secrecy::ExposeSecret as _;
        self.url
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Whether the store talks to a Redis Cluster: [`RedisSettings::cluster`], or a `url`
    /// naming several nodes.
    pub fn is_cluster(&self) -> bool {
        self.cluster || self.urls().len() > 1
    }

    /// Builds the store; same as [`RedisStore::new`]. Does not connect: the first operation
    /// (or [`auth_core::SessionStore::ping`]) does.
    pub fn store(&self) -> Result<RedisStore, RedisSetupError> {
        RedisStore::new(self)
    }

    pub(crate) fn validate(&self) -> Result<(), RedisSetupError> {
        validate_key_prefix(&self.key_prefix)?;
        if self.pool_size == 0 {
            return Err(RedisSetupError::InvalidPoolSize);
        }
        if self.timeout.is_zero() {
            return Err(RedisSetupError::InvalidTimeout);
        }
        Ok(())
    }
}

/// Why a [`RedisStore`] could not be built from [`RedisSettings`].
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL does not parse (the message never repeats the URL).
    #[error("the Redis URL is not valid")]
    InvalidUrl(#[source] redis::RedisError),
    /// The key prefix breaks the rules of [`RedisSettings::key_prefix`].
    #[error("the Redis key prefix is not valid: {0}")]
    InvalidKeyPrefix(&'static str),
    /// `pool_size` is zero.
    #[error("the Redis pool size must be at least 1")]
    InvalidPoolSize,
    /// `timeout` is zero.
    #[error("the Redis timeout must be greater than zero")]
    InvalidTimeout,
    /// The connection pool could not be built.
    #[error("the Redis connection pool could not be built")]
    Pool(#[source] auth_core::ports::BoxError),
}

/// Glob characters are refused so that `SCAN MATCH {prefix}:*` selects exactly this
/// adapter's keys (cleanup, audits); whitespace and control characters would make keys
/// unreadable in `redis-cli`.
fn validate_key_prefix(prefix: &str) -> Result<(), RedisSetupError> {
    if prefix.is_empty() {
        return Err(RedisSetupError::InvalidKeyPrefix("it is empty"));
    }
    if prefix.len() > MAX_KEY_PREFIX_LEN {
        return Err(RedisSetupError::InvalidKeyPrefix(
            "it is longer than 64 bytes",
        ));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(RedisSetupError::InvalidKeyPrefix(
            "only ASCII letters, digits and `_ - . :` are allowed",
        ));
    }
    if normalise_key_prefix(prefix).is_empty() || prefix.ends_with("::") {
        return Err(RedisSetupError::InvalidKeyPrefix(
            "it must be more than a separator",
        ));
    }
    Ok(())
}

/// The prefix without its optional trailing separator (the adapter adds one).
pub(crate) fn normalise_key_prefix(prefix: &str) -> &str {
    prefix.strip_suffix(':').unwrap_or(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(prefix: &str) -> RedisSettings {
        RedisSettings::new(SecretString::from("redis://127.0.0.1:1"), prefix)
    }

    #[test]
    fn accepts_reasonable_prefixes() {
        for ok in [
            "secureauth",
            "secureauth:",
            "sa:prod",
            "test-1.a_b",
            &"x".repeat(MAX_KEY_PREFIX_LEN),
        ] {
            assert!(settings(ok).validate().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_prefixes() {
        let too_long = "x".repeat(MAX_KEY_PREFIX_LEN + 1);
        for bad in [
            "", "a b", "a*", "a?", "a[b]", ":", "double::", "é", "a\nb", &too_long,
        ] {
            assert!(
                matches!(
                    settings(bad).validate(),
                    Err(RedisSetupError::InvalidKeyPrefix(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_trailing_separator_is_optional() {
        let with = settings("secureauth:").store().unwrap();
        let without = settings("secureauth").store().unwrap();
        assert_eq!(with.key_prefix(), "secureauth");
        assert_eq!(without.key_prefix(), "secureauth");
    }

    #[test]
    fn rejects_zero_pool_and_timeout() {
        let mut s = settings("p");
        s.pool_size = 0;
        assert!(matches!(
            s.validate(),
            Err(RedisSetupError::InvalidPoolSize)
        ));
        let mut s = settings("p");
        s.timeout = Duration::ZERO;
        assert!(matches!(s.validate(), Err(RedisSetupError::InvalidTimeout)));
    }

    #[test]
    fn debug_hides_the_url() {
        let s = RedisSettings::new(SecretString::from("redis://:hunter2@10.0.0.1:6379"), "p");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("10.0.0.1"), "{dbg}");
    }

    #[test]
    fn invalid_url_error_does_not_echo_the_url() {
        let s = RedisSettings::new(SecretString::from("nope://:hunter2@host"), "p");
        let err = s
            .store()
            .err()
            .map(|e| format!("{e} {e:?}"))
            .unwrap_or_default();
        assert!(!err.is_empty());
        assert!(!err.contains("hunter2"), "{err}");
    }
}

//! Shared set-up of the integration tests: the shared Redis at `REDIS_URL`, one key prefix per
//! test, and cleanup of that prefix (never FLUSHALL/FLUSHDB: other tests use the server too).

#![allow(dead_code)] // Each test binary uses its own subset.

use std::time::Duration;

use auth_core::SessionStore;
use auth_redis::{RedisSettings, RedisStore};
use secrecy::SecretString;
use uuid::Uuid;

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// `REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// The URL with any password masked, for failure messages.
pub fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
        _ => url.to_owned(),
    }
}

/// A key prefix of its own for one test; deletes every key under it when dropped, even when
/// the test panics.
pub struct TestPrefix {
    pub prefix: String,
    url: String,
}

impl TestPrefix {
    pub fn new() -> Self {
        Self {
            prefix: format!("test-auth-redis-{}", Uuid::new_v4().simple()),
            url: redis_url(),
        }
    }

    /// Settings for the shared Redis under this prefix.
    pub fn settings(&self) -> RedisSettings {
        let mut settings = RedisSettings::new(SecretString::from(self.url.clone()), &self.prefix);
        settings.timeout = Duration::from_secs(5);
        settings
    }

    /// A store on the shared Redis, checked to answer: a clear failure (not a skip) when
    /// the server is not there.
    pub async fn store(&self) -> RedisStore {
        let store = self.settings().store().expect("valid settings");
        if let Err(e) = SessionStore::ping(&store).await {
            panic!(
                "Redis is not reachable at REDIS_URL={} ({e}: {:?}). Start a Redis server there \
                 or point REDIS_URL at one; these tests never skip.",
                redacted(&self.url),
                std::error::Error::source(&e).map(ToString::to_string),
            );
        }
        store
    }

    /// A plain connection, to look at what the store wrote.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Redis is not reachable at REDIS_URL={}: {e}",
                    redacted(&self.url)
                )
            })
    }

    /// Every key under this prefix, by SCAN (never KEYS on a shared server).
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.raw().await;
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop cannot await, and it must also run on panic.
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let Ok((next, batch)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)
            else {
                return;
            };
            if !batch.is_empty() {
                let _: redis::RedisResult<i64> = redis::cmd("UNLINK").arg(&batch).query(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

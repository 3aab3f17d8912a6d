//! Argon2id [`PasswordHasher`] adapter for SecureAuth.
//!
//! [`Argon2Hasher`] hashes with Argon2id (OWASP defaults: 19 MiB, 2 passes, 1 lane) into PHC
//! strings with a fresh 128-bit salt from the OS. Argon2 runs on the hasher's own worker
//! threads ([`Argon2Settings::max_concurrent`] of them, one per core by default), never on the
//! async executor. Each worker owns its Argon2 working memory and takes the next call straight
//! from a shared queue as soon as it finishes one, so the cores stay busy under load with no
//! hand-off between runs, and memory stays at `max_concurrent × m`. A burst of logins waits in
//! a bounded queue; when the queue is full, or a caller has waited
//! [`Argon2Settings::queue_timeout`] without its run starting, the call fails fast with
//! [`HasherError::Unavailable`] (the HTTP layer answers 503 with `Retry-After`). A caller that
//! gives up (a client that hangs up) leaves the queue at once, and its run is skipped.
//!
//! [`PasswordHasher`]: auth_core::PasswordHasher
//! [`HasherError::Unavailable`]: auth_core::HasherError::Unavailable
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use auth_argon2::{Argon2Hasher, Argon2Settings};
//! use auth_core::{PasswordCheck, PasswordHasher};
//! use secrecy::SecretString;
//!
//! let hasher = Argon2Hasher::new(Argon2Settings::default())?;
//! let password = SecretString::from("correct horse battery staple");
//! let hash = hasher.hash(&password).await?;
//! assert_eq!(hasher.verify(&password, &hash).await?, PasswordCheck::Match);
//! # Ok(()) }
//! ```
//!
//! ## Embedding
//!
//! **Any executor.** The hasher needs no async runtime: Argon2 runs on the hasher's own worker
//! threads, the queue timeout is kept by one more thread of its own (`argon2-timer`), and a
//! caller waits on a runtime-agnostic one-shot channel. Tokio (any flavour), async-std, smol
//! and `futures::executor::block_on` all drive it.
//!
//! **Optimise Argon2 in debug builds.** Cargo profiles are per workspace: the
//! `[profile.dev.package.argon2]` settings of SecureAuth's workspace do not reach yours. Without
//! them a debug build hashes 10–20× slower (a login takes seconds, tests crawl). Add to the
//! root `Cargo.toml` of **your** workspace:
//!
//! ```toml
//! [profile.dev.package.argon2]
//! opt-level = 3
//!
//! [profile.dev.package.blake2]
//! opt-level = 3
//! ```

// Two rooms: `hasher` is the Argon2 side (parameters, hashing, verifying stored hashes, the
// `PasswordHasher` impl), `pool` the worker threads that run it (admission, the bounded queue,
// the queue timeout, saturation); `settings` is what both are configured with.

mod hasher;
mod pool;
mod settings;

pub use hasher::{is_supported_hash, Argon2Hasher, OUTPUT_LEN};
pub use pool::{Overloaded, WaitObserver};
pub use settings::{Argon2ConfigError, Argon2Settings};

/// Helpers shared by the tests of both rooms.
#[cfg(test)]
mod test_support {
    use std::time::Duration;

    use secrecy::SecretString;

    use crate::{Argon2Hasher, Argon2Settings};

    pub(crate) fn small(
        max_concurrent: usize,
        max_queue: usize,
        queue_timeout: Duration,
    ) -> Argon2Hasher {
        Argon2Hasher::new(Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent,
            max_queue,
            queue_timeout,
            worker_nice: 0,
        })
        .unwrap()
    }

    pub(crate) fn pw() -> SecretString {
        SecretString::from("correct horse battery staple")
    }
}

//! What the hasher is configured with: Argon2 costs and the pool's bounds.

use std::num::NonZeroUsize;
use std::time::Duration;

/// Cost and concurrency settings of [`Argon2Hasher`](crate::Argon2Hasher).
///
/// [`Default`] gives the OWASP Password Storage Cheat Sheet parameters for Argon2id
/// (m = 19456 KiB, t = 2, p = 1), one concurrent run per core, a queue of 64 waiters per core
/// and a 5 s queue timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory per run, in KiB (`m`).
    pub memory_kib: u32,
    /// Number of passes (`t`).
    pub iterations: u32,
    /// Degree of parallelism (`p`, lanes).
    pub parallelism: u32,
    /// Argon2 runs allowed at the same time. Peak memory is about
    /// `max_concurrent × memory_kib`.
    pub max_concurrent: usize,
    /// Calls allowed to wait for a free run slot; one more fails with
    /// [`HasherError::Unavailable`](auth_core::HasherError::Unavailable). `0` means: fail at
    /// once when every slot is busy.
    pub max_queue: usize,
    /// Longest a call waits for a run slot before it fails with
    /// [`HasherError::Unavailable`](auth_core::HasherError::Unavailable).
    pub queue_timeout: Duration,
    /// Nice value of the hashing threads (0–19; Linux only, ignored elsewhere). Above 0, when
    /// the cores are busy the threads that answer requests go first, so that a login flood
    /// slows the logins more and other requests less; idle cores still run hashes at full
    /// speed. `0` (the default) leaves them at the process's priority.
    pub worker_nice: u8,
}

impl Argon2Settings {
    /// OWASP minimum memory for Argon2id with `t = 2`, in KiB.
    pub const OWASP_MEMORY_KIB: u32 = 19_456;
    /// OWASP passes for [`Self::OWASP_MEMORY_KIB`].
    pub const OWASP_ITERATIONS: u32 = 2;
    /// OWASP lanes.
    pub const OWASP_PARALLELISM: u32 = 1;
    /// Queue length per concurrent slot used by [`Default`].
    pub const DEFAULT_QUEUE_PER_SLOT: usize = 64;
    /// Nice value of the hashing threads used by [`Default`]: none. Measured on 2 cores, nice 5
    /// bought 0.4 ms of `/me` p99 under a login flood and cost half the logins of a storm.
    pub const DEFAULT_WORKER_NICE: u8 = 0;
    /// Highest nice value.
    pub const MAX_WORKER_NICE: u8 = 19;
    /// Queue timeout used by [`Default`].
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Argon2Settings {
    /// The defaults, with `max_concurrent` runs at once and a queue of
    /// [`Self::DEFAULT_QUEUE_PER_SLOT`] per run.
    pub fn with_concurrency(max_concurrent: usize) -> Self {
        Self {
            memory_kib: Self::OWASP_MEMORY_KIB,
            iterations: Self::OWASP_ITERATIONS,
            parallelism: Self::OWASP_PARALLELISM,
            max_concurrent,
            max_queue: max_concurrent.saturating_mul(Self::DEFAULT_QUEUE_PER_SLOT),
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
            worker_nice: Self::DEFAULT_WORKER_NICE,
        }
    }
}

impl Default for Argon2Settings {
    /// One run per core ([`Argon2Settings::with_concurrency`] with the number of cores).
    fn default() -> Self {
        Self::with_concurrency(std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
    }
}

/// Why [`Argon2Hasher::new`](crate::Argon2Hasher::new) refused its settings.
#[derive(Debug, thiserror::Error)]
pub enum Argon2ConfigError {
    /// `memory_kib`, `iterations` or `parallelism` is out of Argon2's range.
    #[error("invalid Argon2 parameters: {0}")]
    Params(argon2::Error),
    /// `max_concurrent` is zero: nothing could ever be hashed.
    #[error("max_concurrent must be at least 1")]
    NoConcurrency,
    /// `worker_nice` is above [`Argon2Settings::MAX_WORKER_NICE`].
    #[error("worker_nice must be 0 to 19")]
    Nice,
    /// The operating system refused to start a worker thread.
    #[error("cannot start an Argon2 worker thread: {0}")]
    Spawn(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_owasp_and_scale_with_cores() {
        let s = Argon2Settings::default();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!((s.memory_kib, s.iterations, s.parallelism), (19_456, 2, 1));
        assert_eq!(s.max_concurrent, cores);
        assert_eq!(s.max_queue, 64 * cores);
        assert_eq!(s.queue_timeout, Duration::from_secs(5));
        assert_eq!(s.worker_nice, 0);
    }
}

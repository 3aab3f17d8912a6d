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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use auth_core::{HasherError, PasswordCheck, PasswordHash, PasswordHasher};
use futures::channel::oneshot;
use futures::future::{self, Either};
use secrecy::{ExposeSecret, SecretString};

/// Length of the derived key in bytes.
pub const OUTPUT_LEN: usize = 32;

/// Stored hashes asking for more memory than this (KiB) are refused as corrupt rather than
/// run: a damaged row must not make one login allocate gigabytes.
const MAX_STORED_MEMORY_KIB: u32 = 1 << 20;
/// Same for passes.
const MAX_STORED_ITERATIONS: u32 = 64;

/// Cost and concurrency settings of [`Argon2Hasher`].
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
    /// [`HasherError::Unavailable`]. `0` means: fail at once when every slot is busy.
    pub max_queue: usize,
    /// Longest a call waits for a run slot before it fails with [`HasherError::Unavailable`].
    pub queue_timeout: Duration,
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
        }
    }
}

impl Default for Argon2Settings {
    /// One run per core ([`Argon2Settings::with_concurrency`] with the number of cores).
    fn default() -> Self {
        Self::with_concurrency(std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
    }
}

/// Why [`Argon2Hasher::new`] refused its settings.
#[derive(Debug, thiserror::Error)]
pub enum Argon2ConfigError {
    /// `memory_kib`, `iterations` or `parallelism` is out of Argon2's range.
    #[error("invalid Argon2 parameters: {0}")]
    Params(argon2::Error),
    /// `max_concurrent` is zero: nothing could ever be hashed.
    #[error("max_concurrent must be at least 1")]
    NoConcurrency,
    /// The operating system refused to start a worker thread.
    #[error("cannot start an Argon2 worker thread: {0}")]
    Spawn(std::io::Error),
}

/// Why a call was turned away (the source of [`HasherError::Unavailable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overloaded {
    /// Every run slot was busy and `max_queue` calls were already waiting.
    #[error("password hashing queue is full ({max_queue} waiting)")]
    QueueFull {
        /// The configured queue bound.
        max_queue: usize,
    },
    /// The run did not start within `queue_timeout`.
    #[error("waited {waited:?} for a password hashing slot")]
    QueueTimeout {
        /// The configured queue timeout.
        waited: Duration,
    },
}

/// Argon2id password hasher with bounded concurrency. Cheap to clone (shared state); the
/// worker threads stop when the last clone is dropped.
#[derive(Clone)]
pub struct Argon2Hasher {
    inner: Arc<Inner>,
    queue: Arc<Queue>,
}

struct Inner {
    argon2: Argon2<'static>,
    /// The parameters `argon2` was built with (it has no getter).
    params: Params,
    settings: Argon2Settings,
}

/// The submitting side of the work queue, and the counts the bounds are enforced with.
struct Queue {
    jobs: crossbeam_channel::Sender<Job>,
    /// Queue-timeout alarms for the timer thread (see [`time_out`]).
    alarms: crossbeam_channel::Sender<Alarm>,
    counts: Arc<Counts>,
}

/// Fires (the sender is completed) at `at`, unless the caller stopped listening first.
struct Alarm {
    at: Instant,
    fire: oneshot::Sender<()>,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Alarm {}

impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

#[derive(Default)]
struct Counts {
    /// Calls admitted and not finished: queued plus running. At most
    /// `max_concurrent + max_queue`.
    admitted: AtomicUsize,
    /// Runs in progress.
    running: AtomicUsize,
}

/// One call's work, as a worker receives it.
struct Job {
    ticket: Arc<Ticket>,
    run: RunFn,
}

/// Runs the call with the worker's memory, releases `Finish`, then replies.
type RunFn = Box<dyn FnOnce(&Inner, &mut Vec<Block>, Finish) + Send>;

/// Decides, exactly once, whether a queued call runs (a worker took it) or not (its caller
/// gave up or timed out first).
#[derive(Default)]
struct Ticket(AtomicBool);

impl Ticket {
    fn take(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }
}

/// Releases a call's admission once; the worker hands it to the run, which drops it just
/// before replying, so a caller that has its answer sees the counts already updated. Also
/// released if the run panics.
struct Finish {
    counts: Arc<Counts>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.counts.running.fetch_sub(1, Ordering::SeqCst);
        self.counts.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Held by a waiting caller: if the caller goes away before a worker took the call, the
/// call is withdrawn and its place in the queue given back.
struct Withdraw<'a> {
    ticket: Arc<Ticket>,
    counts: &'a Counts,
}

impl Withdraw<'_> {
    /// Takes the call back unless a worker already started it.
    fn withdraw(&self) -> bool {
        let withdrawn = self.ticket.take();
        if withdrawn {
            self.counts.admitted.fetch_sub(1, Ordering::SeqCst);
        }
        withdrawn
    }
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("settings", &self.inner.settings)
            .field("in_flight", &self.in_flight())
            .field("queued", &self.queued())
            .finish()
    }
}

impl Argon2Hasher {
    /// Builds a hasher and starts its `max_concurrent` worker threads; checks the Argon2
    /// parameters once, here.
    pub fn new(settings: Argon2Settings) -> Result<Self, Argon2ConfigError> {
        if settings.max_concurrent == 0 {
            return Err(Argon2ConfigError::NoConcurrency);
        }
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(Argon2ConfigError::Params)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let inner = Arc::new(Inner {
            argon2,
            params,
            settings,
        });
        // Admission is bounded by `counts`; the channel itself never refuses.
        let (jobs, receiver) = crossbeam_channel::unbounded::<Job>();
        let counts = Arc::new(Counts::default());
        let (alarms, alarm_receiver) = crossbeam_channel::unbounded::<Alarm>();
        std::thread::Builder::new()
            .name("argon2-timer".into())
            .spawn(move || time_out(&alarm_receiver))
            .map_err(Argon2ConfigError::Spawn)?;
        for n in 0..inner.settings.max_concurrent {
            let receiver = receiver.clone();
            let inner = Arc::clone(&inner);
            let counts = Arc::clone(&counts);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&receiver, &inner, &counts))
                .map_err(Argon2ConfigError::Spawn)?;
        }
        Ok(Self {
            inner,
            queue: Arc::new(Queue {
                jobs,
                alarms,
                counts,
            }),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Argon2Settings {
        &self.inner.settings
    }

    /// Argon2 runs in progress right now (at most `max_concurrent`).
    pub fn in_flight(&self) -> usize {
        self.queue.counts.running.load(Ordering::SeqCst)
    }

    /// Calls waiting for their run to start right now (at most `max_queue`).
    pub fn queued(&self) -> usize {
        let counts = &self.queue.counts;
        counts
            .admitted
            .load(Ordering::SeqCst)
            .saturating_sub(counts.running.load(Ordering::SeqCst))
    }

    /// Whether a call made now would be refused at once: every worker busy and the queue
    /// full. For callers that want to refuse before doing other work for a call (a
    /// database lookup, say); the call itself checks again.
    pub fn is_saturated(&self) -> bool {
        let settings = &self.inner.settings;
        self.queue.counts.admitted.load(Ordering::SeqCst)
            >= settings.max_concurrent.saturating_add(settings.max_queue)
    }

    /// Queues `job` for a worker and waits for its result.
    async fn run<T, F>(&self, job: F) -> Result<T, HasherError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Vec<Block>) -> Result<T, HasherError> + Send + 'static,
    {
        let settings = &self.inner.settings;
        let counts = &self.queue.counts;
        let bound = settings.max_concurrent.saturating_add(settings.max_queue);
        if counts
            .admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < bound).then_some(n + 1)
            })
            .is_err()
        {
            // Debug only: the caller reports the refusal (auth-http logs every 503 once), and a
            // storm of refusals must not double the log volume.
            tracing::debug!(
                max_queue = settings.max_queue,
                "password hashing queue full; refusing"
            );
            return Err(HasherError::Unavailable(Box::new(Overloaded::QueueFull {
                max_queue: settings.max_queue,
            })));
        }
        let ticket = Arc::new(Ticket::default());
        let waiting = Withdraw {
            ticket: Arc::clone(&ticket),
            counts,
        };
        let (reply, result) = oneshot::channel();
        let run = Box::new(
            move |inner: &Inner, memory: &mut Vec<Block>, finish: Finish| {
                let outcome = job(inner, memory);
                drop(finish);
                // The caller may have gone meanwhile; nobody is left to tell.
                let _ = reply.send(outcome);
            },
        );
        if self.queue.jobs.send(Job { ticket, run }).is_err() {
            // Every worker is gone (only if the OS killed them): nothing will run this.
            return Err(HasherError::Other(Box::new(WorkersGone)));
        }

        // The timeout is kept by the timer thread, not by an async runtime's timer, so the
        // call works on any executor.
        let (fire, alarm) = oneshot::channel();
        let deadline = Instant::now().checked_add(settings.queue_timeout);
        if let Some(at) = deadline {
            // Without a timer (only if the OS killed it) the call simply waits for its run.
            let _ = self.queue.alarms.send(Alarm { at, fire });
        }
        let outcome = match future::select(result, alarm).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right((Ok(()), _)) if waiting.withdraw() => {
                tracing::debug!(
                    queue_timeout = ?settings.queue_timeout,
                    "password hashing queue wait timed out; refusing"
                );
                return Err(HasherError::Unavailable(Box::new(
                    Overloaded::QueueTimeout {
                        waited: settings.queue_timeout,
                    },
                )));
            }
            // It started just in time (a run is bounded: wait for it), or there is no alarm
            // (a timeout too long to represent, or no timer thread): wait for the run.
            Either::Right((_, result)) => result.await,
        };
        outcome.map_err(|_| HasherError::Other(Box::new(WorkersGone)))?
    }
}

/// A worker thread: takes calls off the queue until every [`Argon2Hasher`] clone is gone.
fn work(jobs: &crossbeam_channel::Receiver<Job>, inner: &Inner, counts: &Arc<Counts>) {
    // Argon2 working memory, kept from run to run so that a run neither allocates nor
    // page-faults its `m` KiB afresh.
    let mut memory: Vec<Block> = Vec::new();
    while let Ok(Job { ticket, run }) = jobs.recv() {
        if !ticket.take() {
            // Its caller gave up (and gave the place back) before it could start.
            continue;
        }
        counts.running.fetch_add(1, Ordering::SeqCst);
        let finish = Finish {
            counts: Arc::clone(counts),
        };
        // A panic inside Argon2 must not take the worker (and a core's worth of capacity)
        // with it; the caller sees its reply channel close and gets an error.
        if catch_unwind(AssertUnwindSafe(|| run(inner, &mut memory, finish))).is_err() {
            memory = Vec::new();
            tracing::error!("an Argon2 run panicked; its caller gets an error");
        }
    }
}

/// Pending alarms the timer keeps before it drops those nobody waits for any more.
const PRUNE_ALARMS_ABOVE: usize = 1024;

/// The timer thread: fires every alarm at its time, until every [`Argon2Hasher`] clone is
/// gone. Alarms whose caller already has its answer are dropped unfired.
fn time_out(alarms: &crossbeam_channel::Receiver<Alarm>) {
    let mut pending: BinaryHeap<Reverse<Alarm>> = BinaryHeap::new();
    let mut prune_above = PRUNE_ALARMS_ABOVE;
    loop {
        let received = match pending.peek() {
            Some(Reverse(next)) => alarms.recv_deadline(next.at),
            None => alarms
                .recv()
                .map_err(|_| crossbeam_channel::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(alarm) => pending.push(Reverse(alarm)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while pending.peek().is_some_and(|Reverse(next)| next.at <= now) {
            if let Some(Reverse(due)) = pending.pop() {
                // The caller may have its answer already, and be gone.
                let _ = due.fire.send(());
            }
        }
        // Calls answered before their deadline leave their alarm behind; drop those now and
        // then, so a long timeout under load keeps memory small (amortised: the next prune
        // waits until the heap has doubled).
        if pending.len() > prune_above {
            pending.retain(|Reverse(alarm)| !alarm.fire.is_canceled());
            prune_above = PRUNE_ALARMS_ABOVE.max(pending.len().saturating_mul(2));
        }
    }
}

/// The worker threads ended (or a run panicked) before answering.
#[derive(Debug, thiserror::Error)]
#[error("the Argon2 worker did not answer")]
struct WorkersGone;

fn other(e: impl std::error::Error + Send + Sync + 'static) -> HasherError {
    HasherError::Other(Box::new(e))
}

/// A stored hash this adapter cannot use.
#[derive(Debug, thiserror::Error)]
#[error("unusable password hash: {0}")]
struct BadHash(&'static str);

impl Inner {
    /// Runs `f` with `blocks` blocks of working memory: the worker's own buffer when the
    /// current parameters ask for it (the usual case), a temporary one for an old hash with
    /// other parameters.
    fn with_memory<T>(
        &self,
        memory: &mut Vec<Block>,
        blocks: usize,
        f: impl FnOnce(&mut [Block]) -> T,
    ) -> T {
        if blocks != self.params.block_count() {
            return f(&mut vec![Block::default(); blocks]);
        }
        if memory.len() != blocks {
            *memory = vec![Block::default(); blocks];
        }
        f(memory)
    }

    fn hash(
        &self,
        memory: &mut Vec<Block>,
        password: &SecretString,
    ) -> Result<PasswordHash, HasherError> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(other)?;
        let mut out = [0u8; OUTPUT_LEN];
        self.with_memory(memory, self.params.block_count(), |blocks| {
            self.argon2.hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt_bytes,
                &mut out,
                blocks,
            )
        })
        .map_err(other)?;
        let phc = password_hash::PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(other)?,
            salt: Some(salt.as_salt()),
            hash: Some(password_hash::Output::new(&out).map_err(other)?),
        };
        Ok(PasswordHash::new(phc.to_string()))
    }

    fn verify(
        &self,
        memory: &mut Vec<Block>,
        password: &SecretString,
        stored: &PasswordHash,
    ) -> Result<PasswordCheck, HasherError> {
        let parsed = password_hash::PasswordHash::new(stored.as_str()).map_err(other)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(other)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(other)?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(other)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(other(BadHash("no salt or no output")));
        };
        if params.m_cost() > MAX_STORED_MEMORY_KIB.max(self.settings.memory_kib)
            || params.t_cost() > MAX_STORED_ITERATIONS.max(self.settings.iterations)
        {
            return Err(other(BadHash("cost parameters out of range")));
        }

        let current = &self.params;
        let up_to_date = algorithm == Algorithm::Argon2id
            && version == Version::V0x13
            && params.m_cost() == current.m_cost()
            && params.t_cost() == current.t_cost()
            && params.p_cost() == current.p_cost()
            && params.output_len() == Some(OUTPUT_LEN)
            && params.keyid().is_empty()
            && params.data().is_empty();

        // Uses the stored algorithm, version and parameters; compares in constant time
        // (`Output`'s equality is constant-time).
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(other)?;
        let mut out = [0u8; password_hash::Output::MAX_LENGTH];
        let out = out
            .get_mut(..expected.len())
            .ok_or_else(|| other(BadHash("output too long")))?;
        let stored_argon2 = Argon2::new(algorithm, version, params.clone());
        self.with_memory(memory, params.block_count(), |blocks| {
            stored_argon2.hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt_bytes,
                out,
                blocks,
            )
        })
        .map_err(other)?;
        let matched = password_hash::Output::new(out).map_err(other)? == expected;

        if !up_to_date && cost(&params) < cost(current) {
            // A hash with cheaper parameters verified faster than `hash` runs; one run with
            // the current parameters keeps this call at least as slow as an unknown-email
            // login, which the service answers with `hash`.
            let mut sink = [0u8; OUTPUT_LEN];
            self.with_memory(memory, current.block_count(), |blocks| {
                self.argon2.hash_password_into_with_memory(
                    password.expose_secret().as_bytes(),
                    &[0u8; 16],
                    &mut sink,
                    blocks,
                )
            })
            .map_err(other)?;
        }

        Ok(match (matched, up_to_date) {
            (false, _) => PasswordCheck::Mismatch,
            (true, true) => PasswordCheck::Match,
            (true, false) => PasswordCheck::MatchNeedsRehash,
        })
    }
}

/// Relative cost of one run (memory × passes).
fn cost(params: &Params) -> u64 {
    u64::from(params.m_cost()) * u64::from(params.t_cost())
}

#[async_trait::async_trait]
impl PasswordHasher for Argon2Hasher {
    /// One Argon2id run with the current parameters and a fresh salt.
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HasherError> {
        let password = password.clone();
        self.run(move |inner, memory| inner.hash(memory, &password))
            .await
    }

    /// One Argon2 run with the stored hash's parameters; when those are cheaper than the
    /// current ones, one more run with the current parameters, so the call never costs less
    /// than [`hash`](PasswordHasher::hash). Returns [`PasswordCheck::MatchNeedsRehash`] when the
    /// stored algorithm, version, parameters or output length differ from the current ones,
    /// and [`HasherError::Other`] for a hash that does not parse, is not Argon2, or asks for
    /// absurd costs.
    async fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
    ) -> Result<PasswordCheck, HasherError> {
        let password = password.clone();
        let hash = hash.clone();
        self.run(move |inner, memory| inner.verify(memory, &password, &hash))
            .await
    }

    fn is_saturated(&self) -> bool {
        Argon2Hasher::is_saturated(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(max_concurrent: usize, max_queue: usize, queue_timeout: Duration) -> Argon2Hasher {
        Argon2Hasher::new(Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent,
            max_queue,
            queue_timeout,
        })
        .unwrap()
    }

    fn pw() -> SecretString {
        SecretString::from("correct horse battery staple")
    }

    /// Keeps every worker busy, as long-running hashes would, until the returned guard is
    /// dropped, so queueing is deterministic.
    async fn occupy_all(hasher: &Argon2Hasher) -> Vec<std::sync::mpsc::Sender<()>> {
        let n = hasher.settings().max_concurrent;
        let mut guards = Vec::new();
        for _ in 0..n {
            let (release, released) = std::sync::mpsc::channel::<()>();
            guards.push(release);
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(move |_, _| {
                        // Returns when the guard (the sender) is dropped.
                        let _ = released.recv();
                        Ok(())
                    })
                    .await
            });
        }
        wait_until(|| hasher.in_flight() == n).await;
        guards
    }

    async fn wait_until(mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not reached in 5 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn full_queue_is_refused_at_once_and_the_queue_drains() {
        let hasher = small(1, 1, Duration::from_secs(30));
        let busy = occupy_all(&hasher).await;
        assert_eq!(hasher.in_flight(), 1);

        let queued = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(&pw()).await }
        });
        wait_until(|| hasher.queued() == 1).await;

        let started = std::time::Instant::now();
        let err = hasher.hash(&pw()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        match err {
            HasherError::Unavailable(source) => assert_eq!(
                source.downcast_ref::<Overloaded>(),
                Some(&Overloaded::QueueFull { max_queue: 1 })
            ),
            other => panic!("expected Unavailable, got {other:?}"),
        }

        drop(busy);
        queued.await.unwrap().unwrap();
        assert_eq!(hasher.queued(), 0);
        wait_until(|| hasher.in_flight() == 0).await;
    }

    #[tokio::test]
    async fn waiting_longer_than_the_queue_timeout_is_refused() {
        let hasher = small(1, 8, Duration::from_millis(50));
        let _busy = occupy_all(&hasher).await;
        let started = std::time::Instant::now();
        let err = hasher
            .verify(&pw(), &PasswordHash::new("x"))
            .await
            .unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        match err {
            HasherError::Unavailable(source) => assert!(matches!(
                source.downcast_ref::<Overloaded>(),
                Some(Overloaded::QueueTimeout { .. })
            )),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(hasher.queued(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_gives_its_queue_place_back() {
        let hasher = small(1, 1, Duration::from_secs(30));
        let busy = occupy_all(&hasher).await;
        let waiter = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(&pw()).await }
        });
        wait_until(|| hasher.queued() == 1).await;
        waiter.abort();
        wait_until(|| hasher.queued() == 0).await;
        drop(busy);
        hasher.hash(&pw()).await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_run_is_an_error_and_the_worker_lives_on() {
        let hasher = small(1, 4, Duration::from_secs(30));
        let err = hasher
            .run(|_, _| -> Result<(), HasherError> { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(err, HasherError::Other(_)), "{err:?}");
        wait_until(|| (hasher.in_flight(), hasher.queued()) == (0, 0)).await;
        // The only worker still takes calls.
        let hash = hasher.hash(&pw()).await.unwrap();
        assert_eq!(
            hasher.verify(&pw(), &hash).await.unwrap(),
            PasswordCheck::Match
        );
    }

    #[tokio::test]
    async fn a_withdrawn_call_never_runs() {
        let hasher = small(1, 4, Duration::from_millis(20));
        let busy = occupy_all(&hasher).await;
        let ran = Arc::new(AtomicBool::new(false));
        let err = hasher
            .run({
                let ran = Arc::clone(&ran);
                move |_, _| {
                    ran.store(true, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, HasherError::Unavailable(_)), "{err:?}");
        drop(busy);
        // The worker reaches the withdrawn call next and must skip it.
        hasher.hash(&pw()).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst));
    }

    /// The queue timeout needs no Tokio timer: plain threads and `block_on`, no runtime.
    #[test]
    fn the_queue_timeout_fires_under_block_on() {
        use futures::executor::block_on;
        assert!(tokio::runtime::Handle::try_current().is_err());
        let hasher = small(1, 8, Duration::from_millis(50));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let occupant = std::thread::spawn({
            let hasher = hasher.clone();
            move || {
                block_on(hasher.run(move |_, _| {
                    let _ = released.recv();
                    Ok(())
                }))
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while hasher.in_flight() != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker never started"
            );
            std::thread::sleep(Duration::from_millis(2));
        }

        let started = std::time::Instant::now();
        let err = block_on(hasher.hash(&pw())).unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        match err {
            HasherError::Unavailable(source) => assert!(matches!(
                source.downcast_ref::<Overloaded>(),
                Some(Overloaded::QueueTimeout { .. })
            )),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(hasher.queued(), 0);

        drop(release);
        occupant.join().unwrap().unwrap();
        // A call that is answered before its deadline is not refused by its alarm later.
        let hash = block_on(hasher.hash(&pw())).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            block_on(hasher.verify(&pw(), &hash)).unwrap(),
            PasswordCheck::Match
        );
    }

    #[test]
    fn hashes_and_verifies_under_block_on() {
        use futures::executor::block_on;
        assert!(tokio::runtime::Handle::try_current().is_err());
        let hasher = small(2, 8, Duration::from_secs(5));
        let hash = block_on(hasher.hash(&pw())).unwrap();
        assert_eq!(
            block_on(hasher.verify(&pw(), &hash)).unwrap(),
            PasswordCheck::Match
        );
        assert_eq!(
            block_on(hasher.verify(&SecretString::from("wrong"), &hash)).unwrap(),
            PasswordCheck::Mismatch
        );
    }

    #[test]
    fn zero_concurrency_and_bad_params_are_refused() {
        let settings = Argon2Settings {
            max_concurrent: 0,
            ..Argon2Settings::default()
        };
        assert!(matches!(
            Argon2Hasher::new(settings),
            Err(Argon2ConfigError::NoConcurrency)
        ));
        let settings = Argon2Settings {
            iterations: 0,
            ..Argon2Settings::default()
        };
        assert!(matches!(
            Argon2Hasher::new(settings),
            Err(Argon2ConfigError::Params(_))
        ));
    }

    #[test]
    fn defaults_are_owasp_and_scale_with_cores() {
        let s = Argon2Settings::default();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!((s.memory_kib, s.iterations, s.parallelism), (19_456, 2, 1));
        assert_eq!(s.max_concurrent, cores);
        assert_eq!(s.max_queue, 64 * cores);
        assert_eq!(s.queue_timeout, Duration::from_secs(5));
    }
}

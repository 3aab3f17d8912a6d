//! The worker pool: Argon2 runs on the hasher's own threads, one per allowed concurrent run,
//! fed from one shared queue. Admission is bounded (`max_concurrent + max_queue` calls), a
//! queued call is refused after `queue_timeout` (kept by a timer thread, so no async runtime is
//! needed), and a caller that gives up withdraws its call before a worker takes it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use argon2::Block;
use auth_core::HasherError;
use futures::channel::oneshot;
use futures::future::{self, Either};

use crate::hasher::{Argon2Hasher, Inner};
use crate::settings::Argon2ConfigError;

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

/// The submitting side of the work queue, and the counts the bounds are enforced with.
pub(crate) struct Queue {
    jobs: crossbeam_channel::Sender<Job>,
    /// Queue-timeout alarms for the timer thread (see [`time_out`]).
    alarms: crossbeam_channel::Sender<Alarm>,
    counts: Arc<Counts>,
}

impl Queue {
    /// Starts the timer thread and `max_concurrent` worker threads for `inner`.
    pub(crate) fn start(inner: &Arc<Inner>) -> Result<Self, Argon2ConfigError> {
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
            let inner = Arc::clone(inner);
            let counts = Arc::clone(&counts);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_priority(inner.settings.worker_nice);
                    work(&receiver, &inner, &counts);
                })
                .map_err(Argon2ConfigError::Spawn)?;
        }
        Ok(Self {
            jobs,
            alarms,
            counts,
        })
    }
}

/// Gives the calling thread the nice value `nice` (Linux: the nice value is per thread).
/// Best effort: a refusal (a sandbox, say) leaves the thread as it was, with a warning.
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), i32::from(nice))
    {
        tracing::warn!(error = %e, nice, "could not lower the priority of a hashing thread");
    }
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

/// Told how long each call that got to run waited for its worker (see
/// [`Argon2Hasher::observe_waits`]).
pub type WaitObserver = Arc<dyn Fn(Duration) + Send + Sync>;

#[derive(Default)]
struct Counts {
    /// Told each run's wait, once set.
    wait_observer: OnceLock<WaitObserver>,
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
    /// When the call was queued.
    queued_at: Instant,
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

impl Argon2Hasher {
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

    /// Has `observer` told how long each call that gets to run waited for a worker (for a
    /// wait-time histogram). Only the first observer set counts; returns whether this one did.
    /// It runs on the worker thread, before the run: it must be quick.
    pub fn observe_waits(&self, observer: WaitObserver) -> bool {
        self.queue.counts.wait_observer.set(observer).is_ok()
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
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T, HasherError>
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
        let job = Job {
            ticket,
            run,
            queued_at: Instant::now(),
        };
        if self.queue.jobs.send(job).is_err() {
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
    while let Ok(Job {
        ticket,
        run,
        queued_at,
    }) = jobs.recv()
    {
        if !ticket.take() {
            // Its caller gave up (and gave the place back) before it could start.
            continue;
        }
        if let Some(observe) = counts.wait_observer.get() {
            observe(queued_at.elapsed());
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

#[cfg(test)]
mod tests {
    use auth_core::{PasswordCheck, PasswordHash, PasswordHasher};

    use super::*;
    use crate::test_support::{pw, small};

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

    /// The nice value of the calling thread.
    #[cfg(target_os = "linux")]
    fn current_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    /// The hashing threads run at the configured nice value; the caller's thread is left
    /// as it was.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn workers_run_at_the_configured_nice_value() {
        let before = current_nice();
        for nice in [7_u8, 0] {
            let hasher = Argon2Hasher::new(crate::Argon2Settings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
                max_concurrent: 1,
                max_queue: 1,
                queue_timeout: Duration::from_secs(5),
                worker_nice: nice,
            })
            .unwrap();
            let seen = hasher.run(|_, _| Ok(current_nice())).await.unwrap();
            // A thread starts at its creator's nice value; 0 leaves it there.
            let expected = if nice == 0 { before } else { i32::from(nice) };
            assert_eq!(seen, expected, "worker_nice {nice}");
        }
        assert_eq!(current_nice(), before, "the caller's thread is unchanged");
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
    async fn each_run_reports_how_long_it_waited_for_a_worker() {
        let hasher = small(1, 1, Duration::from_secs(30));
        let waits = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
        let seen = Arc::clone(&waits);
        assert!(hasher.observe_waits(Arc::new(move |d| seen.lock().unwrap().push(d))));
        assert!(
            !hasher.observe_waits(Arc::new(|_| {})),
            "only the first observer counts"
        );
        let busy = occupy_all(&hasher).await;
        let queued = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(&pw()).await }
        });
        wait_until(|| hasher.queued() == 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(busy);
        queued.await.unwrap().unwrap();
        let waits = waits.lock().unwrap().clone();
        assert_eq!(
            waits.len(),
            2,
            "the occupying run and the queued one: {waits:?}"
        );
        assert!(
            waits[1] >= Duration::from_millis(100),
            "the queued call waited for the busy worker: {waits:?}"
        );
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
}

//! The mail outbox of this instance: the queue the service writes to, and the courier task
//! that delivers from it (see `auth_core::outbox`).

use std::sync::Arc;
use std::time::Duration;

use auth_core::outbox::{Courier, CourierPolicy, MailQueue, MailSeal};
use auth_core::{Clock, Mailer, OsRandom, OutboxError, OutboxStats, OutboxStore, SystemClock};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::settings::OutboxSettings;

/// The outbox shared by the service (which queues), the courier (which delivers), `/ready`
/// (which reports the backlog), the bounce endpoint and the `outbox` command.
#[derive(Clone)]
pub struct MailOutbox {
    store: Arc<dyn OutboxStore>,
    courier: Arc<Courier>,
    wake: Arc<Notify>,
    poll_interval: Duration,
    suppress_for: Duration,
}

impl std::fmt::Debug for MailOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailOutbox")
            .field("courier", &self.courier)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl MailOutbox {
    /// The outbox in `store`, delivering through `transport` (SMTP, or files), and the
    /// [`Mailer`] the service is to use: a [`MailQueue`] into it that wakes this instance's
    /// courier (also the service's [`with_outbox`](auth_core::AuthService::with_outbox)).
    pub fn new(
        store: Arc<dyn OutboxStore>,
        transport: Arc<dyn Mailer>,
        seal: MailSeal,
        settings: &OutboxSettings,
    ) -> (Self, Arc<MailQueue>) {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let policy = CourierPolicy {
            lease: settings.lease,
            max_attempts: settings.max_attempts.max(1),
            backoff_cap: settings.backoff_cap,
            backoff_base: Duration::from_secs(1).min(settings.backoff_cap),
            suppress_for: settings.suppress_for,
            ..CourierPolicy::default()
        };
        let courier = Courier::new(
            Arc::clone(&store),
            transport,
            seal.clone(),
            Arc::clone(&clock),
            policy,
        );
        let wake = Arc::new(Notify::new());
        let waker = Arc::clone(&wake);
        let queue = MailQueue::new(
            Arc::clone(&store),
            seal,
            clock,
            Arc::new(OsRandom),
            settings.max_age,
        )
        .on_enqueue(Arc::new(move || waker.notify_one()));
        let outbox = Self {
            store,
            courier: Arc::new(courier),
            wake,
            poll_interval: settings.poll_interval,
            suppress_for: settings.suppress_for,
        };
        (outbox, Arc::new(queue))
    }

    /// The store (for the `outbox` command and the bounce endpoint).
    pub fn store(&self) -> &Arc<dyn OutboxStore> {
        &self.store
    }

    /// How long a bounce or complaint suppresses an address.
    pub fn suppress_for(&self) -> Duration {
        self.suppress_for
    }

    /// What is waiting, now.
    pub async fn stats(&self) -> Result<OutboxStats, OutboxError> {
        self.store.stats(SystemClock.now()).await
    }

    /// Starts this instance's courier: it delivers while there is due mail, then waits for a
    /// message queued here or the poll interval (mail queued by other instances).
    pub fn spawn_courier(&self) -> CourierTask {
        self.spawn_observed_courier(None)
    }

    /// [`spawn_courier`](Self::spawn_courier), telling `metrics` each round's outcomes.
    pub fn spawn_observed_courier(&self, metrics: Option<crate::metrics::Metrics>) -> CourierTask {
        let (stop, mut stopped) = watch::channel(false);
        let courier = Arc::clone(&self.courier);
        let wake = Arc::clone(&self.wake);
        let poll = self.poll_interval;
        let handle = tokio::spawn(async move {
            loop {
                let busy = match courier.deliver_due().await {
                    // Keep going while messages go out; a round where every message failed
                    // transiently (the mail server is down) waits like an idle one.
                    Ok(report) => {
                        if let Some(metrics) = &metrics {
                            metrics.record_deliveries(&report);
                        }
                        report.claimed > 0 && report.deferred < report.claimed
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "mail courier: the outbox is unavailable");
                        false
                    }
                };
                if *stopped.borrow() {
                    break;
                }
                if busy {
                    continue;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        CourierTask { stop, handle }
    }
}

/// A running courier; [`stop`](Self::stop) lets its current round finish.
#[derive(Debug)]
pub struct CourierTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl CourierTask {
    /// A task that stops when `stop` says so.
    pub(crate) fn new(stop: watch::Sender<bool>, handle: JoinHandle<()>) -> Self {
        Self { stop, handle }
    }

    /// Stops after the current round (at most `grace`; after it the task is cut off, and its
    /// leased messages are taken over by another instance when the lease runs out).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(grace, self.handle).await.is_err() {
            abort.abort();
        }
    }
}

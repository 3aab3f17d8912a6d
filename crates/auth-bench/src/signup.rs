//! Scenario 6: signup with a slow mail server. The server under test runs twice against the
//! benchmark's database and Redis, with a loopback SMTP sink that takes [`MAIL_LATENCY`] to
//! accept each message: with `MAIL_DELIVERY=outbox` (the request queues its mail, the courier
//! sends it) and with `MAIL_DELIVERY=inline` (the request sends it itself, as the service did
//! before the outbox). Then how fast the courier empties the outbox: the backlog the outbox
//! run left, to the slow sink; and a backlog queued directly, to the sink without latency.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use auth_core::outbox::{MailQueue, MailSeal};
use auth_core::{EmailAddress, MailMessage, Mailer as _, OsRandom, OtpCode, SystemClock};
use auth_postgres::testing::TestDatabase;
use auth_testkit::smtp::MailSink;
use futures::{StreamExt as _, TryStreamExt as _};
use secrecy::SecretBox;
use serde_json::{json, Value};

use crate::servers::ServerProcess;
use crate::wrk::{self, Load, WrkOutput};

/// How long the slow sink takes to accept each message.
pub const MAIL_LATENCY: Duration = Duration::from_millis(60);

/// Argon2id cost of the signup servers: the API tests' cheap one, so that the two runs differ
/// in their mail path and not in how many hashes two cores can do (about 120 a second at the
/// production cost, which would bound both runs alike). `--server-env` overrides it.
pub const ARGON2: [(&str, &str); 3] = [
    ("ARGON2_MEMORY_KIB", "1024"),
    ("ARGON2_ITERATIONS", "1"),
    ("ARGON2_PARALLELISM", "1"),
];

/// Longest wait for the outbox to empty; past it the drain counts as an unexpected error.
const DRAIN_DEADLINE: Duration = Duration::from_secs(180);

/// The bearer token that shows `/ready`'s mail backlog to the benchmark.
const OPS_TOKEN: &str = "bench-ops-token-bench-ops-token-0123456789";

/// How often `/ready` is asked while the outbox drains.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// What the scenario needs from the benchmark.
pub struct Setup<'a> {
    pub program: &'a Path,
    pub server_args: &'a [&'a str],
    /// The benchmark's server environment without `--server-env`, which goes last so that it
    /// overrides this scenario's settings too.
    pub base_env: &'a [(String, String)],
    pub server_env: &'a [(String, String)],
    /// `AUTH_SECRET` of the servers (the key the outbox is sealed with).
    pub auth_secret: &'a str,
    pub db: &'a TestDatabase,
    pub out_dir: &'a Path,
    pub lua_dir: &'a Path,
    pub password: &'a str,
    pub connections: usize,
    pub wrk_threads: usize,
    pub duration: Duration,
    /// Messages queued directly for the drain to the sink without latency.
    pub prequeued: usize,
}

/// What the courier did until `/ready` reported an empty outbox.
#[derive(Debug, Clone)]
pub struct Drain {
    pub mail_latency: Duration,
    /// `mail_outbox.pending` when the measurement began.
    pub backlog: u64,
    /// Messages the sink received from then until the outbox was empty.
    pub delivered: usize,
    pub elapsed: Duration,
    /// Whether the outbox was empty within [`DRAIN_DEADLINE`].
    pub drained: bool,
    /// `mail_outbox.dead` at the end: messages given up on.
    pub dead: u64,
}

impl Drain {
    /// Messages delivered per second.
    pub fn per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.delivered as f64 / secs
        } else {
            0.0
        }
    }

    fn unexpected(&self) -> u64 {
        u64::from(!self.drained) + self.dead
    }

    fn json(&self) -> Value {
        json!({
            "mail_latency_ms": self.mail_latency.as_millis() as u64,
            "backlog": self.backlog,
            "delivered": self.delivered,
            "seconds": round2(self.elapsed.as_secs_f64()),
            "messages_per_s": round1(self.per_s()),
            "drained": self.drained,
            "dead": self.dead,
        })
    }
}

/// Raw results of scenario 6.
#[derive(Debug)]
pub struct SignupResults {
    pub connections: usize,
    pub outbox: WrkOutput,
    pub inline: WrkOutput,
    /// Mails the sink received for the outbox run, once its backlog was drained.
    pub outbox_mails: usize,
    /// Mails the sink had received for the inline run when wrk finished.
    pub inline_mails: usize,
    /// The backlog of the outbox run, to the slow sink.
    pub drain_slow: Drain,
    /// Messages queued directly, to the sink without latency.
    pub drain_fast: Drain,
    pub prequeued: usize,
    /// Of those, how many the sink received in all (some before the measurement began).
    pub prequeued_mails: usize,
}

impl SignupResults {
    /// Outbox signups per second over inline ones.
    pub fn ratio(&self) -> f64 {
        crate::bench::ratio(self.outbox.rps(), self.inline.rps())
    }

    /// Unexpected outcomes of the outbox run: anything but 201, socket errors, a signup whose
    /// mail never arrived or a mail that arrived twice (up to one per connection may belong to
    /// a request wrk cut off at the end of the run, unanswered), a drain that did not finish.
    pub fn outbox_errors(&self) -> u64 {
        let created = self.outbox.status(201);
        let mails = self.outbox_mails as u64;
        not_created(&self.outbox)
            + created.saturating_sub(mails)
            + mails.saturating_sub(created + self.connections as u64)
            + self.drain_slow.unexpected()
    }

    /// Unexpected outcomes of the inline run: anything but 201, socket errors, a 201 whose
    /// mail was not at the sink when wrk finished (inline answers only after sending).
    pub fn inline_errors(&self) -> u64 {
        not_created(&self.inline)
            + self
                .inline
                .status(201)
                .saturating_sub(self.inline_mails as u64)
    }

    /// Unexpected outcomes of the direct drain: a message lost or left behind.
    pub fn drain_fast_errors(&self) -> u64 {
        self.drain_fast.unexpected() + (self.prequeued as u64).abs_diff(self.prequeued_mails as u64)
    }

    pub fn json(&self) -> Value {
        let run = |o: &WrkOutput, errors| crate::bench::scenario_json(o, self.connections, errors);
        json!({
            "mail_latency_ms": MAIL_LATENCY.as_millis() as u64,
            "argon2": ARGON2.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "outbox": run(&self.outbox, self.outbox_errors()),
            "inline": run(&self.inline, self.inline_errors()),
            "outbox_vs_inline": self.ratio(),
            "mails": {
                "outbox_created": self.outbox.status(201),
                "outbox_delivered": self.outbox_mails,
                "inline_created": self.inline.status(201),
                "inline_delivered": self.inline_mails,
            },
            "drain": {
                "after_outbox_run": self.drain_slow.json(),
                "no_latency": {
                    "queued": self.prequeued,
                    "delivered_in_all": self.prequeued_mails,
                    "measured": self.drain_fast.json(),
                },
            },
        })
    }
}

/// Anything but 201 (the run's addresses are all new), and socket errors.
fn not_created(o: &WrkOutput) -> u64 {
    o.statuses
        .iter()
        .filter(|(k, _)| k.as_str() != "201")
        .map(|(_, v)| v)
        .sum::<u64>()
        + o.errors.socket()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub async fn run(s: &Setup<'_>) -> anyhow::Result<SignupResults> {
    let sink = MailSink::start();
    sink.set_latency(MAIL_LATENCY);
    let env = |delivery: &str, poll_interval: &str| -> Vec<(String, String)> {
        let own = [
            ("SMTP_HOST", sink.host().to_owned()),
            ("SMTP_PORT", sink.port().to_string()),
            ("SMTP_TLS", "none".to_owned()),
            ("MAIL_DELIVERY", delivery.to_owned()),
            ("OUTBOX_POLL_INTERVAL", poll_interval.to_owned()),
            // The outbox run would otherwise be held to 50 ms per answer.
            ("UNIFORM_ANSWER_TIME", "0".to_owned()),
            ("OPS_TOKEN", OPS_TOKEN.to_owned()),
        ]
        .into_iter()
        .chain(ARGON2.iter().map(|(k, v)| (*k, (*v).to_owned())))
        .map(|(k, v)| (k.to_owned(), v));
        s.base_env
            .iter()
            .cloned()
            .chain(own)
            .chain(s.server_env.iter().cloned())
            .collect()
    };
    let signups = |label: &str, url: &str| wrk::Run {
        label: label.to_owned(),
        url: url.to_owned(),
        threads: s.wrk_threads,
        connections: s.connections,
        duration: s.duration,
        timeout: Duration::from_secs(30),
        load: Load::Signup {
            run: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            password: s.password.to_owned(),
        },
    };
    let client = reqwest::Client::new();

    eprintln!(
        "auth-bench: 6. POST /signup, MAIL_DELIVERY=outbox, {} ms mail server",
        MAIL_LATENCY.as_millis()
    );
    let server = start(s, "signup-outbox", &env("outbox", "1s")).await?;
    let before = sink.messages().len();
    let outbox = signups("signup-outbox", &server.base_url)
        .execute(s.lua_dir, s.out_dir)
        .await?;
    eprintln!("auth-bench: 6. the courier drains the outbox run's backlog");
    let drain_slow = drain(&client, &server, &sink, MAIL_LATENCY, None).await?;
    let outbox_mails = sink.messages().len() - before;
    server.stop().await;

    eprintln!(
        "auth-bench: 6. the courier drains {} queued messages to a mail server without latency",
        s.prequeued
    );
    sink.set_latency(Duration::ZERO);
    // This courier finds nothing at start, then sleeps until a mail is queued on its own
    // instance (or an hour): the messages queued directly wait for the signup that starts
    // the measurement.
    let server = start(s, "drain-outbox", &env("outbox", "1h")).await?;
    let before = sink.messages().len();
    prequeue(s.db, s.auth_secret, s.prequeued).await?;
    let drain_fast = drain(&client, &server, &sink, Duration::ZERO, Some(s.password)).await?;
    // The signup's own mail is the one more.
    let prequeued_mails = (sink.messages().len() - before).saturating_sub(1);
    server.stop().await;

    eprintln!(
        "auth-bench: 6. POST /signup, MAIL_DELIVERY=inline, {} ms mail server",
        MAIL_LATENCY.as_millis()
    );
    sink.set_latency(MAIL_LATENCY);
    let server = start(s, "signup-inline", &env("inline", "1s")).await?;
    let before = sink.messages().len();
    let inline = signups("signup-inline", &server.base_url)
        .execute(s.lua_dir, s.out_dir)
        .await?;
    let inline_mails = sink.messages().len() - before;
    server.stop().await;

    Ok(SignupResults {
        connections: s.connections,
        outbox,
        inline,
        outbox_mails,
        inline_mails,
        drain_slow,
        drain_fast,
        prequeued: s.prequeued,
        prequeued_mails,
    })
}

async fn start(
    s: &Setup<'_>,
    name: &'static str,
    env: &[(String, String)],
) -> anyhow::Result<ServerProcess> {
    ServerProcess::start(name, s.program, s.server_args, env, s.out_dir).await
}

/// Polls `/ready` from now until `mail_outbox.pending` is 0, counting what the sink receives
/// meanwhile. With `wake_with`, one signup (with that password) first wakes a courier that
/// sleeps.
async fn drain(
    client: &reqwest::Client,
    server: &ServerProcess,
    sink: &MailSink,
    mail_latency: Duration,
    wake_with: Option<&str>,
) -> anyhow::Result<Drain> {
    let start = Instant::now();
    let received_before = sink.messages().len();
    let (mut pending, mut dead) = outbox_report(client, &server.base_url).await?;
    if let Some(password) = wake_with {
        let email = format!("wake-{}@example.com", uuid::Uuid::new_v4().simple());
        let response = client
            .post(format!("{}/signup", server.base_url))
            .json(&json!({"email": email, "password": password}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .context("POST /signup to wake the courier")?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::CREATED,
            "the signup that wakes the courier answered {}",
            response.status()
        );
        pending += 1;
    }
    let backlog = pending;
    while pending > 0 && start.elapsed() < DRAIN_DEADLINE {
        tokio::time::sleep(DRAIN_POLL).await;
        (pending, dead) = outbox_report(client, &server.base_url).await?;
    }
    let elapsed = start.elapsed();
    Ok(Drain {
        mail_latency,
        backlog,
        delivered: sink.messages().len() - received_before,
        elapsed,
        drained: pending == 0,
        dead,
    })
}

/// `mail_outbox.pending` and `.dead` of `/ready`.
async fn outbox_report(client: &reqwest::Client, base: &str) -> anyhow::Result<(u64, u64)> {
    let ready: Value = client
        .get(format!("{base}/ready"))
        .bearer_auth(OPS_TOKEN)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .context("GET /ready")?
        .json()
        .await
        .context("GET /ready: not JSON")?;
    let count = |field: &str| {
        ready
            .pointer(&format!("/mail_outbox/{field}"))
            .and_then(Value::as_u64)
            .with_context(|| format!("/ready reports no mail_outbox.{field}: {ready}"))
    };
    Ok((count("pending")?, count("dead")?))
}

/// Queues `n` verification mails straight into the outbox, sealed as the servers seal them,
/// while no server runs.
async fn prequeue(db: &TestDatabase, auth_secret: &str, n: usize) -> anyhow::Result<()> {
    let seal = MailSeal::derive(&SecretBox::new(auth_secret.as_bytes().into()))
        .context("sealing key from AUTH_SECRET")?;
    let queue = MailQueue::new(
        Arc::new(db.repository().outbox()),
        seal,
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Duration::from_secs(3600),
    );
    let queue = &queue;
    let message = &MailMessage::VerifyEmail {
        code: OtpCode::from_number(123_456)?,
        valid_for: Duration::from_secs(600),
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..12];
    futures::stream::iter(0..n)
        .map(|i| async move {
            let to = EmailAddress::parse(&format!("drain-{run}-{i}@example.com"))?;
            queue.send(&to, message).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

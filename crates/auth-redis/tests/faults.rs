//! Outages: nothing listening, a server that never answers, a server killed mid-use and
//! started again. Every call must fail with `Unavailable` within the configured timeout (no
//! panic, no hang), and the same store must work again once Redis is back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use auth_core::{
    ClientInfo, EmailAddress, OtpMac, OtpPurpose, OtpStore, OtpStoreError, Session, SessionId,
    SessionStore, SessionStoreError, SessionToken, StoredOtp, TokenHash, User, UserId,
};
use auth_redis::{RedisSettings, RedisStore};
use auth_testkit::redis_server::ThrowawayRedis;
use chrono::Utc;
use secrecy::SecretString;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_millis(800);
/// What "within the timeout" allows for scheduling noise on a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(1200);

fn store_at(url: &str) -> RedisStore {
    let mut settings = RedisSettings::new(SecretString::from(url.to_owned()), "faults");
    settings.timeout = TIMEOUT;
    settings.store().unwrap()
}

fn session() -> Session {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    let now = Utc::now();
    Session {
        passkey: None,
        id: SessionId::from_uuid(Uuid::new_v4()),
        token_hash: SessionToken::from_bytes(bytes).hash(),
        user: User {
            id: UserId::from_uuid(Uuid::new_v4()),
            email: EmailAddress::parse("faults@example.com").unwrap(),
            verified_at: None,
            created_at: now,
            updated_at: now,
        },
        created_at: now,
        expires_at: now + chrono::Duration::hours(1),
        last_seen_at: now,
        client: ClientInfo::default(),
    }
}

fn otp() -> StoredOtp {
    StoredOtp {
        mac: OtpMac([9; 32]),
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        pending_password: None,
        requested_by: None,
    }
}

fn assert_session_unavailable<T: std::fmt::Debug>(
    what: &str,
    started: Instant,
    result: Result<T, SessionStoreError>,
) {
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(SessionStoreError::Unavailable(_))),
        "{what}: expected Unavailable, got {result:?}"
    );
    assert!(elapsed <= TIMEOUT + SLACK, "{what}: took {elapsed:?}");
}

fn assert_otp_unavailable<T: std::fmt::Debug>(
    what: &str,
    started: Instant,
    result: Result<T, OtpStoreError>,
) {
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(OtpStoreError::Unavailable(_))),
        "{what}: expected Unavailable, got {result:?}"
    );
    assert!(elapsed <= TIMEOUT + SLACK, "{what}: took {elapsed:?}");
}

/// Every operation of both ports fails with `Unavailable`, each within the timeout.
async fn every_operation_is_unavailable(store: &RedisStore) {
    let s = session();
    let email = EmailAddress::parse("down@example.com").unwrap();
    let purpose = OtpPurpose::VerifyEmail;

    let t = Instant::now();
    assert_session_unavailable("ping", t, SessionStore::ping(store).await);
    let t = Instant::now();
    assert_session_unavailable("insert", t, store.insert(&s, Duration::from_secs(60)).await);
    let t = Instant::now();
    assert_session_unavailable("get", t, store.get(&s.token_hash).await);
    let t = Instant::now();
    assert_session_unavailable("touch", t, store.touch(&s, Duration::from_secs(60)).await);
    let t = Instant::now();
    assert_session_unavailable("list", t, store.list_for_user(s.user.id, None, 10).await);
    let t = Instant::now();
    assert_session_unavailable("delete", t, store.delete(&s.token_hash).await);
    let t = Instant::now();
    assert_session_unavailable("delete_by_id", t, store.delete_by_id(s.user.id, s.id).await);
    let t = Instant::now();
    assert_session_unavailable(
        "delete_all",
        t,
        store.delete_all_for_user(s.user.id, None).await,
    );

    let t = Instant::now();
    assert_otp_unavailable(
        "put",
        t,
        store
            .put(purpose, &email, otp(), 3, Duration::from_secs(60))
            .await,
    );
    let t = Instant::now();
    assert_otp_unavailable(
        "record_attempt",
        t,
        store.record_attempt(purpose, &email).await,
    );
    let t = Instant::now();
    assert_otp_unavailable(
        "consume",
        t,
        store.consume(purpose, &email, &otp().mac).await,
    );
    let t = Instant::now();
    assert_otp_unavailable("discard", t, store.discard(purpose, &email).await);
    let t = Instant::now();
    assert_otp_unavailable(
        "claim_send_slot",
        t,
        store
            .claim_send_slot(purpose, &email, Duration::from_secs(60))
            .await,
    );
}

#[tokio::test]
async fn nothing_listening_is_unavailable_quickly() {
    let port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = store_at(&format!("redis://127.0.0.1:{port}"));
    every_operation_is_unavailable(&store).await;
}

/// Accepts connections and never answers, like a hung server or a black-holed network.
struct SilentServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_after_the_timeout() {
    let server = SilentServer::start();
    let store = store_at(&format!("redis://127.0.0.1:{}", server.port));
    every_operation_is_unavailable(&store).await;
}

#[tokio::test]
async fn killed_server_is_unavailable_and_the_same_store_recovers_after_restart() {
    let mut redis = ThrowawayRedis::start();
    let store = store_at(&redis.url());
    let s = session();
    store.insert(&s, Duration::from_secs(60)).await.unwrap();
    assert!(store.get(&s.token_hash).await.unwrap().is_some());

    redis.kill();
    every_operation_is_unavailable(&store).await;

    redis.restart();
    // The restarted server is empty (nothing is persisted); the store answers at once.
    assert_eq!(store.get(&s.token_hash).await.unwrap(), None);
    SessionStore::ping(&store).await.unwrap();
    store.insert(&s, Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get(&s.token_hash).await.unwrap().as_ref(), Some(&s));
    let email = EmailAddress::parse("back@example.com").unwrap();
    store
        .put(
            OtpPurpose::ResetPassword,
            &email,
            otp(),
            3,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let attempt = store
        .record_attempt(OtpPurpose::ResetPassword, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempt.attempts, 1);
    assert_eq!(store.delete_all_for_user(s.user.id, None).await.unwrap(), 1);
}

/// A restart between two calls, with no failed call in between to notice it: reads still
/// succeed on the first try (the broken pooled connection is replaced and the read resent).
#[tokio::test]
async fn reads_survive_an_unnoticed_restart() {
    let mut redis = ThrowawayRedis::start();
    let store = store_at(&redis.url());
    let s = session();
    store.insert(&s, Duration::from_secs(60)).await.unwrap();

    redis.restart();
    assert_eq!(store.get(&s.token_hash).await.unwrap(), None);
    store.insert(&s, Duration::from_secs(60)).await.unwrap();
    assert!(store.get(&s.token_hash).await.unwrap().is_some());
}

/// Many callers at once during an outage: all fail fast, none waits for another's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_during_an_outage_all_fail_within_the_timeout() {
    let server = SilentServer::start();
    let store = Arc::new(store_at(&format!("redis://127.0.0.1:{}", server.port)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.get(&TokenHash([1; 32])).await });
    }
    for result in tasks.join_all().await {
        assert!(
            matches!(result, Err(SessionStoreError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert!(
        started.elapsed() <= TIMEOUT + SLACK,
        "took {:?}",
        started.elapsed()
    );
}

/// With `idle_recheck_after` elapsed, checkout PINGs the pooled connection and replaces a dead
/// one, so even a write succeeds on the first try after an unnoticed restart.
#[tokio::test]
async fn idle_connections_are_rechecked_before_reuse() {
    let mut redis = ThrowawayRedis::start();
    let mut settings = RedisSettings::new(SecretString::from(redis.url()), "faults");
    settings.timeout = TIMEOUT;
    settings.idle_recheck_after = Duration::ZERO;
    let store = settings.store().unwrap();
    SessionStore::ping(&store).await.unwrap();

    redis.restart();
    let email = EmailAddress::parse("recheck@example.com").unwrap();
    assert_eq!(
        store
            .claim_send_slot(OtpPurpose::VerifyEmail, &email, Duration::from_secs(60))
            .await
            .unwrap(),
        auth_core::SendSlot::Granted
    );
}

/// Sockets of this process connected to `port` (from `ss`).
fn connections_to(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args([
            "-tnH",
            "state",
            "established",
            "dst",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .expect("ss (iproute2) is installed");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// A stalled Redis (every client paused much longer than the timeout) with many callers:
/// every call fails within the timeout, and the store never holds more connections than its
/// pool's size (a timed-out connection is closed, not left behind while a new one opens);
/// afterwards it serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_never_grows_the_connections_past_the_pool() {
    const POOL: usize = 3;
    let redis = ThrowawayRedis::start();
    let mut settings = RedisSettings::new(SecretString::from(redis.url()), "faults");
    settings.timeout = Duration::from_millis(400);
    settings.pool_size = POOL;
    let store = Arc::new(settings.store().unwrap());
    SessionStore::ping(store.as_ref()).await.unwrap();

    let mut admin = TcpStream::connect((Ipv4Addr::LOCALHOST, redis.port())).unwrap();
    std::io::Write::write_all(&mut admin, b"CLIENT PAUSE 4000 ALL\r\n").unwrap();
    let mut ok = [0u8; 5];
    std::io::Read::read_exact(&mut admin, &mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");

    let stop = Instant::now() + Duration::from_secs(3);
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        callers.spawn(async move {
            while Instant::now() < stop {
                let start = Instant::now();
                let outcome = store.get(&TokenHash([2; 32])).await;
                assert!(
                    matches!(outcome, Err(SessionStoreError::Unavailable(_))),
                    "{outcome:?}"
                );
                assert!(start.elapsed() <= Duration::from_millis(400) + SLACK);
            }
        });
    }
    let mut most = 0;
    while Instant::now() < stop {
        // Minus the admin connection.
        most = most.max(connections_to(redis.port()).saturating_sub(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    callers.join_all().await;
    assert!(most <= POOL, "{most} connections open, pool size {POOL}");

    // Once the pause is over the same store serves again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.get(&TokenHash([2; 32])).await.is_err() {
        assert!(Instant::now() < deadline, "the store did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(admin);
}

/// Calls of a command so far, from `INFO commandstats` (scripts' calls included).
async fn calls_of(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Revoking one session by id reads that one session, however many the user has (it used to
/// read every one of them: 33,420 sessions, 250 ms of a single-threaded Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_id_reads_one_session_whatever_their_number() {
    let redis = ThrowawayRedis::start();
    let mut settings = RedisSettings::new(SecretString::from(redis.url()), "scale");
    settings.max_sessions_per_user = 0;
    let store = settings.store().unwrap();
    let first = session();
    store
        .insert(&first, Duration::from_secs(600))
        .await
        .unwrap();
    let mut last = first.clone();
    for _ in 0..2_000 {
        last = session();
        last.user = first.user.clone();
        store.insert(&last, Duration::from_secs(600)).await.unwrap();
    }
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for target in [&first, &last] {
        let before = calls_of(&mut conn, "get").await;
        assert!(store.delete_by_id(first.user.id, target.id).await.unwrap());
        let reads = calls_of(&mut conn, "get").await - before;
        assert_eq!(reads, 1, "delete_by_id read {reads} sessions");
    }
    assert!(
        !store.delete_by_id(first.user.id, first.id).await.unwrap(),
        "revoked once"
    );
}

/// `n` sessions of one user (no cap), written by a few tasks at once; the user's first session.
async fn crowd(store: &RedisStore, n: usize) -> Session {
    let first = session();
    store
        .insert(&first, Duration::from_secs(600))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let user = first.user.clone();
            tokio::spawn(async move {
                for _ in 0..(n - 1) / 8 {
                    let mut s = session();
                    s.user = user.clone();
                    store.insert(&s, Duration::from_secs(600)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    first
}

/// A page of sessions reads at most its limit of sessions, however many the user has (the
/// listing used to read every one of them: 10,000 sessions, 85 ms of a single-threaded Redis
/// per page, during which every other user's `/me` waited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_sessions_reads_at_most_its_limit_whatever_their_number() {
    let redis = ThrowawayRedis::start();
    let mut settings = RedisSettings::new(SecretString::from(redis.url()), "scale");
    settings.max_sessions_per_user = 0;
    let store = settings.store().unwrap();
    let first = crowd(&store, 2_001).await;
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut after = None;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let before = calls_of(&mut conn, "get").await;
        let page = store.list_for_user(first.user.id, after, 10).await.unwrap();
        let reads = calls_of(&mut conn, "get").await - before;
        assert!(reads <= 10, "a page of 10 read {reads} sessions");
        assert_eq!(page.sessions.len(), 10);
        for s in &page.sessions {
            assert!(seen.insert(s.id), "listed twice");
        }
        after = Some(page.next.expect("more pages"));
    }
}

/// Logging out everywhere from an account with thousands of sessions runs as many short
/// scripts, so Redis serves other clients in between (it used to be one script over the whole
/// index: 33,420 sessions held Redis for about 250 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_holds_redis_only_in_short_steps() {
    let redis = ThrowawayRedis::start();
    let mut settings = RedisSettings::new(SecretString::from(redis.url()), "scale");
    settings.max_sessions_per_user = 0;
    let store = settings.store().unwrap();
    let n = 4_001;
    let first = crowd(&store, n).await;
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let scripts = |conn| async move {
        let mut conn = conn;
        calls_of(&mut conn, "evalsha").await + calls_of(&mut conn, "eval").await
    };
    let before = scripts(conn.clone()).await;
    let gets_before = calls_of(&mut conn, "get").await;
    let revoked = store
        .delete_all_for_user(first.user.id, Some(first.id))
        .await
        .unwrap();
    assert_eq!(revoked, u64::try_from(n - 1).unwrap());
    let steps = scripts(conn.clone()).await - before;
    let reads = calls_of(&mut conn, "get").await - gets_before;
    assert!(
        steps >= reads / 128,
        "{steps} scripts read {reads} sessions: more than 128 per script"
    );
    assert!(
        store.get(&first.token_hash).await.unwrap().is_some(),
        "the kept one stays"
    );
    let page = store.list_for_user(first.user.id, None, 100).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.next, None);
}

/// What one session costs in Redis memory (printed for docs/SCALING.md): the session key, its
/// share of its user's index and id map (`MEMORY USAGE`), and the growth of `used_memory`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_session_is_measured_and_bounded() {
    let redis = ThrowawayRedis::start();
    let settings = RedisSettings::new(SecretString::from(redis.url()), "mem");
    let store = settings.store().unwrap();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let used = |info: String| -> i64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let before: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (users, per_user) = (200usize, 10usize);
    let mut sample = Vec::new();
    for _ in 0..users {
        let first = session();
        store
            .insert(&first, Duration::from_secs(600))
            .await
            .unwrap();
        for _ in 1..per_user {
            let mut s = session();
            s.user = first.user.clone();
            s.client = ClientInfo::new(
                "203.0.113.9".parse().ok(),
                Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            );
            store.insert(&s, Duration::from_secs(600)).await.unwrap();
            sample.push(s);
        }
    }
    let after: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    let n = users * per_user;
    let growth = (used(after) - used(before)) as f64 / n as f64;
    let usage = |key: String| {
        let mut conn = conn.clone();
        async move {
            let bytes: i64 = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut conn)
                .await
                .unwrap();
            bytes
        }
    };
    let s = &sample[0];
    let session_key = usage(format!("mem:session:{}", s.token_hash.to_hex())).await;
    let index = usage(format!(
        "mem:user-sessions:{}",
        s.user.id.as_uuid().hyphenated()
    ))
    .await;
    let ids = usage(format!(
        "mem:user-session-ids:{}",
        s.user.id.as_uuid().hyphenated()
    ))
    .await;
    let per_session_index = (index + ids) as f64 / per_user as f64;
    eprintln!(
        "memory per session: session key {session_key} B (with a 70-byte user agent), \
         index + id map {per_session_index:.0} B per session ({per_user} per user), \
         used_memory growth {growth:.0} B per session over {n}"
    );
    assert!(session_key < 1024, "session key {session_key} B");
    assert!(per_session_index < 256.0, "index {per_session_index} B");
}

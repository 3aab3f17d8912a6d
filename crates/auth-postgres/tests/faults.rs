#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Outages: a closed port, a server that never answers, a dropped and restored connection, a
//! statement stuck behind a lock. Each must give `Unavailable` within the configured bounds,
//! and the pool must heal once the cause is gone.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::str::FromStr;
use std::time::{Duration, Instant};

use auth_core::{EmailAddress, NewUser, PasswordHash, UserId, UserRepoError, UserRepository};
use auth_postgres::testing::TestDatabase;
use auth_postgres::{run_migrations, MigrationError, PgUserRepository, PostgresSettings};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// Generous: what matters is that the answer comes in seconds, not never.
const BOUND: Duration = Duration::from_secs(4);

fn settings(url: String) -> PostgresSettings {
    PostgresSettings {
        max_connections: 2,
        connect_timeout: CONNECT_TIMEOUT,
        acquire_timeout: ACQUIRE_TIMEOUT,
        query_timeout: QUERY_TIMEOUT,
        ..PostgresSettings::new(url.into())
    }
}

/// A port on which nothing listens (bound once to get it, then released).
fn closed_port() -> u16 {
    let listener = StdTcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn some_email() -> EmailAddress {
    EmailAddress::parse(&format!(
        "fault-{}@example.com",
        uuid::Uuid::new_v4().simple()
    ))
    .unwrap()
}

async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, UserRepoError>>,
) {
    let start = Instant::now();
    let outcome = call.await;
    let took = start.elapsed();
    assert!(
        matches!(outcome, Err(UserRepoError::Unavailable(_))),
        "{what}: expected Unavailable, got {outcome:?}"
    );
    assert!(took < BOUND, "{what}: took {took:?}");
}

#[tokio::test]
async fn closed_port_is_unavailable_quickly() {
    let port = closed_port();
    let repo = PgUserRepository::connect(&settings(format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    )))
    .unwrap();
    assert_unavailable("find_by_email", repo.find_by_email(&some_email())).await;
    assert_unavailable("ping", repo.ping()).await;
    assert_unavailable(
        "find_by_id",
        repo.find_by_id(UserId::from_uuid(uuid::Uuid::new_v4())),
    )
    .await;
}

#[tokio::test]
async fn migrations_against_a_closed_port_report_unavailable() {
    let port = closed_port();
    let start = Instant::now();
    let outcome = run_migrations(&settings(format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    )))
    .await;
    assert!(
        matches!(outcome, Err(MigrationError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(start.elapsed() < BOUND);
}

#[tokio::test]
async fn server_that_never_answers_is_unavailable_within_the_timeouts() {
    // The kernel completes the TCP handshake for a listener that never accepts, so the client
    // connects and then waits forever for the start-up reply: only our timeout ends it.
    let silent = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let repo = PgUserRepository::connect(&settings(format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    )))
    .unwrap();
    assert_unavailable("ping", repo.ping()).await;
    assert_unavailable("find_by_email", repo.find_by_email(&some_email())).await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_stuck_behind_a_lock_times_out_and_the_pool_recovers() {
    let db = TestDatabase::new().await;
    let repo = PgUserRepository::connect(&settings(db.url().expose_secret().to_owned())).unwrap();
    repo.ping().await.unwrap();

    // Another session holds an exclusive lock, so any read of `users` waits.
    let mut locker = AsyncPgConnection::establish(db.url().expose_secret())
        .await
        .unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut locker)
        .await
        .unwrap();
    diesel::sql_query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();

    let start = Instant::now();
    let outcome = repo.find_by_email(&some_email()).await;
    assert!(
        matches!(outcome, Err(UserRepoError::Unavailable(_))),
        "{outcome:?}"
    );
    // The server's statement_timeout (below QUERY_TIMEOUT) ends it.
    assert!(start.elapsed() >= QUERY_TIMEOUT * 4 / 5 && start.elapsed() < BOUND);

    diesel::sql_query("ROLLBACK")
        .execute(&mut locker)
        .await
        .unwrap();
    assert!(matches!(repo.find_by_email(&some_email()).await, Ok(None)));
    drop(locker);
    repo.close();
    db.cleanup().await.unwrap();
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Backends of this database opened by the adapter (`application_name = secureauth`), and how
/// many of them are running a statement.
async fn adapter_backends(monitor: &mut AsyncPgConnection) -> (i64, i64) {
    let all: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'secureauth'",
    )
    .get_result(monitor)
    .await
    .unwrap();
    let active: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'secureauth' AND state = 'active'",
    )
    .get_result(monitor)
    .await
    .unwrap();
    (all.n, active.n)
}

/// A stall much longer than the query timeout, with many callers: every call fails fast, the
/// server never holds more of our connections than the pool's size (a timed-out statement
/// used to keep its backend while the pool opened a new one), and nothing of ours is left
/// running on the server once the stall ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lock_never_grows_the_connections_past_the_pool() {
    const POOL: usize = 3;
    let db = TestDatabase::new().await;
    let settings = PostgresSettings {
        max_connections: POOL,
        ..settings(db.url().expose_secret().to_owned())
    };
    let repo = PgUserRepository::connect(&settings).unwrap();
    repo.ping().await.unwrap();
    let mut monitor = AsyncPgConnection::establish(db.url().expose_secret())
        .await
        .unwrap();
    let mut locker = AsyncPgConnection::establish(db.url().expose_secret())
        .await
        .unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut locker)
        .await
        .unwrap();
    diesel::sql_query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();

    // 30 callers for 5 s: ten query timeouts.
    let stop = Instant::now() + Duration::from_secs(5);
    let mut callers = JoinSet::new();
    for _ in 0..30 {
        let repo = repo.clone();
        callers.spawn(async move {
            let mut calls = 0u32;
            while Instant::now() < stop {
                let start = Instant::now();
                let outcome = repo.find_by_email(&some_email()).await;
                assert!(
                    matches!(outcome, Err(UserRepoError::Unavailable(_))),
                    "{outcome:?}"
                );
                assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
                calls += 1;
            }
            calls
        });
    }
    let mut most = 0;
    while Instant::now() < stop {
        let (all, _) = adapter_backends(&mut monitor).await;
        most = most.max(all);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut calls = 0;
    while let Some(n) = callers.join_next().await {
        calls += n.unwrap();
    }
    let (all, _) = adapter_backends(&mut monitor).await;
    most = most.max(all);
    assert!(calls >= 30, "the callers ran ({calls} calls)");
    assert!(
        most <= POOL as i64,
        "{most} connections of the adapter on the server, pool size {POOL}"
    );

    diesel::sql_query("ROLLBACK")
        .execute(&mut locker)
        .await
        .unwrap();
    // Nothing of ours still waits on the server, and the pool serves again.
    let (_, active) = adapter_backends(&mut monitor).await;
    assert_eq!(
        active, 0,
        "statements of the adapter still running after the stall"
    );
    assert!(matches!(repo.find_by_email(&some_email()).await, Ok(None)));
    drop((locker, monitor));
    repo.close();
    db.cleanup().await.unwrap();
}

/// A TCP proxy to PostgreSQL that the test can stop, restart on the same port, or freeze.
struct Proxy {
    listen: SocketAddr,
    upstream: SocketAddr,
    frozen: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = listener.local_addr().unwrap();
        let (frozen, _) = watch::channel(false);
        let mut proxy = Self {
            listen,
            upstream,
            frozen,
            accept: None,
        };
        proxy.accept = Some(proxy.serve(listener));
        proxy
    }

    /// Closes the listener and every proxied connection, as a server going down would.
    async fn stop(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.listen).await.unwrap();
        self.accept = Some(self.serve(listener));
    }

    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let upstream = self.upstream;
        let frozen = self.frozen.subscribe();
        tokio::spawn(async move {
            // Owned here, so aborting this task aborts (and closes) every connection.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                connections.spawn(pump(client_read, server_write, frozen.clone()));
                connections.spawn(pump(server_read, client_write, frozen.clone()));
            }
        })
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// The test database's server address and a key=value connection string for `host:port`
/// (keeps any password of `DATABASE_URL`).
fn via(db: &TestDatabase, host_port: SocketAddr) -> (SocketAddr, String) {
    let config = tokio_postgres::Config::from_str(db.url().expose_secret()).unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the proxy test needs a TCP DATABASE_URL, got {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .unwrap()
        .next()
        .unwrap();
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut url = format!(
        "host={} port={} user={} dbname={}",
        host_port.ip(),
        host_port.port(),
        quote(config.get_user().unwrap()),
        quote(config.get_dbname().unwrap()),
    );
    if let Some(password) = config.get_password() {
        url.push_str(&format!(
            " password={}",
            quote(std::str::from_utf8(password).unwrap())
        ));
    }
    (upstream, url)
}

async fn wait_until_ok(repo: &PgUserRepository, deadline: Duration) {
    let start = Instant::now();
    loop {
        match repo.ping().await {
            Ok(()) => return,
            Err(e) if start.elapsed() > deadline => panic!("pool did not recover: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_recovers_after_the_server_comes_back() {
    let db = TestDatabase::new().await;
    let (upstream, _) = via(&db, "127.0.0.1:1".parse().unwrap());
    let mut proxy = Proxy::start(upstream).await;
    let (_, url) = via(&db, proxy.listen);
    let repo = PgUserRepository::connect(&settings(url)).unwrap();

    let id = UserId::from_uuid(uuid::Uuid::new_v4());
    repo.create(&NewUser {
        id,
        email: some_email(),
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        created_at: Utc::now(),
        language: None,
    })
    .await
    .unwrap();

    // Down: the pooled connections die and new ones are refused.
    proxy.stop().await;
    assert_unavailable("ping while down", repo.ping()).await;
    assert_unavailable("find_by_id while down", repo.find_by_id(id)).await;

    // Back: the same repository works again without being rebuilt.
    proxy.restart().await;
    wait_until_ok(&repo, BOUND).await;
    assert!(repo.find_by_id(id).await.unwrap().is_some());

    // Frozen: connections stay open but nothing comes back.
    proxy.frozen.send_replace(true);
    assert_unavailable("ping while frozen", repo.ping()).await;
    proxy.frozen.send_replace(false);
    wait_until_ok(&repo, BOUND).await;
    assert!(repo.find_by_id(id).await.unwrap().is_some());

    repo.close();
    proxy.stop().await;
    db.cleanup().await.unwrap();
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The adapter behind PgBouncer (Debian's 1.18) in session mode, the mode it supports: a
//! throwaway PgBouncer on a free loopback port in front of the test server, the contract suites
//! through it, and the server-side statement timeout still in force through it.
//!
//! Transaction mode is not supported: diesel-async prepares every statement under a name,
//! and PgBouncer before 1.21 does not carry named statements from one transaction's server
//! connection to the next (`prepared statement "s74" does not exist`); see docs/SCALING.md.

use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::{EmailAddress, UserRepoError, UserRepository};
use auth_postgres::testing::{admin_url_from_env, TestDatabase};
use auth_postgres::{PgUserRepository, PostgresSettings};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;

/// A PgBouncer process of this test, killed (and its directory removed) on drop.
struct Bouncer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pgbouncer_binary() -> PathBuf {
    [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| {
        panic!(
            "PgBouncer is not installed: `apt-get install pgbouncer` (cargo xtask test \
                 installs it)"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Starts PgBouncer in `mode` in front of the test server, every database passed through.
fn start(mode: &str) -> Bouncer {
    let admin = tokio_postgres::Config::from_str(admin_url_from_env().expose_secret()).unwrap();
    let host = match admin.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let server_port = admin.get_ports().first().copied().unwrap_or(5432);
    let user = admin.get_user().unwrap_or("postgres").to_owned();
    let port = {
        let listener = StdTcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = std::env::temp_dir().join(format!("secureauth-pgbouncer-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&dir).unwrap();
    let ini = dir.join("pgbouncer.ini");
    std::fs::write(
        &ini,
        format!(
            "[databases]\n\
             * = host={host} port={server_port} user={user}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = any\n\
             pool_mode = {mode}\n\
             default_pool_size = 20\n\
             max_client_conn = 200\n\
             logfile = {log}\n",
            log = dir.join("pgbouncer.log").display()
        ),
    )
    .unwrap();
    let mut command = Command::new(pgbouncer_binary());
    // PgBouncer refuses to run as root; as root, it switches to the server's own account
    // itself (so the process this test kills is PgBouncer, not a wrapper).
    if is_root() {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        command.args(["-u", "postgres"]);
    }
    let child = command
        .arg(&ini)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("PgBouncer starts");
    let bouncer = Bouncer { child, port, dir };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "PgBouncer did not listen on {port}: {}",
            std::fs::read_to_string(bouncer.dir.join("pgbouncer.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    bouncer
}

/// The test database's URL with PgBouncer's port instead of the server's.
fn through(bouncer: &Bouncer, db: &TestDatabase) -> String {
    let user = tokio_postgres::Config::from_str(admin_url_from_env().expose_secret())
        .unwrap()
        .get_user()
        .unwrap_or("postgres")
        .to_owned();
    format!("postgres://{user}@127.0.0.1:{}/{}", bouncer.port, db.name())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_meet_their_contracts_through_pgbouncer_in_session_mode() {
    let bouncer = start("session");
    let db = TestDatabase::new().await;
    let repo =
        PgUserRepository::connect(&PostgresSettings::new(through(&bouncer, &db).into())).unwrap();
    repo.ping().await.unwrap();
    auth_testkit::contracts::user_repository::run(Arc::new(repo.clone())).await;
    auth_testkit::contracts::outbox::run(Arc::new(repo.outbox())).await;
    auth_testkit::contracts::mail_with_changes::run(
        Arc::new(repo.clone()),
        Arc::new(repo.outbox()),
    )
    .await;
    auth_testkit::contracts::security_events::run(&repo.security_events()).await;
    let (totp, users) = (Arc::new(repo.totp()), Arc::new(repo.clone()));
    auth_testkit::contracts::totp_store::run(totp, users).await;
    repo.close();
    db.cleanup().await.unwrap();
}

/// A stalled database must cost nothing past the deadline behind a pooler too: PgBouncer
/// 1.18 drops the start-up `options` a connection might carry its `statement_timeout` in, so
/// the adapter sets it with statements, which session mode keeps for the connection's life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_behind_a_lock_is_ended_by_the_server_through_pgbouncer() {
    let bouncer = start("session");
    let db = TestDatabase::new().await;
    let query_timeout = Duration::from_millis(800);
    let settings = PostgresSettings {
        max_connections: 2,
        query_timeout,
        ..PostgresSettings::new(through(&bouncer, &db).into())
    };
    let repo = PgUserRepository::connect(&settings).unwrap();
    repo.ping().await.unwrap();

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

    let email = EmailAddress::parse("stalled@example.com").unwrap();
    let start = Instant::now();
    let outcome = repo.find_by_email(&email).await;
    let took = start.elapsed();
    assert!(
        matches!(outcome, Err(UserRepoError::Unavailable(_))),
        "{outcome:?}"
    );
    // The server's lock_timeout (four fifths of the query timeout) ended it, not the client.
    assert!(
        took >= settings.server_statement_timeout() && took < query_timeout,
        "ended after {took:?}: the server-side timeout did not reach the server"
    );

    diesel::sql_query("ROLLBACK")
        .execute(&mut locker)
        .await
        .unwrap();
    assert!(matches!(repo.find_by_email(&email).await, Ok(None)));
    repo.close();
    drop(locker);
    db.cleanup().await.unwrap();
}

//! Concurrency, durability across reopen, WAL mode and error mapping, on real files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{EmailAddress, NewUser, PasswordHash, UserId, UserRepoError, UserRepository};
use auth_sqlite::{run_migrations, SqliteSettings, SqliteUserRepository, MIGRATIONS};
use chrono::{SubsecRound, Utc};
use diesel::migration::MigrationSource;
use diesel::sqlite::Sqlite;
use tokio::task::JoinSet;
use uuid::Uuid;

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::from_uuid(Uuid::new_v4()),
        email: EmailAddress::parse(email).unwrap(),
        password_hash: PasswordHash::new(format!("$argon2id$v=19$fake${}", Uuid::new_v4())),
        created_at: Utc::now().trunc_subsecs(6),
        language: None,
    }
}

async fn open(path: &Path) -> Arc<SqliteUserRepository> {
    Arc::new(
        SqliteUserRepository::open(&SqliteSettings::file(path))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_of_distinct_users_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(&dir.path().join("auth.db")).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let (repo, barrier) = (Arc::clone(&repo), Arc::clone(&barrier));
        tasks.spawn(async move {
            let user = new_user(&format!("user{i}@example.com"));
            barrier.wait().await;
            // Mixed with reads, which run on the other pooled connections meanwhile.
            let _ = repo.find_by_email(&user.email).await.unwrap();
            (user.id, repo.create(&user).await)
        });
    }
    let outcomes = tasks.join_all().await;
    for (id, outcome) in &outcomes {
        let user = outcome.as_ref().unwrap();
        assert_eq!(user.id, *id);
    }
    for (id, _) in outcomes {
        assert!(repo.find_by_id(id).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_creates_of_one_email_make_one_account() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(&dir.path().join("auth.db")).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = JoinSet::new();
    for i in 0..10 {
        let (repo, barrier) = (Arc::clone(&repo), Arc::clone(&barrier));
        // Letter case differs between racers: still one address.
        let email = if i % 2 == 0 {
            "Race@Example.com"
        } else {
            "race@example.COM"
        };
        let user = new_user(email);
        tasks.spawn(async move {
            barrier.wait().await;
            repo.create(&user).await
        });
    }
    let outcomes = tasks.join_all().await;
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, Err(UserRepoError::Duplicate)))
        .count();
    assert_eq!((ok, duplicates), (1, 9), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_repositories_on_one_file_do_not_fail_with_locked() {
    // Two pools on one file stand in for two processes: only busy_timeout keeps them apart.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let (a, b) = (open(&path).await, open(&path).await);
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let repo = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.spawn(async move { repo.create(&new_user(&format!("p{i}@example.com"))).await });
    }
    for outcome in tasks.join_all().await {
        outcome.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/secureauth.db");
    let user = new_user("durable@example.com");
    let at = Utc::now().trunc_subsecs(6);
    {
        let repo = open(&path).await;
        repo.create(&user).await.unwrap();
        repo.mark_verified(user.id, at).await.unwrap();
        repo.close();
    }
    assert!(path.exists(), "the file and its directory were created");

    let reopened = open(&path).await;
    let found = reopened
        .find_by_email(&user.email)
        .await
        .unwrap()
        .expect("still there after reopening");
    assert_eq!(found.user.id, user.id);
    assert_eq!(found.user.created_at, user.created_at);
    assert_eq!(found.user.verified_at, Some(at));
    assert_eq!(found.password_hash, user.password_hash);
    assert_eq!(
        run_migrations(&SqliteSettings::file(&path)).await.unwrap(),
        Vec::<String>::new(),
        "nothing left to migrate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let applied = run_migrations(&SqliteSettings::file(&path)).await.unwrap();
    let embedded = MigrationSource::<Sqlite>::migrations(&MIGRATIONS).unwrap();
    assert_eq!(applied.len(), embedded.len(), "{applied:?}");
    let repo = open(&path).await;
    repo.create(&new_user("wal@example.com")).await.unwrap();
    let wal = dir.path().join("auth.db-wal");
    assert!(wal.exists(), "a WAL file next to the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_repository_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(&dir.path().join("auth.db")).await;
    repo.ping().await.unwrap();
    repo.close();
    assert!(matches!(
        repo.ping().await,
        Err(UserRepoError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_created_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be.
    let path = dir.path().join("taken");
    std::fs::create_dir(&path).unwrap();
    let settings = SqliteSettings {
        acquire_timeout: Duration::from_secs(1),
        ..SqliteSettings::file(&path)
    };
    let err = SqliteUserRepository::open(&settings).await.unwrap_err();
    assert!(
        matches!(err, auth_sqlite::SqliteError::Unavailable(_)),
        "{err:?}"
    );
}

#[derive(diesel::QueryableByName)]
struct Pragma {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

async fn pragma(repo: &SqliteUserRepository, name: &str) -> String {
    use diesel_async::RunQueryDsl;
    let mut conn = repo.pool().get().await.unwrap();
    let rows: Vec<Pragma> = diesel::sql_query(format!("SELECT CAST({name} AS TEXT) AS value"))
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter().next().unwrap().value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_has_the_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings {
        busy_timeout: Duration::from_millis(4321),
        ..SqliteSettings::file(dir.path().join("auth.db"))
    };
    let repo = SqliteUserRepository::open(&settings).await.unwrap();
    // Hold several connections at once so that more than one is opened and checked.
    let mut held = Vec::new();
    for _ in 0..3 {
        assert_eq!(
            pragma(&repo, "(SELECT * FROM pragma_journal_mode)").await,
            "wal"
        );
        assert_eq!(
            pragma(&repo, "(SELECT * FROM pragma_busy_timeout)").await,
            "4321"
        );
        assert_eq!(
            pragma(&repo, "(SELECT * FROM pragma_foreign_keys)").await,
            "1"
        );
        // NORMAL = 1
        assert_eq!(
            pragma(&repo, "(SELECT * FROM pragma_synchronous)").await,
            "1"
        );
        held.push(repo.pool().get().await.unwrap());
    }
    assert!(repo.pool().status().size >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_busy_timeout_is_unavailable() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let settings = SqliteSettings {
        busy_timeout: Duration::from_millis(200),
        ..SqliteSettings::file(&path)
    };
    let repo = SqliteUserRepository::open(&settings).await.unwrap();

    // Another "process" takes the write lock and keeps it.
    let path_text = path.to_str().unwrap().to_owned();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::SqliteConnection::establish(&path_text).unwrap();
        conn.batch_execute("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        conn.batch_execute("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();

    let outcome = repo.create(&new_user("locked@example.com")).await;
    assert!(
        matches!(outcome, Err(UserRepoError::Unavailable(_))),
        "{outcome:?}"
    );
    // Reads are not blocked by a writer in WAL mode.
    repo.ping().await.unwrap();

    release_tx.send(()).unwrap();
    holder.join().unwrap();
    repo.create(&new_user("locked@example.com")).await.unwrap();
}

/// The database holds password hashes: its file (and SQLite's `-wal`/`-shm` files) is created
/// readable by the server's user only, in folders created 0700.
#[cfg(unix)]
#[tokio::test]
async fn the_database_file_and_its_new_folders_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new").join("data").join("auth.db");
    let repo = open(&path).await;
    repo.create(&new_user("private@example.com")).await.unwrap();
    assert_eq!(mode(&path), 0o600, "database file");
    for suffix in ["-wal", "-shm"] {
        let side = path.with_file_name(format!("auth.db{suffix}"));
        if side.exists() {
            assert_eq!(mode(&side), 0o600, "{}", side.display());
        }
    }
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    assert_eq!(mode(&dir.path().join("new").join("data")), 0o700);
    // Reopening an existing database works and changes nothing.
    drop(repo);
    let repo = open(&path).await;
    assert!(repo
        .find_by_email(&EmailAddress::parse("private@example.com").unwrap())
        .await
        .unwrap()
        .is_some());
    assert_eq!(mode(&path), 0o600);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The embedded migrations: idempotent, safe concurrently, reversible, and matching the schema
//! the adapter compiles against.

use std::collections::BTreeSet;

use auth_postgres::testing::TestDatabase;
use auth_postgres::{run_migrations, MIGRATIONS};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use secrecy::ExposeSecret;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

/// Versions of the migration directories on disk, which `embed_migrations!` compiled in.
fn versions_on_disk() -> BTreeSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_dir())
        .map(|entry| {
            let name = entry.file_name().into_string().unwrap();
            let version = name.split_once('_').unwrap().0.replace('-', "");
            version
        })
        .collect()
}

async fn connect(db: &TestDatabase) -> AsyncPgConnection {
    AsyncPgConnection::establish(db.url().expose_secret())
        .await
        .unwrap()
}

async fn applied_count(db: &TestDatabase) -> i64 {
    let mut conn = connect(db).await;
    diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

async fn users_table_exists(db: &TestDatabase) -> bool {
    let mut conn = connect(db).await;
    diesel::sql_query("SELECT count(*) AS n FROM pg_tables WHERE tablename = 'users'")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_then_do_nothing() {
    let db = TestDatabase::create_unmigrated().await.unwrap();
    assert!(!users_table_exists(&db).await);

    let first = run_migrations(db.settings()).await.unwrap();
    let first: BTreeSet<String> = first.into_iter().map(|v| v.replace('-', "")).collect();
    assert_eq!(first, versions_on_disk());
    assert!(users_table_exists(&db).await);

    for _ in 0..2 {
        let again = run_migrations(db.settings()).await.unwrap();
        assert!(again.is_empty(), "re-applied {again:?}");
    }
    assert_eq!(applied_count(&db).await, versions_on_disk().len() as i64);
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_on_a_fresh_database_apply_each_migration_once() {
    let db = TestDatabase::create_unmigrated().await.unwrap();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let settings = db.settings().clone();
            tokio::spawn(async move { run_migrations(&settings).await })
        })
        .collect();

    let mut applied = Vec::new();
    for run in runs {
        let versions = run.await.unwrap().unwrap_or_else(|e| {
            panic!("a concurrent run failed: {e:?}");
        });
        applied.extend(versions);
    }
    // Between them the runs applied every migration exactly once.
    assert_eq!(applied.len(), versions_on_disk().len(), "{applied:?}");
    assert_eq!(applied_count(&db).await, versions_on_disk().len() as i64);
    assert!(users_table_exists(&db).await);
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_matches_what_the_adapter_compiles_against() {
    let db = TestDatabase::new().await;
    let mut conn = connect(&db).await;
    let mut columns = diesel::sql_query(
        "SELECT column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns WHERE table_name = 'users'",
    )
    .load::<Column>(&mut conn)
    .await
    .unwrap();
    columns.sort();
    let column = |name: &str, ty: &str, nullable: &str| Column {
        column_name: name.into(),
        data_type: ty.into(),
        is_nullable: nullable.into(),
    };
    let mut expected = vec![
        column("id", "uuid", "NO"),
        column("email", "text", "NO"),
        column("password_hash", "text", "NO"),
        column("verified_at", "timestamp with time zone", "YES"),
        column("created_at", "timestamp with time zone", "NO"),
        column("updated_at", "timestamp with time zone", "NO"),
        column("language", "text", "YES"),
        column("role", "text", "NO"),
        column("disabled_at", "timestamp with time zone", "YES"),
    ];
    expected.sort();
    assert_eq!(columns, expected);

    let unique_lower = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_indexes WHERE tablename = 'users' \
         AND indexdef LIKE 'CREATE UNIQUE INDEX % (lower(email))'",
    )
    .get_result::<Count>(&mut conn)
    .await
    .unwrap();
    assert_eq!(unique_lower.n, 1, "no unique index on lower(email)");
    drop(conn);
    db.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_migrations_revert_and_the_schema_can_be_rebuilt() {
    let db = TestDatabase::new().await;
    let conn = connect(&db).await;
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        conn.revert_all_migrations(MIGRATIONS).unwrap();
    })
    .await
    .unwrap();
    assert!(!users_table_exists(&db).await);
    assert_eq!(applied_count(&db).await, 0);

    let applied = run_migrations(db.settings()).await.unwrap();
    assert_eq!(applied.len(), versions_on_disk().len());
    assert!(users_table_exists(&db).await);
    db.cleanup().await.unwrap();
}

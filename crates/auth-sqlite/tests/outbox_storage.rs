//! What the outbox contract cannot see: the rows themselves, the shared database, time
//! ordering of the stored text, claims from two pools on one file, and outages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use auth_core::{
    EmailAddress, MailState, NewUser, OutboxError, OutboxStore, PasswordHash, QueuedMail, UserId,
    UserRepository,
};
use auth_sqlite::{SqliteSettings, SqliteUserRepository};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use diesel::sql_types::{BigInt, Binary, Text};
use diesel_async::RunQueryDsl;
use tokio::task::JoinSet;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

fn address(local: &str) -> EmailAddress {
    EmailAddress::parse(&format!("{local}@example.com")).unwrap()
}

fn mail(to: &EmailAddress, at: DateTime<Utc>, supersedes: Option<&str>) -> QueuedMail {
    QueuedMail {
        id: Uuid::new_v4(),
        to: to.clone(),
        kind: "login_code".to_owned(),
        supersedes: supersedes.map(str::to_owned),
        sealed: Uuid::new_v4().as_bytes().to_vec(),
        created_at: at,
        expires_at: at + TimeDelta::minutes(15),
    }
}

async fn open(path: &Path) -> SqliteUserRepository {
    SqliteUserRepository::open(&SqliteSettings::file(path))
        .await
        .unwrap()
}

#[derive(diesel::QueryableByName)]
struct Sealed {
    #[diesel(sql_type = Binary)]
    sealed: Vec<u8>,
    #[diesel(sql_type = Text)]
    stored_as: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many rows `table` (a name written in this file) has.
async fn rows(repo: &SqliteUserRepository, table: &str) -> i64 {
    let mut conn = repo.pool().get().await.unwrap();
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

/// Whether `mail_outbox` has a row for the message `id`.
async fn has_row(repo: &SqliteUserRepository, id: Uuid) -> bool {
    let mut conn = repo.pool().get().await.unwrap();
    diesel::sql_query("SELECT count(*) AS n FROM mail_outbox WHERE id = ?")
        .bind::<Text, _>(id.hyphenated().to_string())
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
        > 0
}

async fn stored_sealed(repo: &SqliteUserRepository, id: Uuid) -> Sealed {
    let mut conn = repo.pool().get().await.unwrap();
    diesel::sql_query("SELECT sealed, typeof(sealed) AS stored_as FROM mail_outbox WHERE id = ?")
        .bind::<Text, _>(id.hyphenated().to_string())
        .get_result(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_bytes_are_stored_as_given_and_deleted_with_their_row() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(&dir.path().join("auth.db")).await;
    let outbox = repo.outbox();
    let t = Utc::now().trunc_subsecs(6);
    let to = address("sealed");

    // Every byte value, NUL and invalid UTF-8 included: nothing may be decoded or trimmed.
    let mut sent = mail(&to, t, None);
    sent.sealed = (0..=255u8).rev().chain(0..=255u8).collect();
    let mut dead = mail(&to, t, None);
    dead.sealed = vec![0, 0, 0xff, b'\n', 0];
    for m in [&sent, &dead] {
        outbox.enqueue(m).await.unwrap();
        let stored = stored_sealed(&repo, m.id).await;
        assert_eq!(stored.sealed, m.sealed);
        assert_eq!(stored.stored_as, "blob");
    }

    for claimed in outbox.claim(t, LEASE, 10).await.unwrap() {
        let expected = if claimed.mail.id == sent.id {
            &sent
        } else {
            &dead
        };
        assert_eq!(&claimed.mail, expected, "read back as stored");
        if claimed.mail.id == sent.id {
            assert!(outbox.remove(sent.id, claimed.lease).await.unwrap());
        } else {
            assert!(outbox.bury(dead.id, claimed.lease, "550").await.unwrap());
        }
    }
    assert!(
        !has_row(&repo, sent.id).await,
        "a sent message leaves no row"
    );
    assert_eq!(
        stored_sealed(&repo, dead.id).await.sealed,
        dead.sealed,
        "a dead message keeps its content until purged"
    );
    assert_eq!(outbox.purge(Some(dead.id)).await.unwrap(), 1);
    assert!(
        !has_row(&repo, dead.id).await,
        "a purged message leaves no row"
    );
    assert_eq!(rows(&repo, "mail_outbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_holds_both_the_accounts_and_the_outbox() {
    let repo = SqliteUserRepository::open(&SqliteSettings::memory())
        .await
        .unwrap();
    let outbox = repo.outbox();
    let t = Utc::now().trunc_subsecs(6);
    let user = NewUser {
        id: UserId::from_uuid(Uuid::new_v4()),
        email: address("memory"),
        password_hash: PasswordHash::new("$argon2id$v=19$fake".to_owned()),
        created_at: t,
        language: None,
    };
    repo.create(&user).await.unwrap();
    let queued = mail(&user.email, t, None);
    outbox.enqueue(&queued).await.unwrap();

    // One pooled connection to `:memory:`, so these see the one database both wrote to.
    assert_eq!(rows(&repo, "users").await, 1);
    assert!(
        has_row(&repo, queued.id).await,
        "the outbox wrote to the repository's database"
    );
    assert!(repo.find_by_id(user.id).await.unwrap().is_some());
    assert_eq!(outbox.list(MailState::Pending, 10).await.unwrap().len(), 1);
}

/// Times are stored as Diesel's text, whose fraction has 0, 3, 6 or 9 digits; comparisons and
/// ordering in SQL must still follow the times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_times_compare_as_times_whatever_their_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let repo = open(&dir.path().join("auth.db")).await;
    let outbox = repo.outbox();
    let base = Utc::now().trunc_subsecs(0);
    let offsets = [
        TimeDelta::milliseconds(1000),
        TimeDelta::milliseconds(999),
        TimeDelta::microseconds(1),
        TimeDelta::nanoseconds(1),
        TimeDelta::zero(),
        TimeDelta::milliseconds(1),
    ];
    let mut queued: Vec<QueuedMail> = offsets
        .iter()
        .enumerate()
        .map(|(i, offset)| mail(&address(&format!("t{i}")), base + *offset, None))
        .collect();
    for m in &queued {
        outbox.enqueue(m).await.unwrap();
    }
    queued.sort_by_key(|m| m.created_at);

    let due = outbox
        .claim(base + TimeDelta::microseconds(1), LEASE, 100)
        .await
        .unwrap();
    let due: Vec<_> = due.into_iter().map(|c| c.mail).collect();
    assert_eq!(
        due,
        queued[..3].to_vec(),
        "due ones only, oldest first, exact to the nanosecond"
    );

    let rest = outbox
        .claim(base + TimeDelta::seconds(1), LEASE, 100)
        .await
        .unwrap();
    let rest: Vec<_> = rest.into_iter().map(|c| c.mail).collect();
    assert_eq!(rest, queued[3..].to_vec());

    let stats = outbox.stats(base).await.unwrap();
    assert_eq!(stats.oldest_pending, Some(base));
    assert_eq!(
        outbox
            .sweep(base + TimeDelta::minutes(15) + TimeDelta::nanoseconds(2))
            .await
            .unwrap(),
        2,
        "expired: the one at `base` and the one a nanosecond later"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_spares_dead_and_leased_messages() {
    let repo = SqliteUserRepository::open(&SqliteSettings::memory())
        .await
        .unwrap();
    let outbox = repo.outbox();
    let t = Utc::now().trunc_subsecs(6);
    let to = address("supersede");
    let key = Some("login_code");

    let dead = mail(&to, t, key);
    outbox.enqueue(&dead).await.unwrap();
    let claimed = outbox.claim(t, LEASE, 10).await.unwrap().remove(0);
    assert!(outbox.bury(dead.id, claimed.lease, "550").await.unwrap());

    let lapsed = mail(&to, t, key);
    outbox.enqueue(&lapsed).await.unwrap();
    let claimed = outbox.claim(t, LEASE, 10).await.unwrap().remove(0);
    assert_eq!(claimed.mail.id, lapsed.id);

    // Still leased when a newer message comes: it is being sent, so it stays.
    let newer = mail(&to, t + TimeDelta::seconds(30), key);
    outbox.enqueue(&newer).await.unwrap();
    let dead_left = outbox.list(MailState::Dead, 10).await.unwrap();
    assert_eq!(
        dead_left.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![dead.id]
    );
    let mut pending: Vec<Uuid> = outbox
        .list(MailState::Pending, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    pending.sort();
    let mut expected = vec![lapsed.id, newer.id];
    expected.sort();
    assert_eq!(pending, expected);

    // Its lease ran out (its courier crashed): unclaimed again, the next newer message
    // replaces it, as it replaces the one queued above.
    let _ = claimed;
    let newest = mail(&to, t + TimeDelta::minutes(3), key);
    outbox.enqueue(&newest).await.unwrap();
    let pending: Vec<Uuid> = outbox
        .list(MailState::Pending, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(pending, vec![newest.id]);
}

/// Two pools on one file stand in for two processes: only SQLite's write lock keeps their
/// claims apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_from_two_pools_on_one_file_never_share_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let (a, b) = (open(&path).await, open(&path).await);
    let t = Utc::now().trunc_subsecs(6);
    let mut ids = HashSet::new();
    for i in 0..40 {
        let m = mail(
            &address(&format!("two{i}")),
            t + TimeDelta::milliseconds(i),
            None,
        );
        ids.insert(m.id);
        a.outbox().enqueue(&m).await.unwrap();
    }
    let mut couriers = JoinSet::new();
    for i in 0..4 {
        let outbox = if i % 2 == 0 { a.outbox() } else { b.outbox() };
        couriers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = outbox
                    .claim(t + TimeDelta::seconds(1), LEASE, 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.mail.id));
            }
        });
    }
    let mut seen = Vec::new();
    while let Some(mine) = couriers.join_next().await {
        seen.extend(mine.unwrap());
    }
    assert_eq!(seen.len(), ids.len(), "each message claimed exactly once");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_are_unavailable() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let settings = SqliteSettings {
        busy_timeout: Duration::from_millis(200),
        ..SqliteSettings::file(&path)
    };
    let repo = SqliteUserRepository::open(&settings).await.unwrap();
    let outbox = repo.outbox();
    let t = Utc::now().trunc_subsecs(6);

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
    let queued = mail(&address("locked"), t, None);
    let outcome = outbox.enqueue(&queued).await;
    assert!(
        matches!(outcome, Err(OutboxError::Unavailable(_))),
        "{outcome:?}"
    );
    let outcome = outbox.claim(t, LEASE, 10).await;
    assert!(
        matches!(outcome, Err(OutboxError::Unavailable(_))),
        "{outcome:?}"
    );
    // Reads are not blocked by a writer in WAL mode.
    outbox.stats(t).await.unwrap();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    outbox.enqueue(&queued).await.unwrap();

    let again = outbox.enqueue(&queued).await;
    assert!(
        matches!(again, Err(OutboxError::Other(_))),
        "a reused id is not an outage: {again:?}"
    );

    repo.close();
    let outcome = outbox.stats(t).await;
    assert!(
        matches!(outcome, Err(OutboxError::Unavailable(_))),
        "{outcome:?}"
    );
}

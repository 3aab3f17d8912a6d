//! Contract suite of the [`UserRepository`] methods that queue a mail with a change
//! (`create_with_mail`, `replace_unverified_password_with_mail`,
//! `set_password_hash_with_mail`, `delete_with_mail`), for a repository whose database holds
//! the mail outbox: the change and its mail are one transaction.
//!
//! ```no_run
//! # async fn demo(
//! #     repository: std::sync::Arc<dyn auth_core::UserRepository>,
//! #     outbox: std::sync::Arc<dyn auth_core::OutboxStore>,
//! # ) {
//! auth_testkit::contracts::mail_with_changes::run(repository, outbox).await;
//! # }
//! ```
//!
//! `outbox` is the outbox in the repository's own database. Every check uses fresh addresses
//! and ids; the messages it queues expire at once and are swept at the end, so the suite runs
//! twice in a row on one database. Each check panics with a message starting with
//! `UserRepository mail contract:`.

use std::sync::Arc;

use auth_core::{
    EmailAddress, MailState, NewUser, OutboxStore, PasswordHash, QueuedMail, UserId, UserRepoError,
    UserRepository,
};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// Runs every check, one after the other.
pub async fn run(repo: Arc<dyn UserRepository>, outbox: Arc<dyn OutboxStore>) {
    let (repo, outbox) = (repo.as_ref(), outbox.as_ref());
    a_new_account_and_its_mail_are_written_together(repo, outbox).await;
    a_refused_signup_queues_no_mail(repo, outbox).await;
    a_mail_that_cannot_be_queued_leaves_no_account(repo, outbox).await;
    a_password_change_queues_its_notice_only_when_it_happens(repo, outbox).await;
    a_repeated_signup_queues_its_code_only_before_verification(repo, outbox).await;
    a_deletion_queues_its_notice_only_when_it_happens(repo, outbox).await;
    let swept = outbox.sweep(now() + TimeDelta::seconds(1)).await;
    assert!(
        swept.is_ok(),
        "UserRepository mail contract: sweep failed: {swept:?}"
    );
}

/// `create_with_mail` writes the account and queues its mail.
pub async fn a_new_account_and_its_mail_are_written_together(
    repo: &dyn UserRepository,
    outbox: &dyn OutboxStore,
) {
    let new_user = new_user("together");
    let mail = mail_to(&new_user.email);
    let created = repo.create_with_mail(&new_user, &mail).await;
    assert!(
        matches!(&created, Ok(user) if user.id == new_user.id),
        "UserRepository mail contract: create_with_mail of a fresh address gave {created:?}"
    );
    assert!(
        is_queued(outbox, &mail).await,
        "UserRepository mail contract: create_with_mail must queue its mail"
    );
}

/// A create refused as `Duplicate` queues nothing: no mail for a signup that rolled back.
pub async fn a_refused_signup_queues_no_mail(repo: &dyn UserRepository, outbox: &dyn OutboxStore) {
    let first = new_user("refused");
    let first_mail = mail_to(&first.email);
    repo.create_with_mail(&first, &first_mail)
        .await
        .unwrap_or_else(|e| panic!("UserRepository mail contract: create_with_mail: {e:?}"));
    let second = NewUser {
        id: UserId::from_uuid(Uuid::new_v4()),
        ..first.clone()
    };
    let second_mail = mail_to(&first.email);
    let refused = repo.create_with_mail(&second, &second_mail).await;
    assert!(
        matches!(refused, Err(UserRepoError::Duplicate)),
        "UserRepository mail contract: create_with_mail of a taken address must be Duplicate, \
         got {refused:?}"
    );
    assert!(
        !is_queued(outbox, &second_mail).await,
        "UserRepository mail contract: a refused create must queue no mail"
    );
}

/// When the mail cannot be queued (here: its id is taken), the account is not created, and
/// the error is not `Duplicate` (the address is free).
pub async fn a_mail_that_cannot_be_queued_leaves_no_account(
    repo: &dyn UserRepository,
    outbox: &dyn OutboxStore,
) {
    let taken = queued_elsewhere(outbox).await;
    let new_user = new_user("unqueued");
    let mail = QueuedMail {
        id: taken.id,
        ..mail_to(&new_user.email)
    };
    let refused = repo.create_with_mail(&new_user, &mail).await;
    assert!(
        matches!(
            refused,
            Err(UserRepoError::Other(_) | UserRepoError::Unavailable(_))
        ),
        "UserRepository mail contract: create_with_mail whose mail cannot be queued must fail \
         (and not as Duplicate), got {refused:?}"
    );
    let found = repo.find_by_id(new_user.id).await;
    assert!(
        matches!(found, Ok(None)),
        "UserRepository mail contract: an account whose mail could not be queued must not \
         exist, found {found:?}"
    );
}

/// `set_password_hash_with_mail`: `NotFound` and no mail for an unknown id; for a known one
/// the hash and the mail, and when the mail cannot be queued, neither.
pub async fn a_password_change_queues_its_notice_only_when_it_happens(
    repo: &dyn UserRepository,
    outbox: &dyn OutboxStore,
) {
    let mail = mail_to(&unique_email("nobody"));
    let missing = repo
        .set_password_hash_with_mail(
            unique_id(),
            &unique_email("nobody"),
            &hash("x"),
            now(),
            &mail,
        )
        .await;
    assert!(
        matches!(missing, Err(UserRepoError::NotFound)),
        "UserRepository mail contract: set_password_hash_with_mail of an unknown id must be \
         NotFound, got {missing:?}"
    );
    assert!(
        !is_queued(outbox, &mail).await,
        "UserRepository mail contract: a password change of nobody must queue no mail"
    );

    let user = created(repo, "changed").await;
    let taken = queued_elsewhere(outbox).await;
    let blocked = QueuedMail {
        id: taken.id,
        ..mail_to(&user.email)
    };
    let refused = repo
        .set_password_hash_with_mail(user.id, &user.email, &hash("blocked"), now(), &blocked)
        .await;
    assert!(
        refused.is_err(),
        "UserRepository mail contract: set_password_hash_with_mail whose mail cannot be queued \
         must fail"
    );
    assert_eq!(
        stored_hash(repo, user.id).await,
        user.password_hash,
        "UserRepository mail contract: a password change whose notice could not be queued \
         must be undone"
    );

    let new_hash = hash("new");
    let elsewhere = mail_to(&user.email);
    let moved_away = repo
        .set_password_hash_with_mail(
            user.id,
            &unique_email("elsewhere"),
            &new_hash,
            now(),
            &elsewhere,
        )
        .await;
    assert!(
        matches!(moved_away, Err(UserRepoError::NotFound))
            && !is_queued(outbox, &elsewhere).await
            && stored_hash(repo, user.id).await == user.password_hash,
        "UserRepository mail contract: set_password_hash_with_mail for another address than \
         the account's must be NotFound, change nothing and queue nothing, got {moved_away:?}"
    );
    let mail = mail_to(&user.email);
    let changed = repo
        .set_password_hash_with_mail(user.id, &user.email, &new_hash, now(), &mail)
        .await;
    assert!(
        changed.is_ok(),
        "UserRepository mail contract: set_password_hash_with_mail failed: {changed:?}"
    );
    assert_eq!(
        stored_hash(repo, user.id).await,
        new_hash,
        "UserRepository mail contract: set_password_hash_with_mail must set the hash"
    );
    assert!(
        is_queued(outbox, &mail).await,
        "UserRepository mail contract: set_password_hash_with_mail must queue its mail"
    );
}

/// `replace_unverified_password_with_mail`: the password and the mail for a pending account;
/// `NotFound`, no change and no mail once it is verified.
pub async fn a_repeated_signup_queues_its_code_only_before_verification(
    repo: &dyn UserRepository,
    outbox: &dyn OutboxStore,
) {
    let user = created(repo, "repeated").await;
    let new_hash = hash("again");
    let mail = mail_to(&user.email);
    let replaced = repo
        .replace_unverified_password_with_mail(user.id, &new_hash, now(), &mail)
        .await;
    assert!(
        replaced.is_ok(),
        "UserRepository mail contract: replace_unverified_password_with_mail of a pending \
         account failed: {replaced:?}"
    );
    assert_eq!(stored_hash(repo, user.id).await, new_hash);
    assert!(
        is_queued(outbox, &mail).await,
        "UserRepository mail contract: replace_unverified_password_with_mail must queue its mail"
    );

    repo.mark_verified(user.id, now())
        .await
        .unwrap_or_else(|e| panic!("UserRepository mail contract: mark_verified: {e:?}"));
    let late = mail_to(&user.email);
    let refused = repo
        .replace_unverified_password_with_mail(user.id, &hash("late"), now(), &late)
        .await;
    assert!(
        matches!(refused, Err(UserRepoError::NotFound)),
        "UserRepository mail contract: replace_unverified_password_with_mail of a verified \
         account must be NotFound, got {refused:?}"
    );
    assert_eq!(
        stored_hash(repo, user.id).await,
        new_hash,
        "UserRepository mail contract: a verified account's password must not be replaced"
    );
    assert!(
        !is_queued(outbox, &late).await,
        "UserRepository mail contract: a refused replacement must queue no mail"
    );
}

/// `delete_with_mail`: `Ok(false)` and no mail for an unknown id; the deletion and its mail,
/// and when the mail cannot be queued, neither.
pub async fn a_deletion_queues_its_notice_only_when_it_happens(
    repo: &dyn UserRepository,
    outbox: &dyn OutboxStore,
) {
    let mail = mail_to(&unique_email("nobody"));
    let missing = repo.delete_with_mail(unique_id(), &mail).await;
    assert!(
        matches!(missing, Ok(false)),
        "UserRepository mail contract: delete_with_mail of an unknown id must be Ok(false), got \
         {missing:?}"
    );
    assert!(
        !is_queued(outbox, &mail).await,
        "UserRepository mail contract: deleting nobody must queue no mail"
    );

    let user = created(repo, "deleted").await;
    let taken = queued_elsewhere(outbox).await;
    let blocked = QueuedMail {
        id: taken.id,
        ..mail_to(&user.email)
    };
    let refused = repo.delete_with_mail(user.id, &blocked).await;
    assert!(
        refused.is_err(),
        "UserRepository mail contract: delete_with_mail whose mail cannot be queued must fail, \
         got {refused:?}"
    );
    let kept = repo.find_by_id(user.id).await;
    assert!(
        matches!(kept, Ok(Some(_))),
        "UserRepository mail contract: a deletion whose notice could not be queued must be \
         undone, found {kept:?}"
    );

    let mail = mail_to(&user.email);
    let deleted = repo.delete_with_mail(user.id, &mail).await;
    assert!(
        matches!(deleted, Ok(true)),
        "UserRepository mail contract: delete_with_mail of an account gave {deleted:?}"
    );
    assert!(
        matches!(repo.find_by_id(user.id).await, Ok(None)),
        "UserRepository mail contract: delete_with_mail must delete the account"
    );
    assert!(
        is_queued(outbox, &mail).await,
        "UserRepository mail contract: delete_with_mail must queue its mail"
    );
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
}

fn unique_id() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

fn unique_email(label: &str) -> EmailAddress {
    EmailAddress::parse(&format!(
        "mail-{label}-{}@example.com",
        Uuid::new_v4().simple()
    ))
    .unwrap_or_else(|e| panic!("UserRepository mail contract: test address: {e}"))
}

fn hash(label: &str) -> PasswordHash {
    PasswordHash::new(format!(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${label}-{}",
        Uuid::new_v4().simple()
    ))
}

fn new_user(label: &str) -> NewUser {
    NewUser {
        id: unique_id(),
        email: unique_email(label),
        password_hash: hash(label),
        created_at: now(),
        language: None,
    }
}

/// A message for `to` that expires at once (swept at the end of the suite).
fn mail_to(to: &EmailAddress) -> QueuedMail {
    let at = now();
    QueuedMail {
        id: Uuid::new_v4(),
        to: to.clone(),
        kind: "password_changed".to_owned(),
        supersedes: None,
        sealed: Uuid::new_v4().as_bytes().to_vec(),
        created_at: at,
        expires_at: at,
    }
}

/// A message queued through the outbox itself, whose id a later mail then collides with.
async fn queued_elsewhere(outbox: &dyn OutboxStore) -> QueuedMail {
    let mail = mail_to(&unique_email("elsewhere"));
    outbox
        .enqueue(&mail)
        .await
        .unwrap_or_else(|e| panic!("UserRepository mail contract: enqueue: {e:?}"));
    mail
}

async fn is_queued(outbox: &dyn OutboxStore, mail: &QueuedMail) -> bool {
    let pending = outbox
        .list(MailState::Pending, 100_000)
        .await
        .unwrap_or_else(|e| panic!("UserRepository mail contract: list: {e:?}"));
    pending
        .iter()
        .any(|entry| entry.id == mail.id && entry.to == mail.to)
}

async fn created(repo: &dyn UserRepository, label: &str) -> NewUser {
    let new_user = new_user(label);
    repo.create(&new_user)
        .await
        .unwrap_or_else(|e| panic!("UserRepository mail contract: create: {e:?}"));
    new_user
}

async fn stored_hash(repo: &dyn UserRepository, id: UserId) -> PasswordHash {
    match repo.find_by_id(id).await {
        Ok(Some(found)) => found.password_hash,
        other => panic!("UserRepository mail contract: find_by_id of {id} gave {other:?}"),
    }
}

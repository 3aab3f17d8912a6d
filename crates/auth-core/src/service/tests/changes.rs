//! Tests of the mail written in a change's own transaction ([`AuthService::with_outbox`]):
//! the repository gets the sealed message with the change, the mailer is not called, and the
//! outbox is told only of a change that happened.

use secrecy::SecretBox;

use super::*;
use crate::outbox::{MailQueue, MailSeal};
use crate::ports::{MockOutboxStore, QueuedMail};

const SEAL_KEY: [u8; 32] = [7; 32];

fn seal() -> MailSeal {
    MailSeal::derive(&SecretBox::new(SEAL_KEY.to_vec().into_boxed_slice())).unwrap()
}

/// An outbox queue whose store is never written by the service itself (the repository
/// writes the message), and how many messages it was told of.
fn queue() -> (Arc<MailQueue>, Arc<AtomicUsize>) {
    let mut store = MockOutboxStore::new();
    store.expect_enqueue().never();
    let announced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&announced);
    let queue = MailQueue::new(
        Arc::new(store),
        seal(),
        Arc::new(ManualClock::new(t0())),
        Arc::new(OsRandom),
        ONE_DAY,
    )
    .on_enqueue(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    (Arc::new(queue), announced)
}

/// What a queued message says, opened with the key it was sealed with.
fn opened(mail: &QueuedMail) -> MailMessage {
    seal()
        .open(mail.id, &mail.to, &mail.sealed)
        .expect("sealed with the queue's key")
        .message
}

type Captured = Arc<Mutex<Vec<QueuedMail>>>;

#[test]
fn a_new_account_is_written_with_its_code_mail_in_one_call() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hashes(PASSWORD, NEW_HASH);
    let puts = h.put_log();
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    let captured = Captured::default();
    let c = Arc::clone(&captured);
    h.users.expect_create().never();
    h.users
        .expect_create_with_mail()
        .withf(|u, mail| u.email == email() && mail.to == email() && mail.kind == "verify_email")
        .times(1)
        .returning(move |u, mail| {
            c.lock().unwrap().push(mail.clone());
            Ok(User {
                id: u.id,
                email: u.email.clone(),
                verified_at: None,
                created_at: u.created_at,
                updated_at: u.created_at,
            })
        });
    h.mailer.expect_send_localized().never();
    let (queue, announced) = queue();

    let result = block_on(h.service().with_outbox(queue).signup(
        email(),
        password(PASSWORD),
        &client(),
    ));

    assert!(result.is_ok(), "{result:?}");
    let captured = captured.lock().unwrap();
    assert!(
        matches!(&opened(&captured[0]), MailMessage::VerifyEmail { code: c, .. } if *c == code(FIRST_CODE)),
        "the mail written with the account carries the code stored for it"
    );
    assert_eq!(puts.lock().unwrap().len(), 1, "the code is stored");
    assert_eq!(announced.load(Ordering::SeqCst), 1, "the courier is woken");
}

#[test]
fn a_signup_whose_write_fails_announces_no_mail() {
    let mut h = Harness::new();
    h.user_lookup(None);
    h.hashes(PASSWORD, NEW_HASH);
    let _puts = h.put_log();
    h.users
        .expect_create_with_mail()
        .times(1)
        .returning(|_, _| Err(UserRepoError::Unavailable(outage())));
    h.mailer.expect_send_localized().never();
    let (queue, announced) = queue();

    let result = block_on(h.service().with_outbox(queue).signup(
        email(),
        password(PASSWORD),
        &client(),
    ));

    assert!(
        matches!(&result, Err(SignupError::Failure(f)) if f.is_unavailable()),
        "{result:?}"
    );
    assert_eq!(announced.load(Ordering::SeqCst), 0);
}

#[test]
fn a_repeated_signup_writes_its_password_with_its_own_code_mail() {
    let mut h = Harness::new();
    h.user_lookup(Some(creds(false)));
    h.send_slot(OtpPurpose::VerifyEmail, SendSlot::Granted);
    h.hashes(PASSWORD, NEW_HASH);
    let puts = h.put_log();
    let captured = Captured::default();
    let c = Arc::clone(&captured);
    h.users.expect_replace_unverified_password().never();
    h.users
        .expect_replace_unverified_password_with_mail()
        .withf(|id, hash, _, mail| {
            *id == ada_id() && hash.as_str() == NEW_HASH && mail.kind == "verify_email_again"
        })
        .times(1)
        .returning(move |_, _, _, mail| {
            c.lock().unwrap().push(mail.clone());
            Ok(())
        });
    h.mailer.expect_send_localized().never();
    let (queue, announced) = queue();

    let result = block_on(h.service().with_outbox(queue).signup(
        email(),
        password(PASSWORD),
        &client(),
    ));

    assert!(result.is_ok(), "{result:?}");
    let puts = puts.lock().unwrap();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0].1.pending_password,
        Some(PasswordHash::new(NEW_HASH))
    );
    let captured = captured.lock().unwrap();
    assert!(
        matches!(&opened(&captured[0]), MailMessage::VerifyEmailAgain { code: c, .. } if *c == code(FIRST_CODE))
    );
    assert_eq!(announced.load(Ordering::SeqCst), 1);
}

#[test]
fn a_password_change_writes_its_notice_with_the_new_hash() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users.expect_set_password_hash().never();
    h.users
        .expect_set_password_hash_with_mail()
        .withf(|id, _, hash, _, mail| {
            *id == ada_id()
                && hash.as_str() == NEW_HASH
                && mail.to == email()
                && opened(mail) == MailMessage::password_changed()
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .times(1)
        .returning(|_, _| Ok(1));
    h.mailer.expect_send_localized().never();
    let (queue, announced) = queue();

    let result = block_on(h.service().with_outbox(queue).change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
        &client(),
    ));

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(announced.load(Ordering::SeqCst), 1);
}

#[test]
fn a_password_change_that_did_not_happen_announces_nothing() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    h.verifies(PASSWORD, PasswordCheck::Match);
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users
        .expect_set_password_hash_with_mail()
        .times(1)
        .returning(|_, _, _, _, _| Err(UserRepoError::NotFound));
    h.sessions.expect_delete_all_for_user().never();
    h.mailer.expect_send_localized().never();
    let (queue, announced) = queue();

    let result = block_on(h.service().with_outbox(queue).change_password(
        &current_session(),
        &attempt(PASSWORD),
        password(NEW_PASSWORD),
        &client(),
    ));

    assert!(
        matches!(result, Err(ChangePasswordError::Unauthenticated)),
        "{result:?}"
    );
    assert_eq!(announced.load(Ordering::SeqCst), 0);
}

#[test]
fn a_reset_writes_its_notice_with_the_new_hash() {
    let mut h = Harness::new();
    let expected = mac(OtpPurpose::ResetPassword, FIRST_CODE);
    h.live_code(OtpPurpose::ResetPassword, expected, at(TEN_MINUTES), 1);
    h.otps
        .expect_consume()
        .times(1)
        .returning(|_, _, _| Ok(true));
    h.user_lookup(Some(creds(true)));
    h.hashes(NEW_PASSWORD, NEW_HASH);
    h.users.expect_set_password_hash().never();
    h.users
        .expect_set_password_hash_with_mail()
        .withf(|id, _, hash, _, mail| {
            *id == ada_id()
                && hash.as_str() == NEW_HASH
                && opened(mail) == MailMessage::password_changed()
        })
        .times(1)
        .returning(|_, _, _, _, _| Ok(()));
    h.sessions
        .expect_delete_all_for_user()
        .times(1)
        .returning(|_, _| Ok(0));
    h.mailer.expect_send_localized().never();
    let (queue, announced) = queue();

    let result = block_on(h.service().with_outbox(queue).reset_password(
        &email(),
        &code(FIRST_CODE),
        password(NEW_PASSWORD),
        &client(),
    ));

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(announced.load(Ordering::SeqCst), 1);
}

#[test]
fn a_deletion_writes_its_notice_and_one_that_found_nothing_announces_nothing() {
    for (found, announcements) in [(true, 1), (false, 0)] {
        let mut h = Harness::new();
        account_by_id(&mut h);
        h.verifies(PASSWORD, PasswordCheck::Match);
        h.sessions
            .expect_delete_all_for_user()
            .times(2)
            .returning(|_, _| Ok(0));
        h.users.expect_delete().never();
        h.users
            .expect_delete_with_mail()
            .withf(|id, mail| *id == ada_id() && opened(mail) == MailMessage::AccountDeleted)
            .times(1)
            .returning(move |_, _| Ok(found));
        h.mailer.expect_send_localized().never();
        let (queue, announced) = queue();

        let result = block_on(h.service().with_outbox(queue).delete_account(
            &current_session(),
            &attempt(PASSWORD),
            &client(),
        ));

        assert_eq!(result.is_ok(), found, "{result:?}");
        assert_eq!(announced.load(Ordering::SeqCst), announcements);
    }
}

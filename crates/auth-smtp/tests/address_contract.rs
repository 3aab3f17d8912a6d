#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Contract between the domain and the mailer: every address `auth_core::EmailAddress::parse`
//! accepts, lettre (the mail library behind both mailers) accepts too, as an envelope
//! recipient and in a `To:` header. (auth-core cannot depend on lettre, hence this test here.)

use auth_core::{EmailAddress, MailMessage, Mailer};
use auth_smtp::FileMailer;
use lettre::message::Mailbox;
use lettre::{Address, Message};
use proptest::prelude::*;

/// What lettre must accept for the mailers to send to `email`.
fn lettre_accepts(email: &EmailAddress) -> Result<(), String> {
    let address: Address = email
        .as_str()
        .parse()
        .map_err(|e| format!("lettre::Address refuses {email:?}: {e}"))?;
    if address.to_string() != email.as_str() {
        return Err(format!("lettre rewrites {email:?} as {address}"));
    }
    Message::builder()
        .from(
            "SecureAuth <no-reply@example.com>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to(Mailbox::new(None, address))
        .subject("s")
        .body(String::from("b"))
        .map(drop)
        .map_err(|e| format!("lettre cannot build a message to {email:?}: {e}"))
}

/// Mostly-plausible addresses with every character class that matters: atext, dots, hyphens,
/// digits, Unicode letters, case, and characters that should be refused.
fn candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~.-]{1,70}",
            prop::collection::vec("[a-zA-Z0-9äöüßéÉÜç_-]{1,20}", 1..5),
        )
            .prop_map(|(local, labels)| format!("{local}@{}", labels.join("."))),
        (
            "[ -~]{1,20}",
            prop::collection::vec("[ -~äé。．]{1,12}", 1..4),
        )
            .prop_map(|(local, labels)| format!("{local}@{}", labels.join("."))),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn every_accepted_address_is_accepted_by_lettre(raw in candidates()) {
        if let Ok(email) = EmailAddress::parse(&raw) {
            prop_assert_eq!(lettre_accepts(&email), Ok(()));
        }
    }
}

#[test]
fn odd_but_deliverable_addresses_are_accepted_by_lettre() {
    for raw in [
        "o'brien@example.com",
        "a!#$%&'*+/=?^_`{|}~-z@example.com",
        "first.last+tag@sub.example.co.uk",
        "user@bücher.example",
        "user@例え.テスト",
        "x@123.example.com",
    ] {
        let email = EmailAddress::parse(raw).unwrap();
        lettre_accepts(&email).unwrap();
    }
}

/// The end of the chain: the file mailer writes a message for each odd address.
#[tokio::test]
async fn the_file_mailer_sends_to_odd_but_deliverable_addresses() {
    let tmp = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(tmp.path()).unwrap();
    for raw in [
        "o'brien@example.com",
        "a!#$%&'*+/=?^_`{|}~-z@example.com",
        "user@bücher.example",
    ] {
        let email = EmailAddress::parse(raw).unwrap();
        mailer
            .send(&email, &MailMessage::password_changed())
            .await
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"));
    }
}

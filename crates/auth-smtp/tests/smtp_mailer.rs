#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `SmtpMailer` against a real SMTP server on loopback (`auth_testkit::smtp::MailSink`).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use auth_core::{EmailAddress, MailMessage, Mailer, MailerError, OtpCode};
use auth_smtp::{Renderer, SendTimeout, SmtpMailer, SmtpSettings, TlsMode};
use auth_testkit::smtp::MailSink;

const FROM: &str = "SecureAuth <no-reply@example.com>";
const WAIT: Duration = Duration::from_secs(10);

fn settings(host: &str, port: u16) -> SmtpSettings {
    SmtpSettings {
        port,
        timeout: Duration::from_secs(5),
        pool_size: 2,
        ..SmtpSettings::new(host, TlsMode::None, FROM)
    }
}

fn mailer_for(sink: &MailSink) -> SmtpMailer {
    SmtpMailer::new(settings(sink.host(), sink.port())).unwrap()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn verify(code: &str) -> MailMessage {
    MailMessage::VerifyEmail {
        code: OtpCode::parse(code).unwrap(),
        valid_for: Duration::from_secs(15 * 60),
    }
}

fn reset(code: &str) -> MailMessage {
    MailMessage::ResetPassword {
        code: OtpCode::parse(code).unwrap(),
        valid_for: Duration::from_secs(30 * 60),
    }
}

#[tokio::test]
async fn every_kind_of_message_arrives_complete() {
    let sink = MailSink::start();
    let mailer = mailer_for(&sink);
    let cases = [
        ("verify@example.com", verify("012345"), Some("012345")),
        ("reset@example.com", reset("987650"), Some("987650")),
        ("changed@example.com", MailMessage::password_changed(), None),
        ("attempted@example.com", MailMessage::SignupAttempted, None),
    ];

    for (to, message, code) in &cases {
        mailer.send(&email(to), message).await.unwrap();
        let mail = sink.wait_for_mail(to, WAIT).await;
        let expected = Renderer::builtin().render(message, None);

        assert_eq!(mail.from, "no-reply@example.com", "envelope sender");
        assert_eq!(mail.to, *to, "envelope recipient");
        assert_eq!(mail.from_header().as_deref(), Some("no-reply@example.com"));
        assert_eq!(mail.from_name().as_deref(), Some("SecureAuth"));
        assert_eq!(mail.to_header(), vec![to.to_string()]);
        assert_eq!(mail.subject(), expected.subject);
        assert_eq!(mail.content_type(), "multipart/alternative");
        assert_eq!(
            mail.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        assert_eq!(mail.header("Content-Language").as_deref(), Some("en"));

        let text = mail.text_part().expect("a text/plain part");
        let html = mail.html_part().expect("a text/html part");
        assert_eq!(
            text.replace("\r\n", "\n").trim_end(),
            expected.text.trim_end()
        );
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("</html>"));

        match code {
            Some(code) => {
                assert!(mail.subject().starts_with(code));
                assert!(text.lines().next().unwrap().starts_with(code));
                assert!(html.contains(code));
                assert_eq!(mail.code(), *code);
            }
            None => assert_eq!(mail.try_code(), None),
        }
    }
    assert_eq!(sink.messages().len(), cases.len());
}

#[tokio::test]
async fn send_localized_writes_the_preferred_language_with_the_given_renderer() {
    let sink = MailSink::start();
    let templates = tempfile::tempdir().unwrap();
    std::fs::create_dir(templates.path().join("de")).unwrap();
    std::fs::write(
        templates.path().join("de/footer.txt"),
        "Acme GmbH, Hauptstraße 1",
    )
    .unwrap();
    let renderer = Renderer::with_overrides(templates.path()).unwrap();
    let mailer = mailer_for(&sink).with_renderer(renderer.clone());
    let message = verify("024680");

    mailer
        .send_localized(
            &email("ada@example.com"),
            &message,
            Some("de-CH, de;q=0.9, en;q=0.5"),
        )
        .await
        .unwrap();
    let mail = sink.wait_for_mail("ada@example.com", WAIT).await;
    let expected = renderer.render(&message, Some("de"));
    assert_eq!(mail.header("Content-Language").as_deref(), Some("de"));
    assert_eq!(mail.subject(), expected.subject);
    assert_eq!(
        mail.subject(),
        "024680 ist Ihr Bestätigungscode für SecureAuth"
    );
    let text = mail.text_part().unwrap().replace("\r\n", "\n");
    assert_eq!(text.trim_end(), expected.text.trim_end());
    assert!(text.contains("Er ist 15 Minuten lang gültig."), "{text}");
    assert!(
        text.ends_with("-- \nAcme GmbH, Hauptstraße 1\n"),
        "{text:?}"
    );
    assert!(mail.html_part().unwrap().contains("<html lang=\"de\">"));
    assert_eq!(mail.code(), "024680");

    // `send` is English; so is a language without templates.
    mailer
        .send(&email("bob@example.com"), &message)
        .await
        .unwrap();
    mailer
        .send_localized(&email("cy@example.com"), &message, Some("fr"))
        .await
        .unwrap();
    for to in ["bob@example.com", "cy@example.com"] {
        let mail = sink.wait_for_mail(to, WAIT).await;
        assert_eq!(mail.header("Content-Language").as_deref(), Some("en"));
        assert_eq!(
            mail.subject(),
            "024680 is your SecureAuth verification code"
        );
    }
}

#[tokio::test]
async fn a_closed_port_is_unavailable_at_once() {
    // Bind and release a port, so nothing listens there.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer = SmtpMailer::new(settings("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    let err = mailer
        .send(&email("ada@example.com"), &verify("123456"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailerError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_within_the_timeout() {
    // Accepts TCP connections (the kernel's backlog) but never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailer = SmtpMailer::new(SmtpSettings {
        timeout: Duration::from_millis(300),
        ..settings("127.0.0.1", port)
    })
    .unwrap();

    let started = Instant::now();
    let err = mailer
        .send(&email("ada@example.com"), &verify("123456"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        MailerError::Unavailable(source) => assert!(source.is::<SendTimeout>(), "{source:?}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    drop(listener);
}

#[tokio::test]
async fn permanent_refusals_are_rejected_and_temporary_ones_unavailable() {
    let sink = MailSink::start();
    let mailer = mailer_for(&sink);

    sink.refuse_recipient("gone@example.com", 550);
    let err = mailer
        .send(&email("gone@example.com"), &verify("111111"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailerError::Rejected(_)), "{err:?}");

    sink.refuse_recipient("busy@example.com", 451);
    let err = mailer
        .send(&email("busy@example.com"), &verify("222222"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailerError::Unavailable(_)), "{err:?}");

    // The pool recovers: the next sends go through.
    sink.accept_recipient("busy@example.com");
    mailer
        .send(&email("busy@example.com"), &verify("333333"))
        .await
        .unwrap();
    assert_eq!(
        sink.wait_for_mail("busy@example.com", WAIT).await.code(),
        "333333"
    );
    assert_eq!(sink.count_to("gone@example.com"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_share_the_pool() {
    let sink = MailSink::start();
    let mailer = std::sync::Arc::new(mailer_for(&sink));
    let sends = (0..12).map(|i| {
        let mailer = std::sync::Arc::clone(&mailer);
        tokio::spawn(async move {
            let to = email(&format!("user{i}@example.com"));
            mailer
                .send(&to, &verify(&format!("{:06}", 100_000 + i)))
                .await
        })
    });
    for send in futures_join_all(sends).await {
        send.unwrap().unwrap();
    }
    for i in 0..12 {
        let mail = sink
            .wait_for_mail(&format!("user{i}@example.com"), WAIT)
            .await;
        assert_eq!(mail.code(), format!("{:06}", 100_000 + i));
    }
}

#[tokio::test]
async fn later_messages_to_the_same_address_all_arrive() {
    let sink = MailSink::start();
    let mailer = mailer_for(&sink);
    mailer
        .send(&email("ada@example.com"), &verify("444444"))
        .await
        .unwrap();
    sink.wait_for_mail("ada@example.com", WAIT).await;
    // A second message reuses the pooled connection.
    mailer
        .send(&email("ada@example.com"), &reset("555555"))
        .await
        .unwrap();
    assert_eq!(
        sink.wait_for_mail("ada@example.com", WAIT).await.code(),
        "555555"
    );
    assert_eq!(sink.count_to("ada@example.com"), 2);
}

/// `futures::future::join_all` without the dependency.
async fn futures_join_all<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await);
    }
    out
}

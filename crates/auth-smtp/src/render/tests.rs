use std::collections::HashSet;

use super::*;
use crate::templates::Compiled;

fn code() -> OtpCode {
    OtpCode::parse("042917").unwrap()
}

fn all_messages() -> Vec<MailMessage> {
    vec![
        MailMessage::VerifyEmail {
            code: code(),
            valid_for: Duration::from_secs(15 * 60),
        },
        MailMessage::ResetPassword {
            code: code(),
            valid_for: Duration::from_secs(10 * 60),
        },
        MailMessage::LoginCode {
            code: code(),
            valid_for: Duration::from_secs(10 * 60),
        },
        MailMessage::VerifyEmailAgain {
            code: code(),
            valid_for: Duration::from_secs(10 * 60),
            requested_at: DateTime::from_timestamp(1_900_000_000, 0).unwrap(),
        },
        MailMessage::password_changed(),
        MailMessage::SignupAttempted,
        MailMessage::AccountDeleted,
        MailMessage::SessionEndedAfterWrongPasswords,
    ]
}

fn english(message: &MailMessage) -> RenderedMail {
    Renderer::builtin().render(message, None)
}

fn german(message: &MailMessage) -> RenderedMail {
    Renderer::builtin().render(message, Some("de"))
}

#[test]
fn verification_code_mail() {
    let mail = english(&MailMessage::VerifyEmail {
        code: code(),
        valid_for: Duration::from_secs(15 * 60),
    });
    assert_eq!(mail.subject, "042917 is your SecureAuth verification code");
    assert_eq!(
        mail.text.lines().next().unwrap(),
        "042917 is your SecureAuth verification code."
    );
    assert!(mail.text.contains("valid for 15 minutes"), "{}", mail.text);
    assert!(mail.text.contains("Did not sign up"), "{}", mail.text);
    assert!(mail.text.contains("ignore this email"), "{}", mail.text);
    assert!(mail.html.contains(">042917</p>"), "{}", mail.html);
    assert!(mail.html.contains("valid for 15 minutes"));
    assert!(mail.html.contains("<html lang=\"en\">"), "{}", mail.html);
    assert_eq!(mail.language, "en");
    // The code is the first thing in the HTML body.
    let body = mail.html.split("<body").nth(1).unwrap();
    let first_text = body.split('>').nth(3).unwrap();
    assert!(first_text.starts_with("042917<"), "{first_text}");
}

#[test]
fn reset_code_mail() {
    let mail = english(&MailMessage::ResetPassword {
        code: code(),
        valid_for: Duration::from_secs(3600),
    });
    assert_eq!(
        mail.subject,
        "042917 is your SecureAuth password reset code"
    );
    assert!(mail
        .text
        .starts_with("042917 is your SecureAuth password reset code.\n"));
    assert!(mail.text.contains("valid for 1 hour."), "{}", mail.text);
    assert!(mail.text.contains("Did not ask to reset your password?"));
    assert!(mail.text.contains("your password stays as it is"));
    assert!(mail.html.contains(">042917</p>"));
}

#[test]
fn login_code_mail() {
    let mail = english(&MailMessage::LoginCode {
        code: code(),
        valid_for: Duration::from_secs(600),
    });
    assert_eq!(mail.subject, "042917 is your SecureAuth login code");
    assert!(mail.text.contains("log in without your password"));
    assert!(mail
        .text
        .contains("works once and is valid for 10 minutes."));
    assert!(mail
        .text
        .contains("Did not ask for it? You can ignore this email"));
    assert!(mail.text.contains("Never share this code."));
}

#[test]
fn repeated_signup_mail_says_when_and_that_the_first_code_still_works() {
    let mail = english(&all_messages()[3]);
    assert_eq!(mail.subject, "042917 is your SecureAuth verification code");
    assert!(
        mail.text
            .contains("Someone asked again, at 2030-03-17 17:46 UTC,"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("valid for 10 minutes."));
    assert!(mail
        .text
        .contains("the code from your first email still works, and keeps the password"));
    let de = german(&all_messages()[3]);
    assert!(
        de.text.contains("am 2030-03-17 17:46 UTC erneut"),
        "{}",
        de.text
    );
    assert!(de
        .text
        .contains("Der Code aus Ihrer ersten E-Mail gilt weiterhin"));
}

#[test]
fn notices_carry_no_code_and_say_what_to_do() {
    let changed = english(&MailMessage::password_changed());
    assert_eq!(changed.subject, "Your SecureAuth password was changed");
    assert!(changed.text.contains("If you did not"));
    assert!(changed.text.contains("Forgot password"));

    let attempted = english(&MailMessage::SignupAttempted);
    assert_eq!(
        attempted.subject,
        "Someone tried to sign up to SecureAuth with your email address"
    );
    assert!(attempted.text.contains("sign in instead"));
    assert!(attempted
        .text
        .contains("If it was not you, you can ignore this email"));

    let deleted = english(&MailMessage::AccountDeleted);
    assert_eq!(deleted.subject, "Your SecureAuth account was deleted");
    assert!(deleted.text.contains("every device was signed out"));
    assert!(deleted
        .text
        .contains("If you did not, someone knew your password"));

    let ended = english(&MailMessage::SessionEndedAfterWrongPasswords);
    assert_eq!(
        ended.subject,
        "A SecureAuth session was ended to protect your account"
    );
    assert!(ended.text.contains("Change your password now"));

    for mail in [changed, attempted, deleted, ended] {
        assert!(
            !mail.text.chars().any(|c| c.is_ascii_digit()),
            "{}",
            mail.text
        );
        assert!(!mail.html.contains("letter-spacing:6px"), "no code block");
    }
}

#[test]
fn every_message_renders_in_english_and_german_with_all_parts() {
    for message in all_messages() {
        for (lang, footer) in [
            ("en", "This message was sent automatically by SecureAuth."),
            (
                "de",
                "Diese Nachricht wurde automatisch von SecureAuth versendet.",
            ),
        ] {
            let mail = Renderer::builtin().render(&message, Some(lang));
            let kind = message.kind();
            assert_eq!(mail.language, lang, "{kind}");
            assert!(!mail.subject.is_empty());
            assert!(!mail.subject.contains(['\r', '\n']));
            assert!(
                mail.text.ends_with(&format!("\n\n-- \n{footer}\n")),
                "{kind} {lang}: {}",
                mail.text
            );
            assert!(!mail.text.starts_with(char::is_whitespace));
            assert!(!mail.text.contains("\n\n\n"), "{}", mail.text);
            assert!(mail.html.starts_with("<!DOCTYPE html>"));
            assert!(mail.html.trim_end().ends_with("</html>"));
            assert!(mail.html.contains(&format!("<html lang=\"{lang}\">")));
            assert!(mail.html.contains(&format!(">{footer}</p>")));
            assert!(mail
                .html
                .contains(&format!("<title>{}</title>", mail.subject)));
            assert_eq!(
                mail.html.matches("<p").count(),
                mail.html.matches("</p>").count()
            );
            // No template syntax left over, no blank lines from block tags.
            for part in [&mail.subject, &mail.text, &mail.html] {
                assert!(!part.contains("{{") && !part.contains("{%"), "{part}");
            }
            assert!(!mail.html.contains("\n\n"), "{}", mail.html);
            // Every quote in text content was escaped: the only raw quotes are attributes.
            assert!(!mail.html.contains("\"Forgot"), "{}", mail.html);
            if let Some(valid_for) = message.code_valid_for() {
                assert!(mail.subject.starts_with("042917 "), "{}", mail.subject);
                assert!(mail.text.starts_with("042917 "), "{}", mail.text);
                assert!(mail.html.contains(">042917</p>"));
                let minutes = valid_for.as_secs() / 60;
                let unit = if lang == "de" { "Minuten" } else { "minutes" };
                let phrase = format!("{minutes} {unit}");
                assert!(mail.text.contains(&phrase), "{kind} {lang}: {}", mail.text);
                assert!(mail.html.contains(&phrase));
            }
            assert_eq!(
                Renderer::builtin().render(&message, Some(lang)),
                mail,
                "render is deterministic"
            );
        }
    }
}

/// Words of the English subject other than the product and the code must not show up in the
/// German one ("Code" is German too).
#[test]
fn german_subjects_are_translated() {
    let words = |s: &str| -> HashSet<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let shared: HashSet<String> = ["secureauth", "042917", "code"].map(String::from).into();
    for message in all_messages() {
        let (en, de) = (english(&message), german(&message));
        assert_ne!(en.subject, de.subject);
        let left: Vec<_> = words(&en.subject)
            .intersection(&words(&de.subject))
            .filter(|w| !shared.contains(*w))
            .cloned()
            .collect();
        assert!(left.is_empty(), "{:?} in {:?}", left, de.subject);
        assert_ne!(en.text, de.text);
    }
}

#[test]
fn german_texts_carry_the_facts() {
    let verify = german(&all_messages()[0]);
    assert_eq!(
        verify.subject,
        "042917 ist Ihr Bestätigungscode für SecureAuth"
    );
    assert!(
        verify.text.contains("Er ist 15 Minuten lang gültig."),
        "{}",
        verify.text
    );
    assert!(verify.text.contains("Sie können diese E-Mail ignorieren"));
    assert!(verify
        .text
        .contains("Geben Sie diesen Code niemals weiter."));
    let reset = german(&all_messages()[1]);
    assert!(reset.text.contains("Ihr Passwort bleibt, wie es ist"));
    let changed = german(&MailMessage::password_changed());
    assert!(changed.text.contains("Wenn nicht,"));
    assert!(
        changed.html.contains("„Forgot your password?“"),
        "{}",
        changed.html
    );
}

#[test]
fn durations_read_naturally_and_never_round_up() {
    let cases = [
        (0, "0 seconds", "0 Sekunden"),
        (1, "1 second", "1 Sekunde"),
        (59, "59 seconds", "59 Sekunden"),
        (60, "1 minute", "1 Minute"),
        (119, "1 minute", "1 Minute"),
        (15 * 60, "15 minutes", "15 Minuten"),
        (15 * 60 + 59, "15 minutes", "15 Minuten"),
        (3600, "1 hour", "1 Stunde"),
        (5400, "1 hour and 30 minutes", "1 Stunde und 30 Minuten"),
        (7260, "2 hours and 1 minute", "2 Stunden und 1 Minute"),
        (48 * 3600, "48 hours", "48 Stunden"),
    ];
    for (secs, en, de) in cases {
        let message = MailMessage::VerifyEmail {
            code: code(),
            valid_for: Duration::from_secs(secs),
        };
        let text = english(&message).text;
        assert!(
            text.contains(&format!("It is valid for {en}.\n")),
            "{secs}: {text}"
        );
        let text = german(&message).text;
        assert!(
            text.contains(&format!("Er ist {de} lang gültig.\n")),
            "{secs}: {text}"
        );
    }
}

#[test]
fn the_language_comes_from_accept_language() {
    let renderer = Renderer::builtin();
    assert_eq!(renderer.languages(), ["en", "de"]);
    let message = &all_messages()[0];
    for (header, lang) in [
        (Some("de-CH, de;q=0.9, en;q=0.5"), "de"),
        (Some("fr-FR, fr;q=0.9, de;q=0.8, en;q=0.7"), "de"),
        (Some("en-US, de;q=0.9"), "en"),
        (Some("de;q=0.1, en;q=0.2"), "en"),
        (Some("*"), "en"),
        (Some("fr"), "en"),
        (Some(""), "en"),
        (Some("%%%;;;q=,,"), "en"),
        (None, "en"),
    ] {
        assert_eq!(renderer.language_for(header), lang, "{header:?}");
        assert_eq!(
            renderer.render(message, header).language,
            lang,
            "{header:?}"
        );
    }
}

#[test]
fn debug_hides_the_content() {
    let mail = english(&all_messages()[0]);
    let debug = format!("{mail:?}");
    assert!(!debug.contains("042917"), "{debug}");
    assert!(debug.contains("en"), "{debug}");
}

#[test]
fn a_template_failing_at_send_time_falls_back_to_built_in_english() {
    // No templates at all: every render fails.
    let broken = Renderer {
        compiled: std::sync::Arc::new(Compiled {
            env: minijinja::Environment::new(),
            languages: vec!["en".to_owned(), "de".to_owned()],
            origins: Default::default(),
        }),
    };
    for message in all_messages() {
        assert_eq!(broken.render(&message, Some("de")), english(&message));
    }
}

#[test]
fn the_last_resort_still_carries_the_code() {
    let mail = last_resort(&all_messages()[0]);
    assert_eq!(mail.subject, "042917 is your SecureAuth code");
    assert!(mail.text.starts_with("042917 "), "{}", mail.text);
    assert!(mail.text.contains("900 seconds"), "{}", mail.text);
    assert!(mail.html.contains("042917"));
    let notice = last_resort(&MailMessage::AccountDeleted);
    assert!(notice.text.contains("account_deleted"));
    assert_eq!(
        html_escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
    );
}

#[test]
fn durations_are_cut_into_whole_units() {
    assert_eq!(duration_parts(Duration::from_secs(59)), (0, 0, 59));
    assert_eq!(duration_parts(Duration::from_secs(61)), (0, 1, 0));
    assert_eq!(
        duration_parts(Duration::from_secs(3 * 3600 + 125)),
        (3, 2, 0)
    );
    assert_eq!(duration_parts(Duration::from_millis(999)), (0, 0, 0));
}

#[test]
fn subjects_are_one_line() {
    assert_eq!(one_line("  a\n b\r\n\tc  "), "a b c");
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An operator's template folder (`Renderer::with_overrides`), on real files.

use std::path::Path;
use std::time::Duration;

use auth_core::{MailMessage, OtpCode};
use auth_smtp::{Renderer, TemplateError};

fn verify() -> MailMessage {
    MailMessage::VerifyEmail {
        code: OtpCode::parse("042917").unwrap(),
        valid_for: Duration::from_secs(600),
    }
}

/// Writes `files` (`<lang>/<file>`, content) under a new temporary folder.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn load_error(files: &[(&str, &str)]) -> (tempfile::TempDir, TemplateError) {
    let dir = folder(files);
    let err = Renderer::with_overrides(dir.path()).unwrap_err();
    (dir, err)
}

/// The error and its sources, as the server's start-up prints them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

fn names(err: &TemplateError, path: &Path) -> bool {
    err.to_string().contains(&path.display().to_string())
}

#[test]
fn an_override_replaces_the_built_in_file_and_nothing_else() {
    let dir = folder(&[
        (
            "en/verify_email.subject",
            "Your code for Acme: {{ code }}\n",
        ),
        ("en/footer.txt", "Acme Inc., 1 Main Street"),
    ]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    let builtin = Renderer::builtin();

    let mail = renderer.render(&verify(), None);
    assert_eq!(mail.subject, "Your code for Acme: 042917");
    assert!(
        mail.text.ends_with("\n-- \nAcme Inc., 1 Main Street\n"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains(">Acme Inc., 1 Main Street</p>"));
    // The built-in text part and the other messages are unchanged.
    let expected = builtin.render(&verify(), None);
    assert!(mail
        .text
        .starts_with(expected.text.split("\n-- \n").next().unwrap()));
    assert_eq!(
        renderer
            .render(&MailMessage::password_changed(), None)
            .subject,
        "Your SecureAuth password was changed"
    );
    // German keeps its own subject and footer.
    let de = renderer.render(&verify(), Some("de"));
    assert_eq!(de, builtin.render(&verify(), Some("de")));
}

#[test]
fn a_new_language_folder_adds_a_language_and_falls_back_to_english_per_file() {
    let dir = folder(&[
        (
            "fr/verify_email.subject",
            "{{ code }} est votre code {{ product }}",
        ),
        (
            "fr/footer.txt",
            "Message envoyé automatiquement par {{ product }}.",
        ),
    ]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    assert_eq!(renderer.languages(), ["en", "de", "fr"]);
    assert_eq!(renderer.language_for(Some("fr-CA, en;q=0.5")), "fr");

    let mail = renderer.render(&verify(), Some("fr-CA, en;q=0.5"));
    assert_eq!(mail.language, "fr");
    assert_eq!(mail.subject, "042917 est votre code SecureAuth");
    // What French lacks is English, the layout included (with lang="fr").
    assert!(mail
        .text
        .starts_with("042917 is your SecureAuth verification code.\n"));
    assert!(mail.text.contains("valid for 10 minutes"));
    assert!(mail
        .text
        .ends_with("Message envoyé automatiquement par SecureAuth.\n"));
    assert!(mail.html.contains("<html lang=\"fr\">"));
    assert!(mail
        .html
        .contains(">Message envoyé automatiquement par SecureAuth.</p>"));
    let notice = renderer.render(&MailMessage::AccountDeleted, Some("fr"));
    assert_eq!(notice.subject, "Your SecureAuth account was deleted");
}

#[test]
fn a_language_can_have_its_own_layout_and_english_overrides_reach_new_languages() {
    let dir = folder(&[
        (
            "en/layout.html",
            "<!DOCTYPE html>\n<html lang=\"{{ lang }}\" data-layout=\"acme\">\
             <body>{% block content %}{% endblock %}</body></html>",
        ),
        (
            "ar/layout.html",
            "<!DOCTYPE html>\n<html lang=\"{{ lang }}\" dir=\"rtl\">\
             <body>{% block content %}{% endblock %}</body></html>",
        ),
        ("nl/footer.txt", ""),
    ]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    let en = renderer.render(&verify(), None);
    assert!(en.html.contains("data-layout=\"acme\""), "{}", en.html);
    // German has no layout of its own: it uses the (overridden) English one.
    let de = renderer.render(&verify(), Some("de"));
    assert!(
        de.html.contains("<html lang=\"de\" data-layout=\"acme\">"),
        "{}",
        de.html
    );
    assert!(de.html.contains("Bestätigungscode"));
    let ar = renderer.render(&verify(), Some("ar"));
    assert!(ar.html.contains("dir=\"rtl\""), "{}", ar.html);
    // An empty footer: no signature at all.
    let nl = renderer.render(&verify(), Some("nl"));
    assert!(!nl.text.contains("-- "), "{}", nl.text);
    assert!(nl
        .text
        .ends_with("Never share this code. SecureAuth will never ask you for it.\n"));
}

#[test]
fn values_are_escaped_in_html_but_not_in_text() {
    let hostile = r#""<script>alert(1)</script>"@evil.example"#;
    let dir = folder(&[
        (
            "en/password_changed.html",
            &format!(
                "{{% extends \"layout.html\" %}}\n{{% block content %}}\n\
                 {{% set who = '{hostile}' %}}<p>Changed for {{{{ who }}}} by {{{{ product }}}}.</p>\n\
                 {{% endblock %}}\n"
            ),
        ),
        (
            "en/password_changed.txt",
            &format!("{{% set who = '{hostile}' %}}Changed for {{{{ who }}}}."),
        ),
        (
            "en/password_changed.subject",
            &format!("{{% set who = '{hostile}' %}}Changed for {{{{ who }}}}"),
        ),
    ]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    let mail = renderer.render(&MailMessage::password_changed(), None);
    assert!(!mail.html.contains("<script>"), "{}", mail.html);
    assert!(
        mail.html.contains(
            "<p>Changed for &quot;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;@evil.example by SecureAuth.</p>"
        ),
        "{}",
        mail.html
    );
    // The subject, escaped where the layout puts it into <title>.
    assert!(
        mail.html
            .contains("<title>Changed for &quot;&lt;script&gt;"),
        "{}",
        mail.html
    );
    assert!(
        mail.text.starts_with(&format!("Changed for {hostile}.\n")),
        "{}",
        mail.text
    );
    assert_eq!(mail.subject, format!("Changed for {hostile}"));
}

#[test]
fn a_syntax_error_fails_loading_and_names_the_file() {
    let (dir, err) = load_error(&[("de/login_code.txt", "Ihr Code: {{ code }\n")]);
    assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
    assert!(names(&err, &dir.path().join("de/login_code.txt")), "{err}");
    let chain = chain(&err);
    assert!(chain.contains("syntax error"), "{chain}");
    assert!(chain.contains(":1)"), "the line: {chain}");

    let (dir, err) = load_error(&[("en/layout.html", "{% block content %}")]);
    assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
    assert!(names(&err, &dir.path().join("en/layout.html")), "{err}");
}

#[test]
fn a_template_that_cannot_render_fails_loading_and_names_the_file() {
    // A misspelt variable.
    let (dir, err) = load_error(&[("en/reset_password.subject", "{{ cdoe }} is your code")]);
    match &err {
        TemplateError::Render { kind, language, .. } => {
            assert_eq!(*kind, "reset_password");
            assert_eq!(language, "en");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        names(&err, &dir.path().join("en/reset_password.subject")),
        "{err}"
    );

    // An unknown filter, in a layout only German would use.
    let (dir, err) = load_error(&[(
        "de/layout.html",
        "<html>{{ subject|shout }}{% block content %}{% endblock %}</html>",
    )]);
    assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
    assert!(names(&err, &dir.path().join("de/layout.html")), "{err}");
    assert!(chain(&err).contains("shout"), "{}", chain(&err));

    // An included file that does not exist.
    let (_dir, err) = load_error(&[("en/footer.txt", "{% include \"signature.txt\" %}")]);
    assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
}

#[test]
fn misnamed_files_and_folders_fail_loading() {
    let (dir, err) = load_error(&[("en/verify_emial.txt", "hello")]);
    assert!(matches!(err, TemplateError::UnknownFile { .. }), "{err:?}");
    assert!(
        names(&err, &dir.path().join("en/verify_emial.txt")),
        "{err}"
    );
    assert!(
        err.to_string().contains("verify_email.txt"),
        "lists the names: {err}"
    );

    let (dir, err) = load_error(&[("verify_email.txt", "hello")]);
    assert!(
        matches!(err, TemplateError::NotALanguageFolder { .. }),
        "{err:?}"
    );
    assert!(names(&err, &dir.path().join("verify_email.txt")), "{err}");

    let (dir, err) = load_error(&[("english/verify_email.txt", "hello")]);
    assert!(
        matches!(err, TemplateError::NotALanguageFolder { .. }),
        "{err:?}"
    );
    assert!(names(&err, &dir.path().join("english")), "{err}");

    let missing = tempfile::tempdir().unwrap().path().join("nope");
    let err = Renderer::with_overrides(&missing).unwrap_err();
    assert!(matches!(err, TemplateError::Read { .. }), "{err:?}");
    assert!(names(&err, &missing), "{err}");

    // A file named like a language is still not a folder.
    let (dir, err) = load_error(&[("de", "")]);
    assert!(
        matches!(err, TemplateError::NotALanguageFolder { .. }),
        "{err:?}"
    );
    assert!(names(&err, &dir.path().join("de")), "{err}");
}

#[test]
fn a_file_that_is_not_utf8_fails_loading_and_names_it() {
    let dir = folder(&[]);
    std::fs::create_dir(dir.path().join("en")).unwrap();
    let path = dir.path().join("en/footer.txt");
    std::fs::write(&path, b"Acme \xff\xfe").unwrap();
    let err = Renderer::with_overrides(dir.path()).unwrap_err();
    assert!(matches!(err, TemplateError::Read { .. }), "{err:?}");
    assert!(names(&err, &path), "{err}");
}

#[test]
fn hidden_files_are_skipped_and_crlf_is_read_as_lf() {
    let dir = folder(&[
        (".git/config", "[core]"),
        ("en/.verify_email.txt.swp", "\u{0}binary"),
        (".DS_Store", "x"),
        (
            "en/verify_email.txt",
            "Code: {{ code }}\r\n\r\nValid for {{ valid_for }}.\r\n",
        ),
    ]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    let mail = renderer.render(&verify(), None);
    assert!(
        mail.text
            .starts_with("Code: 042917\n\nValid for 10 minutes.\n\n-- \n"),
        "{:?}",
        mail.text
    );
    assert!(!mail.text.contains('\r'));
}

#[test]
fn an_empty_folder_is_the_built_in_templates() {
    let dir = folder(&[]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    for lang in [None, Some("de")] {
        assert_eq!(
            renderer.render(&verify(), lang),
            Renderer::builtin().render(&verify(), lang)
        );
    }
}

#[test]
fn folder_names_are_case_insensitive_language_tags() {
    let dir = folder(&[("PT-BR/verify_email.subject", "{{ code }} é o seu código")]);
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    assert_eq!(renderer.languages(), ["en", "de", "pt-br"]);
    let mail = renderer.render(&verify(), Some("pt-BR"));
    assert_eq!(mail.language, "pt-br");
    assert_eq!(mail.subject, "042917 é o seu código");
    // Only an exact match reaches a regional folder.
    assert_eq!(renderer.language_for(Some("pt")), "en");
}

#[test]
fn a_huge_accept_language_header_is_cheap_and_gives_english() {
    let renderer = Renderer::builtin();
    let header = "x-".repeat(5_120) + ", de";
    assert!(header.len() > 10_000);
    // The long first entry is skipped; "de" is still among the first entries.
    assert_eq!(renderer.render(&verify(), Some(&header)).language, "de");
    let many = "zz;q=0.5, ".repeat(1_024) + "de";
    assert_eq!(renderer.render(&verify(), Some(&many)).language, "en");
}

//! Threat: an address the service accepts but cannot mail. It used to answer 500 and leave an
//! orphan unverified row (quoted local parts, IP literals), and the Unicode and punycode forms
//! of one domain became two accounts for one mailbox.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Legal but unusual addresses that can be delivered: accepted, and the code arrives.
const DELIVERABLE: &[&str] = &[
    "o'brien@example.com",
    "first.last+tag@example.com",
    "a!#$%&'*+/=?^_`{|}~-z@example.com",
    "UPPER.Case@Example.COM",
    "x@sub.domain.example.co.uk",
    "digits-123@123.example.com",
    "user@bücher.example",
    "user@ÉXAMPLE-Ünïcode.example",
];

/// Addresses refused with 422 `invalid_email`: some are legal RFC 5322 but cannot be mailed
/// (quoted, IP literals, comments), some are malformed.
const REFUSED: &[&str] = &[
    "\"quoted local\"@example.com",
    "\"a@b\"@example.com",
    "\"\"@example.com",
    "user@[127.0.0.1]",
    "user@[IPv6:::1]",
    "user@127.0.0.1",
    "user(comment)@example.com",
    "user@example.com(comment)",
    "(comment)user@example.com",
    "Ada <ada@example.com>",
    "<ada@example.com>",
    ".user@example.com",
    "user.@example.com",
    "us..er@example.com",
    "us er@example.com",
    "us\\er@example.com",
    "üser@example.com",
    "user@-example.com",
    "user@example-.com",
    "user@example..com",
    "user@.example.com",
    "user@example.com.",
    "user@exa_mple.com",
    "user@exa mple.com",
    "user@xn--.example",
    "user@xn--a-ecp.example",
    "user@localhost",
    "user@example",
    "user@@example.com",
    "@example.com",
    "user@",
];

async fn odd_addresses_never_500(profile: Profile) {
    let app = TestApp::spawn_with(
        profile,
        &[
            ("RATE_LIMIT_SIGNUP_PER_IP", "off"),
            ("RATE_LIMIT_SIGNUP_PER_EMAIL", "off"),
        ],
    )
    .await;
    let before = app.user_rows().await;
    let mut created = 0;
    let mut failures = Vec::new();
    for raw in DELIVERABLE {
        let res = app.signup(raw, PASSWORD).await;
        let status = res.status();
        if status != StatusCode::CREATED {
            failures.push(format!("{raw:?}: expected 201, got {status}"));
            continue;
        }
        created += 1;
        let body: Value = res.json().await.unwrap();
        let stored = body["user"]["email"].as_str().unwrap().to_owned();
        assert!(stored.is_ascii(), "{raw:?} is stored as {stored:?}");
        // Deliverable means delivered: the code arrives at the stored address.
        app.nth_code(&stored, 1).await;
    }
    for raw in REFUSED {
        let res = app.signup(raw, PASSWORD).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        if status != StatusCode::UNPROCESSABLE_ENTITY || body["error"]["code"] != "invalid_email" {
            failures.push(format!(
                "{raw:?}: expected 422 invalid_email, got {status} {body}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        app.user_rows().await - before,
        created,
        "exactly one row per accepted signup, none for the refused ones"
    );
    app.cleanup().await;
}

async fn idn_forms_are_one_account(profile: Profile) {
    // "Taken" is visible (409) only with enumeration protection off.
    let app = TestApp::spawn_with(profile, &[("ENUMERATION_PROTECTION", "false")]).await;
    let local = format!("idn-{}", uuid::Uuid::new_v4().simple());
    let unicode = format!("{local}@bücher.example");
    let punycode = format!("{local}@xn--bcher-kva.example");

    let res = app.signup(&unicode, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["user"]["email"],
        punycode.as_str(),
        "stored as punycode"
    );
    let code = app.nth_code(&punycode, 1).await;
    // Verifying with the other form of the address verifies the same account.
    assert_eq!(app.verify(&unicode, &code).await.status(), StatusCode::OK);

    // The punycode form is the same address: taken, not a second account.
    let res = app.signup(&punycode, "another good passphrase").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(res).await, "email_taken");
    let res = app
        .signup(
            &format!("{local}@BÜCHER.example"),
            "another good passphrase",
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(app.user_rows().await, 1);

    // Either form logs in to the one account.
    for form in [&unicode, &punycode] {
        let res = app.login(form, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK, "{form}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["email"], punycode.as_str());
    }
    app.cleanup().await;
}

crate::both_profiles!(odd_addresses_never_500, idn_forms_are_one_account);

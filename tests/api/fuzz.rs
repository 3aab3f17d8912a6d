//! The OpenAPI document against generated requests: Schemathesis (a property-based API
//! tester) derives requests from `/openapi.json`, valid and invalid, anonymous and with a
//! session, and checks that every answer is declared there (status, content type, headers)
//! and that none is a server error.

use crate::helpers::{Profile, TestApp, PASSWORD};

both_profiles!(generated_requests_get_only_declared_answers_and_never_a_server_error);

/// `schemathesis run` against `app`, with `headers`; panics with its report when it fails.
async fn schemathesis(app: &TestApp, headers: &[String]) {
    let mut command = tokio::process::Command::new("schemathesis");
    command.args([
        "run",
        &format!("{}/openapi.json", app.address),
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,\
         response_headers_conformance",
        "--max-examples",
        "8",
        "--seed",
        "1",
        "--request-timeout",
        "20",
    ]);
    for header in headers {
        command.args(["--header", header]);
    }
    let output = command.output().await.unwrap_or_else(|e| {
        panic!(
            "cannot run schemathesis ({e}): `cargo xtask test` installs it, or \
             `python3 -m pip install schemathesis==4.32.5`"
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers the document does not declare:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

async fn generated_requests_get_only_declared_answers_and_never_a_server_error(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let ada = app.verified_user().await;
    let token = app.token(&ada, PASSWORD).await;
    schemathesis(&app, &[]).await;
    schemathesis(&app, &[format!("Authorization: Bearer {token}")]).await;
    app.cleanup().await;
}

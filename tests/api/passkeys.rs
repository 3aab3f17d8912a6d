//! Passkeys, black box on both profiles, with a software authenticator: a test-only P-256 key
//! that builds `authenticatorData`, `clientDataJSON` and the signature by hand, as a browser
//! and an authenticator would. Register, sign in without a password, manage, the second
//! step; and the attacks: a replayed assertion, an assertion or registration for another
//! origin or relying party, a counter that does not move, ceremonies used by another session
//! or for another ceremony, one credential on two accounts, another user's passkey (IDOR), a
//! disabled account.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{error_code, Profile, TestApp, PASSWORD};

both_profiles!(
    register_sign_in_rename_and_delete_a_passkey,
    a_replayed_assertion_is_refused,
    an_assertion_for_another_origin_or_relying_party_is_refused,
    a_counter_that_does_not_move_is_refused,
    a_ceremony_works_only_for_its_session_and_kind,
    one_credential_cannot_be_registered_to_two_accounts,
    another_users_passkey_cannot_be_renamed_or_deleted,
    a_disabled_account_cannot_sign_in_with_a_passkey,
    a_passkey_is_the_second_step_instead_of_a_totp_code,
    a_registration_with_a_forged_or_odd_credential_id_is_refused,
    a_sign_in_answer_that_is_not_a_public_key_credential_is_refused,
);

pub(crate) const RP_ID: &str = "localhost";
pub(crate) const ORIGIN: &str = "http://localhost:8080";
pub(crate) const PASSKEYS: &[(&str, &str)] =
    &[("WEBAUTHN_RP_ID", RP_ID), ("WEBAUTHN_ORIGIN", ORIGIN)];

/// Minimal CBOR (RFC 8949) encoder: what an attestation object and a COSE key need.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | u8::try_from(n).unwrap());
    } else if n < 256 {
        out.extend([m | 24, u8::try_from(n).unwrap()]);
    } else {
        out.push(m | 25);
        out.extend(u16::try_from(n).unwrap().to_be_bytes());
    }
}

fn cbor_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        cbor_head(out, 0, u64::try_from(v).unwrap());
    } else {
        cbor_head(out, 1, u64::try_from(-1 - v).unwrap());
    }
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    cbor_head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A software authenticator holding one P-256 credential, with a signature counter.
pub(crate) struct Authenticator {
    key: SigningKey,
    pub(crate) credential_id: Vec<u8>,
    pub(crate) user_handle: Option<Vec<u8>>,
    pub(crate) counter: u32,
    pub(crate) origin: String,
    pub(crate) rp_id: String,
}

impl Authenticator {
    pub(crate) fn new() -> Self {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
        let mut credential_id = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut credential_id);
        Self {
            key: SigningKey::from_slice(&seed).unwrap(),
            credential_id,
            user_handle: None,
            counter: 0,
            origin: ORIGIN.to_owned(),
            rp_id: RP_ID.to_owned(),
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": options["challenge"],
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    fn auth_data(&self, attested: bool) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        // User present, user verified; attested credential data on registration.
        data.push(if attested { 0x45 } else { 0x05 });
        data.extend(self.counter.to_be_bytes());
        if attested {
            data.extend([0u8; 16]);
            data.extend(
                u16::try_from(self.credential_id.len())
                    .unwrap()
                    .to_be_bytes(),
            );
            data.extend(&self.credential_id);
            let point = self.key.verifying_key().to_sec1_point(false);
            let sec1 = point.as_bytes();
            let mut cose = Vec::new();
            cbor_head(&mut cose, 5, 5);
            cbor_int(&mut cose, 1);
            cbor_int(&mut cose, 2); // kty: EC2
            cbor_int(&mut cose, 3);
            cbor_int(&mut cose, -7); // alg: ES256
            cbor_int(&mut cose, -1);
            cbor_int(&mut cose, 1); // crv: P-256
            cbor_int(&mut cose, -2);
            cbor_bytes(&mut cose, &sec1[1..33]);
            cbor_int(&mut cose, -3);
            cbor_bytes(&mut cose, &sec1[33..65]);
            data.extend(cose);
        }
        data
    }

    /// The answer to `navigator.credentials.create({ publicKey: options })`.
    pub(crate) fn create(&mut self, options: &Value) -> Value {
        if let Some(handle) = options["user"]["id"].as_str() {
            self.user_handle = Some(B64.decode(handle).unwrap());
        }
        let client_data = self.client_data("webauthn.create", options);
        let mut attestation = Vec::new();
        cbor_head(&mut attestation, 5, 3);
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        cbor_head(&mut attestation, 5, 0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &self.auth_data(true));
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(attestation),
                "clientDataJSON": B64.encode(client_data),
            },
            "extensions": {},
        })
    }

    /// The answer to `navigator.credentials.get({ publicKey: options })`; the counter moves
    /// first, as a hardware authenticator's does.
    pub(crate) fn get(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assert_without_counting(options)
    }

    /// An assertion with the counter as it is (a cloned authenticator).
    pub(crate) fn assert_without_counting(&self, options: &Value) -> Value {
        let client_data = self.client_data("webauthn.get", options);
        let auth_data = self.auth_data(false);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(auth_data),
                "clientDataJSON": B64.encode(client_data),
                "signature": B64.encode(signature.to_der().as_bytes()),
                "userHandle": self.user_handle.as_ref().map(|h| B64.encode(h)),
            },
            "extensions": {},
        })
    }
}

/// Starts a registration in the session `token`; the answer's JSON.
pub(crate) async fn registration_options(app: &TestApp, token: &str, extra: Value) -> Value {
    let mut body = json!({ "password": PASSWORD });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let res = app
        .post_auth("/me/passkeys/options", token, Some(&body))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Registers `authenticator` to the session `token`'s account under `name`.
pub(crate) async fn register(
    app: &TestApp,
    token: &str,
    authenticator: &mut Authenticator,
    name: &str,
) -> Value {
    let started = registration_options(app, token, json!({})).await;
    let credential = authenticator.create(&started["options"]);
    let res = app
        .post_auth(
            "/me/passkeys",
            token,
            Some(&json!({
                "ceremony_id": started["ceremony_id"],
                "name": name,
                "credential": credential,
            })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// A sign-in ceremony without a password: (ceremony id, options).
pub(crate) async fn sign_in_options(app: &TestApp) -> (String, Value) {
    let res = app.post("/login/passkey/options", &json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    (
        body["ceremony_id"].as_str().unwrap().to_owned(),
        body["options"].clone(),
    )
}

pub(crate) async fn sign_in(
    app: &TestApp,
    ceremony: &str,
    credential: &Value,
) -> reqwest::Response {
    app.post(
        "/login/passkey",
        &json!({ "ceremony_id": ceremony, "credential": credential }),
    )
    .await
}

/// A verified account with a session: (address, token).
async fn account(app: &TestApp) -> (String, String) {
    let email = app.verified_user().await;
    let token = app.token(&email, PASSWORD).await;
    (email, token)
}

async fn register_sign_in_rename_and_delete_a_passkey(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (email, token) = account(&app).await;
    let mut authenticator = Authenticator::new();

    let started = registration_options(&app, &token, json!({})).await;
    let selection = &started["options"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{started}");
    assert_eq!(selection["userVerification"], "required", "{started}");
    let created = register(&app, &token, &mut authenticator, "  laptop ").await;
    assert_eq!(created["name"], "laptop");
    assert!(created["last_used_at"].is_null());

    // Sign in without a password: the options say nothing about any account.
    let (ceremony, options) = sign_in_options(&app).await;
    assert_eq!(options["userVerification"], "required", "{options}");
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    let res = sign_in(&app, &ceremony, &authenticator.get(&options)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let passkey_token = body["session"]["token"].as_str().unwrap().to_owned();
    assert_eq!(app.me(&passkey_token).await.status(), StatusCode::OK);

    // The cookie transport too.
    let (ceremony, options) = sign_in_options(&app).await;
    let res = app
        .post(
            "/login/passkey",
            &json!({
                "ceremony_id": ceremony,
                "credential": authenticator.get(&options),
                "transport": "cookie",
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(crate::helpers::set_cookie(res.headers(), app.cookie_name).is_some());

    let listed: Value = app
        .get_auth("/me/passkeys", &token)
        .await
        .json()
        .await
        .unwrap();
    let passkeys = listed["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1);
    assert!(passkeys[0]["last_used_at"].is_string(), "{listed}");
    let id = passkeys[0]["id"].as_str().unwrap().to_owned();

    let res = app
        .client
        .request(
            reqwest::Method::PATCH,
            app.url(&format!("/me/passkeys/{id}")),
        )
        .bearer_auth(&token)
        .json(&json!({ "name": "work laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let listed: Value = app
        .get_auth("/me/passkeys", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["passkeys"][0]["name"], "work laptop");

    // Deleting needs the password again.
    let res = app
        .client_delete_json(
            &format!("/me/passkeys/{id}"),
            &token,
            &json!({ "password": "not the password" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .client_delete_json(
            &format!("/me/passkeys/{id}"),
            &token,
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let subjects = |app: &TestApp| -> Vec<String> {
        app.mail
            .messages_to(&email)
            .iter()
            .map(|m| m.subject())
            .collect()
    };
    while !subjects(&app).iter().any(|s| s.contains("removed")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no removal notice: {:?}",
            subjects(&app)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        subjects(&app).iter().any(|s| s.contains("added")),
        "{:?}",
        subjects(&app)
    );

    // A deleted passkey signs nobody in.
    let (ceremony, options) = sign_in_options(&app).await;
    let res = sign_in(&app, &ceremony, &authenticator.get(&options)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_passkey");
    app.cleanup().await;
}

async fn a_replayed_assertion_is_refused(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (_, token) = account(&app).await;
    let mut authenticator = Authenticator::new();
    register(&app, &token, &mut authenticator, "phone").await;
    let (ceremony, options) = sign_in_options(&app).await;
    let assertion = authenticator.get(&options);
    assert_eq!(
        sign_in(&app, &ceremony, &assertion).await.status(),
        StatusCode::OK
    );
    // The same request again: the ceremony is spent.
    let res = sign_in(&app, &ceremony, &assertion).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_passkey_ceremony");
    // The recorded assertion with a fresh ceremony: signed over another challenge.
    let (fresh, _) = sign_in_options(&app).await;
    let res = sign_in(&app, &fresh, &assertion).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_passkey");
    app.cleanup().await;
}

async fn an_assertion_for_another_origin_or_relying_party_is_refused(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (_, token) = account(&app).await;
    let mut authenticator = Authenticator::new();
    register(&app, &token, &mut authenticator, "phone").await;

    authenticator.origin = "https://evil.example".to_owned();
    let (ceremony, options) = sign_in_options(&app).await;
    let res = sign_in(&app, &ceremony, &authenticator.get(&options)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_passkey");

    authenticator.origin = ORIGIN.to_owned();
    authenticator.rp_id = "evil.example".to_owned();
    let (ceremony, options) = sign_in_options(&app).await;
    let res = sign_in(&app, &ceremony, &authenticator.get(&options)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A registration made for another origin is refused too.
    let mut phished = Authenticator::new();
    phished.origin = "https://evil.example".to_owned();
    let started = registration_options(&app, &token, json!({})).await;
    let res = app
        .post_auth(
            "/me/passkeys",
            &token,
            Some(&json!({
                "ceremony_id": started["ceremony_id"],
                "name": "phished",
                "credential": phished.create(&started["options"]),
            })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "passkey_rejected");

    // The right origin still works.
    authenticator.rp_id = RP_ID.to_owned();
    let (ceremony, options) = sign_in_options(&app).await;
    let res = sign_in(&app, &ceremony, &authenticator.get(&options)).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn a_counter_that_does_not_move_is_refused(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (_, token) = account(&app).await;
    let mut authenticator = Authenticator::new();
    register(&app, &token, &mut authenticator, "key").await;
    let (ceremony, options) = sign_in_options(&app).await;
    assert_eq!(
        sign_in(&app, &ceremony, &authenticator.get(&options))
            .await
            .status(),
        StatusCode::OK
    );
    // A clone of the authenticator signs with the counter the original used last.
    let (ceremony, options) = sign_in_options(&app).await;
    let res = sign_in(
        &app,
        &ceremony,
        &authenticator.assert_without_counting(&options),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_passkey");
    app.cleanup().await;
}

async fn a_ceremony_works_only_for_its_session_and_kind(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (_, alice) = account(&app).await;
    let (_, mallory) = account(&app).await;
    let mut authenticator = Authenticator::new();

    // Alice's registration ceremony finished in Mallory's session.
    let started = registration_options(&app, &alice, json!({})).await;
    let credential = authenticator.create(&started["options"]);
    let body = json!({
        "ceremony_id": started["ceremony_id"],
        "name": "stolen",
        "credential": credential,
    });
    let res = app.post_auth("/me/passkeys", &mallory, Some(&body)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_passkey_ceremony");
    // It was taken by that attempt: Alice starts again.
    let res = app.post_auth("/me/passkeys", &alice, Some(&body)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // A sign-in ceremony is no registration ceremony.
    let (ceremony, options) = sign_in_options(&app).await;
    let res = app
        .post_auth(
            "/me/passkeys",
            &alice,
            Some(&json!({
                "ceremony_id": ceremony,
                "name": "x",
                "credential": authenticator.create(&options),
            })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_passkey_ceremony");

    // A ceremony from another client (user agent) is refused.
    register(&app, &alice, &mut authenticator, "phone").await;
    let (ceremony, options) = sign_in_options(&app).await;
    let res = app
        .client
        .post(app.url("/login/passkey"))
        .header("user-agent", "another browser")
        .json(&json!({ "ceremony_id": ceremony, "credential": authenticator.get(&options) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "invalid_passkey_ceremony");
    app.cleanup().await;
}

async fn one_credential_cannot_be_registered_to_two_accounts(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (_, alice) = account(&app).await;
    let (_, mallory) = account(&app).await;
    let mut authenticator = Authenticator::new();
    register(&app, &alice, &mut authenticator, "alice's key").await;
    let started = registration_options(&app, &mallory, json!({})).await;
    let res = app
        .post_auth(
            "/me/passkeys",
            &mallory,
            Some(&json!({
                "ceremony_id": started["ceremony_id"],
                "name": "mine",
                "credential": authenticator.create(&started["options"]),
            })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(res).await, "passkey_already_registered");
    let listed: Value = app
        .get_auth("/me/passkeys", &mallory)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed["passkeys"].as_array().unwrap().is_empty());
    app.cleanup().await;
}

async fn another_users_passkey_cannot_be_renamed_or_deleted(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (_, alice) = account(&app).await;
    let (_, mallory) = account(&app).await;
    let mut authenticator = Authenticator::new();
    let created = register(&app, &alice, &mut authenticator, "alice's key").await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .client_delete_json(
            &format!("/me/passkeys/{id}"),
            &mallory,
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .client
        .request(
            reqwest::Method::PATCH,
            app.url(&format!("/me/passkeys/{id}")),
        )
        .bearer_auth(&mallory)
        .json(&json!({ "name": "mine" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let listed: Value = app
        .get_auth("/me/passkeys", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["passkeys"][0]["name"], "alice's key");
    app.cleanup().await;
}

async fn a_disabled_account_cannot_sign_in_with_a_passkey(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (email, token) = account(&app).await;
    let mut authenticator = Authenticator::new();
    register(&app, &token, &mut authenticator, "phone").await;
    app.execute_sql(
        &format!("UPDATE users SET disabled_at = now() WHERE email = '{email}'"),
        &format!(
            "UPDATE users SET disabled_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') WHERE email = '{email}'"
        ),
    )
    .await;
    let (ceremony, options) = sign_in_options(&app).await;
    let res = sign_in(&app, &ceremony, &authenticator.get(&options)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "account_disabled");
    app.cleanup().await;
}

async fn a_passkey_is_the_second_step_instead_of_a_totp_code(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let enrolled = crate::mfa::enrolled(&app).await;
    let mut authenticator = Authenticator::new();
    // With TOTP on, registering asks for the second factor too.
    let res = app
        .post_auth(
            "/me/passkeys/options",
            &enrolled.token,
            Some(&json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "second_factor_required");
    let code = &enrolled.codes[0];
    let started =
        registration_options(&app, &enrolled.token, json!({ "second_factor": code })).await;
    let res = app
        .post_auth(
            "/me/passkeys",
            &enrolled.token,
            Some(&json!({
                "ceremony_id": started["ceremony_id"],
                "name": "phone",
                "credential": authenticator.create(&started["options"]),
            })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let res = app.login(&enrolled.email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first: Value = res.json().await.unwrap();
    let mfa_token = first["mfa_token"].as_str().unwrap().to_owned();
    let res = app
        .post(
            "/login/mfa/passkey/options",
            &json!({ "mfa_token": mfa_token }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let started: Value = res.json().await.unwrap();
    let allowed = started["options"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1, "{started}");
    let assertion = authenticator.get(&started["options"]);
    let res = app
        .post(
            "/login/mfa/passkey",
            &json!({
                "mfa_token": mfa_token,
                "ceremony_id": started["ceremony_id"],
                "credential": assertion,
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let session = body["session"]["token"].as_str().unwrap();
    assert_eq!(app.me(session).await.status(), StatusCode::OK);
    // The password step's token was spent with it.
    let res = app
        .post(
            "/login/mfa/passkey/options",
            &json!({ "mfa_token": mfa_token }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "invalid_mfa_token");
    app.cleanup().await;
}

/// Registers `authenticator` to a fresh account with its answer changed by `forge`: the
/// answer to `POST /me/passkeys` and the account's session.
async fn register_forged(
    app: &TestApp,
    authenticator: &mut Authenticator,
    forge: impl FnOnce(&mut Value),
) -> (reqwest::Response, String) {
    let (_, token) = account(app).await;
    let started = registration_options(app, &token, json!({})).await;
    let mut credential = authenticator.create(&started["options"]);
    forge(&mut credential);
    let res = app
        .post_auth(
            "/me/passkeys",
            &token,
            Some(&json!({
                "ceremony_id": started["ceremony_id"],
                "name": "odd",
                "credential": credential,
            })),
        )
        .await;
    (res, token)
}

async fn assert_rejected_and_nothing_stored(app: &TestApp, res: reqwest::Response, token: &str) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "passkey_rejected");
    let listed: Value = app
        .get_auth("/me/passkeys", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["passkeys"], json!([]), "{listed}");
}

/// A registration whose credential id is not an authenticator's (empty, 1 or 15 bytes, more
/// than 1023), whose outer `id`/`rawId` name another credential than its authenticator data,
/// or whose `type` is not `public-key` is refused with 400 `passkey_rejected` and stores
/// nothing. Before, a 0- or 1-byte id was stored and the outer id was never compared.
async fn a_registration_with_a_forged_or_odd_credential_id_is_refused(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    for len in [0usize, 1, 15, 1024] {
        let mut authenticator = Authenticator::new();
        authenticator.credential_id = vec![7u8; len];
        let (res, token) = register_forged(&app, &mut authenticator, |_| {}).await;
        assert_rejected_and_nothing_stored(&app, res, &token).await;
    }
    // The outer fields name another credential than the signed authenticator data.
    let other = B64.encode([9u8; 32]);
    let (res, token) = register_forged(&app, &mut Authenticator::new(), |c| {
        c["id"] = json!(other);
        c["rawId"] = json!(other);
    })
    .await;
    assert_rejected_and_nothing_stored(&app, res, &token).await;
    // `id` and `rawId` disagree.
    let (res, token) = register_forged(&app, &mut Authenticator::new(), |c| {
        c["id"] = json!(other);
    })
    .await;
    assert_rejected_and_nothing_stored(&app, res, &token).await;
    // Not a public-key credential.
    let (res, token) = register_forged(&app, &mut Authenticator::new(), |c| {
        c["type"] = json!("password");
    })
    .await;
    assert_rejected_and_nothing_stored(&app, res, &token).await;
    // The shortest id an authenticator may make is accepted.
    let mut shortest = Authenticator::new();
    shortest.credential_id = vec![3u8; 16];
    let (res, _) = register_forged(&app, &mut shortest, |_| {}).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.cleanup().await;
}

/// A sign-in answer (without a password, or as the second step) whose `type` is not
/// `public-key` or whose `id` and `rawId` differ is refused with 400 `passkey_rejected`,
/// before any account is looked at; the right answer afterwards still signs in.
async fn a_sign_in_answer_that_is_not_a_public_key_credential_is_refused(profile: Profile) {
    let app = TestApp::spawn_with(profile, PASSKEYS).await;
    let (_, token) = account(&app).await;
    let mut authenticator = Authenticator::new();
    register(&app, &token, &mut authenticator, "phone").await;
    let forgeries: [fn(&mut Value); 3] = [
        |c| c["type"] = json!("password"),
        |c| {
            c.as_object_mut().unwrap().remove("type");
        },
        |c| c["rawId"] = json!(B64.encode([1u8; 32])),
    ];
    for forge in forgeries {
        let (ceremony, options) = sign_in_options(&app).await;
        let mut assertion = authenticator.get(&options);
        forge(&mut assertion);
        let res = sign_in(&app, &ceremony, &assertion).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(res).await, "passkey_rejected");
    }
    let (ceremony, options) = sign_in_options(&app).await;
    let res = sign_in(&app, &ceremony, &authenticator.get(&options)).await;
    assert_eq!(res.status(), StatusCode::OK);

    // The second step too.
    let enrolled = crate::mfa::enrolled(&app).await;
    let mut second = Authenticator::new();
    let started = registration_options(
        &app,
        &enrolled.token,
        json!({ "second_factor": enrolled.codes[0] }),
    )
    .await;
    let res = app
        .post_auth(
            "/me/passkeys",
            &enrolled.token,
            Some(&json!({
                "ceremony_id": started["ceremony_id"],
                "name": "phone",
                "credential": second.create(&started["options"]),
            })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = app
        .login(&enrolled.email, PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let mfa_token = first["mfa_token"].as_str().unwrap().to_owned();
    let started: Value = app
        .post(
            "/login/mfa/passkey/options",
            &json!({ "mfa_token": mfa_token }),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut assertion = second.get(&started["options"]);
    assertion["type"] = json!("password");
    let res = app
        .post(
            "/login/mfa/passkey",
            &json!({
                "mfa_token": mfa_token,
                "ceremony_id": started["ceremony_id"],
                "credential": assertion,
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(res).await, "passkey_rejected");
    app.cleanup().await;
}

//! Service tokens: `POST /token` mints a short-lived EdDSA access JWT for a live session;
//! `/.well-known/jwks.json` publishes the keys. Minted tokens are checked with an independent
//! JWT library (jwt-compact, not the signer's jsonwebtoken) and with `auth-jwt`, the verifier
//! for downstream services, which must refuse every forgery.

use std::time::Duration;

use auth_jwt::{JwksVerifier, VerifierConfig, VerifyError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use ed25519_dalek::{Signer as _, SigningKey};
use jwt_compact::alg::Ed25519;
use jwt_compact::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// What the API tests set as `JWT_ISSUER` and expect as `aud`.
const ISSUER: &str = "https://auth.secureauth.test";
const AUDIENCE: &str = "secureauth";

fn pem(seed: u8) -> String {
    SigningKey::from_bytes(&[seed; 32])
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap()
        .to_string()
}

fn private_jwk(seed: u8, kid: Option<&str>) -> Value {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let mut jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "d": URL_SAFE_NO_PAD.encode(key.to_bytes()),
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
    });
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    jwk
}

/// RFC 7638 thumbprint, computed here independently of the server.
fn thumbprint(key: &SigningKey) -> String {
    use sha2::Digest as _;
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// The key the app signs with: the first of `JWT_SIGNING_KEYS` (PEM), or the development key
/// it generated into `JWT_KEY_FILE`.
fn signing_key(app: &TestApp) -> SigningKey {
    let pem = match app.var("JWT_SIGNING_KEYS") {
        Some(pem) => pem.to_owned(),
        None => std::fs::read_to_string(app.var("JWT_KEY_FILE").unwrap()).unwrap(),
    };
    SigningKey::from_pkcs8_pem(&pem).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A JWT signed by hand with `key` (EdDSA), whatever its header and claims say.
fn forge(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// HS256 over `header.claims` with `secret` as the HMAC key.
fn forge_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use hmac::Mac as _;
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn verifier(app: &TestApp) -> JwksVerifier {
    let mut config =
        VerifierConfig::new(ISSUER, AUDIENCE).with_jwks_url(app.url("/.well-known/jwks.json"));
    config.min_refresh_interval = Duration::ZERO;
    JwksVerifier::new(config).unwrap()
}

async fn mint(app: &TestApp, session: &str) -> Value {
    let res = app.post_auth("/token", session, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

fn header_of(jwt: &str) -> Value {
    let head = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()
}

#[derive(Debug, serde::Deserialize)]
struct Custom {
    iss: String,
    sub: String,
    sid: String,
    aud: String,
    jti: String,
}

/// Checks `jwt` with jwt-compact against the JWK of `kid` published by the app.
async fn independently_verified(app: &TestApp, jwt: &str) -> Token<Custom> {
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let untrusted = UntrustedToken::new(jwt).unwrap();
    assert_eq!(untrusted.algorithm(), "EdDSA");
    let kid = untrusted.header().key_id.clone().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("no published key {kid}: {jwks}"));
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let key = <Ed25519 as jwt_compact::Algorithm>::VerifyingKey::from_slice(&x).unwrap();
    let token: Token<Custom> = Ed25519.validator(&key).validate(&untrusted).unwrap();
    token
        .claims()
        .validate_expiration(&TimeOptions::default())
        .unwrap();
    token
}

async fn token_minted_for_a_session_verifies_with_an_independent_library(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let session = app.token(&email, PASSWORD).await;
    let me: Value = app.me(&session).await.json().await.unwrap();

    let minted = mint(&app, &session).await;
    assert_eq!(minted["token_type"], "Bearer");
    assert_eq!(minted["expires_in"], 300, "JWT_TTL defaults to 5 minutes");
    let jwt = minted["access_token"].as_str().unwrap();

    let header = header_of(jwt);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], thumbprint(&signing_key(&app)));

    let token = independently_verified(&app, jwt).await;
    let claims = token.claims();
    assert_eq!(claims.custom.iss, ISSUER);
    assert_eq!(claims.custom.aud, AUDIENCE);
    assert_eq!(claims.custom.sub, me["user"]["id"].as_str().unwrap());
    let sessions: Value = app
        .get_auth("/sessions", &session)
        .await
        .json()
        .await
        .unwrap();
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    assert_eq!(claims.custom.sid, current["id"].as_str().unwrap());
    let (iat, exp) = (claims.issued_at.unwrap(), claims.expiration.unwrap());
    assert_eq!((exp - iat).num_seconds(), 300);
    assert!((iat.timestamp() - now()).abs() <= 5);
    assert_eq!(
        minted["expires_at"].as_str().unwrap(),
        exp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    // The downstream verifier agrees, and two mints differ in their jti.
    let typed = verifier(&app).verify(jwt).await.unwrap();
    assert_eq!(typed.sub.to_string(), claims.custom.sub);
    assert_eq!(typed.jti, claims.custom.jti);
    let again = mint(&app, &session).await;
    let other = verifier(&app)
        .verify(again["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_ne!(other.jti, typed.jti);

    // The cookie transport mints too (from this site only).
    let res = app
        .post(
            "/login",
            &json!({"email": email, "password": PASSWORD, "transport": "cookie"}),
        )
        .await;
    let cookie = set_cookie(res.headers(), app.cookie_name).unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/token"))
        .header("cookie", &pair)
        .header("origin", app.address.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    independently_verified(&app, body["access_token"].as_str().unwrap()).await;
    let res = app
        .client
        .post(app.url("/token"))
        .header("cookie", &pair)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(res).await, "cross_site_request");
    app.cleanup().await;
}

async fn token_from_a_revoked_session_cannot_be_minted(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let session = app.token(&email, PASSWORD).await;
    let before = mint(&app, &session).await;

    let res = app.post_auth("/logout", &session, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.post_auth("/token", &session, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(res).await, "unauthenticated");

    // Every session revoked at once (logout-all) mints nothing either.
    let a = app.token(&email, PASSWORD).await;
    let b = app.token(&email, PASSWORD).await;
    assert_eq!(
        app.post_auth("/logout-all", &a, None).await.status(),
        StatusCode::NO_CONTENT
    );
    for t in [&a, &b] {
        assert_eq!(
            app.post_auth("/token", t, None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // No session, a made-up one, a malformed header: 401 too.
    let res = app.client.post(app.url("/token")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.post_auth("/token", &"A".repeat(43), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The documented trade-off: a token minted before the logout stays valid until its exp.
    let still = verifier(&app)
        .verify(before["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert!(still.exp - now() <= 300);
    app.cleanup().await;
}

async fn token_lifetime_is_capped_by_the_session(profile: Profile) {
    let app = TestApp::spawn_with(profile, &[("SESSION_TTL", "60s"), ("JWT_TTL", "1h")]).await;
    let email = app.verified_user().await;
    let session = app.token(&email, PASSWORD).await;
    let minted = mint(&app, &session).await;
    let expires_in = minted["expires_in"].as_u64().unwrap();
    assert!(
        (55..=60).contains(&expires_in),
        "the token ends with its session, not after JWT_TTL: {expires_in}"
    );
    let claims = verifier(&app)
        .verify(minted["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.exp - claims.iat, i64::try_from(expires_in).unwrap());
    app.cleanup().await;
}

async fn forged_tokens_are_refused_by_the_verifier(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let session = app.token(&email, PASSWORD).await;
    let minted = mint(&app, &session).await;
    let jwt = minted["access_token"].as_str().unwrap().to_owned();
    let v = verifier(&app);
    let good = v.verify(&jwt).await.unwrap();

    let key = signing_key(&app);
    let kid = thumbprint(&key);
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let claims = serde_json::to_value(&good).unwrap();
    let with = |name: &str, value: Value| {
        let mut c = claims.clone();
        c[name] = value;
        c
    };
    // The forging works: the same claims signed with the real key pass.
    assert_eq!(
        v.verify(&forge(&header, &claims, &key)).await,
        Ok(good.clone())
    );

    // Tampered: another user's id in the payload, the signature left as it was.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[1] = b64(&with("sub", json!(uuid::Uuid::new_v4())));
    assert_eq!(
        v.verify(&parts.join(".")).await,
        Err(VerifyError::BadSignature)
    );
    // Expired (beyond the 30 s leeway); one just inside the leeway still passes.
    let expired = with("exp", json!(now() - 120));
    assert_eq!(
        v.verify(&forge(&header, &expired, &key)).await,
        Err(VerifyError::Expired)
    );
    let in_leeway = with("exp", json!(now() - 5));
    assert!(v.verify(&forge(&header, &in_leeway, &key)).await.is_ok());
    // Wrong audience, wrong issuer, no exp.
    let other_aud = with("aud", json!("another-service"));
    assert_eq!(
        v.verify(&forge(&header, &other_aud, &key)).await,
        Err(VerifyError::WrongAudience)
    );
    let other_iss = with("iss", json!("https://evil.example"));
    assert_eq!(
        v.verify(&forge(&header, &other_iss, &key)).await,
        Err(VerifyError::WrongIssuer)
    );
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(v.verify(&forge(&header, &no_exp, &key)).await.is_err());
    let string_exp = with("exp", json!("99999999999"));
    assert!(v.verify(&forge(&header, &string_exp, &key)).await.is_err());

    // alg none, with and without a signature.
    let none = json!({"alg": "none", "typ": "JWT", "kid": kid});
    let unsigned = format!("{}.{}.", b64(&none), b64(&claims));
    assert_eq!(v.verify(&unsigned).await, Err(VerifyError::Algorithm));
    let none_signed = forge(&none, &claims, &key);
    assert_eq!(v.verify(&none_signed).await, Err(VerifyError::Algorithm));

    // HS256 with the public key as the HMAC secret: raw bytes, the JWK's x, the PEM.
    let hs = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let public = key.verifying_key();
    let spki_pem = public
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    let x = URL_SAFE_NO_PAD.encode(public.to_bytes());
    for secret in [
        public.to_bytes().to_vec(),
        x.as_bytes().to_vec(),
        spki_pem.as_bytes().to_vec(),
    ] {
        let forged = forge_hs256(&hs, &claims, &secret);
        assert_eq!(v.verify(&forged).await, Err(VerifyError::Algorithm));
    }

    // A key the issuer does not publish (an attacker's own), named by an unknown kid or by
    // the real one.
    let mallory = SigningKey::from_bytes(&[0x66; 32]);
    let unknown = json!({"alg": "EdDSA", "kid": thumbprint(&mallory)});
    assert_eq!(
        v.verify(&forge(&unknown, &claims, &mallory)).await,
        Err(VerifyError::UnknownKey)
    );
    assert_eq!(
        v.verify(&forge(&header, &claims, &mallory)).await,
        Err(VerifyError::BadSignature)
    );
    let no_kid = json!({"alg": "EdDSA"});
    assert_eq!(
        v.verify(&forge(&no_kid, &claims, &key)).await,
        Err(VerifyError::MissingKeyId)
    );
    // Not a JWT at all.
    for junk in ["", "abc", "a.b.c", &session] {
        assert!(v.verify(junk).await.is_err(), "{junk}");
    }
    // jwt-compact refuses the tampered token too.
    let tampered = parts.join(".");
    let untrusted = UntrustedToken::new(&tampered).unwrap();
    let vk =
        <Ed25519 as jwt_compact::Algorithm>::VerifyingKey::from_slice(&public.to_bytes()).unwrap();
    assert!(Ed25519
        .validator::<Custom>(&vk)
        .validate(&untrusted)
        .is_err());
    app.cleanup().await;
}

async fn signing_keys_rotate_without_downtime(profile: Profile) {
    let key_a = SigningKey::from_bytes(&[0xA1; 32]);
    let pem_a = pem(0xA1);
    let mut app = TestApp::spawn_with(profile, &[("JWT_SIGNING_KEYS", &pem_a)]).await;
    let email = app.verified_user().await;
    let session = app.token(&email, PASSWORD).await;
    let t1 = mint(&app, &session).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(header_of(&t1)["kid"], thumbprint(&key_a));
    let v = verifier(&app);
    v.verify(&t1).await.unwrap();
    let fetches = v.fetches();

    // Step 1+2: add B (as a JWK with its own kid) in front: B signs, A still verifies. Same
    // port, so the verifier above keeps its URL and its cached key set.
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let both = json!([private_jwk(0xB2, Some("key-b")), private_jwk(0xA1, None)]).to_string();
    app.restart_with(&[
        ("JWT_SIGNING_KEYS", &both),
        ("BIND_ADDR", &format!("127.0.0.1:{port}")),
    ])
    .await;
    // The embedded profile keeps sessions in memory: log in again after each restart.
    let session = app.token(&email, PASSWORD).await;
    let t2 = mint(&app, &session).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        header_of(&t2)["kid"],
        "key-b",
        "new tokens carry the new kid"
    );
    v.verify(&t1)
        .await
        .expect("old tokens verify until they expire");
    assert_eq!(v.fetches(), fetches, "a known kid needs no fetch");
    v.verify(&t2)
        .await
        .expect("the unknown kid made the verifier refetch");
    assert_eq!(v.fetches(), fetches + 1);
    independently_verified(&app, &t1).await;
    independently_verified(&app, &t2).await;
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let thumb_a = thumbprint(&key_a);
    assert_eq!(kids, vec!["key-b", thumb_a.as_str()]);

    // Step 3: after the longest TTL, retire A: its tokens no longer verify, B's do.
    let only_b = json!({"keys": [private_jwk(0xB2, Some("key-b"))]}).to_string();
    app.restart_with(&[("JWT_SIGNING_KEYS", &only_b)]).await;
    let session = app.token(&email, PASSWORD).await;
    let fresh = verifier(&app);
    assert_eq!(fresh.verify(&t1).await, Err(VerifyError::UnknownKey));
    fresh.verify(&t2).await.unwrap();
    let t3 = mint(&app, &session).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(header_of(&t3)["kid"], "key-b");
    fresh.verify(&t3).await.unwrap();
    app.cleanup().await;
}

async fn jwks_publishes_public_keys_only_and_is_cacheable(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let res = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = signing_key(&app);
    let expected = json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
        "kid": thumbprint(&key),
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
    });
    assert_eq!(keys[0], expected, "no private part (d) is published");

    let res = app
        .client
        .get(app.url("/.well-known/secureauth-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let meta: Value = res.json().await.unwrap();
    assert_eq!(meta["issuer"], ISSUER);
    assert_eq!(meta["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(meta["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(meta["audience"], AUDIENCE);
    assert_eq!(meta["token_signing_alg_values_supported"], json!(["EdDSA"]));
    assert!(
        meta.get("authorization_endpoint").is_none()
            && meta.get("id_token_signing_alg_values_supported").is_none(),
        "no claim to be an OpenID provider: {meta}"
    );
    // The signing key never shows up in the logs.
    let d = URL_SAFE_NO_PAD.encode(key.to_bytes());
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let der_b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_bytes());
    let logs = captured_logs();
    assert!(!logs.contains(&d) && !logs.contains(&der_b64[20..]));
    // Other methods: 405 JSON.
    let res = app
        .client
        .post(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.cleanup().await;
}

crate::both_profiles!(
    token_minted_for_a_session_verifies_with_an_independent_library,
    token_from_a_revoked_session_cannot_be_minted,
    token_lifetime_is_capped_by_the_session,
    forged_tokens_are_refused_by_the_verifier,
    signing_keys_rotate_without_downtime,
    jwks_publishes_public_keys_only_and_is_cacheable,
);

//! Transport and browser hardening: HSTS, whole-origin CSRF check, the CSP of `/docs`, and
//! the permissions of the files the server writes.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The `<style>` of the logo Swagger UI's standalone preset draws (an inline SVG).
const LOGO_STYLE: &str = ".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}";

/// Threat: a first visit over plain HTTP (or a downgrade) lets a network attacker read or set
/// the session cookie. With Secure cookies the service is HTTPS-only, and says so.
async fn hsts_is_sent_when_cookies_are_secure(profile: Profile) {
    let mut app = TestApp::spawn(profile).await;
    for path in ["/health", "/no-such-route", "/docs/"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            res.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some(HSTS),
            "{path}"
        );
    }
    let res = app.signup("not-an-email", PASSWORD).await;
    assert_eq!(res.headers()["strict-transport-security"], HSTS);

    // Plain-HTTP development (COOKIE_SECURE=false): no HSTS, which would lock the host out.
    app.restart_with(&[("COOKIE_SECURE", "false")]).await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert!(!res.headers().contains_key("strict-transport-security"));
    app.cleanup().await;
}

/// Threat: cross-site request forgery from an origin that shares the host but not the scheme
/// or port (`http://` page forged by a network attacker, another service on another port).
async fn cookie_origin_must_match_scheme_host_and_port(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let email = app.verified_user().await;
    let res = app
        .post(
            "/login",
            &json!({"email": email, "password": PASSWORD, "transport": "cookie"}),
        )
        .await;
    let cookie = set_cookie(res.headers(), app.cookie_name).unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    for origin in [
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "http://127.0.0.1".to_owned(),
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}.evil.example"),
        "null".to_owned(),
    ] {
        let res = app
            .client
            .post(app.url("/logout"))
            .header("cookie", &pair)
            .header("origin", &origin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(error_code(res).await, "cross_site_request", "{origin}");
    }
    // The session survived every refused attempt; the real origin logs out.
    let res = app
        .client
        .post(app.url("/logout"))
        .header("cookie", &pair)
        .header("origin", format!("HTTP://127.0.0.1:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.cleanup().await;
}

/// The `src`/`href` values of a page.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// Threat: script injected into, or loaded by, the documentation page runs with the API's
/// origin. `/docs` gets a CSP that allows only its own files, and still renders: the page,
/// every asset it references and the document its script loads are served from this origin.
async fn docs_are_served_under_a_csp_that_allows_only_their_own_assets(profile: Profile) {
    let app = TestApp::spawn(profile).await;
    let res = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let res = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(!csp.contains("http"), "no other host: {csp}");
    let html = res.text().await.unwrap();
    // Nothing inline for the CSP to block: every script is a file, no style element or
    // attribute, no event handler attribute.
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=").count(),
        "{html}"
    );
    assert!(!html.contains("<style"), "{html}");
    assert!(!html.contains(" style="), "{html}");
    assert!(!html.contains(" onload="), "{html}");

    let assets = references(&html);
    assert!(assets.len() >= 5, "{assets:?}");
    let mut scripts = String::new();
    for asset in &assets {
        assert!(!asset.contains("//"), "same origin only: {asset}");
        let url = app.url(&format!("/docs/{}", asset.trim_start_matches("./")));
        let res = app.client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        assert_eq!(
            res.headers()["content-security-policy"],
            csp.as_str(),
            "{url}"
        );
        let body = res.bytes().await.unwrap();
        assert!(!body.is_empty(), "{url}");
        if asset.ends_with(".css") {
            let css = String::from_utf8_lossy(&body);
            for (i, _) in css.match_indices("url(") {
                let target = css[i + 4..].trim_start_matches(['"', '\'']);
                assert!(
                    target.starts_with("data:") || !target.contains("//"),
                    "{asset} loads {}",
                    &target[..target.len().min(40)]
                );
            }
        }
        if asset.ends_with("swagger-initializer.js") {
            scripts = String::from_utf8_lossy(&body).into_owned();
        }
        if asset.ends_with("swagger-ui-standalone-preset.js") {
            // The one inline style the scripts insert (the SVG logo's), allowed by its hash
            // and by nothing broader: if Swagger UI changes it, this fails instead of the logo.
            let bundle = String::from_utf8_lossy(&body);
            assert!(bundle.contains(LOGO_STYLE), "the logo's style changed");
            use base64::Engine as _;
            use sha2::Digest as _;
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(LOGO_STYLE.as_bytes()));
            assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
        }
    }
    // The initializer points at this origin's document, without the online validator.
    assert!(scripts.contains("\"/openapi.json\""), "{scripts}");
    assert!(scripts.contains("\"validatorUrl\": \"none\""), "{scripts}");
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The API keeps its own, stricter policy.
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(
        res.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    app.cleanup().await;
}

/// Threat: another local user reads password hashes from the SQLite file or one-time codes
/// from the `.eml` files. The server creates them 0600, in folders created 0700.
#[cfg(unix)]
#[tokio::test]
async fn files_the_server_writes_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let app = TestApp::spawn(Profile::Embedded).await;
    let email = app.verified_user().await;
    app.token(&email, PASSWORD).await;
    let root = app.temp_dir().unwrap().to_owned();
    let data = root.join("data");
    let mail = root.join("mail");
    assert_eq!(mode(&data), 0o700, "data folder");
    assert_eq!(mode(&mail), 0o700, "mail folder");
    let mut files = 0;
    for dir in [&data, &mail] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    assert!(files >= 2, "the database and at least one mail");
    app.cleanup().await;
}

crate::both_profiles!(
    hsts_is_sent_when_cookies_are_secure,
    cookie_origin_must_match_scheme_host_and_port,
    docs_are_served_under_a_csp_that_allows_only_their_own_assets,
);

//! The adapters against a local range server (axum on loopback) and a real file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_breached::{HashFile, HashFileError, RangeApi};
use auth_core::{BreachCheckError, BreachedPasswords, PasswordSha1};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;

/// What the fake range server saw: the path and whether padding was asked for.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A range server on loopback that answers like the Pwned Passwords API for the passwords in
/// `listed`, padded with count-0 lines; `mode` makes it fail or stall instead.
async fn range_server(listed: &[&str], mode: Mode) -> (String, Seen) {
    let listed: Vec<String> = listed
        .iter()
        .map(|p| PasswordSha1::of_bytes(p.as_bytes()).to_hex())
        .collect();
    let seen = Seen::default();
    let state = (Arc::new(listed), seen.clone(), mode);
    let app = Router::new()
        .route("/range/{prefix}", get(answer))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/range/"), seen)
}

#[derive(Clone, Copy)]
enum Mode {
    Answer,
    Fail,
    Stall,
}

async fn answer(
    State((listed, seen, mode)): State<(Arc<Vec<String>>, Seen, Mode)>,
    Path(prefix): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let padded = headers.get("add-padding").is_some_and(|v| v == "true");
    seen.lock().unwrap().push((prefix.clone(), padded));
    match mode {
        Mode::Fail => return (StatusCode::SERVICE_UNAVAILABLE, String::new()),
        Mode::Stall => tokio::time::sleep(Duration::from_secs(10)).await,
        Mode::Answer => {}
    }
    let mut lines: Vec<String> = listed
        .iter()
        .filter(|h| h.starts_with(&prefix))
        .map(|h| format!("{}:42", &h[5..]))
        .collect();
    // Padding, as the real service sends it: made-up suffixes with a count of 0.
    lines.push("0000000000000000000000000000000000A:0".to_owned());
    (StatusCode::OK, lines.join("\r\n"))
}

fn digest(password: &str) -> PasswordSha1 {
    PasswordSha1::of_bytes(password.as_bytes())
}

#[tokio::test]
async fn a_breached_password_is_found_and_only_its_range_is_asked_for() {
    let (base, seen) = range_server(&["hunter2hunter2", "password123456"], Mode::Answer).await;
    let api = RangeApi::new(&base, Duration::from_secs(2)).unwrap();

    assert!(api.is_breached(&digest("hunter2hunter2")).await.unwrap());
    assert!(!api
        .is_breached(&digest("a passphrase nobody has"))
        .await
        .unwrap());

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for ((prefix, padded), password) in seen
        .iter()
        .zip(["hunter2hunter2", "a passphrase nobody has"])
    {
        assert_eq!(
            prefix,
            &digest(password).range_prefix(),
            "five hex digits only"
        );
        assert!(padded, "padding is asked for");
    }
}

#[tokio::test]
async fn a_failing_range_service_is_unavailable() {
    let (base, _) = range_server(&[], Mode::Fail).await;
    let api = RangeApi::new(&base, Duration::from_secs(2)).unwrap();
    let result = api.is_breached(&digest("x")).await;
    assert!(
        matches!(result, Err(BreachCheckError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_stalled_range_service_is_given_up_on_after_the_timeout() {
    let (base, _) = range_server(&[], Mode::Stall).await;
    let api = RangeApi::new(&base, Duration::from_millis(300)).unwrap();
    let started = std::time::Instant::now();
    let result = api.is_breached(&digest("x")).await;
    assert!(
        matches!(result, Err(BreachCheckError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_range_service_that_is_down_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = RangeApi::new(
        &format!("http://127.0.0.1:{port}/range/"),
        Duration::from_secs(2),
    )
    .unwrap();
    let result = api.is_breached(&digest("x")).await;
    assert!(
        matches!(result, Err(BreachCheckError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_hash_file_lists_what_it_holds_in_any_case_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pwned.txt");
    let text = format!(
        "# breached passwords\r\n{}:3\r\n\r\n{}\n",
        digest("hunter2hunter2").to_hex(),
        digest("password123456").to_hex().to_lowercase()
    );
    std::fs::write(&path, text).unwrap();
    let list = HashFile::load(&path).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.is_breached(&digest("hunter2hunter2")).await.unwrap());
    assert!(list.is_breached(&digest("password123456")).await.unwrap());
    assert!(!list
        .is_breached(&digest("a passphrase nobody has"))
        .await
        .unwrap());
}

#[tokio::test]
async fn a_malformed_or_missing_hash_file_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.txt");
    std::fs::write(&path, format!("{}\nnot a hash\n", digest("x").to_hex())).unwrap();
    assert!(matches!(
        HashFile::load(&path).await,
        Err(HashFileError::BadLine { line: 2, .. })
    ));
    assert!(matches!(
        HashFile::load(&dir.path().join("missing.txt")).await,
        Err(HashFileError::Read { .. })
    ));
}

//! Traces over OTLP/HTTP (feature `otlp`): the real binary, pointed at a local receiver with
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, exports the span of a request it served as protobuf to
//! `/v1/traces`, under the configured service name.

#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One request the receiver got: path, content type, body.
type Received = (String, String, Vec<u8>);

/// An OTLP/HTTP receiver on a free loopback port that answers 200 to every request and
/// hands each one to the test.
fn receiver() -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || serve(stream, &tx));
        }
    });
    (url, rx)
}

fn serve(stream: TcpStream, tx: &mpsc::Sender<Received>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => value.trim().clone_into(&mut content_type),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let _ = tx.send((path, content_type, body));
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    }
}

/// The server on a free port with `extra` settings, and its base URL once `/health` answers.
fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> (Child, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_auth-http"))
        .current_dir(dir)
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("auth.db").display()),
        )
        .env("MAIL_DIR", dir.join("mail"))
        .env("JWT_KEY_FILE", dir.join("jwt.pem"))
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("RUST_LOG", "info")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&base, "/health").is_none() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, base)
}

/// The status line of `GET path`, if the server answered.
fn get(base: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_owned)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_served_request_is_exported_as_an_otlp_span_under_the_service_name() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, received) = receiver();
    let (mut server, base) = start(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "secureauth-otlp-test"),
        ],
    );
    let marker = "/openapi.json";
    assert!(get(&base, marker).unwrap().contains("200"));

    // The batch exporter sends within its interval (5 s); wait for the span of our request.
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((path, content_type, body)) = received.recv_timeout(left) else {
            break None;
        };
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
        if contains(&body, marker.as_bytes()) {
            break Some(body);
        }
    };
    server.kill().unwrap();
    let _ = server.wait();
    let body = found.expect("no exported span named the request within 30 s");
    assert!(
        contains(&body, b"secureauth-otlp-test"),
        "the spans carry service.name"
    );
}

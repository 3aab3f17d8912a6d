//! Every answer the API tests get is checked against the OpenAPI document the server publishes
//! (`auth_http::openapi::ApiDoc`, read here without the network): its status must be declared
//! for the operation (the method and the path template the request's path is an instance of),
//! and the headers a client acts on (`Retry-After`, `WWW-Authenticate`, `Set-Cookie`) must be
//! declared for that status when the answer carries them. On a path of the document, a method
//! the document does not list must be answered 405. Paths outside the document (the UI, `/docs`,
//! `/openapi.json`, unknown paths) are not checked.
//!
//! Requests go through [`ApiClient`], a `reqwest::Client` that records what the document does
//! not declare; answers read from raw sockets are fed to [`Conformance::observe_raw`].
//! `TestApp::cleanup` (or dropping the `TestApp`) fails the test with the list.

use std::fmt::Display;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Body, IntoUrl, Method, Response};
use serde_json::Value;
use utoipa::OpenApi as _;

/// The headers whose presence on an answer the document must declare.
const CHECKED_HEADERS: [&str; 3] = ["retry-after", "www-authenticate", "set-cookie"];

/// The document, as clients read it.
fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::to_value(auth_http::openapi::ApiDoc::openapi())
            .expect("the OpenAPI document serialises")
    })
}

/// The path template of the document that `path` is an instance of; a template with more
/// literal segments wins (`/login/code` over a `/login/{x}`).
fn template_of<'d>(doc: &'d Value, path: &str) -> Option<&'d str> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

/// The response `op` declares for `status` (exact, then `4XX`-style, then `default`), with a
/// `$ref` to `components.responses` resolved.
fn declared<'d>(doc: &'d Value, op: &'d Value, status: u16) -> Option<&'d Value> {
    let responses = &op["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(format!("{}XX", status / 100)))
        .or_else(|| responses.get("default"))?;
    match response.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/responses/")?;
            doc["components"]["responses"].get(name)
        }
        None => Some(response),
    }
}

/// What the document fails to declare about one answer (nothing for a path outside it).
fn undeclared(method: &Method, path: &str, status: u16, headers: &HeaderMap) -> Vec<String> {
    let doc = document();
    let Some(template) = template_of(doc, path) else {
        return Vec::new();
    };
    let operation = format!("{method} {template}");
    let Some(op) = doc["paths"][template].get(method.as_str().to_ascii_lowercase()) else {
        return if status == 405 {
            Vec::new()
        } else {
            vec![format!(
                "{operation} (no such operation, so only 405 is expected) answered {status}"
            )]
        };
    };
    let Some(response) = declared(doc, op, status) else {
        return vec![format!("{operation}: status {status} is not declared")];
    };
    let declared_headers = response["headers"].as_object();
    CHECKED_HEADERS
        .iter()
        .filter(|h| headers.contains_key(**h))
        .filter(|h| !declared_headers.is_some_and(|d| d.keys().any(|k| k.eq_ignore_ascii_case(h))))
        .map(|h| format!("{operation}: {status} carries `{h}`, which is not declared"))
        .collect()
}

/// The undeclared answers one `TestApp`'s clients have seen.
#[derive(Debug, Clone, Default)]
pub struct Conformance {
    found: Arc<Mutex<Vec<String>>>,
}

impl Conformance {
    /// Checks one answer.
    pub fn observe(&self, method: &Method, path: &str, status: u16, headers: &HeaderMap) {
        let problems = undeclared(method, path, status, headers);
        if problems.is_empty() {
            return;
        }
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        for p in problems {
            if !found.contains(&p) {
                found.push(p);
            }
        }
    }

    /// Checks an answer read from a raw socket (`HTTP/1.1 408 ...` and its header lines); a
    /// buffer that does not start with a status line is ignored.
    pub fn observe_raw(&self, method: &Method, path: &str, answer: &[u8]) {
        let text = String::from_utf8_lossy(answer);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|l| l.get(..3))
            .and_then(|s| s.parse::<u16>().ok());
        let Some(status) = status else {
            return;
        };
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                ) {
                    headers.append(name, value);
                }
            }
        }
        self.observe(method, path, status, &headers);
    }

    /// Panics with every undeclared answer seen so far (and forgets them, so a `TestApp`
    /// reports once).
    pub fn assert_declared(&self) {
        let found = std::mem::take(&mut *self.found.lock().unwrap_or_else(PoisonError::into_inner));
        assert!(
            found.is_empty(),
            "the OpenAPI document does not declare answers the server gave (declare them in \
             crates/auth-http/src/routes.rs or openapi.rs):\n  {}",
            found.join("\n  ")
        );
    }
}

/// A `reqwest::Client` whose every answer is checked against the document.
#[derive(Debug, Clone)]
pub struct ApiClient {
    inner: reqwest::Client,
    conformance: Conformance,
}

impl ApiClient {
    pub fn new(inner: reqwest::Client, conformance: Conformance) -> Self {
        Self { inner, conformance }
    }

    pub fn request(&self, method: Method, url: impl IntoUrl) -> ApiRequest {
        ApiRequest {
            inner: self.inner.request(method, url),
            conformance: self.conformance.clone(),
        }
    }

    pub fn get(&self, url: impl IntoUrl) -> ApiRequest {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: impl IntoUrl) -> ApiRequest {
        self.request(Method::POST, url)
    }

    pub fn delete(&self, url: impl IntoUrl) -> ApiRequest {
        self.request(Method::DELETE, url)
    }
}

/// A request of an [`ApiClient`]: the builder methods the tests use, and [`ApiRequest::send`].
#[derive(Debug)]
pub struct ApiRequest {
    inner: reqwest::RequestBuilder,
    conformance: Conformance,
}

impl ApiRequest {
    fn map(self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        Self {
            inner: f(self.inner),
            conformance: self.conformance,
        }
    }

    pub fn header(self, name: &str, value: impl AsRef<str>) -> Self {
        self.map(|r| r.header(name, value.as_ref()))
    }

    pub fn bearer_auth(self, token: impl Display) -> Self {
        self.map(|r| r.bearer_auth(token))
    }

    pub fn json(self, body: &Value) -> Self {
        self.map(|r| r.json(body))
    }

    pub fn body(self, body: impl Into<Body>) -> Self {
        self.map(|r| r.body(body))
    }

    /// Sends the request and checks the answer's status and headers against the document.
    pub async fn send(self) -> reqwest::Result<Response> {
        let (client, request) = self.inner.build_split();
        let request = request?;
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let res = client.execute(request).await?;
        self.conformance
            .observe(&method, &path, res.status().as_u16(), res.headers());
        Ok(res)
    }
}

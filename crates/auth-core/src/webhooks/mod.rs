//! Webhooks: security events posted to the endpoints an administrator registered, signed
//! the Standard Webhooks way, through a durable queue in the user database.
//!
//! - An endpoint has a URL ([`WebhookUrl`]), the event kinds it wants ([`EventKinds`]) and a
//!   signing secret the server generates ([`WebhookSecret`], `whsec_<base64>`), shown once and
//!   stored sealed ([`WebhookSeal`]).
//! - [`WebhookFanout`] is a [`SecurityEvents`] in front of the event store: once an event is
//!   written it queues one delivery per endpoint that wants its kind ([`WebhookStore::enqueue`]).
//!   The body ([`payload`]) is fixed then, and holds no secret.
//! - A [`WebhookCourier`] on every instance claims due deliveries under a lease and posts them
//!   with a [`WebhookSender`], signed at each attempt with that attempt's time ([`sign`]);
//!   2xx is delivered, 408, 429, 5xx and no answer are retried with the mail outbox's
//!   exponential backoff and jitter ([`CourierPolicy`]), any other status is dead, and so is
//!   a delivery out of attempts or past its age.

mod courier;
mod fanout;
#[cfg(test)]
mod tests;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::SecondsFormat;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use uuid::Uuid;

pub use courier::{WebhookCourier, WebhookReport};
pub use fanout::WebhookFanout;

use crate::ports::{RandomSource, SecurityEvent, SecurityEventKind};
use crate::seal::Sealer;

#[cfg(doc)]
use crate::outbox::CourierPolicy;
#[cfg(doc)]
use crate::ports::{SecurityEvents, WebhookSender, WebhookStore};

/// Label of the key that seals webhook secrets (unrelated to every other derived key).
pub const WEBHOOK_SEAL_LABEL: &[u8] = b"secureauth webhook secret v1";

/// Longest accepted endpoint URL.
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;

/// Bytes of a generated signing secret.
pub const WEBHOOK_SECRET_BYTES: usize = 32;

/// The prefix of a secret's text form (Standard Webhooks).
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// An endpoint's signing secret: random bytes, shown to the operator once as
/// `whsec_<base64>`; the HMAC key is the bytes, not the text.
pub struct WebhookSecret(SecretBox<[u8]>);

impl WebhookSecret {
    /// A fresh secret from `random`.
    pub fn generate(random: &dyn RandomSource) -> Self {
        let mut bytes = vec![0u8; WEBHOOK_SECRET_BYTES];
        random.fill_bytes(&mut bytes);
        Self(SecretBox::new(bytes.into_boxed_slice()))
    }

    /// The secret from its bytes (opened from the store).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(bytes.into_boxed_slice()))
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// `whsec_` and the base64 of the bytes: what the operator configures the receiver with.
    pub fn encode(&self) -> SecretString {
        SecretString::from(format!(
            "{WEBHOOK_SECRET_PREFIX}{}",
            B64.encode(self.expose())
        ))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Seals webhook secrets at rest, each bound to its endpoint's id (a sealed secret copied to
/// another endpoint's row does not open).
#[derive(Clone, Debug)]
pub struct WebhookSeal(Sealer);

impl WebhookSeal {
    /// The seal whose key is derived from the service secret `ikm` under
    /// [`WEBHOOK_SEAL_LABEL`].
    pub fn derive(ikm: &[u8]) -> Self {
        Self(Sealer::derive(ikm, WEBHOOK_SEAL_LABEL))
    }

    /// `secret`, sealed for endpoint `endpoint`.
    pub fn seal(&self, endpoint: Uuid, secret: &WebhookSecret) -> Vec<u8> {
        self.0.seal(secret.expose(), endpoint.as_bytes())
    }

    /// Opens what [`seal`](Self::seal) sealed for `endpoint`; `None` when it does not open.
    pub fn open(&self, endpoint: Uuid, sealed: &[u8]) -> Option<WebhookSecret> {
        self.0
            .open(sealed, endpoint.as_bytes())
            .map(WebhookSecret::from_bytes)
    }
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    /// Not an absolute URL.
    #[error("not an absolute URL")]
    Malformed,
    /// Longer than [`MAX_WEBHOOK_URL_LEN`].
    #[error("longer than {MAX_WEBHOOK_URL_LEN} characters")]
    TooLong,
    /// Not `http` or `https`.
    #[error("only http and https URLs are accepted")]
    Scheme,
    /// `http` where `https` is required.
    #[error("https is required")]
    HttpsRequired,
    /// It holds a user name or password (which would be stored and logged in the clear).
    #[error("credentials in the URL are not accepted")]
    Credentials,
    /// It has a fragment (never sent; a sign of a mistake).
    #[error("a fragment is not accepted")]
    Fragment,
}

/// An endpoint URL: absolute, `http` or `https` (only `https` unless plain HTTP is allowed),
/// with a host, no credentials and no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Parses `raw`; `allow_http` admits plain `http` (development, or a receiver on a
    /// private network the operator vouches for).
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, WebhookUrlError> {
        if raw.len() > MAX_WEBHOOK_URL_LEN {
            return Err(WebhookUrlError::TooLong);
        }
        let url = url::Url::parse(raw.trim()).map_err(|_| WebhookUrlError::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => return Err(WebhookUrlError::HttpsRequired),
            _ => return Err(WebhookUrlError::Scheme),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(WebhookUrlError::Malformed);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookUrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(WebhookUrlError::Fragment);
        }
        Ok(Self(url.to_string()))
    }

    /// The URL, normalised.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a list of event kinds is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventKindsError {
    /// The list is empty.
    #[error("name at least one event kind")]
    Empty,
    /// A name is not an event kind.
    #[error("unknown event kind {0:?}")]
    Unknown(String),
}

/// The event kinds an endpoint wants: at least one, each a
/// [`SecurityEventKind::names`] name, without repeats (in the order given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKinds(Vec<String>);

impl EventKinds {
    /// Parses `names`.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, EventKindsError> {
        let mut kinds: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref();
            let known = SecurityEventKind::names()
                .find(|k| *k == name)
                .ok_or_else(|| EventKindsError::Unknown(name.chars().take(64).collect()))?;
            if !kinds.iter().any(|k| k == known) {
                kinds.push(known.to_owned());
            }
        }
        if kinds.is_empty() {
            return Err(EventKindsError::Empty);
        }
        Ok(Self(kinds))
    }

    /// The names.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// The Standard Webhooks signature of one attempt: `v1,` and the base64 HMAC-SHA256, under
/// the secret's bytes, of `{id}.{timestamp}.{body}`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The JSON body delivered for `event`: `{type, timestamp, data: {event_id, user_id, kind,
/// reason?, at, ip?, request_id?}}`. What the account's owner sees of the event in their
/// history, less the user agent: never a password, code, token or hash, and the client's
/// address only as a network.
pub fn payload(event: &SecurityEvent) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        r#type: &'static str,
        timestamp: &'a str,
        data: Data<'a>,
    }
    #[derive(serde::Serialize)]
    struct Data<'a> {
        event_id: String,
        user_id: String,
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
        at: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        ip: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<&'a str>,
    }
    let at = event.at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let body = Body {
        r#type: event.kind.as_str(),
        timestamp: &at,
        data: Data {
            event_id: event.id.to_string(),
            user_id: event.user_id.as_uuid().to_string(),
            kind: event.kind.as_str(),
            reason: event.kind.reason().map(|r| r.as_str()),
            at: &at,
            ip: event.ip.map(|ip| ip.to_string()),
            request_id: event.request_id.as_deref(),
        },
    };
    // Strings and optional strings only: serialising cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

/// What an answer's status means for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 408, 429, 5xx: try again later.
    Retry,
    /// Anything else (a redirect, which is not followed, or a refusal): given up on.
    Dead,
}

/// The [`Verdict`] of an answer with `status`.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Dead,
    }
}

//! # auth-jwt
//!
//! For the services behind SecureAuth: check a caller's access token without calling back.
//!
//! SecureAuth mints short-lived EdDSA (Ed25519) access tokens for a live session (`POST
//! /token`) and publishes the keys that verify them at `/.well-known/jwks.json`.
//! [`JwksVerifier`] fetches that key set and caches it, refetching when a token names a key
//! it does not know (at most once per [`VerifierConfig::min_refresh_interval`], so a flood of
//! made-up `kid`s costs SecureAuth nothing) or when its copy is older than
//! [`VerifierConfig::cache_for`]; it checks the signature (EdDSA only: `none`, HMAC and every
//! other algorithm are refused before any key is looked at), `iss`, `aud` and `exp` (with
//! [`VerifierConfig::leeway`]), and hands back typed [`AccessClaims`].
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), auth_jwt::VerifyError> {
//! use auth_jwt::{JwksVerifier, VerifierConfig};
//!
//! let verifier = JwksVerifier::new(VerifierConfig::new("https://auth.example.com", "orders"))?;
//! let claims = verifier.verify(token).await?;
//! println!("user {} (session {})", claims.sub, claims.sid);
//! # Ok(()) }
//! ```
//!
//! `examples/actix_service.rs` and `examples/axum_service.rs` wrap it in an extractor.
//!
//! A token stays valid until its `exp` even when its session is revoked earlier (at most
//! SecureAuth's `JWT_TTL`, 5 minutes by default): what must see a logout at once should ask
//! SecureAuth (`GET /me`) instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

/// Longest token accepted (a SecureAuth token is about 400 bytes).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys kept from one JWKS document.
pub const MAX_KEYS: usize = 32;

/// What a SecureAuth access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The issuer (SecureAuth's base URL).
    pub iss: String,
    /// The user id.
    pub sub: uuid::Uuid,
    /// The id of the session the token was minted for.
    pub sid: uuid::Uuid,
    /// The audience.
    pub aud: String,
    /// Minted at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Unique id of the token.
    pub jti: String,
    /// Roles, where the issuer has them (SecureAuth has none yet: always empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Where the keys are and what tokens must say.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The `iss` every token must carry (SecureAuth's `JWT_ISSUER`).
    pub issuer: String,
    /// The `aud` every token must carry (SecureAuth's `JWT_AUDIENCE`).
    pub audience: String,
    /// Where the key set is fetched (default `<issuer>/.well-known/jwks.json`).
    pub jwks_url: String,
    /// Clock skew tolerated on `exp` (default 30 s).
    pub leeway: Duration,
    /// How long a fetched key set is used before it is fetched again (default 5 minutes).
    pub cache_for: Duration,
    /// The least time between two fetches caused by unknown `kid`s (default 10 s).
    pub min_refresh_interval: Duration,
    /// Timeout of one fetch (default 5 s).
    pub timeout: Duration,
}

impl VerifierConfig {
    /// Defaults for the SecureAuth at `issuer` and tokens for `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        Self {
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            cache_for: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }

    /// Fetch the keys from `url` instead (say, an internal address).
    #[must_use]
    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = url.into();
        self
    }
}

/// Why a token was refused (or could not be checked).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a JWT, or too long.
    #[error("the token is malformed")]
    Malformed,
    /// Not signed with EdDSA (`none`, HMAC, RSA, ...).
    #[error("the token is not signed with EdDSA")]
    Algorithm,
    /// The header names no key.
    #[error("the token names no key (kid)")]
    MissingKeyId,
    /// The key it names is not in the issuer's key set, even after fetching it again.
    #[error("the token names a key the issuer does not publish")]
    UnknownKey,
    /// The signature does not match.
    #[error("the signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `iss` is not the configured issuer.
    #[error("the token is from another issuer")]
    WrongIssuer,
    /// `aud` is not the configured audience.
    #[error("the token is for another audience")]
    WrongAudience,
    /// A claim is missing or has the wrong type.
    #[error("the token's claims are invalid")]
    InvalidClaims,
    /// The key set could not be fetched (and no cached copy knows the key).
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// The configuration cannot work (say, an unparsable URL).
    #[error("verifier configuration: {0}")]
    Config(String),
}

impl VerifyError {
    /// Whether the fault is on the verifier's side (keys unavailable): answer 503, not 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable(_) | Self::Config(_))
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Verifies SecureAuth access tokens against its published keys. Cheap to share: put it in an
/// `Arc` (or your framework's shared state) and call [`JwksVerifier::verify`] per request.
pub struct JwksVerifier {
    config: VerifierConfig,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    refreshing: Mutex<()>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JwksVerifier {
    /// A verifier with an empty cache (the keys are fetched on first use).
    pub fn new(config: VerifierConfig) -> Result<Self, VerifyError> {
        reqwest::Url::parse(&config.jwks_url)
            .map_err(|e| VerifyError::Config(format!("jwks_url: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| VerifyError::Config(e.to_string()))?;
        Ok(Self {
            config,
            http,
            cache: RwLock::new(KeyCache::default()),
            refreshing: Mutex::new(()),
            fetches: AtomicU64::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// How many times the key set has been fetched (successfully or not).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Checks `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed);
        }
        // Before any key is looked at: only EdDSA, whatever key the token names (`none`,
        // which the JWT library does not even parse, included).
        if header_alg(token).ok_or(VerifyError::Malformed)? != "EdDSA" {
            return Err(VerifyError::Algorithm);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Algorithm);
        }
        let kid = header.kid.ok_or(VerifyError::MissingKeyId)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = self.config.leeway.as_secs();
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => VerifyError::BadSignature,
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
                ErrorKind::InvalidAudience => VerifyError::WrongAudience,
                ErrorKind::InvalidAlgorithm => VerifyError::Algorithm,
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                    VerifyError::Malformed
                }
                _ => VerifyError::InvalidClaims,
            })
    }

    /// The key `kid`, from the cache when it is fresh and knows it; otherwise after fetching
    /// the key set again, at most once per `min_refresh_interval` for unknown keys.
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, VerifyError> {
        if let Some(key) = self.cached(kid, true).await {
            return Ok(key);
        }
        let _one_fetch_at_a_time = self.refreshing.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(key) = self.cached(kid, true).await {
            return Ok(key);
        }
        let (ever_fetched, recently_tried) = {
            let cache = self.cache.read().await;
            let recently_tried = cache
                .last_attempt
                .is_some_and(|at| at.elapsed() < self.config.min_refresh_interval);
            (cache.fetched_at.is_some(), recently_tried)
        };
        if recently_tried {
            // Bounded: within the interval an unknown kid is refused without a fetch (and a
            // stale copy is used as it is).
            return match self.cached(kid, false).await {
                Some(key) => Ok(key),
                None if ever_fetched => Err(VerifyError::UnknownKey),
                None => Err(VerifyError::KeysUnavailable(
                    "the last fetch of the key set failed moments ago".into(),
                )),
            };
        }
        match self.fetch().await {
            Ok(keys) => {
                let mut cache = self.cache.write().await;
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
                cache.last_attempt = cache.fetched_at;
            }
            Err(e) => {
                self.cache.write().await.last_attempt = Some(Instant::now());
                tracing::warn!(error = %e, url = %self.config.jwks_url, "fetching the JWKS failed");
                // A stale copy that knows the key beats refusing every request.
                return self.cached(kid, false).await.ok_or(e);
            }
        }
        self.cached(kid, false).await.ok_or(VerifyError::UnknownKey)
    }

    async fn cached(&self, kid: &str, fresh_only: bool) -> Option<Arc<DecodingKey>> {
        let cache = self.cache.read().await;
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.config.cache_for);
        if fresh_only && !fresh {
            return None;
        }
        cache.keys.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, VerifyError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let unavailable = |m: String| VerifyError::KeysUnavailable(m);
        let mut res = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(format!("status {}", res.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| unavailable(e.to_string()))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(unavailable(format!(
                    "the key set is larger than {MAX_JWKS_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body).map_err(unavailable)
    }
}

/// The `alg` of the token's header, read without trusting anything else in it.
fn header_alg(token: &str) -> Option<String> {
    let head = token.split('.').next()?;
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).ok()?).ok()?;
    json.get("alg")?.as_str().map(str::to_owned)
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

/// The Ed25519 signing keys of a JWK set, by `kid`; other keys are skipped.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    let jwks: Jwks =
        serde_json::from_slice(body).map_err(|e| format!("the key set is not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in jwks.keys.iter().take(MAX_KEYS) {
        let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        let usable = field("kty") == Some("OKP")
            && field("crv") == Some("Ed25519")
            && field("alg").is_none_or(|a| a == "EdDSA")
            && field("use").is_none_or(|u| u == "sig");
        let (Some(kid), Some(x), true) = (field("kid"), field("x"), usable) else {
            continue;
        };
        let Some(x) = URL_SAFE_NO_PAD.decode(x).ok().filter(|x| x.len() == 32) else {
            continue;
        };
        keys.insert(kid.to_owned(), Arc::new(DecodingKey::from_ed_der(&x)));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_ed25519_signing_keys_of_the_right_size_are_kept() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
        let body = format!(
            r#"{{"keys":[
              {{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"good","alg":"EdDSA","use":"sig"}},
              {{"kty":"OKP","crv":"Ed25519","x":"{short}","kid":"short"}},
              {{"kty":"OKP","crv":"X25519","x":"{x}","kid":"ecdh"}},
              {{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}},
              {{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"enc","use":"enc"}},
              {{"kty":"OKP","crv":"Ed25519","x":"{x}"}}
            ]}}"#
        );
        let keys = parse_jwks(body.as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["good"]);
        assert!(parse_jwks(b"[]").is_err());
    }
}

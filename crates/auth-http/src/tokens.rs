//! Service tokens: short-lived EdDSA (Ed25519) access JWTs minted for a live session
//! (`POST /token`), and the public keys other services verify them with
//! (`GET /.well-known/jwks.json`).
//!
//! The rules (whose token, which session, how long) are the core's
//! ([`auth_core::AccessGrant`]); this module only signs, with `jsonwebtoken`. Keys come from
//! `JWT_SIGNING_KEYS` (PKCS#8 PEM blocks or private JWKs; the first signs, every one is
//! published), or in development from a key generated once into `JWT_KEY_FILE` (0600).
//! Each key's `kid` is its RFC 7638 thumbprint unless a JWK names its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_core::AccessGrant;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use sha2::Digest as _;

use crate::settings::{AppEnv, ConfigError, Env};

/// Default of `JWT_TTL`.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Default of `JWT_AUDIENCE`.
pub const DEFAULT_AUDIENCE: &str = "secureauth";
/// Default of `JWT_KEY_FILE` (development only).
pub const DEFAULT_KEY_FILE: &str = "data/jwt-signing-key.pem";
/// `Cache-Control` of the JWKS and the metadata document: verifiers refetch within five
/// minutes, and at once when a token names a key they do not know.
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";
/// The most keys `JWT_SIGNING_KEYS` may hold (one signing, the rest being rotated in or out).
pub const MAX_KEYS: usize = 8;

/// `JWT_*`: service tokens.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Whether `POST /token` and the `/.well-known` documents exist: on in development, and
    /// in production when `JWT_SIGNING_KEYS` is set.
    pub enabled: bool,
    /// `JWT_SIGNING_KEYS`: the keys, inline (PEM or JWK) or as the path of a file holding
    /// them; `None`: the development key file.
    pub signing_keys: Option<SecretString>,
    /// `JWT_KEY_FILE`: where development keeps its generated key (default
    /// [`DEFAULT_KEY_FILE`]).
    pub key_file: PathBuf,
    /// `JWT_ISSUER`: the `iss` claim, the base URL this service is reached at (required in
    /// production with keys; development default `http://<BIND_ADDR>`).
    pub issuer: String,
    /// `JWT_AUDIENCE`: the `aud` claim (default [`DEFAULT_AUDIENCE`]).
    pub audience: String,
    /// `JWT_TTL`: access-token lifetime, 1s to 1h (default 5 minutes), never past the session.
    pub ttl: Duration,
}

impl TokenSettings {
    /// Reads `JWT_*`.
    pub fn read(
        env: &Env<'_>,
        app_env: AppEnv,
        bind_addr: std::net::SocketAddr,
    ) -> Result<Self, ConfigError> {
        let err = |var: &'static str, message: String| ConfigError { var, message };
        let dev = app_env == AppEnv::Development;
        let signing_keys = env
            .first(&["JWT_SIGNING_KEYS"])
            .map(|(_, v)| SecretString::from(v));
        let enabled = dev || signing_keys.is_some();
        let issuer = match env.first(&["JWT_ISSUER"]) {
            Some((_, v)) => v.trim_end_matches('/').to_owned(),
            None if !dev && enabled => {
                return Err(err(
                    "JWT_ISSUER",
                    "required in production with JWT_SIGNING_KEYS: the https:// base URL \
                     services reach this one at (the `iss` of every token)"
                        .into(),
                ))
            }
            None => format!("http://{bind_addr}"),
        };
        let is_url = |scheme: &str| {
            issuer
                .strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(['?', '#', ' ']))
        };
        // Unchecked while tokens are off: a development default carried into production
        // does not stop a server that signs nothing.
        if enabled && !(is_url("https://") || dev && is_url("http://")) {
            return Err(err(
                "JWT_ISSUER",
                format!(
                    "{issuer:?} is not an {} URL without query or fragment",
                    if dev { "http(s)://" } else { "https://" }
                ),
            ));
        }
        let audience = env
            .first(&["JWT_AUDIENCE"])
            .map(|(_, v)| v)
            .unwrap_or_else(|| DEFAULT_AUDIENCE.into());
        let ttl = match env.first(&["JWT_TTL"]) {
            None => DEFAULT_TOKEN_TTL,
            Some((var, raw)) => {
                let ttl = match raw.parse::<u64>() {
                    Ok(secs) => Duration::from_secs(secs),
                    Err(_) => humantime::parse_duration(&raw).map_err(|e| {
                        err(var, format!("{raw:?} is not a duration ({e}); e.g. 5m"))
                    })?,
                };
                if ttl < Duration::from_secs(1) || ttl > auth_core::MAX_ACCESS_TOKEN_TTL {
                    return Err(err(
                        var,
                        "must be between 1s and 1h: a token stays valid that long after its \
                         session is revoked"
                            .into(),
                    ));
                }
                ttl
            }
        };
        let key_file = env
            .first(&["JWT_KEY_FILE"])
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_FILE));
        let settings = Self {
            enabled,
            signing_keys,
            key_file,
            issuer,
            audience,
            ttl,
        };
        // Inline keys are checked now, so a typo stops the start-up naming the variable.
        if let Some(raw) = &settings.signing_keys {
            let raw = raw.expose_secret();
            if looks_inline(raw) {
                parse_keys(raw).map_err(|m| err("JWT_SIGNING_KEYS", m))?;
            }
        }
        Ok(settings)
    }
}

/// One Ed25519 key: its id, the private key in PKCS#8 DER for the signer, its public half.
struct Key {
    kid: String,
    pkcs8: zeroizing::Bytes,
    public: [u8; 32],
}

mod zeroizing {
    /// Private key bytes, wiped when dropped and never printed.
    pub struct Bytes(pub Vec<u8>);

    impl Drop for Bytes {
        fn drop(&mut self) {
            self.0.fill(0);
            std::hint::black_box(&self.0);
        }
    }
}

impl Key {
    fn from_signing_key(key: &SigningKey, kid: Option<String>) -> Result<Self, String> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the key as PKCS#8: {e}"))?;
        let public = key.verifying_key().to_bytes();
        Ok(Self {
            kid: kid.unwrap_or_else(|| thumbprint(&public)),
            pkcs8: zeroizing::Bytes(der.as_bytes().to_vec()),
            public,
        })
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key (base64url SHA-256 of its canonical JWK).
pub fn thumbprint(public: &[u8; 32]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

fn looks_inline(raw: &str) -> bool {
    let raw = raw.trim_start();
    raw.starts_with('{') || raw.starts_with('[') || raw.contains("-----BEGIN")
}

/// Parses one or more PKCS#8 `PRIVATE KEY` PEM blocks, or a private JWK, a JSON array of them
/// or a JWK set (`{"keys": [...]}`). Errors never quote key material.
fn parse_keys(raw: &str) -> Result<Vec<Key>, String> {
    let trimmed = raw.trim();
    let keys = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let list = match value {
            serde_json::Value::Array(list) => list,
            serde_json::Value::Object(mut o) if o.contains_key("keys") => match o.remove("keys") {
                Some(serde_json::Value::Array(list)) => list,
                _ => return Err("\"keys\" must be an array of JWKs".into()),
            },
            other => vec![other],
        };
        list.iter()
            .enumerate()
            .map(|(i, jwk)| parse_jwk(jwk).map_err(|m| format!("JWK #{}: {m}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let blocks = pem::parse_many(trimmed).map_err(|e| format!("is not PEM or JWK ({e})"))?;
        blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                if block.tag() != "PRIVATE KEY" {
                    return Err(format!(
                        "PEM block #{} is {:?}, expected an Ed25519 \"PRIVATE KEY\" (PKCS#8; \
                         `openssl genpkey -algorithm ed25519`)",
                        i + 1,
                        block.tag()
                    ));
                }
                let key = SigningKey::from_pkcs8_der(block.contents()).map_err(|_| {
                    format!("PEM block #{} is not an Ed25519 PKCS#8 private key", i + 1)
                })?;
                Key::from_signing_key(&key, None)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if keys.is_empty() {
        return Err("holds no key".into());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!(
            "holds {} keys, at most {MAX_KEYS} (retire old ones once no token they signed \
             can still be valid)",
            keys.len()
        ));
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].iter().any(|o| o.kid == k.kid) {
            return Err(format!("key id {:?} appears twice", k.kid));
        }
    }
    Ok(keys)
}

fn parse_jwk(jwk: &serde_json::Value) -> Result<Key, String> {
    let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
        return Err("must be an Ed25519 key (\"kty\": \"OKP\", \"crv\": \"Ed25519\")".into());
    }
    if field("alg").is_some_and(|a| a != "EdDSA") {
        return Err("\"alg\" must be EdDSA when present".into());
    }
    let d = field("d").ok_or("has no private part \"d\"")?;
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode(d)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("\"d\" is not 32 bytes of base64url")?;
    let key = SigningKey::from_bytes(&seed);
    if let Some(x) = field("x") {
        if URL_SAFE_NO_PAD.decode(x).ok().as_deref() != Some(&key.verifying_key().to_bytes()[..]) {
            return Err("\"x\" is not the public key of \"d\"".into());
        }
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(serde_json::Value::String(k)) if !k.is_empty() && k.len() <= 128 => Some(k.clone()),
        Some(_) => return Err("\"kid\" must be a string of 1 to 128 characters".into()),
    };
    Key::from_signing_key(&key, kid)
}

/// Reads the development key file, or generates a key into it (0600, in a 0700 folder).
fn dev_key(path: &Path) -> anyhow::Result<Vec<Key>> {
    use anyhow::Context as _;
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .with_context(|| format!("JWT_KEY_FILE: creating {}", dir.display()))?;
        }
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .context("JWT_KEY_FILE: encoding the new key")?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, pem.as_bytes())
                    .with_context(|| format!("JWT_KEY_FILE: writing {}", path.display()))?;
                tracing::info!(
                    file = %path.display(),
                    "generated a development signing key for service tokens"
                );
            }
            // Another instance on the same folder got there first: use its key.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("JWT_KEY_FILE: creating {}", path.display()))
            }
        }
    }
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("JWT_KEY_FILE: reading {}", path.display()))?;
    parse_keys(&raw).map_err(|m| anyhow::anyhow!("JWT_KEY_FILE {}: {m}", path.display()))
}

/// A key as `GET /.well-known/jwks.json` publishes it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicJwk {
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// The key id tokens name in their header.
    pub kid: String,
    /// `EdDSA`.
    pub alg: &'static str,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// The claims of an access token.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    sid: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Signs access tokens and publishes the keys that verify them.
pub struct TokenIssuer {
    signer: EncodingKey,
    header: Header,
    jwks: Vec<PublicJwk>,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// The lifetime asked of the core for each token.
    pub ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.header.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// The issuer the settings describe, `None` when service tokens are off. Reads (or, in
    /// development, creates) the key file; a key that does not load names its variable.
    pub fn from_settings(settings: &TokenSettings) -> anyhow::Result<Option<Self>> {
        if !settings.enabled {
            return Ok(None);
        }
        let keys = match &settings.signing_keys {
            Some(raw) => {
                let raw = raw.expose_secret();
                if looks_inline(raw) {
                    parse_keys(raw).map_err(|m| anyhow::anyhow!("JWT_SIGNING_KEYS {m}"))?
                } else {
                    let path = Path::new(raw.trim());
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        anyhow::anyhow!("JWT_SIGNING_KEYS: reading {}: {e}", path.display())
                    })?;
                    parse_keys(&text).map_err(|m| {
                        anyhow::anyhow!("JWT_SIGNING_KEYS file {}: {m}", path.display())
                    })?
                }
            }
            None => dev_key(&settings.key_file)?,
        };
        let first = keys
            .first()
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(first.kid.clone());
        header.typ = Some("at+jwt".into());
        let signer = EncodingKey::from_ed_der(&first.pkcs8.0);
        let jwks = keys
            .iter()
            .map(|k| PublicJwk {
                kty: "OKP",
                crv: "Ed25519",
                x: URL_SAFE_NO_PAD.encode(k.public),
                kid: k.kid.clone(),
                alg: "EdDSA",
                use_: "sig",
            })
            .collect();
        let issuer = Self {
            signer,
            header,
            jwks,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.ttl,
        };
        // Sign once now: a key the signer cannot use stops the start-up, not a request.
        issuer
            .sign(&AccessGrant {
                user: auth_core::UserId::from_uuid(uuid::Uuid::nil()),
                session: auth_core::SessionId::from_uuid(uuid::Uuid::nil()),
                issued_at: chrono::DateTime::UNIX_EPOCH,
                expires_at: chrono::DateTime::UNIX_EPOCH,
                id: uuid::Uuid::nil(),
            })
            .map_err(|e| anyhow::anyhow!("the signing key cannot sign: {e}"))?;
        Ok(Some(issuer))
    }

    /// The signed JWT for `grant`.
    pub fn sign(&self, grant: &AccessGrant) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            iss: &self.issuer,
            sub: grant.user.to_string(),
            aud: &self.audience,
            sid: grant.session.to_string(),
            iat: grant.issued_at.timestamp(),
            exp: grant.expires_at.timestamp(),
            jti: grant.id.simple().to_string(),
        };
        jsonwebtoken::encode(&self.header, &claims, &self.signer)
    }

    /// The key id new tokens carry.
    pub fn signing_kid(&self) -> &str {
        self.header.kid.as_deref().unwrap_or_default()
    }

    /// Every public key, the signing one first.
    pub fn jwks(&self) -> &[PublicJwk] {
        &self.jwks
    }

    /// Where the JWKS is published.
    pub fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pem_of(seed: u8) -> String {
        SigningKey::from_bytes(&[seed; 32])
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    #[test]
    fn several_pem_blocks_are_several_keys_the_first_signs() {
        let keys = parse_keys(&format!("{}\n{}", pem_of(1), pem_of(2))).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[0].public,
            SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes()
        );
        assert_eq!(keys[0].kid, thumbprint(&keys[0].public));
        assert_ne!(keys[0].kid, keys[1].kid);
    }

    #[test]
    fn jwks_sets_arrays_and_single_jwks_parse_with_their_kid() {
        let d = URL_SAFE_NO_PAD.encode([3u8; 32]);
        let x = URL_SAFE_NO_PAD.encode(SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes());
        let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","d":"{d}","x":"{x}","kid":"k-2026"}}"#);
        for raw in [
            jwk.clone(),
            format!("[{jwk}]"),
            format!(r#"{{"keys":[{jwk}]}}"#),
        ] {
            let keys = parse_keys(&raw).unwrap();
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].kid, "k-2026");
        }
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        let d = URL_SAFE_NO_PAD.encode([3u8; 32]);
        let wrong_x = URL_SAFE_NO_PAD.encode([9u8; 32]);
        for (raw, needle) in [
            ("{\"kty\":\"RSA\"}".to_owned(), "Ed25519"),
            (format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{wrong_x}"}}"#), "private"),
            (format!(r#"{{"kty":"OKP","crv":"Ed25519","d":"{d}","x":"{wrong_x}"}}"#), "\"x\""),
            (format!(r#"{{"kty":"OKP","crv":"Ed25519","d":"{d}","alg":"HS256"}}"#), "alg"),
            ("{not json".to_owned(), "JSON"),
            ("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n".to_owned(), "PRIVATE KEY"),
            (format!("{}{}", pem_of(4), pem_of(4)), "twice"),
            ("[]".to_owned(), "no key"),
        ] {
            let e = parse_keys(&raw).err().unwrap_or_else(|| panic!("accepted {raw}"));
            assert!(e.contains(needle), "{e} (wanted {needle})");
            assert!(!e.contains(&d), "{e}");
        }
    }

    fn settings(vars: &[(&str, &str)]) -> Result<crate::Settings, ConfigError> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        crate::Settings::from_lookup(|k| map.get(k).cloned())
    }

    const PROD: [(&str, &str); 4] = [
        ("APP_ENV", "production"),
        (
            "AUTH_SECRET",
            "3f9c2a7e8b1d4f60c5e2a9b7d3f18e4c6a0b5d9e2f7c1a8b4e6d0f3c9a2b7e5d",
        ),
        ("REDIS_URL", "redis://cache"),
        ("SMTP_HOST", "smtp.example.com"),
    ];

    #[test]
    fn development_turns_tokens_on_with_defaults() {
        let s = settings(&[("BIND_ADDR", "127.0.0.1:9000")]).unwrap().tokens;
        assert!(s.enabled);
        assert_eq!(s.ttl, DEFAULT_TOKEN_TTL);
        assert_eq!(s.audience, DEFAULT_AUDIENCE);
        assert_eq!(s.issuer, "http://127.0.0.1:9000");
        assert_eq!(s.key_file, PathBuf::from(DEFAULT_KEY_FILE));
    }

    #[test]
    fn production_needs_keys_for_tokens_and_then_an_https_issuer() {
        let s = settings(&PROD).unwrap().tokens;
        assert!(!s.enabled, "no keys in production: service tokens are off");
        let mut off = PROD.to_vec();
        off.push(("JWT_ISSUER", "http://localhost:8080"));
        assert!(
            !settings(&off).unwrap().tokens.enabled,
            "an issuer alone turns nothing on"
        );
        let pem = pem_of(5);
        let mut v = PROD.to_vec();
        v.push(("JWT_SIGNING_KEYS", &pem));
        assert_eq!(settings(&v).unwrap_err().var, "JWT_ISSUER");
        v.push(("JWT_ISSUER", "http://auth.example.com"));
        assert_eq!(settings(&v).unwrap_err().var, "JWT_ISSUER");
        v.pop();
        v.push(("JWT_ISSUER", "https://auth.example.com/"));
        let s = settings(&v).unwrap().tokens;
        assert!(s.enabled);
        assert_eq!(s.issuer, "https://auth.example.com");
    }

    #[test]
    fn bad_token_settings_name_their_variable() {
        for (var, bad) in [
            ("JWT_TTL", "0"),
            ("JWT_TTL", "2h"),
            ("JWT_TTL", "soon"),
            ("JWT_ISSUER", "auth.example.com"),
            (
                "JWT_SIGNING_KEYS",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            ),
            ("JWT_SIGNING_KEYS", "{\"kty\":\"OKP\"}"),
        ] {
            let e = settings(&[(var, bad)]).unwrap_err();
            assert_eq!(e.var, var, "{var}={bad}");
        }
        let s = settings(&[("JWT_TTL", "90")]).unwrap().tokens;
        assert_eq!(s.ttl, Duration::from_secs(90));
    }

    #[test]
    fn development_generates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("jwt.pem");
        let first = dev_key(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let again = dev_key(&path).unwrap();
        assert_eq!(first[0].kid, again[0].kid, "the key survives a restart");
    }
}

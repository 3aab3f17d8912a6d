//! Shared application state and the edge policies (cookie, origins, client IP).

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::header;
use actix_web::HttpRequest;
use auth_core::AuthService;

/// Everything a handler needs, shared by all workers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The domain service.
    pub service: Arc<AuthService>,
    /// How the session cookie is written.
    pub cookie: CookiePolicy,
    /// Which origins may send cookie-authenticated state-changing requests.
    pub origins: OriginPolicy,
    /// Where the client IP comes from.
    pub client_ip: ClientIpPolicy,
    /// The mail outbox, when the service queues its mail (for `/ready` and bounce reports).
    pub outbox: Option<crate::mail::MailOutbox>,
    /// The bearer token of `POST /mail/bounces`; without it the endpoint answers 404.
    pub bounce_token: Option<secrecy::SecretString>,
    /// The bearer token that shows `/ready`'s mail backlog.
    pub ops_token: Option<secrecy::SecretString>,
    /// The least time the answers that must not tell whether an account exists take.
    pub uniform_answer_time: std::time::Duration,
    /// Signs service tokens (`POST /token`) and publishes their keys; `None`: they are off.
    pub tokens: Option<Arc<crate::tokens::TokenIssuer>>,
    /// Leading bits (IPv4, IPv6) of a session's client address that `GET /sessions` shows.
    pub session_ip_prefix: (u8, u8),
}

/// Whether `req` carries `Authorization: Bearer <expected>`, compared in constant time.
pub fn bearer_matches(req: &actix_web::HttpRequest, expected: &secrecy::SecretString) -> bool {
    use sha2::Digest as _;
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = secrecy::ExposeSecret::expose_secret(expected);
    subtle::ConstantTimeEq::ct_eq(
        sha2::Sha256::digest(given.as_bytes()).as_slice(),
        sha2::Sha256::digest(expected.as_bytes()).as_slice(),
    )
    .into()
}

impl AppState {
    /// Runs `answer` and holds its outcome back until [`uniform_answer_time`] has passed
    /// since the call (when the service hides which addresses have accounts): an existing
    /// account's few milliseconds of extra work (a code stored, a mail queued) do not show.
    ///
    /// [`uniform_answer_time`]: Self::uniform_answer_time
    pub async fn in_uniform_time<T>(&self, answer: impl std::future::Future<Output = T>) -> T {
        let started = tokio::time::Instant::now();
        let outcome = answer.await;
        if self.service.config().enumeration_protection {
            tokio::time::sleep_until(started + self.uniform_answer_time).await;
        }
        outcome
    }
}

/// The session cookie: HttpOnly, SameSite=Lax, Path=/, no Domain, Secure unless explicitly
/// disabled for local plain HTTP; named `__Host-session`, or `session` without Secure (browsers
/// refuse `__Host-` cookies that are not Secure).
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    /// Whether the `Secure` attribute is set.
    pub secure: bool,
}

impl CookiePolicy {
    /// The cookie name in force.
    pub fn name(&self) -> &'static str {
        if self.secure {
            "__Host-session"
        } else {
            "session"
        }
    }

    /// The cookie carrying a new session token.
    pub fn session_cookie(&self, token: String, max_age_secs: i64) -> Cookie<'static> {
        Cookie::build(self.name(), token)
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(time::Duration::seconds(max_age_secs.max(0)))
            .finish()
    }

    /// The name of the device cookie (see [`auth_core::DeviceCredential`]): `__Host-device`,
    /// or `device` without Secure.
    pub fn device_name(&self) -> &'static str {
        if self.secure {
            "__Host-device"
        } else {
            "device"
        }
    }

    /// The cookie carrying a device credential: HttpOnly, SameSite=Strict (it only ever goes
    /// to the login endpoints, from this site), Path=/, kept for `max_age_secs`. It survives
    /// logout: it stands for the browser, not for a session.
    pub fn device_cookie(&self, credential: String, max_age_secs: i64) -> Cookie<'static> {
        Cookie::build(self.device_name(), credential)
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
            .path("/")
            .max_age(time::Duration::seconds(max_age_secs.max(0)))
            .finish()
    }

    /// A cookie that makes the browser drop the session cookie.
    pub fn removal_cookie(&self) -> Cookie<'static> {
        let mut c = self.session_cookie(String::new(), 0);
        c.make_removal();
        c
    }
}

/// CSRF defence for cookie-authenticated requests: the `Origin` (or `Sec-Fetch-Site`) must say
/// the request comes from this site or from a configured origin. Bearer clients are unaffected.
///
/// "This site" is an origin in the web sense: the same scheme, host and port. The host and
/// port come from the `Host` header. The scheme is `https` when the session cookie is `Secure`
/// (browsers send such a cookie over HTTPS only), except on a loopback host (`localhost`,
/// `127.0.0.0/8`, `[::1]`), where browsers also send it over plain HTTP; there, and when the
/// cookie is not `Secure`, it is the scheme of the request as received (`Forwarded` /
/// `X-Forwarded-Proto` from a proxy, else the listener's). So `http://site` (a page an active
/// network attacker can forge) is not the same origin as `https://site`.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Extra allowed origins, e.g. `https://app.example.com`.
    pub allowed: Vec<String>,
    /// Whether the session cookie is `Secure` (`COOKIE_SECURE`): the site is then `https`.
    pub secure_cookie: bool,
}

/// A web origin: scheme, lower-case host, port (the scheme's default when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Splits `host[:port]` (the host may be a bracketed IPv6 literal).
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&authority[..v6.len() + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

impl Origin {
    /// Parses a serialised origin, `scheme://host[:port]` (what browsers send in `Origin`).
    fn parse(origin: &str) -> Option<Self> {
        let (scheme, authority) = origin.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_authority(authority)?;
        let port = port.or_else(|| default_port(&scheme))?;
        Some(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The origin a request was sent to, from its `Host` header and the site's `scheme`.
    fn of_site(host_header: &str, scheme: &str) -> Option<Self> {
        let (host, port) = split_authority(host_header)?;
        let port = port.or_else(|| default_port(scheme))?;
        Some(Self {
            scheme: scheme.to_owned(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn is_loopback(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        self.host == "localhost"
            || self.host.ends_with(".localhost")
            || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl OriginPolicy {
    /// Whether a state-changing request authenticated by cookie may proceed.
    pub fn allows(&self, req: &HttpRequest) -> bool {
        let headers = req.headers();
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let Some(origin) = Origin::parse(origin) else {
                // `null` (sandboxed or opaque origins) and anything unparsable.
                return false;
            };
            if self
                .allowed
                .iter()
                .filter_map(|a| Origin::parse(a))
                .any(|a| a == origin)
            {
                return true;
            }
            let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            return self.site(req, host).is_some_and(|site| site == origin);
        }
        match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some(site) => site == "same-origin" || site == "none",
            // Neither header: not a browser (curl, a server); SameSite=Lax already keeps the
            // cookie off cross-site sub-requests.
            None => true,
        }
    }

    /// This site's origin, as seen by the browser that sent `req` to `host`.
    fn site(&self, req: &HttpRequest, host: &str) -> Option<Origin> {
        let received = req.connection_info().scheme().to_ascii_lowercase();
        let as_received = Origin::of_site(host, &received)?;
        if self.secure_cookie && !as_received.is_loopback() {
            Origin::of_site(host, "https")
        } else {
            Some(as_received)
        }
    }
}

/// Where the client IP comes from: the socket, unless the peer is a trusted proxy, in which
/// case the right-most untrusted address of `X-Forwarded-For` is used.
#[derive(Debug, Clone, Default)]
pub struct ClientIpPolicy {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl ClientIpPolicy {
    /// The client IP of a request.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.resolve(req.peer_addr().map(|a| a.ip()), req.headers())
    }

    fn resolve(
        &self,
        peer: Option<IpAddr>,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !self.trusted_proxies.contains(ip))
                .unwrap_or(peer),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use actix_web::test::TestRequest;

    fn allows(policy: &OriginPolicy, host: &str, origin: &str, proto: Option<&str>) -> bool {
        let mut req = TestRequest::post()
            .uri("/logout")
            .insert_header((header::HOST, host))
            .insert_header((header::ORIGIN, origin));
        if let Some(p) = proto {
            req = req.insert_header(("x-forwarded-proto", p));
        }
        policy.allows(&req.to_http_request())
    }

    #[test]
    fn same_origin_means_same_scheme_host_and_port() {
        let secure = OriginPolicy {
            allowed: vec![],
            secure_cookie: true,
        };
        // Behind a TLS proxy (with or without X-Forwarded-Proto), Secure cookies: https only.
        for proto in [None, Some("https")] {
            assert!(allows(
                &secure,
                "auth.example.com",
                "https://auth.example.com",
                proto
            ));
            assert!(allows(
                &secure,
                "auth.example.com",
                "https://AUTH.example.com:443",
                proto
            ));
            assert!(!allows(
                &secure,
                "auth.example.com",
                "http://auth.example.com",
                proto
            ));
            assert!(!allows(
                &secure,
                "auth.example.com",
                "https://auth.example.com:8443",
                proto
            ));
            assert!(!allows(
                &secure,
                "auth.example.com",
                "https://evil.example",
                proto
            ));
            assert!(!allows(
                &secure,
                "auth.example.com",
                "https://auth.example.com.evil.example",
                proto
            ));
            assert!(!allows(&secure, "auth.example.com", "null", proto));
        }
        assert!(allows(
            &secure,
            "auth.example.com:8443",
            "https://auth.example.com:8443",
            None
        ));
        assert!(!allows(
            &secure,
            "auth.example.com:8443",
            "https://auth.example.com",
            None
        ));
        // Loopback: browsers send Secure cookies over http too; the received scheme decides.
        assert!(allows(
            &secure,
            "127.0.0.1:8080",
            "http://127.0.0.1:8080",
            None
        ));
        assert!(!allows(
            &secure,
            "127.0.0.1:8080",
            "https://127.0.0.1:8080",
            None
        ));
        assert!(!allows(
            &secure,
            "127.0.0.1:8080",
            "http://127.0.0.1:8081",
            None
        ));
        assert!(!allows(
            &secure,
            "127.0.0.1:8080",
            "http://localhost:8080",
            None
        ));
        assert!(allows(&secure, "[::1]:8080", "http://[::1]:8080", None));
        assert!(allows(
            &secure,
            "localhost:8080",
            "http://localhost:8080",
            None
        ));

        let plain = OriginPolicy::default();
        assert!(allows(
            &plain,
            "localhost:8080",
            "http://localhost:8080",
            None
        ));
        assert!(!allows(
            &plain,
            "localhost:8080",
            "https://localhost:8080",
            None
        ));
        assert!(allows(&plain, "site.test", "http://site.test:80", None));
        assert!(allows(
            &plain,
            "site.test",
            "https://site.test",
            Some("https")
        ));
        assert!(!allows(
            &plain,
            "site.test",
            "http://site.test",
            Some("https")
        ));
    }

    #[test]
    fn allowed_origins_compare_as_origins() {
        let policy = OriginPolicy {
            allowed: vec!["https://app.example.com".into()],
            secure_cookie: true,
        };
        assert!(allows(
            &policy,
            "auth.example.com",
            "https://app.example.com",
            None
        ));
        assert!(allows(
            &policy,
            "auth.example.com",
            "https://APP.example.com:443",
            None
        ));
        assert!(!allows(
            &policy,
            "auth.example.com",
            "http://app.example.com",
            None
        ));
        assert!(!allows(
            &policy,
            "auth.example.com",
            "https://app.example.com:444",
            None
        ));
    }

    #[test]
    fn authorities_parse() {
        assert_eq!(
            split_authority("a.example:8080"),
            Some(("a.example", Some(8080)))
        );
        assert_eq!(split_authority("[::1]:80"), Some(("[::1]", Some(80))));
        assert_eq!(split_authority("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_authority("a.example"), Some(("a.example", None)));
        assert_eq!(split_authority("a.example:x"), None);
        assert_eq!(split_authority("a.example/path"), None);
        assert_eq!(split_authority(":80"), None);
        assert_eq!(Origin::parse("ftp://a.example"), None);
        assert_eq!(Origin::parse("a.example"), None);
    }
}

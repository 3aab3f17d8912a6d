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

    /// A cookie that makes the browser drop the session cookie.
    pub fn removal_cookie(&self) -> Cookie<'static> {
        let mut c = self.session_cookie(String::new(), 0);
        c.make_removal();
        c
    }
}

/// CSRF defence for cookie-authenticated requests: the `Origin` (or `Sec-Fetch-Site`) must say
/// the request comes from this site or from a configured origin. Bearer clients are unaffected.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Extra allowed origins, e.g. `https://app.example.com`.
    pub allowed: Vec<String>,
}

impl OriginPolicy {
    /// Whether a state-changing request authenticated by cookie may proceed.
    pub fn allows(&self, req: &HttpRequest) -> bool {
        let headers = req.headers();
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            if origin == "null" {
                return false;
            }
            if self.allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
                return true;
            }
            // Same origin: the Origin's host[:port] equals the Host the request was sent to.
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            return matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
        }
        match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some(site) => site == "same-origin" || site == "none",
            // Neither header: not a browser (curl, a server); SameSite=Lax already keeps the
            // cookie off cross-site sub-requests.
            None => true,
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

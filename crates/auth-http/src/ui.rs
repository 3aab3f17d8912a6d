//! The web UI: static pages, one script and one stylesheet, embedded in the binary (no CDN, no
//! build step). Pages live under `/ui/...` so that the API's own paths keep their JSON
//! behaviour (`GET /signup` stays 405). The pages talk to the JSON API with same-origin `fetch`
//! and the cookie transport: the session token is never visible to the page.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

/// Content-Security-Policy of every UI response: only this origin's scripts, styles and fetches.
pub const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// Path of the page a logged-in person starts on.
pub const ACCOUNT_PAGE: &str = "/ui/account";
/// Path of the login page.
pub const LOGIN_PAGE: &str = "/ui/login";

/// The pages: `/ui/<name>` serves `ui/<name>.html`.
const PAGES: &[(&str, &str)] = &[
    ("signup", include_str!("../ui/signup.html")),
    ("verify", include_str!("../ui/verify.html")),
    ("login", include_str!("../ui/login.html")),
    ("login-code", include_str!("../ui/login-code.html")),
    ("login-mfa", include_str!("../ui/login-mfa.html")),
    ("account", include_str!("../ui/account.html")),
    ("forgot", include_str!("../ui/forgot.html")),
    ("reset", include_str!("../ui/reset.html")),
    ("admin", include_str!("../ui/admin.html")),
];

/// The assets: `/ui/assets/<name>`, with their content type.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../ui/assets/app.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/assets/admin.js"),
    ),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../ui/assets/admin.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../ui/assets/icon.svg"),
    ),
];

/// Registers `/`, `/ui`, the pages and the assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/", "/ui", "/ui/"] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(start))
                .default_service(web::to(method_not_allowed)),
        );
    }
    for (name, html) in PAGES {
        let html: &'static str = html;
        cfg.service(
            web::resource(format!("/ui/{name}"))
                .route(web::get().to(move || page(html)))
                .default_service(web::to(method_not_allowed)),
        );
    }
    for (name, content_type, body) in ASSETS {
        let (content_type, body): (&'static str, &'static [u8]) = (content_type, body);
        let etag = format!("\"{:016x}\"", fnv1a(body));
        cfg.service(
            web::resource(format!("/ui/assets/{name}"))
                .route(
                    web::get()
                        .to(move |req: HttpRequest| asset(req, content_type, body, etag.clone())),
                )
                .default_service(web::to(method_not_allowed)),
        );
    }
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// `/`: the account page when a session cookie is present (the page itself checks that the
/// session is alive), else the login page.
async fn start(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let to = if req.cookie(state.cookie.name()).is_some() {
        ACCOUNT_PAGE
    } else {
        LOGIN_PAGE
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

async fn page(html: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, UI_CSP))
        // Pages show account data: never stored, so the back button after logout re-asks.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

/// Assets are revalidated on every use (cheap 304 by `ETag`), so a new binary's script is
/// never mixed with an old page.
async fn asset(
    req: HttpRequest,
    content_type: &'static str,
    body: &'static [u8],
    etag: String,
) -> HttpResponse {
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CONTENT_SECURITY_POLICY, UI_CSP));
    if fresh {
        res.finish()
    } else {
        res.content_type(content_type).body(body)
    }
}

/// 64-bit FNV-1a: a stable fingerprint of an embedded file for its `ETag`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/ui/...` address a page refers to is served, and no page has inline script or
    /// style (the CSP would block them).
    #[test]
    fn pages_refer_only_to_served_paths_and_have_nothing_inline() {
        let served: Vec<String> = PAGES
            .iter()
            .map(|(name, _)| format!("/ui/{name}"))
            .chain(
                ASSETS
                    .iter()
                    .map(|(name, _, _)| format!("/ui/assets/{name}")),
            )
            .collect();
        for (name, html) in PAGES {
            assert!(!html.contains("<script>"), "{name}: inline script");
            assert!(!html.contains("style="), "{name}: inline style");
            assert!(!html.contains("<style"), "{name}: style element");
            for part in html.split("\"/ui/").skip(1) {
                let path = part.split(['"', '?', '#']).next().unwrap_or_default();
                let path = format!("/ui/{path}");
                assert!(served.contains(&path), "{name}: {path} is not served");
            }
        }
    }
}

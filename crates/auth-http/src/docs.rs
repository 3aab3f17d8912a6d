//! `/docs`: Swagger UI rendering `/openapi.json`, served from the binary (no CDN), under a
//! Content-Security-Policy that lets the page load its own files and nothing else.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where Swagger UI lives (`/docs` itself redirects here).
pub const DOCS_PREFIX: &str = "/docs/";

/// The one inline style Swagger UI's scripts insert: the `<style>` of its logo, an inline SVG
/// drawn by `swagger-ui-standalone-preset.js`. A test checks that the script still contains
/// it, and that [`DOCS_CSP`] allows its hash.
pub const SWAGGER_LOGO_STYLE: &str =
    ".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}";

/// The page loads `swagger-ui.css`, `index.css`, two favicons and three scripts from `/docs/`
/// (the last one, `swagger-initializer.js`, holds the configuration: no inline script), then
/// fetches `/openapi.json`. Its stylesheet embeds icons as `data:` images. Nothing else: no
/// inline script, no inline style but the logo's (allowed by its SHA-256, see
/// [`SWAGGER_LOGO_STYLE`]), no other host, no form submission, no framing.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The Swagger UI service for `openapi`, without the online validator badge (an image from
/// validator.swagger.io that would tell that host where the API document lives).
pub fn swagger_ui(openapi: utoipa::openapi::OpenApi) -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}")
        .url("/openapi.json", openapi)
        .config(Config::new(["/openapi.json"]).validator_url("none"))
}

/// Middleware: every response under [`DOCS_PREFIX`] carries [`DOCS_CSP`] instead of the
/// API-wide policy.
pub async fn content_security_policy(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_docs = req.path().starts_with(DOCS_PREFIX);
    let mut res = next.call(req).await?;
    if is_docs {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    }
    Ok(res)
}

//! The edge of the abuse-resistance policy: who the client is. The service spends its own
//! budgets ([`auth_core::throttle`]); this layer only tells it the client's IP address (as
//! [`crate::state::ClientIpPolicy`] resolves it) and user agent.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use auth_core::ClientInfo;

use crate::error::ApiError;
use crate::state::AppState;

/// The client of the request: the socket peer, or the right-most untrusted `X-Forwarded-For`
/// entry when the peer is a trusted proxy; its `User-Agent` and `Accept-Language`, bounded.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => Ok(Self(
                ClientInfo::new(
                    state.client_ip.client_ip(req),
                    req.headers()
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok()),
                )
                .with_language(
                    req.headers()
                        .get(header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok()),
                )
                .with_request_id(
                    req.extensions()
                        .get::<tracing_actix_web::RequestId>()
                        .map(|id| id.to_string())
                        .as_deref(),
                ),
            )),
            None => Err(ApiError::Internal("application state missing".into())),
        })
    }
}

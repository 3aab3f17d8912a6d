//! The edge of the abuse-resistance policy ([`auth_core::Throttle`]): the client IP extractor
//! and the mapping of a refusal to 429 + `Retry-After`.

use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use auth_core::ThrottleError;

use crate::error::ApiError;
use crate::state::AppState;

/// The client IP of the request, as [`crate::state::ClientIpPolicy`] resolves it: the socket
/// peer, or the right-most untrusted `X-Forwarded-For` entry when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => Ok(Self(state.client_ip.client_ip(req))),
            None => Err(ApiError::Internal("application state missing".into())),
        })
    }
}

impl From<ThrottleError> for ApiError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Limited { retry_after } => Self::TooManyRequests { retry_after },
            ThrottleError::Failure(f) => Self::from_failure(f),
        }
    }
}

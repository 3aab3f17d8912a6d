//! [`AuthenticatedSession`]: the extractor every authenticated handler takes.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpRequest};
use auth_core::{Session, SessionToken};

use crate::dto::Transport;
use crate::error::ApiError;
use crate::state::AppState;

/// A request authenticated by a valid session, from `Authorization: Bearer` or the session
/// cookie. Unknown, expired, revoked or malformed tokens are refused with 401; a
/// cookie-authenticated state-changing request from a foreign origin with 403.
#[derive(Debug)]
pub struct AuthenticatedSession {
    /// The session (with its user).
    pub session: Session,
    /// The token that was presented.
    pub token: SessionToken,
    /// How it was presented.
    pub transport: Transport,
}

fn bearer(req: &HttpRequest) -> Option<Result<SessionToken, ApiError>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| SessionToken::parse(token.trim()))
                .flatten()
        })
        .ok_or(ApiError::Unauthenticated);
    Some(parsed)
}

impl FromRequest for AuthenticatedSession {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            // A bearer header, when present, decides alone: no falling back to the cookie.
            let (token, transport) = match bearer(&req) {
                Some(token) => (token?, Transport::Bearer),
                None => {
                    let cookie = req
                        .cookie(state.cookie.name())
                        .ok_or(ApiError::Unauthenticated)?;
                    let token =
                        SessionToken::parse(cookie.value()).ok_or(ApiError::Unauthenticated)?;
                    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
                    if !safe && !state.origins.allows(&req) {
                        return Err(ApiError::CrossSiteRequest);
                    }
                    (token, Transport::Cookie)
                }
            };
            // The client as the session binding sees it (address and user agent).
            let client = auth_core::ClientInfo::new(
                state.client_ip.client_ip(&req),
                req.headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
            );
            let session = state.service.authenticate_from(&token, &client).await?;
            Ok(Self {
                session,
                token,
                transport,
            })
        })
    }
}

/// A request authenticated by a session whose account is an enabled administrator (read from
/// the user store on every request): 401 as for [`AuthenticatedSession`], 403 `forbidden` for
/// any other account. The privilege window is checked by the service, per operation.
#[derive(Debug)]
pub struct AdminSession(pub Session);

impl FromRequest for AdminSession {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = AuthenticatedSession::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let auth = authenticated.await?;
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            state.service.authorize_admin(&auth.session).await?;
            Ok(Self(auth.session))
        })
    }
}

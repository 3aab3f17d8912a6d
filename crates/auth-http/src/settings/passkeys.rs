//! The passkey section: the WebAuthn relying party this service is.

use std::time::Duration;

use super::env::{err, Env};
use super::{AppEnv, ConfigError};

/// Passkeys (WebAuthn): the relying party this service is. Both variables or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySettings {
    /// `WEBAUTHN_RP_ID`: the relying-party id, a domain: the host of `WEBAUTHN_ORIGIN` or a
    /// parent domain of it. Passkeys are bound to it for good.
    pub rp_id: String,
    /// `WEBAUTHN_ORIGIN`: the one origin (scheme, host, port) the web pages that use passkeys
    /// are served from; an answer made for any other origin is refused.
    pub origin: String,
    /// `WEBAUTHN_CEREMONY_TTL`: how long a ceremony may take (default `5m`, at most `10m`).
    pub ceremony_ttl: Duration,
}

impl PasskeySettings {
    /// Reads the section. In production the origin must be `https://` and one of the origins
    /// the service is served from (`ALLOWED_ORIGINS`), and the id must fit the origin.
    pub(super) fn read(
        env: &Env<'_>,
        app_env: AppEnv,
        allowed_origins: &[String],
    ) -> Result<Option<Self>, ConfigError> {
        let (rp_id, origin) = match (env.string("WEBAUTHN_RP_ID"), env.string("WEBAUTHN_ORIGIN")) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(err("WEBAUTHN_ORIGIN", "required with WEBAUTHN_RP_ID"));
            }
            (None, Some(_)) => {
                return Err(err("WEBAUTHN_RP_ID", "required with WEBAUTHN_ORIGIN"));
            }
            (Some(id), Some(origin)) => (id, origin.trim_end_matches('/').to_owned()),
        };
        let ceremony_ttl = env.duration_in(
            "WEBAUTHN_CEREMONY_TTL",
            Duration::from_secs(300),
            Duration::from_secs(10)..=auth_core::MAX_CEREMONY_TTL,
            "must be a duration between 10s and 10m",
        )?;
        if let Err(e) = auth_webauthn::WebauthnVerifier::new(&rp_id, &origin, "SecureAuth") {
            return Err(err("WEBAUTHN_RP_ID", e.to_string()));
        }
        if app_env == AppEnv::Production {
            if !origin.starts_with("https://") {
                return Err(err(
                    "WEBAUTHN_ORIGIN",
                    "must be an https:// origin in production",
                ));
            }
            if !allowed_origins.contains(&origin) {
                return Err(err(
                    "WEBAUTHN_ORIGIN",
                    "must be the origin the service is served from: list it in ALLOWED_ORIGINS",
                ));
            }
        }
        Ok(Some(Self {
            rp_id,
            origin,
            ceremony_ttl,
        }))
    }
}

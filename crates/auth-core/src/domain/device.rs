//! Device credentials (the OWASP "device cookies" scheme): after a correct password the service
//! hands the client a credential bound to the address it logged in to. A later login for that
//! address that carries it is counted in that device's own budget, so strangers guessing the
//! password from elsewhere cannot lock the owner's known devices out.
//!
//! A credential is `{device id}.{issued at, Unix seconds}.{MAC}`: an HMAC-SHA256, under the
//! server secret, over a purpose label, the address, the device id and the issue time. It cannot
//! be forged, moved to another address or made younger; nothing is stored.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::Mac;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::email::EmailAddress;
use super::otp::OtpSecret;

/// The longest text accepted as a device credential.
pub const MAX_DEVICE_CREDENTIAL_LEN: usize = 128;

/// A device credential as a client sends it back (see the [module documentation](self)).
/// Holding one says nothing about its validity: the service checks it against the address.
/// Its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCredential(String);

impl DeviceCredential {
    /// The credential, if `raw` has its shape (`id.seconds.mac`, URL-safe characters, not
    /// longer than [`MAX_DEVICE_CREDENTIAL_LEN`]); surrounding whitespace is tolerated.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim();
        let shaped = !s.is_empty()
            && s.len() <= MAX_DEVICE_CREDENTIAL_LEN
            && s.split('.').count() == 3
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        shaped.then(|| Self(s.to_owned()))
    }

    /// The text to hand to the client (a cookie value or a JSON field). Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCredential(..)")
    }
}

/// A device the service recognised: the id a valid credential carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId(Uuid);

impl DeviceId {
    /// Wraps a UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl OtpSecret {
    fn device_mac(&self, email: &EmailAddress, id: DeviceId, issued_at: i64) -> [u8; 32] {
        let mut mac = self.hmac();
        mac.update(b"device");
        mac.update(&[0]);
        mac.update(email.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(id.0.as_bytes());
        mac.update(&[0]);
        mac.update(&issued_at.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A credential for device `id` on `email`, issued at `now`.
    pub fn sign_device(
        &self,
        email: &EmailAddress,
        id: DeviceId,
        now: DateTime<Utc>,
    ) -> DeviceCredential {
        let issued_at = now.timestamp();
        let mac = self.device_mac(email, id, issued_at);
        DeviceCredential(format!(
            "{}.{issued_at}.{}",
            id.0.simple(),
            URL_SAFE_NO_PAD.encode(mac)
        ))
    }

    /// The device behind `credential`, if it was signed with this secret for `email` no
    /// earlier than `not_before` and is not from the future (a minute of clock skew allowed).
    pub fn verify_device(
        &self,
        credential: &DeviceCredential,
        email: &EmailAddress,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DeviceId> {
        let mut parts = credential.0.split('.');
        let id = Uuid::try_parse(parts.next()?).ok().map(DeviceId)?;
        let issued_at: i64 = parts.next()?.parse().ok()?;
        let given = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        let expected = self.device_mac(email, id, issued_at);
        if !bool::from(expected.as_slice().ct_eq(given.as_slice())) {
            return None;
        }
        let fresh = issued_at >= not_before.timestamp() && issued_at <= now.timestamp() + 60;
        fresh.then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(n: u8) -> OtpSecret {
        OtpSecret::new(vec![n; 32].into_boxed_slice().into()).unwrap()
    }

    fn ada() -> EmailAddress {
        EmailAddress::parse("ada@example.com").unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
    }

    fn long_ago() -> DateTime<Utc> {
        now() - chrono::TimeDelta::days(30)
    }

    #[test]
    fn a_credential_is_bound_to_its_secret_address_and_age() {
        let id = DeviceId::from_uuid(Uuid::from_u128(7));
        let cred = key(1).sign_device(&ada(), id, now());
        let parsed = DeviceCredential::parse(cred.expose()).unwrap();
        assert_eq!(
            key(1).verify_device(&parsed, &ada(), long_ago(), now()),
            Some(id)
        );
        let bob = EmailAddress::parse("bob@example.com").unwrap();
        assert_eq!(key(1).verify_device(&parsed, &bob, long_ago(), now()), None);
        assert_eq!(
            key(2).verify_device(&parsed, &ada(), long_ago(), now()),
            None
        );
        let later = now() + chrono::TimeDelta::seconds(1);
        assert_eq!(key(1).verify_device(&parsed, &ada(), later, now()), None);
        assert_eq!(
            key(1).verify_device(&parsed, &ada(), long_ago(), long_ago()),
            None,
            "issued in the future"
        );
    }

    #[test]
    fn a_changed_id_or_time_is_refused() {
        let id = DeviceId::from_uuid(Uuid::from_u128(7));
        let cred = key(1).sign_device(&ada(), id, now());
        let parts: Vec<&str> = cred.expose().split('.').collect();
        let other_id = format!("{}.{}.{}", Uuid::from_u128(8).simple(), parts[1], parts[2]);
        let older = format!("{}.{}.{}", parts[0], now().timestamp() + 5, parts[2]);
        for forged in [other_id, older] {
            let c = DeviceCredential::parse(&forged).unwrap();
            assert_eq!(key(1).verify_device(&c, &ada(), long_ago(), now()), None);
        }
    }

    #[test]
    fn parse_refuses_other_shapes_and_debug_hides_it() {
        for bad in ["", "a.b", "a.b.c.d", "a b.c.d", &"x.y.".repeat(50)] {
            assert!(DeviceCredential::parse(bad).is_none(), "{bad:?}");
        }
        let cred = key(1).sign_device(&ada(), DeviceId::from_uuid(Uuid::nil()), now());
        assert!(!format!("{cred:?}").contains(cred.expose()));
    }
}

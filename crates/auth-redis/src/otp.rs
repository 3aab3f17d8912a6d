//! [`OtpStore`] on Redis.
//!
//! A code is a hash `{mac: hex, exp: RFC 3339, attempts: n}` that Redis drops after
//! `retain_for`; the mail cooldown is a separate key set with `NX PX`.

use std::time::Duration;

use auth_core::{
    EmailAddress, OtpAttempt, OtpMac, OtpPurpose, OtpStore, OtpStoreError, SendSlot, StoredOtp,
};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::pool::{Failure, Request, Retry};
use crate::session::ttl_millis;
use crate::RedisStore;

/// The port promises a cooldown answer of at least this much.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

fn decode_attempt(mac: &str, exp: &str, attempts: i64) -> Result<OtpAttempt, Failure> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(mac, &mut bytes)
        .map_err(|_| Failure::corrupt("one-time code", "MAC is not 32 hex bytes"))?;
    let expires_at = DateTime::parse_from_rfc3339(exp)
        .map_err(|_| Failure::corrupt("one-time code", "expiry is not RFC 3339"))?
        .with_timezone(&Utc);
    let attempts = u32::try_from(attempts)
        .map_err(|_| Failure::corrupt("one-time code", "attempt counter out of range"))?;
    Ok(OtpAttempt {
        otp: StoredOtp {
            mac: OtpMac(bytes),
            expires_at,
        },
        attempts,
    })
}

#[async_trait::async_trait]
impl OtpStore for RedisStore {
    async fn put(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        otp: StoredOtp,
        retain_for: Duration,
    ) -> Result<(), OtpStoreError> {
        let key = self.inner.keys.otp(purpose, email);
        // Nanosecond precision, so the expiry read back equals the one written.
        let exp = otp.expires_at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let mut pipe = redis::pipe();
        // MULTI/EXEC: nobody sees the new MAC with the old attempt counter.
        pipe.atomic()
            .del(&key)
            .ignore()
            .hset_multiple(
                &key,
                &[
                    ("mac", hex::encode(otp.mac.0)),
                    ("exp", exp),
                    ("attempts", "0".to_owned()),
                ],
            )
            .ignore()
            .pexpire(
                &key,
                i64::try_from(ttl_millis(retain_for)).unwrap_or(i64::MAX),
            )
            .ignore();
        // Putting the same code twice leaves the same state: safe to resend.
        self.inner
            .exec
            .run::<()>(Request::Pipe(&pipe), Retry::Idempotent)
            .await?;
        Ok(())
    }

    async fn record_attempt(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
    ) -> Result<Option<OtpAttempt>, OtpStoreError> {
        let mut call = self.inner.scripts.otp_record_attempt.prepare_invoke();
        call.key(self.inner.keys.otp(purpose, email));
        // Never retried: a counted attempt must not be counted twice.
        let reply: Option<(String, String, i64)> = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(reply
            .map(|(mac, exp, n)| decode_attempt(&mac, &exp, n))
            .transpose()?)
    }

    async fn consume(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        mac: &OtpMac,
    ) -> Result<bool, OtpStoreError> {
        let mut call = self.inner.scripts.otp_consume.prepare_invoke();
        call.key(self.inner.keys.otp(purpose, email))
            .arg(hex::encode(mac.0));
        let n: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(n == 1)
    }

    async fn discard(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
    ) -> Result<(), OtpStoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.inner.keys.otp(purpose, email));
        self.inner
            .exec
            .run::<()>(Request::Cmd(&cmd), Retry::Idempotent)
            .await?;
        Ok(())
    }

    async fn claim_send_slot(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        cooldown: Duration,
    ) -> Result<SendSlot, OtpStoreError> {
        let mut call = self.inner.scripts.otp_claim_slot.prepare_invoke();
        call.key(self.inner.keys.otp_cooldown(purpose, email))
            .arg(ttl_millis(cooldown));
        let left_ms: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(match u64::try_from(left_ms) {
            // -1: the slot was free and the cooldown now runs.
            Err(_) => SendSlot::Granted,
            Ok(ms) => SendSlot::Cooldown {
                retry_after: Duration::from_millis(ms).max(MIN_RETRY_AFTER),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_decodes_and_rejects_garbage() {
        let exp = Utc::now();
        let text = exp.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let a = decode_attempt(&"ab".repeat(32), &text, 3).unwrap();
        assert_eq!(a.attempts, 3);
        assert_eq!(a.otp.expires_at, exp);
        assert!(a.otp.mac.ct_eq(&OtpMac([0xab; 32])));

        assert!(matches!(
            decode_attempt("zz", &text, 1),
            Err(Failure::Other(_))
        ));
        assert!(matches!(
            decode_attempt(&"ab".repeat(32), "yesterday", 1),
            Err(Failure::Other(_))
        ));
        assert!(matches!(
            decode_attempt(&"ab".repeat(32), &text, -1),
            Err(Failure::Other(_))
        ));
    }
}

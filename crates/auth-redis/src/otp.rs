//! [`OtpStore`] on Redis.
//!
//! The codes of one (purpose, address) are a hash `{codes: JSON array, attempts: n}`, the
//! array holding the last few codes oldest first as `{mac: hex, exp: RFC 3339, pw?: PHC
//! string}`; Redis drops it after `retain_for`. The mail cooldown is a separate key set with
//! `NX PX`.

use std::time::Duration;

use auth_core::{
    EmailAddress, OtpAttempt, OtpMac, OtpPurpose, OtpStore, OtpStoreError, PasswordHash, SendSlot,
    StoredOtp,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::pool::{Failure, Request, Retry};
use crate::session::ttl_millis;
use crate::RedisStore;

/// The port promises a cooldown answer of at least this much.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One code as the scripts keep it.
#[derive(Debug, Serialize, Deserialize)]
struct CodeJson {
    mac: String,
    exp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pw: Option<String>,
    /// The client that asked for a reset or login code (its budget-keyed IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
}

fn encode_code(otp: &StoredOtp) -> Result<String, Failure> {
    // Nanosecond precision, so the expiry read back equals the one written.
    let code = CodeJson {
        mac: hex::encode(otp.mac.0),
        exp: otp.expires_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        pw: otp.pending_password.as_ref().map(|h| h.as_str().to_owned()),
        by: otp.requested_by.map(|ip| ip.to_string()),
    };
    serde_json::to_string(&code).map_err(|_| Failure::corrupt("one-time code", "cannot encode"))
}

fn decode_code(code: CodeJson) -> Result<StoredOtp, Failure> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&code.mac, &mut bytes)
        .map_err(|_| Failure::corrupt("one-time code", "MAC is not 32 hex bytes"))?;
    let expires_at = DateTime::parse_from_rfc3339(&code.exp)
        .map_err(|_| Failure::corrupt("one-time code", "expiry is not RFC 3339"))?
        .with_timezone(&Utc);
    Ok(StoredOtp {
        mac: OtpMac(bytes),
        expires_at,
        pending_password: code.pw.map(PasswordHash::new),
        requested_by: code
            .by
            .map(|ip| ip.parse())
            .transpose()
            .map_err(|_| Failure::corrupt("one-time code", "requester is not an IP address"))?,
    })
}

fn decode_attempt(codes: &str, attempts: i64) -> Result<OtpAttempt, Failure> {
    let codes: Vec<CodeJson> = serde_json::from_str(codes)
        .map_err(|_| Failure::corrupt("one-time code", "codes are not a JSON array"))?;
    let attempts = u32::try_from(attempts)
        .map_err(|_| Failure::corrupt("one-time code", "attempt counter out of range"))?;
    Ok(OtpAttempt {
        codes: codes
            .into_iter()
            .map(decode_code)
            .collect::<Result<_, _>>()?,
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
        keep: usize,
        retain_for: Duration,
    ) -> Result<(), OtpStoreError> {
        let mut call = self.inner.scripts.otp_put.prepare_invoke();
        call.key(self.inner.keys.otp(purpose, email))
            .arg(encode_code(&otp)?)
            .arg(keep)
            .arg(ttl_millis(retain_for));
        // Not retried: a second run would add the code twice.
        self.inner
            .exec
            .run::<i64>(Request::Script(&call), Retry::Never)
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
        let reply: Option<(String, i64)> = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(reply
            .map(|(codes, n)| decode_attempt(&codes, n))
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
    fn codes_round_trip_and_garbage_is_refused() {
        let exp = Utc::now();
        let with_password = StoredOtp {
            mac: OtpMac([0xab; 32]),
            expires_at: exp,
            pending_password: Some(PasswordHash::new(
                "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
            )),
            requested_by: Some("2001:db8::".parse().unwrap()),
        };
        let without = StoredOtp {
            pending_password: None,
            requested_by: None,
            ..with_password.clone()
        };
        let array = format!(
            "[{},{}]",
            encode_code(&with_password).unwrap(),
            encode_code(&without).unwrap()
        );
        let a = decode_attempt(&array, 3).unwrap();
        assert_eq!(a.attempts, 3);
        assert_eq!(a.codes, vec![with_password, without]);

        let text = exp.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        for garbage in [
            "not json".to_owned(),
            format!(r#"[{{"mac":"zz","exp":"{text}"}}]"#),
            format!(r#"[{{"mac":"{}","exp":"yesterday"}}]"#, "ab".repeat(32)),
        ] {
            assert!(
                matches!(decode_attempt(&garbage, 1), Err(Failure::Other(_))),
                "{garbage}"
            );
        }
        assert!(matches!(decode_attempt("[]", -1), Err(Failure::Other(_))));
    }
}

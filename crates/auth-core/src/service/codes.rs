//! One-time codes, shared by signup, verification, resend and password reset: claim a mail
//! slot, issue (store the MAC, mail the code), match (count the attempt, compare in constant
//! time) and consume (atomically, so one of several right answers wins).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{add, AuthService, Failure, OtpCheckError};
use crate::domain::email::EmailAddress;
use crate::domain::otp::{OtpCode, OtpMac, OtpPurpose, StoredOtp};
use crate::ports::{MailMessage, SendSlot};

/// How long an expired code is still kept, so that using it says "expired" rather than
/// "invalid". The store drops it after `otp_ttl + EXPIRED_CODE_GRACE`.
const EXPIRED_CODE_GRACE: Duration = Duration::from_secs(15 * 60);

impl AuthService {
    /// `Ok(Ok(()))` when a mail may go out now, `Ok(Err(retry_after))` inside the cooldown.
    pub(super) async fn claim_slot(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
    ) -> Result<Result<(), Duration>, Failure> {
        match self
            .ports
            .otps
            .claim_send_slot(purpose, email, self.config.mail_cooldown)
            .await?
        {
            SendSlot::Granted => Ok(Ok(())),
            SendSlot::Cooldown { retry_after } => Ok(Err(retry_after.max(Duration::from_secs(1)))),
        }
    }

    /// Generates a code, stores its MAC (replacing any earlier code) and mails it.
    pub(super) async fn issue_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let code = self.ports.random.otp_code();
        let stored = StoredOtp {
            mac: self.otp_secret.mac(purpose, email, &code),
            expires_at: add(now, self.config.otp_ttl),
        };
        self.ports
            .otps
            .put(
                purpose,
                email,
                stored,
                self.config.otp_ttl + EXPIRED_CODE_GRACE,
            )
            .await?;
        let valid_for = self.config.otp_ttl;
        let message = match purpose {
            OtpPurpose::VerifyEmail => MailMessage::VerifyEmail { code, valid_for },
            OtpPurpose::ResetPassword => MailMessage::ResetPassword { code, valid_for },
        };
        self.ports.mailer.send(email, &message).await?;
        Ok(())
    }

    /// Counts an attempt, then checks expiry and the MAC (in constant time), then consumes the
    /// code so that exactly one of several concurrent right answers wins.
    pub(super) async fn check_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        code: &OtpCode,
    ) -> Result<(), OtpCheckError> {
        let candidate = self.match_code(purpose, email, code).await?;
        self.consume_code(purpose, email, &candidate).await
    }

    /// Counts an attempt and compares the code (in constant time) without using it up; the
    /// code's MAC, to consume it with, when it is right, live and not exhausted.
    pub(super) async fn match_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        code: &OtpCode,
    ) -> Result<OtpMac, OtpCheckError> {
        let Some(attempt) = self.ports.otps.record_attempt(purpose, email).await? else {
            return Err(OtpCheckError::InvalidOtp);
        };
        if attempt.attempts > self.config.otp_max_attempts {
            // The code stays (dead: every later attempt counts higher) until its retention
            // ends. Deleting it here would also kill it under a concurrent attempt that is
            // within the limit and about to consume it with the right answer.
            warn!(
                purpose = purpose.as_str(),
                "code attempt refused: attempts exhausted"
            );
            return Err(OtpCheckError::TooManyAttempts);
        }
        if self.ports.clock.now() >= attempt.otp.expires_at {
            return Err(OtpCheckError::OtpExpired);
        }
        let candidate = self.otp_secret.mac(purpose, email, code);
        if !attempt.otp.mac.ct_eq(&candidate) {
            info!(
                purpose = purpose.as_str(),
                attempts = attempt.attempts,
                "wrong code"
            );
            return Err(OtpCheckError::InvalidOtp);
        }
        Ok(candidate)
    }

    /// Uses the code up, atomically: of two requests with the right code, one gets `Ok`.
    pub(super) async fn consume_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        candidate: &OtpMac,
    ) -> Result<(), OtpCheckError> {
        if !self.ports.otps.consume(purpose, email, candidate).await? {
            // Someone else used it a moment ago.
            return Err(OtpCheckError::InvalidOtp);
        }
        Ok(())
    }
}

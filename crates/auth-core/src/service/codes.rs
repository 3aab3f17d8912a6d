//! One-time codes, shared by signup, verification, resend and password reset: claim a mail
//! slot, issue (store the MAC, mail the code), match (count the attempt, compare in constant
//! time) and consume (atomically, so one of several right answers wins).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{add, AuthService, Failure, OtpCheckError};
use crate::domain::email::EmailAddress;
use crate::domain::otp::{OtpCode, OtpMac, OtpPurpose, StoredOtp};
use crate::domain::password::PasswordHash;
use crate::domain::session::ClientInfo;
use crate::ports::{MailMessage, Quota, RateDecision, RateKey, RateSubject, SendSlot};
use crate::throttle::{Action, CodeRefusal};

/// How many codes of one (purpose, address) stay valid at once (the first and the newest
/// ones): a slow mail must not turn into "invalid code" because a resend or a repeated signup
/// issued a newer one, and nobody can push the owner's code out by asking for more: ten is
/// what the default per-address mail budget (10 an hour) can mail within a code's lifetime.
pub(super) const LIVE_CODES: usize = 10;

/// Which mail carries a verification code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeMail {
    /// The first code of a new account (or any reset code).
    First,
    /// A code for an address that already has a pending signup: the mail says when it was
    /// asked for and that an earlier code still works with the password chosen then.
    Again,
}

/// Who a code goes to and how: which mail, the client that asked for it (its attempts are
/// counted apart), and the language of the mail (an `Accept-Language` value).
#[derive(Debug, Clone, Copy)]
pub(super) struct CodeDelivery<'a> {
    pub(super) mail: CodeMail,
    pub(super) requested_by: Option<&'a ClientInfo>,
    pub(super) language: Option<&'a str>,
}

/// How long an expired code is still kept, so that using it says "expired" rather than
/// "invalid". The store drops it after `otp_ttl + EXPIRED_CODE_GRACE`.
const EXPIRED_CODE_GRACE: Duration = Duration::from_secs(15 * 60);

/// The action whose budgets guard the attempts on a code of `purpose`, if they are counted
/// per requester (reset and login codes).
pub(super) fn guarded_action(purpose: OtpPurpose) -> Option<Action> {
    match purpose {
        OtpPurpose::VerifyEmail => None,
        OtpPurpose::ResetPassword => Some(Action::ResetPassword),
        OtpPurpose::Login => Some(Action::LoginCodeVerify),
        OtpPurpose::ChangeEmail => None,
    }
}

impl AuthService {
    /// The attempts one client (or all strangers together) may make on the codes of one
    /// address: `otp_max_attempts` per code lifetime.
    pub(super) fn code_attempts(&self) -> Option<Quota> {
        Quota::new(self.config.otp_max_attempts, self.config.otp_ttl)
    }

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

    /// Generates a code, stores its MAC next to the last few live ones (and, for a
    /// verification code, the password of the signup it completes) and mails it as `mail`
    /// says.
    pub(super) async fn issue_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        now: DateTime<Utc>,
        pending_password: Option<PasswordHash>,
        delivery: CodeDelivery<'_>,
    ) -> Result<(), Failure> {
        let message = self
            .store_code(purpose, email, now, pending_password, delivery)
            .await?;
        self.ports
            .mailer
            .send_localized(email, &message, delivery.language)
            .await?;
        Ok(())
    }

    /// The first half of [`issue_code`](Self::issue_code): generates and stores the code, and
    /// returns the mail that carries it, for the caller to send (or to queue with the change it
    /// belongs to).
    pub(super) async fn store_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        now: DateTime<Utc>,
        pending_password: Option<PasswordHash>,
        delivery: CodeDelivery<'_>,
    ) -> Result<MailMessage, Failure> {
        let code = self.ports.random.otp_code();
        let stored = StoredOtp {
            mac: self.otp_secret.mac(purpose, email, &code),
            expires_at: add(now, self.config.otp_ttl),
            pending_password,
            requested_by: delivery
                .requested_by
                .and_then(|c| self.throttle.client_key(c)),
        };
        self.ports
            .otps
            .put(
                purpose,
                email,
                stored,
                LIVE_CODES,
                self.config.otp_ttl + EXPIRED_CODE_GRACE,
            )
            .await?;
        let valid_for = self.config.otp_ttl;
        Ok(match (purpose, delivery.mail) {
            (OtpPurpose::VerifyEmail, CodeMail::First) => {
                MailMessage::VerifyEmail { code, valid_for }
            }
            (OtpPurpose::VerifyEmail, CodeMail::Again) => MailMessage::VerifyEmailAgain {
                code,
                valid_for,
                requested_at: now,
            },
            (OtpPurpose::ResetPassword, _) => MailMessage::ResetPassword { code, valid_for },
            (OtpPurpose::Login, _) => MailMessage::LoginCode { code, valid_for },
            (OtpPurpose::ChangeEmail, _) => MailMessage::EmailChangeCode { code, valid_for },
        })
    }

    /// Counts an attempt, then checks the code against every live one (in constant time),
    /// then consumes the one it matches so that exactly one of several concurrent right
    /// answers wins. The matched code, with the pending password it carries.
    pub(super) async fn check_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        code: &OtpCode,
        client: &ClientInfo,
    ) -> Result<StoredOtp, OtpCheckError> {
        let matched = self.match_code(purpose, email, code, client).await?;
        self.consume_code(purpose, email, &matched.mac).await?;
        Ok(matched)
    }

    /// Counts an attempt and compares the code (in constant time) with each stored one,
    /// without using it up; the stored code it matches, when that one is live and the
    /// attempt budget is not exhausted.
    ///
    /// A verification code has one attempt budget shared by everybody: the store's counter.
    /// Reset and login codes are guarded per requester: the client that asked for one of the
    /// live codes spends only its own budget on the limiter; every other client spends the
    /// address's budgets for strangers (see [`crate::throttle`]) and is also stopped by the
    /// store's shared counter. So guesses from elsewhere never use up the owner's attempts.
    /// (With the [`Unlimited`](crate::Unlimited) limiter, the requester's attempts are not
    /// bounded, like every other budget.)
    pub(super) async fn match_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        code: &OtpCode,
        client: &ClientInfo,
    ) -> Result<StoredOtp, OtpCheckError> {
        let Some(attempt) = self.ports.otps.record_attempt(purpose, email).await? else {
            return Err(self.no_code(purpose, email, client).await?);
        };
        let max_attempts = match guarded_action(purpose) {
            None => self.config.otp_max_attempts,
            Some(action) => {
                let me = self.throttle.client_key(client);
                let requester = me.is_some() && attempt.codes.iter().any(|c| c.requested_by == me);
                match self
                    .throttle
                    .code_attempt(action, client, email, requester, self.code_attempts())
                    .await?
                {
                    Ok(()) => {}
                    Err(CodeRefusal::Retry(retry_after)) => {
                        return Err(OtpCheckError::TooManyRequests { retry_after })
                    }
                    Err(CodeRefusal::AttemptsSpent) => {
                        warn!(
                            purpose = purpose.as_str(),
                            requester, "code attempt refused: this client's attempts are spent"
                        );
                        return Err(OtpCheckError::TooManyAttempts);
                    }
                }
                if requester {
                    // Only this client's own budget counts: the shared counter also counts
                    // strangers' attempts, refused ones included.
                    u32::MAX
                } else {
                    self.config.otp_max_attempts
                }
            }
        };
        if attempt.attempts > max_attempts {
            // The codes stay (dead: every later attempt counts higher) until their retention
            // ends. Deleting them here would also kill them under a concurrent attempt that is
            // within the limit and about to consume one with the right answer.
            warn!(
                purpose = purpose.as_str(),
                "code attempt refused: attempts exhausted"
            );
            return Err(OtpCheckError::TooManyAttempts);
        }
        let now = self.ports.clock.now();
        let candidate = self.otp_secret.mac(purpose, email, code);
        // Every stored code is compared, so the time taken does not tell which one matched.
        let mut matched = None;
        for stored in attempt.codes {
            if stored.mac.ct_eq(&candidate) && matched.is_none() {
                matched = Some(stored);
            }
        }
        match matched {
            Some(stored) if now < stored.expires_at => Ok(stored),
            Some(_) => Err(OtpCheckError::OtpExpired),
            None => {
                info!(
                    purpose = purpose.as_str(),
                    attempts = attempt.attempts,
                    "wrong code"
                );
                Err(OtpCheckError::InvalidOtp)
            }
        }
    }

    /// The answer for an address with no code: like a live code's, `InvalidOtp` for the first
    /// `otp_max_attempts` tries per code lifetime and `TooManyAttempts` after, so the switch to
    /// 429 does not tell that a code (and so an account) exists.
    async fn no_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<OtpCheckError, Failure> {
        // The per-address budget a stranger spends against a live code is spent here too, so
        // the `too_many_requests` that ends it comes at the same try with or without a code.
        if let Some(action) = guarded_action(purpose) {
            match self
                .throttle
                .code_attempt(action, client, email, false, self.code_attempts())
                .await?
            {
                Ok(()) => {}
                Err(CodeRefusal::Retry(retry_after)) => {
                    return Ok(OtpCheckError::TooManyRequests { retry_after })
                }
                Err(CodeRefusal::AttemptsSpent) => return Ok(OtpCheckError::TooManyAttempts),
            }
        }
        let Some(quota) = Quota::new(self.config.otp_max_attempts, self.config.otp_ttl) else {
            return Ok(OtpCheckError::InvalidOtp);
        };
        let bucket = match purpose {
            OtpPurpose::VerifyEmail => "verify-code-miss",
            OtpPurpose::ResetPassword => "reset-code-miss",
            OtpPurpose::Login => "login-code-miss",
            OtpPurpose::ChangeEmail => "email-change-code-miss",
        };
        let key = RateKey {
            bucket,
            subject: RateSubject::Email(email.clone()),
        };
        Ok(match self.ports.limiter.acquire(&key, quota).await? {
            RateDecision::Allowed => OtpCheckError::InvalidOtp,
            RateDecision::Limited { .. } => OtpCheckError::TooManyAttempts,
        })
    }

    /// Mails a reset or login code to `email` if it has a verified account, at most once per
    /// cooldown (inside one, silently nothing), and gives the requesting client fresh attempts
    /// on the codes of the address. The same outcome whatever the address: a mail failure is
    /// logged, not returned.
    pub(super) async fn mail_guarded_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<(), Failure> {
        if self.claim_slot(purpose, email).await?.is_err() {
            return Ok(());
        }
        let Some(creds) = self.ports.users.find_by_email(email).await? else {
            return Ok(());
        };
        if !creds.user.is_verified() {
            return Ok(());
        }
        if creds.status.is_disabled() {
            // No way back in through a mailed code (login or reset) while an administrator
            // keeps the account disabled, and nobody can have the service mail it meanwhile.
            info!(user_id = %creds.user.id, purpose = purpose.as_str(), "no code: the account is disabled");
            return Ok(());
        }
        let now = self.ports.clock.now();
        let sent = self
            .issue_code(
                purpose,
                email,
                now,
                None,
                CodeDelivery {
                    mail: CodeMail::First,
                    requested_by: Some(client),
                    language: creds.language.as_deref(),
                },
            )
            .await;
        match sent {
            // Answering differently would tell that the account exists.
            Err(e) => warn!(error = %e, purpose = purpose.as_str(), "code not delivered"),
            Ok(()) => {
                info!(user_id = %creds.user.id, purpose = purpose.as_str(), "code sent");
                if purpose == OtpPurpose::ResetPassword {
                    self.record_event(
                        creds.user.id,
                        crate::ports::SecurityEventKind::ResetRequested,
                        client,
                    )
                    .await;
                }
                if let Some(action) = guarded_action(purpose) {
                    self.throttle
                        .code_requested(action, client, email, self.code_attempts())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Uses the code up, atomically: of two requests with the right code, one gets `Ok`.
    pub(super) async fn consume_code(
        &self,
        purpose: OtpPurpose,
        email: &EmailAddress,
        mac: &OtpMac,
    ) -> Result<(), OtpCheckError> {
        if !self.ports.otps.consume(purpose, email, mac).await? {
            // Someone else used it a moment ago.
            return Err(OtpCheckError::InvalidOtp);
        }
        Ok(())
    }
}

//! Change of address: asked for inside a session with the password (a code goes to the new
//! address, a notice to the current one), made when the code comes back.

use tracing::{info, instrument, warn};

use super::codes::LIVE_CODES;
use super::guard::Reauth;
use super::mfa::StepUp;
use super::{add, AuthService, ChangeEmailError, ConfirmEmailChangeError, Failure};
use crate::domain::email::EmailAddress;
use crate::domain::mfa::SecondFactor;
use crate::domain::otp::{OtpCode, OtpMac, OtpPurpose, StoredOtp};
use crate::domain::password::{PasswordAttempt, PasswordHash};
use crate::domain::session::{ClientInfo, Session};
use crate::domain::user::User;
use crate::ports::{MailMessage, SecurityEventKind, UserRepoError};

/// How long an expired change code is still kept, so that using it says "expired".
const EXPIRED_CODE_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl AuthService {
    /// The MAC of a change-of-address code: bound to the account's current address, the new
    /// address and the password hash at the time of the request, so a code moves the account
    /// only to the address it was mailed to, and only while the password is unchanged.
    fn change_mac(
        &self,
        current: &EmailAddress,
        new_email: &EmailAddress,
        password_hash: &PasswordHash,
        code: &OtpCode,
    ) -> OtpMac {
        self.otp_secret.mac_bound(
            OtpPurpose::ChangeEmail,
            current,
            &[
                new_email.as_str().as_bytes(),
                password_hash.as_str().as_bytes(),
            ],
            code,
        )
    }

    /// Asks to move the session's account to `new_email`. The current password is required,
    /// under the re-authentication budgets (a stolen session cannot guess it), and with TOTP
    /// on a second factor too. Then, at most once per mail cooldown per account, a code is
    /// mailed to the new address and a notice to the current one; nothing changes until
    /// [`AuthService::confirm_email_change`] gets the code.
    ///
    /// Enumeration-safe: when `new_email` has an account already, the answer and the work are
    /// the same (a code is stored, two mails go out), but the owner of that address is mailed
    /// a notice instead of the code.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn request_email_change(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        new_email: &EmailAddress,
        factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), ChangeEmailError> {
        let creds = match self.reauthenticate(session, password, client).await {
            Ok(creds) => creds,
            Err(Reauth::Gone | Reauth::SessionEnded) => {
                return Err(ChangeEmailError::Unauthenticated)
            }
            Err(Reauth::WrongPassword) => {
                info!("change of address refused: wrong password");
                return Err(ChangeEmailError::InvalidCredentials);
            }
            Err(Reauth::Stop(stop)) => return Err(stop.into()),
        };
        match self.step_up(session, &creds, factor, client).await {
            Ok(()) => {}
            Err(StepUp::Required) => return Err(ChangeEmailError::SecondFactorRequired),
            Err(StepUp::Wrong) => return Err(ChangeEmailError::InvalidSecondFactor),
            Err(StepUp::SessionEnded) => return Err(ChangeEmailError::Unauthenticated),
            Err(StepUp::Failure(f)) => return Err(f.into()),
        }
        if creds.status.is_disabled() {
            return Err(ChangeEmailError::Unauthenticated);
        }
        let current = &creds.user.email;
        if current == new_email {
            return Err(ChangeEmailError::SameAddress);
        }
        if let Err(retry_after) = self.claim_slot(OtpPurpose::ChangeEmail, current).await? {
            return Err(ChangeEmailError::TooManyRequests { retry_after });
        }
        // The same work whether or not the new address is taken: a code is stored either way
        // (nobody receives it when the address is taken), and two mails go out. Only a
        // verified account takes an address: a pending signup there gives way at the
        // confirmation, since whoever types the code reads that mailbox.
        let taken = self
            .ports
            .users
            .find_by_email(new_email)
            .await?
            .is_some_and(|holder| holder.user.is_verified());
        let code = self.ports.random.otp_code();
        let now = self.ports.clock.now();
        let stored = StoredOtp {
            mac: self.change_mac(current, new_email, &creds.password_hash, &code),
            expires_at: add(now, self.config.otp_ttl),
            pending_password: None,
            requested_by: None,
        };
        self.ports
            .otps
            .put(
                OtpPurpose::ChangeEmail,
                current,
                stored,
                LIVE_CODES,
                self.config.otp_ttl + EXPIRED_CODE_GRACE,
            )
            .await?;
        let to_new = if taken {
            MailMessage::EmailChangeAddressTaken
        } else {
            MailMessage::EmailChangeCode {
                code,
                valid_for: self.config.otp_ttl,
            }
        };
        let language = creds.language.as_deref();
        if let Err(e) = self
            .ports
            .mailer
            .send_localized(new_email, &to_new, language)
            .await
        {
            // Answering differently would tell whether the address is taken.
            warn!(error = %e, "change-of-address mail not delivered");
        }
        self.send_best_effort(current, &MailMessage::EmailChangeRequested, language)
            .await;
        self.record_event(
            creds.user.id,
            SecurityEventKind::EmailChangeRequested,
            client,
        )
        .await;
        info!("change of address asked for");
        Ok(())
    }

    /// Moves the session's account to `new_email` with the code mailed there by
    /// [`AuthService::request_email_change`]. The code is single-use and shares the attempt
    /// budget of its account's codes (`otp_max_attempts`); it works only for the address it
    /// was mailed to and only while the password is the one of the request. The move is one
    /// compare-and-set in the user store (the address's unique index decides between two
    /// accounts moving to one address: the loser gets `InvalidOtp` and a notice at the new
    /// address). Then every other session ends (the revocation epochs of both addresses are
    /// raised first), this session carries the new address, a notice goes to the former
    /// address, and the security history records it.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn confirm_email_change(
        &self,
        session: &Session,
        new_email: &EmailAddress,
        code: &OtpCode,
        client: &ClientInfo,
    ) -> Result<User, ConfirmEmailChangeError> {
        let Some(creds) = self.ports.users.find_by_id(session.user.id).await? else {
            return Err(ConfirmEmailChangeError::Unauthenticated);
        };
        if creds.status.is_disabled() {
            return Err(ConfirmEmailChangeError::Unauthenticated);
        }
        let current = creds.user.email.clone();
        let purpose = OtpPurpose::ChangeEmail;
        let language = creds.language.as_deref();
        let Some(attempt) = self.ports.otps.record_attempt(purpose, &current).await? else {
            return Err(self
                .wrong_change_code(
                    session,
                    client,
                    language,
                    false,
                    ConfirmEmailChangeError::InvalidOtp,
                )
                .await?);
        };
        if attempt.attempts > self.config.otp_max_attempts {
            warn!("change-of-address code refused: attempts exhausted");
            return Err(self
                .wrong_change_code(
                    session,
                    client,
                    language,
                    true,
                    ConfirmEmailChangeError::TooManyAttempts,
                )
                .await?);
        }
        let now = self.ports.clock.now();
        let candidate = self.change_mac(&current, new_email, &creds.password_hash, code);
        let mut matched = None;
        for stored in attempt.codes {
            if stored.mac.ct_eq(&candidate) && matched.is_none() {
                matched = Some(stored);
            }
        }
        let stored = match matched {
            Some(stored) if now < stored.expires_at => stored,
            Some(_) => return Err(ConfirmEmailChangeError::OtpExpired),
            None => {
                info!(attempts = attempt.attempts, "wrong change-of-address code");
                return Err(self
                    .wrong_change_code(
                        session,
                        client,
                        language,
                        false,
                        ConfirmEmailChangeError::InvalidOtp,
                    )
                    .await?);
            }
        };
        if !self
            .ports
            .otps
            .consume(purpose, &current, &stored.mac)
            .await?
        {
            return Err(ConfirmEmailChangeError::InvalidOtp);
        }
        let user = match self
            .ports
            .users
            .set_email(
                creds.user.id,
                &current,
                new_email,
                &creds.password_hash,
                now,
            )
            .await
        {
            Ok(user) => user,
            // The password changed, the account was disabled or moved since it was read.
            Err(UserRepoError::NotFound) => return Err(ConfirmEmailChangeError::InvalidOtp),
            Err(UserRepoError::Duplicate) => {
                // Another account took the address after the code was mailed. Whoever holds
                // the code reads this mailbox: tell them there, not in the answer.
                info!("change of address lost: the address was taken meanwhile");
                self.send_best_effort(new_email, &MailMessage::EmailChangeAddressTaken, language)
                    .await;
                return Err(ConfirmEmailChangeError::InvalidOtp);
            }
            Err(e) => return Err(e.into()),
        };
        // The verification codes of a pending signup the move replaced verify nothing now.
        self.ports
            .otps
            .discard(OtpPurpose::VerifyEmail, new_email)
            .await?;
        self.ports
            .sessions
            .bump_revocation_epoch(new_email)
            .await
            .map_err(Failure::from)?;
        let revoked = self.revoke_all(user.id, &current, Some(session.id)).await?;
        let moved = Session {
            user: user.clone(),
            ..session.clone()
        };
        let ttl = self.config.session_store_ttl(moved.expires_at, now);
        if !self.ports.sessions.touch(&moved, ttl).await? {
            // Ended meanwhile (a logout everywhere): it stays ended.
            info!("the session of the change of address ended meanwhile");
        }
        info!(revoked, "address changed; other sessions revoked");
        self.record_event(user.id, SecurityEventKind::EmailChanged, client)
            .await;
        self.send_best_effort(&current, &MailMessage::EmailChanged, language)
            .await;
        Ok(user)
    }

    /// A wrong (or, `refused`, a refused) change-of-address code inside a session: recorded
    /// in the history and counted against the session's hard limit like a wrong password
    /// (a stolen session guessing codes ends as one guessing passwords does). `answer`, or
    /// `Unauthenticated` once the session is ended.
    async fn wrong_change_code(
        &self,
        session: &Session,
        client: &ClientInfo,
        language: Option<&str>,
        refused: bool,
        answer: ConfirmEmailChangeError,
    ) -> Result<ConfirmEmailChangeError, Failure> {
        Ok(
            match self
                .reauth_failed(session, client, language, refused)
                .await?
            {
                None => answer,
                Some(_) => ConfirmEmailChangeError::Unauthenticated,
            },
        )
    }
}

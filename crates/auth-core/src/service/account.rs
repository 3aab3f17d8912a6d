//! Accounts: signup, verification of the address, resend of the code, deletion.

use std::time::Duration;

use chrono::{DateTime, Utc};

use tracing::{info, instrument, warn, Span};

use super::changes::Companion;
use super::codes::{CodeDelivery, CodeMail};
use super::guard::Reauth;
use super::mfa::StepUp;
use super::{AuthService, DeleteAccountError, ResendOtpError, SignupError, VerifyOtpError};
use crate::domain::email::EmailAddress;
use crate::domain::mfa::SecondFactor;
use crate::domain::otp::{OtpCode, OtpPurpose};
use crate::domain::password::{Password, PasswordAttempt, PasswordHash};
use crate::domain::session::{ClientInfo, Session};
use crate::domain::user::{NewUser, User, UserCredentials, UserId};
use crate::ports::{MailMessage, SecurityEventKind, SendSlot, UserRepoError};
use crate::throttle::Action;

impl AuthService {
    /// Creates an unverified account and mails a verification code.
    ///
    /// For an address with an unverified account, the pending password and code are replaced
    /// (see the pre-account-hijacking rule on [`AuthService`]) and a new code is mailed,
    /// subject to the mail cooldown. For a verified account: [`SignupError::EmailTaken`], or
    /// with enumeration protection on, a notice to the owner and a response shaped like a new
    /// signup. Spends the `signup` budgets of `client` and the address.
    ///
    /// With enumeration protection on, every signup that passes the request budgets answers
    /// the same: a user shaped like a new, unverified one (a random id, created now), never a
    /// pending account's id or signup time; a mail cooldown is enforced silently.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn signup(
        &self,
        email: EmailAddress,
        password: Password,
        client: &ClientInfo,
    ) -> Result<User, SignupError> {
        let _slot = self.admit(Action::Signup, client, &email, true).await?;
        if self.is_breached(&password).await {
            info!("signup refused: the password appears in a data breach");
            return Err(SignupError::PasswordBreached);
        }
        // Microseconds, as the stores keep them: a decoy and a new account look alike.
        let now = chrono::SubsecRound::trunc_subsecs(self.ports.clock.now(), 6);
        match self.ports.users.find_by_email(&email).await? {
            Some(existing) if existing.user.is_verified() => {
                if !self.config.enumeration_protection {
                    return Err(SignupError::EmailTaken);
                }
                // Same work as a real signup (one hash), then a notice instead of a code.
                self.ports.hasher.hash(password.secret()).await?;
                if let SendSlot::Granted = self
                    .ports
                    .otps
                    .claim_send_slot(OtpPurpose::VerifyEmail, &email, self.config.mail_cooldown)
                    .await?
                {
                    self.send_best_effort(
                        &email,
                        &MailMessage::SignupAttempted,
                        existing.language.as_deref(),
                    )
                    .await;
                }
                Ok(self.decoy_user(email, now))
            }
            Some(existing) => {
                Span::current().record("user_id", tracing::field::display(existing.user.id));
                let hide = self.config.enumeration_protection;
                if !hide {
                    // A signup racing the one that created the account moments ago answers as
                    // a repeat inside that signup's mail cooldown would, so a race has one
                    // winner; the loser is told when to try again.
                    let since_creation = super::since(existing.user.created_at, now);
                    let slot = if since_creation < self.config.mail_cooldown {
                        Err((self.config.mail_cooldown - since_creation)
                            .max(Duration::from_secs(1)))
                    } else {
                        self.claim_slot(OtpPurpose::VerifyEmail, &email).await?
                    };
                    if let Err(retry_after) = slot {
                        return Err(SignupError::TooManyRequests { retry_after });
                    }
                } else {
                    // Hidden answers cannot say "try again later", so the cooldown does not
                    // stop a repeated signup: dropping it silently would leave the owner, who
                    // signs up moments after a stranger took the address, only codes bound to
                    // the stranger's password. The per-address mail budget still bounds the
                    // mail; the cooldown is started for resends.
                    let _ = self.claim_slot(OtpPurpose::VerifyEmail, &email).await?;
                }
                let hash = self.ports.hasher.hash(password.secret()).await?;
                self.store_repeated_signup(existing, email, hash, now).await
            }
            None => {
                let hash = self.ports.hasher.hash(password.secret()).await?;
                let new_user = NewUser {
                    id: UserId::from_uuid(self.ports.random.uuid()),
                    email: email.clone(),
                    password_hash: hash.clone(),
                    created_at: now,
                    language: client.language.clone(),
                };
                let language = client.language.as_deref();
                // The code is stored before the account is written, so that the mail written
                // with the account always carries a code that works; should the write fail,
                // the code was never mailed to anyone.
                let message = self
                    .store_code(
                        OtpPurpose::VerifyEmail,
                        &email,
                        now,
                        Some(hash.clone()),
                        CodeDelivery {
                            mail: CodeMail::First,
                            requested_by: None,
                            language,
                        },
                    )
                    .await?;
                let mail = Companion {
                    to: &email,
                    message,
                    language,
                };
                let (user, written) = match self.create_user(&new_user, mail).await {
                    Ok(created) => created,
                    Err(UserRepoError::Duplicate) if self.config.enumeration_protection => {
                        // Lost a race with another signup of this address: count as a repeated
                        // signup, so this one too mails a code for its own password. (Dropped
                        // silently, it would leave the owner only the other one's code.)
                        return match self.ports.users.find_by_email(&email).await? {
                            Some(existing) if !existing.user.is_verified() => {
                                self.store_repeated_signup(existing, email, hash, now).await
                            }
                            _ => Ok(self.decoy_user(email, now)),
                        };
                    }
                    Err(UserRepoError::Duplicate) => return Err(SignupError::EmailTaken),
                    Err(e) => return Err(e.into()),
                };
                Span::current().record("user_id", tracing::field::display(user.id));
                // A brand-new account: the code goes out even inside a cooldown left over
                // from, e.g., a resend for this address before it existed.
                let _ = self
                    .ports
                    .otps
                    .claim_send_slot(OtpPurpose::VerifyEmail, &email, self.config.mail_cooldown)
                    .await?;
                self.deliver(written).await?;
                info!("account created");
                self.record_event(user.id, SecurityEventKind::Signup, client)
                    .await;
                Ok(user)
            }
        }
    }

    /// A signup for an address with a pending account: stores the password of this signup
    /// with its own code and mails it (see the pre-account-hijacking rule on [`AuthService`]).
    async fn store_repeated_signup(
        &self,
        existing: UserCredentials,
        email: EmailAddress,
        hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<User, SignupError> {
        let hide = self.config.enumeration_protection;
        // Never at the account's creation time, not even when a racing signup read the clock
        // first: a resend tells a repeated signup by `updated_at` after `created_at`.
        let now = now.max(existing.user.created_at + chrono::TimeDelta::microseconds(1));
        let language = existing.language.as_deref();
        let message = self
            .store_code(
                OtpPurpose::VerifyEmail,
                &email,
                now,
                Some(hash.clone()),
                CodeDelivery {
                    mail: CodeMail::Again,
                    requested_by: None,
                    language,
                },
            )
            .await?;
        let mail = Companion {
            to: &email,
            message,
            language,
        };
        match self
            .replace_unverified_password(existing.user.id, &hash, now, mail)
            .await
        {
            Ok(written) => self.deliver(written).await?,
            // Verified in the meantime: the code stored above was mailed to nobody, and
            // verifying an account that is already verified changes nothing.
            Err(UserRepoError::NotFound) if hide => return Ok(self.decoy_user(email, now)),
            Err(UserRepoError::NotFound) => return Err(SignupError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        info!("repeated signup for an unverified account: a code for it was mailed");
        if hide {
            // Never the pending account's id or signup time: they would tell it apart.
            return Ok(self.decoy_user(email, now));
        }
        Ok(User {
            updated_at: now,
            ..existing.user
        })
    }

    /// Proves ownership of the address with the code from the signup mail.
    ///
    /// Idempotent for an account that is already verified once the code checks out. Spends
    /// the `verify-otp` budgets of `client` and the address.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn verify_otp(
        &self,
        email: &EmailAddress,
        code: &OtpCode,
        client: &ClientInfo,
    ) -> Result<User, VerifyOtpError> {
        self.admit(Action::VerifyOtp, client, email, false).await?;
        let matched = self
            .check_code(OtpPurpose::VerifyEmail, email, code, client)
            .await?;
        let Some(creds) = self.ports.users.find_by_email(email).await? else {
            return Err(VerifyOtpError::InvalidOtp);
        };
        Span::current().record("user_id", tracing::field::display(creds.user.id));
        if creds.user.is_verified() {
            return Ok(creds.user);
        }
        let now = self.ports.clock.now();
        // The account gets the password of the signup this code was mailed for, not that of
        // a later (or earlier) signup for the same address.
        if let Some(chosen) = &matched.pending_password {
            match self
                .ports
                .users
                .replace_unverified_password(creds.user.id, chosen, now)
                .await
            {
                // NotFound: verified in the meantime (by another of its codes).
                Ok(()) | Err(UserRepoError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let user = match self.ports.users.mark_verified(creds.user.id, now).await {
            Ok(user) => user,
            Err(UserRepoError::NotFound) => return Err(VerifyOtpError::InvalidOtp),
            Err(e) => return Err(e.into()),
        };
        if let Some(chosen) = &matched.pending_password {
            // A repeated signup can replace the pending password between the two writes
            // above; the code's password is the one that counts, and a login that caught the
            // other one in between keeps no session.
            match self
                .ports
                .users
                .set_password_hash(creds.user.id, &creds.user.email, chosen, now)
                .await
            {
                Ok(()) => {}
                Err(UserRepoError::NotFound) => return Err(VerifyOtpError::InvalidOtp),
                Err(e) => return Err(e.into()),
            }
            self.revoke_all(creds.user.id, email, None).await?;
        }
        info!("email verified");
        self.record_event(user.id, SecurityEventKind::Verified, client)
            .await;
        Ok(user)
    }

    /// Mails a new verification code to an unverified account.
    ///
    /// The cooldown is claimed for every address before it is looked up, so the answer is the
    /// same for unknown, unverified and verified addresses. Spends the `resend-otp` and mail
    /// budgets of `client` and the address.
    #[instrument(skip_all)]
    pub async fn resend_otp(
        &self,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<(), ResendOtpError> {
        self.resend_verification(email, client, self.config.enumeration_protection)
            .await
    }

    /// [`AuthService::resend_otp`]; inside the mail cooldown it answers `Ok` without mailing
    /// when `silent_cooldown` (the anonymous endpoint with enumeration protection), and
    /// `TooManyRequests` otherwise (an administrator, who knows the account exists, is told
    /// the truth).
    pub(super) async fn resend_verification(
        &self,
        email: &EmailAddress,
        client: &ClientInfo,
        silent_cooldown: bool,
    ) -> Result<(), ResendOtpError> {
        self.admit(Action::ResendOtp, client, email, false).await?;
        if let Err(retry_after) = self.claim_slot(OtpPurpose::VerifyEmail, email).await? {
            if silent_cooldown {
                // Silently: the answer must not tell an address with a pending signup (whose
                // cooldown a signup just started) from any other.
                return Ok(());
            }
            return Err(ResendOtpError::TooManyRequests { retry_after });
        }
        if let Some(creds) = self.ports.users.find_by_email(email).await? {
            // After more than one signup, the stored password is the newest signup's, which
            // may be a stranger's: a resent code bound to it would hand the owner's account to
            // them. Each of those signups mailed its own code; signing up again mails one for
            // the password given then.
            let one_signup = creds.user.updated_at <= creds.user.created_at;
            if !creds.user.is_verified() {
                if one_signup {
                    let now = self.ports.clock.now();
                    // A mail outage must not answer differently for existing accounts.
                    let sent = self
                        .issue_code(
                            OtpPurpose::VerifyEmail,
                            email,
                            now,
                            Some(creds.password_hash),
                            CodeDelivery {
                                mail: CodeMail::Again,
                                requested_by: None,
                                language: creds.language.as_deref(),
                            },
                        )
                        .await;
                    if let Err(e) = sent {
                        warn!(error = %e, "verification code not delivered");
                    }
                } else {
                    info!(
                        "resend for an account with several signups: no code bound to a password"
                    );
                }
            }
        }
        Ok(())
    }

    /// Deletes the account of the session's user, who must give the password again (ASVS
    /// 7.4.2, 7.5.3) under the re-authentication budgets: every session is revoked, the
    /// account is removed for good (its address is free for a new signup) and a notice is
    /// mailed.
    ///
    /// Sessions go first: should the deletion then fail, the user is logged out everywhere
    /// but keeps the account. They are revoked once more afterwards, so that a login racing
    /// the deletion leaves no session behind.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn delete_account(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        client: &ClientInfo,
    ) -> Result<(), DeleteAccountError> {
        self.delete_account_with_factor(session, password, None, client)
            .await
    }

    /// [`AuthService::delete_account`] with the step-up: when the user has TOTP on, a
    /// current TOTP code or a recovery code is required besides the password.
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn delete_account_with_factor(
        &self,
        session: &Session,
        password: &PasswordAttempt,
        factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), DeleteAccountError> {
        let creds = match self.reauthenticate(session, password, client).await {
            Ok(creds) => creds,
            Err(Reauth::Gone | Reauth::SessionEnded) => {
                return Err(DeleteAccountError::Unauthenticated)
            }
            Err(Reauth::WrongPassword) => {
                info!("account deletion refused: wrong password");
                return Err(DeleteAccountError::InvalidCredentials);
            }
            Err(Reauth::Stop(stop)) => return Err(stop.into()),
        };
        match self.step_up(session, &creds, factor, client).await {
            Ok(()) => {}
            Err(StepUp::Required) => return Err(DeleteAccountError::SecondFactorRequired),
            Err(StepUp::Wrong) => return Err(DeleteAccountError::InvalidSecondFactor),
            Err(StepUp::SessionEnded) => return Err(DeleteAccountError::Unauthenticated),
            Err(StepUp::Failure(f)) => return Err(f.into()),
        }
        let id = creds.user.id;
        self.revoke_all(id, &creds.user.email, None).await?;
        let mail = Companion::to_owner(&creds, MailMessage::AccountDeleted);
        let deleted = self.delete_user(id, mail).await?;
        self.revoke_all(id, &creds.user.email, None).await?;
        let Some(notice) = deleted else {
            // Deleted meanwhile by a parallel request, which sends the notice.
            return Err(DeleteAccountError::Unauthenticated);
        };
        info!("account deleted; every session revoked");
        self.record_event(id, SecurityEventKind::AccountDeleted, client)
            .await;
        self.deliver_notice(notice).await;
        Ok(())
    }
}

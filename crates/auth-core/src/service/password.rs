//! Passwords: change (inside a session), forgot (mail a reset code) and reset (with the code).

use tracing::{info, instrument, Span};

use super::changes::Companion;
use super::guard::Reauth;
use super::mfa::StepUp;
use super::{AuthService, ChangePasswordError, ForgotPasswordError, ResetPasswordError};
use crate::domain::email::EmailAddress;
use crate::domain::mfa::SecondFactor;
use crate::domain::otp::{OtpCode, OtpPurpose};
use crate::domain::password::{Password, PasswordAttempt};
use crate::domain::session::{ClientInfo, Session};
use crate::domain::user::User;
use crate::ports::{MailMessage, SecurityEventKind, UserRepoError};
use crate::throttle::Action;

impl AuthService {
    /// Changes the password of the session's user. The current password is required, under
    /// the re-authentication budgets (see [`crate::throttle`]); every other session of the
    /// user is revoked, the current one stays; a notice is mailed. A user with a second
    /// factor gets [`ChangePasswordError::SecondFactorRequired`]: use
    /// [`AuthService::change_password_with_factor`].
    pub async fn change_password(
        &self,
        session: &Session,
        current: &PasswordAttempt,
        new_password: Password,
        client: &ClientInfo,
    ) -> Result<(), ChangePasswordError> {
        self.change_password_with_factor(session, current, new_password, None, client)
            .await
    }

    /// [`AuthService::change_password`] with the step-up: when the user has TOTP on, a
    /// current TOTP code or a recovery code is required besides the password (a wrong one
    /// counts against the session's hard limit of wrong answers).
    #[instrument(skip_all, fields(user_id = %session.user.id))]
    pub async fn change_password_with_factor(
        &self,
        session: &Session,
        current: &PasswordAttempt,
        new_password: Password,
        factor: Option<&SecondFactor>,
        client: &ClientInfo,
    ) -> Result<(), ChangePasswordError> {
        let creds = match self.reauthenticate(session, current, client).await {
            Ok(creds) => creds,
            Err(Reauth::Gone | Reauth::SessionEnded) => {
                return Err(ChangePasswordError::Unauthenticated)
            }
            Err(Reauth::WrongPassword) => {
                info!("password change refused: wrong current password");
                return Err(ChangePasswordError::InvalidCredentials);
            }
            Err(Reauth::Stop(stop)) => return Err(stop.into()),
        };
        match self.step_up(session, &creds, factor, client).await {
            Ok(()) => {}
            Err(StepUp::Required) => return Err(ChangePasswordError::SecondFactorRequired),
            Err(StepUp::Wrong) => return Err(ChangePasswordError::InvalidSecondFactor),
            Err(StepUp::SessionEnded) => return Err(ChangePasswordError::Unauthenticated),
            Err(StepUp::Failure(f)) => return Err(f.into()),
        }
        if self.is_breached(&new_password).await {
            info!("password change refused: the new password appears in a data breach");
            return Err(ChangePasswordError::PasswordBreached);
        }
        let hash = self.ports.hasher.hash(new_password.secret()).await?;
        let now = self.ports.clock.now();
        // The passkeys stay (the owner knew the password), but the notice lists them: one
        // added by someone who had the session and the password shows up there.
        let passkeys = self.passkey_names(creds.user.id).await?;
        let mail = Companion::to_owner(
            &creds,
            MailMessage::PasswordChanged {
                passkeys,
                removed_passkeys: Vec::new(),
            },
        );
        let notice = match self
            .set_password_hash(creds.user.id, &creds.user.email, &hash, now, mail)
            .await
        {
            Ok(notice) => notice,
            Err(UserRepoError::NotFound) => return Err(ChangePasswordError::Unauthenticated),
            Err(e) => return Err(e.into()),
        };
        let revoked = self
            .revoke_all(creds.user.id, &creds.user.email, Some(session.id))
            .await?;
        info!(revoked, "password changed; other sessions revoked");
        self.record_event(creds.user.id, SecurityEventKind::PasswordChanged, client)
            .await;
        self.deliver_notice(notice).await;
        Ok(())
    }

    /// Starts a password reset. Returns `Ok(())` whatever the address; a reset code is mailed
    /// only to an existing, verified account, at most once per cooldown. Spends the
    /// `forgot-password` and mail budgets of `client` and the address.
    #[instrument(skip_all)]
    pub async fn forgot_password(
        &self,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<(), ForgotPasswordError> {
        self.admit(Action::ForgotPassword, client, email, false)
            .await?;
        self.mail_guarded_code(OtpPurpose::ResetPassword, email, client)
            .await?;
        Ok(())
    }

    /// Completes a password reset: checks the code, sets the new password, revokes every
    /// session of the user and mails a notice. Spends the `reset-password` budgets of
    /// `client` and the address. A wrong code (or one past its lifetime or attempts) is
    /// recorded as `reset_failed` on the account with the address, when there is one; the
    /// answer is the same either way.
    #[instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn reset_password(
        &self,
        email: &EmailAddress,
        code: &OtpCode,
        new_password: Password,
        client: &ClientInfo,
    ) -> Result<User, ResetPasswordError> {
        let result = self
            .reset_with_code(email, code, new_password, client)
            .await;
        if let Err(
            ResetPasswordError::InvalidOtp
            | ResetPasswordError::OtpExpired
            | ResetPasswordError::TooManyAttempts,
        ) = &result
        {
            self.record_for_address(email, SecurityEventKind::ResetFailed, client)
                .await;
        }
        result
    }

    async fn reset_with_code(
        &self,
        email: &EmailAddress,
        code: &OtpCode,
        new_password: Password,
        client: &ClientInfo,
    ) -> Result<User, ResetPasswordError> {
        let _slot = self
            .admit(Action::ResetPassword, client, email, true)
            .await?;
        if self.is_breached(&new_password).await {
            info!("password reset refused: the new password appears in a data breach");
            return Err(ResetPasswordError::PasswordBreached);
        }
        // The code is used up only once the new hash exists: an overloaded hasher leaves it
        // valid for another try. It is used up before the hash is stored, so that of two
        // parallel resets with the right code exactly one sets a password.
        let purpose = OtpPurpose::ResetPassword;
        let matched = self.match_code(purpose, email, code, client).await?;
        let Some(creds) = self.ports.users.find_by_email(email).await? else {
            return Err(ResetPasswordError::InvalidOtp);
        };
        Span::current().record("user_id", tracing::field::display(creds.user.id));
        let hash = self.ports.hasher.hash(new_password.secret()).await?;
        self.consume_code(purpose, email, &matched.mac).await?;
        // The recovery path: whoever had the session and the password may have added a
        // passkey, so every passkey goes (before the revocation epoch moves, so that a passkey
        // sign-in that reads the new epoch finds none), and the notice names them.
        let removed_passkeys = self.remove_all_passkeys(creds.user.id, client).await?;
        let now = self.ports.clock.now();
        let mail = Companion::to_owner(
            &creds,
            MailMessage::PasswordChanged {
                passkeys: Vec::new(),
                removed_passkeys,
            },
        );
        let notice = match self
            .set_password_hash(creds.user.id, &creds.user.email, &hash, now, mail)
            .await
        {
            Ok(notice) => notice,
            Err(UserRepoError::NotFound) => return Err(ResetPasswordError::InvalidOtp),
            Err(e) => return Err(e.into()),
        };
        let revoked = self
            .revoke_all(creds.user.id, &creds.user.email, None)
            .await?;
        // A registration that was being checked while the sweep ran stored its passkey after
        // the first removal: it goes now (one whose session is gone takes it back itself).
        self.remove_all_passkeys(creds.user.id, client).await?;
        info!(revoked, "password reset; all sessions and passkeys revoked");
        self.record_event(creds.user.id, SecurityEventKind::ResetCompleted, client)
            .await;
        self.deliver_notice(notice).await;
        Ok(User {
            updated_at: now,
            ..creds.user
        })
    }
}

//! The whole account lifecycle against the in-process kit, in plain Rust.
//!
//! [`run_lifecycle`] builds the service ([`in_process_service`](crate::in_process_service))
//! and drives [`lifecycle`] with `futures::executor::block_on`: no Tokio anywhere. Each
//! [`Step`] is handed to a callback as it completes (the example prints it) and returned, with
//! what it observed, so a test can check every step.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use auth_core::{
    AuthService, AuthenticateError, ClientInfo, EmailAddress, LoginError, LoginOutcome, OtpPurpose,
    PasswordAttempt, SecretString, Session, User,
};
use auth_memory::CaptureMailer;

use crate::SetupError;

/// The address the lifecycle signs up.
pub const EMAIL: &str = "ada@example.com";
const FIRST_PASSWORD: &str = "lantern orchard 1843 velvet";
const CHANGED_PASSWORD: &str = "copper kettle under moonlight";
const RESET_PASSWORD: &str = "seventeen quiet harbour lights";

/// One completed step of the lifecycle and what it observed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Step {
    /// `signup`: the account exists, unverified, and a code went out.
    SignedUp {
        /// The new account.
        user: User,
        /// Whether a verification code was mailed.
        code_mailed: bool,
    },
    /// `verify_otp` with the code read from the mail.
    Verified {
        /// The account, now verified.
        user: User,
    },
    /// `login` with the first password.
    LoggedIn {
        /// The new session.
        session: Session,
    },
    /// `authenticate` with the bearer token (what `GET /me` does).
    Authenticated {
        /// The session behind the token.
        session: Session,
    },
    /// `change_password` inside the session.
    PasswordChanged {
        /// Whether the session that changed the password still authenticates (it should).
        session_kept: bool,
        /// Whether the old password still logs in (it must not).
        old_password_accepted: bool,
    },
    /// `logout_all` from the session.
    LoggedOutEverywhere {
        /// How many sessions were revoked.
        revoked: u64,
        /// Whether the token still authenticates (it must not).
        token_accepted: bool,
    },
    /// `forgot_password`: a reset code went out.
    ResetRequested {
        /// Whether a reset code was mailed.
        code_mailed: bool,
    },
    /// `reset_password` with the code read from the mail.
    PasswordReset {
        /// The account.
        user: User,
    },
    /// `login` with the password set by the reset.
    LoggedInWithNewPassword {
        /// The new session.
        session: Session,
        /// Whether the password before the reset still logs in (it must not).
        previous_password_accepted: bool,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SignedUp { user, code_mailed } => write!(
                f,
                "signup: account {} for {} (verified: {}), code mailed: {code_mailed}",
                user.id,
                user.email,
                user.is_verified()
            ),
            Self::Verified { user } => {
                write!(f, "verify: {} verified: {}", user.email, user.is_verified())
            }
            Self::LoggedIn { session } => write!(f, "login: session {}", session.id),
            Self::Authenticated { session } => write!(
                f,
                "authenticate (/me): {} in session {}",
                session.user.email, session.id
            ),
            Self::PasswordChanged {
                session_kept,
                old_password_accepted,
            } => write!(
                f,
                "change password: this session kept: {session_kept}, \
                 old password accepted: {old_password_accepted}"
            ),
            Self::LoggedOutEverywhere {
                revoked,
                token_accepted,
            } => write!(
                f,
                "logout everywhere: {revoked} session(s) revoked, token accepted: {token_accepted}"
            ),
            Self::ResetRequested { code_mailed } => {
                write!(f, "forgot password: reset code mailed: {code_mailed}")
            }
            Self::PasswordReset { user } => write!(f, "reset password: {}", user.email),
            Self::LoggedInWithNewPassword {
                session,
                previous_password_accepted,
            } => write!(
                f,
                "login with the new password: session {}, previous password accepted: \
                 {previous_password_accepted}",
                session.id
            ),
        }
    }
}

/// A step failed: which one, and why.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The service could not be built.
    #[error("set-up failed")]
    Setup(#[from] SetupError),
    /// An operation returned an error.
    #[error("{step} failed")]
    Step {
        /// The step.
        step: &'static str,
        /// The error of the operation.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The mail with a code never arrived.
    #[error("{step}: no code was mailed")]
    NoCode {
        /// The step.
        step: &'static str,
    },
}

fn failed<E>(step: &'static str) -> impl FnOnce(E) -> LifecycleError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| LifecycleError::Step {
        step,
        source: Box::new(e),
    }
}

/// Runs the whole lifecycle on a fresh in-process service with
/// `futures::executor::block_on`, calling `on_step` after each step; returns every step.
///
/// ```
/// let steps = auth_examples::run_lifecycle(|step| println!("{step}"))?;
/// assert_eq!(steps.len(), 9);
/// # Ok::<_, auth_examples::LifecycleError>(())
/// ```
pub fn run_lifecycle(mut on_step: impl FnMut(&Step)) -> Result<Vec<Step>, LifecycleError> {
    let (service, mail) = crate::in_process_service()?;
    futures::executor::block_on(lifecycle(&service, &mail, &mut on_step))
}

/// The lifecycle on `service`, reading codes from `mail` (the mailer the service sends
/// with); drive it with any executor.
pub async fn lifecycle(
    service: &AuthService,
    mail: &CaptureMailer,
    on_step: &mut dyn FnMut(&Step),
) -> Result<Vec<Step>, LifecycleError> {
    let mut steps = Vec::new();
    let mut done = |step: Step| {
        on_step(&step);
        steps.push(step);
    };
    // What the transport knows about the caller: the service budgets requests per IP.
    let client = ClientInfo::new(
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some("auth-examples lifecycle"),
    );
    let email = EmailAddress::parse(EMAIL).map_err(failed("parse the address"))?;
    let policy = *service.password_policy();
    let new_password = |raw: &str| policy.parse(SecretString::from(raw), &email);
    let attempt = |raw: &str| PasswordAttempt::parse(SecretString::from(raw));

    // Signup: an unverified account and a code in the mail.
    let password = new_password(FIRST_PASSWORD).map_err(failed("signup"))?;
    let user = service
        .signup(email.clone(), password, &client)
        .await
        .map_err(failed("signup"))?;
    let code = mail.last_code_for(&email, OtpPurpose::VerifyEmail);
    done(Step::SignedUp {
        user,
        code_mailed: code.is_some(),
    });

    // Verify with the code the person would type.
    let code = code.ok_or(LifecycleError::NoCode { step: "verify" })?;
    let user = service
        .verify_otp(&email, &code, &client)
        .await
        .map_err(failed("verify"))?;
    done(Step::Verified { user });

    // Login: the token goes to the client, the session stays on the server.
    let first = attempt(FIRST_PASSWORD).map_err(failed("login"))?;
    let LoginOutcome { token, session, .. } = service
        .login(&email, &first, client.clone())
        .await
        .map_err(failed("login"))?;
    done(Step::LoggedIn { session });

    // Authenticate the bearer token, as every authenticated request does.
    let session = service
        .authenticate(&token)
        .await
        .map_err(failed("authenticate"))?;
    done(Step::Authenticated {
        session: session.clone(),
    });

    // Change the password inside the session (the current password is required).
    let changed = new_password(CHANGED_PASSWORD).map_err(failed("change password"))?;
    service
        .change_password(&session, &first, changed, &client)
        .await
        .map_err(failed("change password"))?;
    let session_kept = is_live(service.authenticate(&token).await, "change password")?;
    let old_password_accepted =
        logs_in(service, &email, &first, &client, "change password").await?;
    done(Step::PasswordChanged {
        session_kept,
        old_password_accepted,
    });

    // Logout everywhere: every session of the account ends, this one included.
    let revoked = service
        .logout_all(&session)
        .await
        .map_err(failed("logout everywhere"))?;
    let token_accepted = is_live(service.authenticate(&token).await, "logout everywhere")?;
    done(Step::LoggedOutEverywhere {
        revoked,
        token_accepted,
    });

    // Forgot password: a reset code in the mail (the answer is the same for any address).
    service
        .forgot_password(&email, &client)
        .await
        .map_err(failed("forgot password"))?;
    let code = mail.last_code_for(&email, OtpPurpose::ResetPassword);
    done(Step::ResetRequested {
        code_mailed: code.is_some(),
    });

    // Reset with the code.
    let code = code.ok_or(LifecycleError::NoCode {
        step: "reset password",
    })?;
    let reset = new_password(RESET_PASSWORD).map_err(failed("reset password"))?;
    let user = service
        .reset_password(&email, &code, reset, &client)
        .await
        .map_err(failed("reset password"))?;
    done(Step::PasswordReset { user });

    // Login with the new password; the one before the reset is dead.
    let after_reset = attempt(RESET_PASSWORD).map_err(failed("login after reset"))?;
    let LoginOutcome { session, .. } = service
        .login(&email, &after_reset, client.clone())
        .await
        .map_err(failed("login after reset"))?;
    let before_reset = attempt(CHANGED_PASSWORD).map_err(failed("login after reset"))?;
    let previous_password_accepted =
        logs_in(service, &email, &before_reset, &client, "login after reset").await?;
    done(Step::LoggedInWithNewPassword {
        session,
        previous_password_accepted,
    });

    Ok(steps)
}

/// Whether `authenticate` accepted the token; an error other than "unauthenticated" fails
/// the step.
fn is_live(
    result: Result<Session, AuthenticateError>,
    step: &'static str,
) -> Result<bool, LifecycleError> {
    match result {
        Ok(_) => Ok(true),
        Err(AuthenticateError::Unauthenticated) => Ok(false),
        Err(e) => Err(failed(step)(e)),
    }
}

/// Whether `password` logs in (the session it opens is ended again at once); an error other
/// than "invalid credentials" fails the step.
async fn logs_in(
    service: &AuthService,
    email: &EmailAddress,
    password: &PasswordAttempt,
    client: &ClientInfo,
    step: &'static str,
) -> Result<bool, LifecycleError> {
    match service.login(email, password, client.clone()).await {
        Ok(outcome) => {
            service.logout(&outcome.token).await.map_err(failed(step))?;
            Ok(true)
        }
        Err(LoginError::InvalidCredentials) => Ok(false),
        Err(e) => Err(failed(step)(e)),
    }
}

//! The embedding set-up: everything an application writes to get a working `AuthService` on
//! the in-process kit. The lines between the `embedding set-up` markers are the ones counted
//! in the README ("Embedding").

use auth_core::{AuthService, OtpSecretError};
use auth_memory::{CaptureMailer, KitError};

/// Why [`in_process_service`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The kit could not start its threads (store sweeper, hasher workers).
    #[error(transparent)]
    Kit(#[from] KitError),
    /// The code secret was refused (cannot happen with 32 random bytes).
    #[error(transparent)]
    Secret(#[from] OtpSecretError),
}

/// A working [`AuthService`] on the in-process kit with the default configuration (request
/// budgets on), and the [`CaptureMailer`] that holds what it mails (a real application hands
/// the kit its own `Mailer` with `InProcessKit::new(mailer)` instead).
///
/// The code secret is 32 fresh random bytes: the kit keeps codes in memory, so they die with
/// the process anyway. With stores that outlive the process, load a fixed secret instead.
pub fn in_process_service() -> Result<(AuthService, CaptureMailer), SetupError> {
    // embedding set-up: begin
    use auth_core::{AuthConfig, OtpSecret};
    use auth_memory::InProcessKit;
    use rand::RngCore;

    let (kit, mail) = InProcessKit::capturing()?;
    let mut key = vec![0u8; OtpSecret::MIN_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let secret = OtpSecret::new(key.into_boxed_slice().into())?;
    let service = AuthService::new(kit.auth_ports(), AuthConfig::default(), secret);
    // embedding set-up: end
    Ok((service, mail))
}

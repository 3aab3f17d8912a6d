use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use uuid::Uuid;

use crate::domain::otp::OtpCode;
use crate::domain::session::{SessionToken, TOKEN_BYTES};

/// Randomness for codes, tokens and ids. Injected so tests can make it predictable.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RandomSource: Send + Sync + 'static {
    /// A uniformly random six-digit code.
    fn otp_code(&self) -> OtpCode;
    /// A fresh 256-bit session token.
    fn session_token(&self) -> SessionToken;
    /// A random (v4) UUID.
    fn uuid(&self) -> Uuid;
    /// Fills `out` with bytes from a CSPRNG (TOTP secrets, recovery codes). The default is
    /// the operating system's generator.
    fn fill_bytes(&self, out: &mut [u8]) {
        OsRng.fill_bytes(out);
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn otp_code(&self) -> OtpCode {
        // `gen_range` samples by rejection, so every code is equally likely (no modulo bias).
        let n: u32 = OsRng.gen_range(0..1_000_000);
        OtpCode::from_sample(n)
    }

    fn session_token(&self) -> SessionToken {
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng.fill_bytes(&mut bytes);
        SessionToken::from_bytes(bytes)
    }

    fn uuid(&self) -> Uuid {
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

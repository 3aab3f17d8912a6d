//! Domain types. Each is parsed once at the boundary; holding one means it is valid.

pub mod device;
pub mod email;
pub mod mfa;
pub mod otp;
pub mod passkey;
pub mod password;
pub mod session;
pub mod totp;
pub mod user;

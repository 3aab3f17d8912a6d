//! [`BreachedPasswords`](auth_core::BreachedPasswords) adapters: new passwords that appear in
//! known data breaches are refused (ASVS 6.2.12).
//!
//! - [`RangeApi`] asks a k-anonymity range service (the Pwned Passwords API, or a mirror of it):
//!   only the first five hex digits of the password's SHA-1 leave the process; the answer lists
//!   every known suffix in that range, and the match is made here. Responses are padded on
//!   request (`Add-Padding: true`) so their size does not narrow the range down.
//! - [`HashFile`] reads a local list of SHA-1 hashes (one per line, `HASH` or `HASH:COUNT`, as
//!   the downloadable Pwned Passwords files are) into memory, for servers without outbound
//!   access.

mod file;
mod range;

pub use file::{HashFile, HashFileError};
pub use range::{RangeApi, RangeApiError, DEFAULT_RANGE_TIMEOUT};

//! Black-box API tests of SecureAuth live in `api/`; run them with `cargo test -p auth-e2e`.

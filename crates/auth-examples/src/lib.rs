//! # auth-examples
//!
//! How an application embeds SecureAuth's core, as code that runs (`cargo run -p auth-examples
//! --example lifecycle`, `--example axum_service`) and is tested (`cargo test -p
//! auth-examples`):
//!
//! - [`in_process_service`]: the whole embedding set-up on the in-process kit
//!   (`auth_memory::InProcessKit`): a working [`AuthService`](auth_core::AuthService) in five
//!   lines;
//! - [`run_lifecycle`]: signup → verify → login → authenticate → change password → logout
//!   everywhere → forgot → reset → login with the new password, in plain Rust on
//!   `futures::executor::block_on` (no Tokio): the core, the kit and the Argon2id hasher run
//!   on any executor ([`lifecycle()`] is the same as an `async fn`, for your own executor);
//! - [`router`]: the core inside an axum 0.8 service, with its own bearer-session extractor
//!   ([`web::Authenticated`]) and the mapping of the core's errors to statuses
//!   ([`web::ApiError`]).
//!
//! Everything here is example code: one instance, nothing survives a restart (see
//! `auth-memory`).

pub mod lifecycle;
mod setup;
pub mod web;

pub use lifecycle::{lifecycle, run_lifecycle, LifecycleError, Step};
pub use setup::{in_process_service, SetupError};
pub use web::router;

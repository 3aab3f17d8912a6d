//! Test support for SecureAuth.
//!
//! - [`contracts`]: one shared suite per port; every implementation of the port runs it, so
//!   adapters cannot drift apart.
//! - [`smtp`]: a real SMTP server on loopback that keeps what it receives.
//! - [`redis_server`]: a throwaway `redis-server` on a free port, for fault tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod contracts;
pub mod redis_cluster;
pub mod redis_server;
pub mod smtp;

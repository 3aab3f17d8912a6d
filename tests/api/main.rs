//! Black-box tests of the REST API against real PostgreSQL, Redis and SMTP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod failures;
mod lifecycle;
mod logs;

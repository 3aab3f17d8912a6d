//! # auth-ui-e2e
//!
//! No code: its integration test `tests/browser.rs` runs the end-to-end browser test of the web
//! UI (`tests/browser/run.mjs` at the repository root) so that `cargo test --workspace` runs it.
//! The Node test builds and starts `auth-http` against PostgreSQL, Redis and an SMTP sink of its
//! own, drives Debian's Chromium headless with `playwright-core` and writes screenshots to
//! `tests/browser/artifacts/screenshots/`.

//! # auth-http
//!
//! The SecureAuth REST API: a thin actix-web layer over [`auth_core::AuthService`]. Handlers
//! parse a DTO into domain types, call the service and map the result; [`error::ApiError`] holds
//! the one status table; [`extract::AuthenticatedSession`] authenticates requests;
//! [`wiring`] builds the adapters from [`settings::Settings`].

pub mod admin;
pub mod connections;
pub mod deferred;
pub mod docs;
pub mod dto;
pub mod error;
pub mod events;
pub mod extract;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod openapi;
pub mod passkeys;
pub mod request_rate;
pub mod routes;
pub mod server;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod ui;
pub mod webhooks;
pub mod wiring;

pub use settings::Settings;
pub use startup::Application;

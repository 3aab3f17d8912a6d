//! Builds the adapters named by the settings and hands them to the service.

use auth_core::AuthService;

use crate::settings::Settings;

/// Builds the service on the adapters the settings select.
pub async fn build_service(_settings: &Settings) -> anyhow::Result<AuthService> {
    anyhow::bail!("adapters not wired yet")
}
pub async fn migrate(_settings: &Settings) -> anyhow::Result<()> { anyhow::bail!("todo") }

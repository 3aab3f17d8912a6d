//! Builds the adapters named by the settings and hands them to the service. The only place
//! where concrete adapters meet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use auth_argon2::{Argon2Hasher, Argon2Settings};
use auth_core::outbox::MailSeal;
use auth_core::{
    AuthConfig, AuthPorts, AuthService, BreachedPasswords, Mailer, OsRandom, OtpSecret, OtpStore,
    OutboxStore, PasswordPolicy, RateLimiter, SessionStore, SystemClock, UserRepository,
};
use auth_memory::{MemorySettings, MemoryStore};
use auth_postgres::{run_migrations, MigrationError, PgUserRepository, PostgresSettings};
use auth_redis::{RedisSettings, RedisStore};
use auth_smtp::{FileMailer, SmtpMailer, SmtpSettings, TlsMode};
use auth_sqlite::{SqliteSettings, SqliteUserRepository};

use crate::mail::MailOutbox;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretBox};

use crate::settings::{
    AppEnv, BreachedPasswordSettings, MailDelivery, Settings, SmtpConfig, SmtpTls,
};

fn postgres_settings(settings: &Settings) -> PostgresSettings {
    let mut pg = PostgresSettings::new(settings.database_url.clone());
    pg.connect_timeout = settings.dependency_timeout;
    pg.acquire_timeout = settings.dependency_timeout;
    // The server ends a stuck statement (statement_timeout/lock_timeout, set below this)
    // before a request has waited longer than any other dependency.
    pg.query_timeout = settings.dependency_timeout;
    pg.ca_file.clone_from(&settings.database_ca_file);
    pg
}

/// The SMTP adapter's settings for `smtp` (`SMTP_*`, `MAIL_FROM`, `DEPENDENCY_TIMEOUT`).
pub fn smtp_settings(settings: &Settings, smtp: &SmtpConfig) -> SmtpSettings {
    let tls = match smtp.tls {
        SmtpTls::Implicit => TlsMode::Implicit,
        SmtpTls::StartTls => TlsMode::StartTls,
        SmtpTls::None => TlsMode::None,
    };
    let mut s = SmtpSettings::new(smtp.host.clone(), tls, settings.mail_from.clone());
    s.port = smtp.port;
    s.username = smtp.username.clone();
    s.password = smtp.password.clone();
    // Sending a message takes a few round trips: never less than 5 s for the whole of it.
    s.timeout = settings
        .dependency_timeout
        .max(std::time::Duration::from_secs(5));
    s
}

/// The mail templates: the built-in ones, with `MAIL_TEMPLATES_DIR` laid over them when set.
/// A template that does not load stops the start-up, naming the file.
pub fn mail_renderer(settings: &Settings) -> anyhow::Result<auth_smtp::Renderer> {
    match &settings.mail_templates_dir {
        Some(dir) => auth_smtp::Renderer::with_overrides(dir).with_context(|| {
            format!(
                "loading the mail templates in MAIL_TEMPLATES_DIR {}",
                dir.display()
            )
        }),
        None => Ok(auth_smtp::Renderer::builtin()),
    }
}

fn is_postgres(settings: &Settings) -> bool {
    let url = settings.database_url.expose_secret();
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn sqlite_settings(settings: &Settings) -> anyhow::Result<SqliteSettings> {
    SqliteSettings::from_url(settings.database_url.expose_secret())
        .context("DATABASE_URL is not a valid sqlite:// URL")
}

/// Applies pending migrations (safe when several instances do it at once).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let applied = if is_postgres(settings) {
        run_migrations(&postgres_settings(settings))
            .await
            .context("applying database migrations (check DATABASE_URL)")?
    } else {
        auth_sqlite::run_migrations(&sqlite_settings(settings)?)
            .await
            .context("applying database migrations (check DATABASE_URL)")?
    };
    log_applied(&applied);
    Ok(())
}

fn log_applied(applied: &[String]) {
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(migrations = ?applied, "migrations applied");
    }
}

/// The mail outbox of the user database the settings name (migrated first), for the
/// `outbox` command.
pub async fn open_outbox(settings: &Settings) -> anyhow::Result<Arc<dyn OutboxStore>> {
    migrate(settings).await?;
    if is_postgres(settings) {
        let repo = PgUserRepository::connect(&postgres_settings(settings))
            .context("PostgreSQL settings (DATABASE_URL)")?;
        Ok(Arc::new(repo.outbox()))
    } else {
        let repo = SqliteUserRepository::open(&sqlite_settings(settings)?)
            .await
            .context("opening the SQLite database (DATABASE_URL)")?;
        Ok(Arc::new(repo.outbox()))
    }
}

/// The security event store of the user database the settings name (migrated first), for
/// the `events` command.
pub async fn open_security_events(
    settings: &Settings,
) -> anyhow::Result<Arc<dyn auth_core::SecurityEvents>> {
    migrate(settings).await?;
    if is_postgres(settings) {
        let repo = PgUserRepository::connect(&postgres_settings(settings))
            .context("PostgreSQL settings (DATABASE_URL)")?;
        Ok(Arc::new(repo.security_events()))
    } else {
        let repo = SqliteUserRepository::open(&sqlite_settings(settings)?)
            .await
            .context("opening the SQLite database (DATABASE_URL)")?;
        Ok(Arc::new(repo.security_events()))
    }
}

/// Builds the service on the adapters the settings select (with its rate limiter and hasher),
/// applying migrations first. The only place where adapters meet.
///
/// The outbox comes back whatever `MAIL_DELIVERY` says (for `/ready` and bounce reports); with
/// `inline` the service's mailer is the transport itself and nothing is queued.
///
/// With PostgreSQL down (or unreachable) the server still starts: the user store answers 503
/// and `/ready` names it until the migrations, retried in the background, have been applied.
pub async fn build_service(settings: &Settings) -> anyhow::Result<(AuthService, MailOutbox)> {
    let (service, outbox, _) = build_observed_service(settings).await?;
    Ok((service, outbox))
}

/// [`build_service`], with what the metrics read at scrape time (the hasher, the connection
/// pools, the outbox).
pub async fn build_observed_service(
    settings: &Settings,
) -> anyhow::Result<(AuthService, MailOutbox, crate::metrics::Probes)> {
    let mut probes = crate::metrics::Probes::default();
    // First: a typo in a template stops the start-up before anything else is touched.
    let renderer = mail_renderer(settings)?;
    let mut profile = Vec::new();
    let outbox_store: Arc<dyn OutboxStore>;
    let totp_store: Arc<dyn auth_core::TotpStore>;
    let events_store: Arc<dyn auth_core::SecurityEvents>;
    let passkey_store: Arc<dyn auth_core::PasskeyStore>;
    let users: Arc<dyn UserRepository> = if is_postgres(settings) {
        profile.push("users:    PostgreSQL (DATABASE_URL)".to_owned());
        let pg = postgres_settings(settings);
        let repo = PgUserRepository::connect(&pg).context("PostgreSQL settings (DATABASE_URL)")?;
        probes.postgres = Some(repo.pool().clone());
        outbox_store = Arc::new(repo.outbox());
        totp_store = Arc::new(repo.totp());
        events_store = Arc::new(repo.security_events());
        passkey_store = Arc::new(repo.passkeys());
        let migrated = Arc::new(AtomicBool::new(false));
        match run_migrations(&pg).await {
            Ok(applied) => {
                log_applied(&applied);
                migrated.store(true, Ordering::Release);
            }
            Err(MigrationError::Unavailable(e)) => {
                tracing::warn!(
                    error = %e,
                    "PostgreSQL is unavailable: starting anyway; /ready reports user_store down \
                     and the migrations are applied as soon as it answers"
                );
                let done = Arc::clone(&migrated);
                tokio::spawn(crate::deferred::retry_until_done(
                    move || {
                        let pg = pg.clone();
                        async move {
                            let applied = run_migrations(&pg).await?;
                            log_applied(&applied);
                            Ok::<(), MigrationError>(())
                        }
                    },
                    done,
                ));
            }
            Err(e) => return Err(e).context("applying database migrations (check DATABASE_URL)"),
        }
        Arc::new(crate::deferred::SchemaGate::new(repo, migrated))
    } else {
        migrate(settings).await?;
        let sqlite = sqlite_settings(settings)?;
        profile.push(format!(
            "users:    SQLite at {} (set DATABASE_URL=postgres://... for PostgreSQL)",
            settings.database_url.expose_secret()
        ));
        let repo = SqliteUserRepository::open(&sqlite)
            .await
            .context("opening the SQLite database (DATABASE_URL)")?;
        outbox_store = Arc::new(repo.outbox());
        totp_store = Arc::new(repo.totp());
        events_store = Arc::new(repo.security_events());
        passkey_store = Arc::new(repo.passkeys());
        Arc::new(repo)
    };

    type Stores = (
        Arc<dyn SessionStore>,
        Arc<dyn OtpStore>,
        Arc<dyn RateLimiter>,
        Arc<dyn auth_core::PasskeyChallengeStore>,
    );
    let (sessions, otps, limiter, ceremonies): Stores = match &settings.redis_url {
        Some(url) => {
            let mut redis = RedisSettings::new(url.clone(), settings.redis_key_prefix.clone());
            redis.timeout = settings.dependency_timeout;
            redis.max_sessions_per_user = settings.max_sessions_per_user;
            let store = Arc::new(
                RedisStore::new(&redis).context("Redis settings (REDIS_URL, REDIS_KEY_PREFIX)")?,
            );
            profile.push("sessions: Redis (REDIS_URL), shared by every instance".to_owned());
            probes.redis = Some(RedisStore::clone(&store));
            (store.clone(), store.clone(), store.clone(), store)
        }
        None => {
            let store = Arc::new(
                MemoryStore::with_settings(&MemorySettings {
                    max_sessions_per_user: settings.max_sessions_per_user,
                    ..MemorySettings::default()
                })
                .context("in-memory session store")?,
            );
            profile.push(
                "sessions: in process memory: ONE instance only, lost on restart \
                 (set REDIS_URL=redis://... to share them)"
                    .to_owned(),
            );
            (
                store.clone(),
                store.clone(),
                store,
                Arc::new(auth_memory::MemoryPasskeyChallenges::new()),
            )
        }
    };

    let texts = format!(
        "texts:    {}; languages {}",
        match &settings.mail_templates_dir {
            Some(dir) => format!("built-in, overridden by {}", dir.display()),
            None => "built-in (set MAIL_TEMPLATES_DIR to override)".to_owned(),
        },
        renderer.languages().join(", ")
    );
    let transport: Arc<dyn Mailer> = match &settings.smtp {
        Some(smtp) => {
            profile.push(format!("mail:     SMTP via {}:{}", smtp.host, smtp.port));
            let mailer = SmtpMailer::new(smtp_settings(settings, smtp));
            Arc::new(
                mailer
                    .context("SMTP settings (SMTP_*, MAIL_FROM)")?
                    .with_renderer(renderer),
            )
        }
        None => {
            let m = FileMailer::new(&settings.mail_dir)
                .with_context(|| format!("creating MAIL_DIR {}", settings.mail_dir.display()))?
                .with_from(&settings.mail_from)
                .context("MAIL_FROM")?
                .with_renderer(renderer);
            profile.push(format!(
                "mail:     written as .eml files into {} (set SMTP_HOST to send real mail)",
                settings.mail_dir.display()
            ));
            Arc::new(m)
        }
    };
    profile.push(texts);

    let (m, t, p) = settings.argon2;
    let base = settings
        .argon2_workers
        .map_or_else(Argon2Settings::default, Argon2Settings::with_concurrency);
    let hasher = Argon2Hasher::new(Argon2Settings {
        memory_kib: m,
        iterations: t,
        parallelism: p,
        max_queue: settings.argon2_queue.unwrap_or(base.max_queue),
        worker_nice: settings.argon2_nice,
        ..base
    })
    .context("Argon2 settings (ARGON2_*)")?;
    probes.hasher = Some(hasher.clone());

    let key = secret_key(settings)?;
    let seal = MailSeal::derive(&SecretBox::new(key.clone().into_boxed_slice()))
        .context("AUTH_SECRET must be at least 32 bytes")?;
    let (outbox, queue) =
        MailOutbox::new(outbox_store, Arc::clone(&transport), seal, &settings.outbox);
    // With the outbox, a mail that belongs to a change is written in the change's own
    // transaction (the repository and the outbox share the user database).
    let (mailer, transactional): (Arc<dyn Mailer>, _) = match settings.mail_delivery {
        MailDelivery::Outbox => {
            profile.push(
                "outbox:   mail is queued in the user database and sent by a courier".to_owned(),
            );
            (queue.clone(), Some(queue))
        }
        MailDelivery::Inline => {
            profile.push(
                "outbox:   off (MAIL_DELIVERY=inline): each mail is sent inside its request, \
                 which waits for the mail server; development only"
                    .to_owned(),
            );
            (transport, None)
        }
    };

    tracing::info!("storage profile:\n  {}", profile.join("\n  "));
    let ports = AuthPorts {
        users,
        sessions,
        otps,
        mailer,
        hasher: Arc::new(hasher),
        clock: Arc::new(SystemClock),
        random: Arc::new(OsRandom),
        limiter,
        totp: totp_store,
    };
    let config = auth_config(settings);
    let otp_secret = OtpSecret::new(SecretBox::new(key.into_boxed_slice()))
        .context("AUTH_SECRET must be at least 32 bytes")?;
    let service = AuthService::new(ports, config, otp_secret);
    let service = match transactional {
        Some(queue) => service.with_outbox(queue),
        None => service,
    };
    let service = match breached_passwords(&settings.breached_passwords).await? {
        Some(list) => service.with_breached_passwords(list),
        None => service,
    };
    // Each account's security history, in the user database.
    // Written by a task of their own, so that recording one costs a request no time.
    let events = Arc::new(crate::events::QueuedSecurityEvents::spawn(events_store));
    let service = service.with_security_events(events, settings.events.config());
    let service = match &settings.passkeys {
        Some(px) => {
            tracing::info!(rp_id = %px.rp_id, origin = %px.origin, "passkeys on");
            let verifier =
                auth_webauthn::WebauthnVerifier::new(&px.rp_id, &px.origin, "SecureAuth")
                    .context("WEBAUTHN_RP_ID, WEBAUTHN_ORIGIN")?;
            service.with_passkeys(auth_core::Passkeys {
                store: passkey_store,
                challenges: ceremonies,
                verifier: Arc::new(verifier),
                ceremony_ttl: px.ceremony_ttl,
            })
        }
        None => service,
    };
    probes.outbox = Some(outbox.clone());
    Ok((service, outbox, probes))
}

/// The service's settings.
fn auth_config(settings: &Settings) -> AuthConfig {
    AuthConfig {
        otp_ttl: settings.otp_ttl,
        mail_cooldown: settings.mail_cooldown,
        session_ttl: settings.session_ttl,
        session_idle_timeout: settings.session_idle_timeout,
        password_policy: PasswordPolicy::with_min_chars(settings.password_min_length),
        enumeration_protection: settings.enumeration_protection,
        throttle: settings.throttle.clone(),
        totp_issuer: settings.mfa.issuer.clone(),
        mfa_token_ttl: settings.mfa.token_ttl,
        admin_reauth_window: settings.admin_reauth_window,
        ..AuthConfig::default()
    }
}

/// The breached-password list the settings name, loaded (a file) or checked (a URL).
async fn breached_passwords(
    settings: &BreachedPasswordSettings,
) -> anyhow::Result<Option<Arc<dyn BreachedPasswords>>> {
    Ok(match settings {
        BreachedPasswordSettings::Off => None,
        BreachedPasswordSettings::RangeApi { url, timeout } => {
            tracing::info!(%url, "breached passwords: checked with the range API");
            Some(Arc::new(
                auth_breached::RangeApi::new(url, *timeout).context("BREACHED_PASSWORDS_API")?,
            ))
        }
        BreachedPasswordSettings::File(path) => {
            let list = auth_breached::HashFile::load(path)
                .await
                .context("BREACHED_PASSWORDS_FILE")?;
            tracing::info!(
                hashes = list.len(),
                "breached passwords: checked with a local file"
            );
            Some(Arc::new(list))
        }
    })
}

/// The bytes of `AUTH_SECRET` (a random key for this process in development without one).
fn secret_key(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    let key: Vec<u8> = match &settings.auth_secret {
        Some(s) => s.expose_secret().as_bytes().to_vec(),
        None if settings.app_env == AppEnv::Development => {
            tracing::warn!(
                "AUTH_SECRET is not set: using a random key for this process only; codes die \
                 on restart and instances cannot share them"
            );
            let mut key = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            key
        }
        None => anyhow::bail!("AUTH_SECRET is required in production"),
    };
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| vars.get(k).cloned()).unwrap()
    }

    #[test]
    fn mfa_settings_reach_the_service() {
        let config = auth_config(&settings(&[
            ("MFA_ISSUER", "Example Corp"),
            ("MFA_TOKEN_TTL", "2m"),
        ]));
        assert_eq!(config.totp_issuer, "Example Corp");
        assert_eq!(config.mfa_token_ttl, std::time::Duration::from_secs(120));
        let defaults = auth_config(&settings(&[]));
        assert_eq!(defaults.totp_issuer, AuthConfig::default().totp_issuer);
        assert_eq!(defaults.mfa_token_ttl, AuthConfig::default().mfa_token_ttl);
    }

    #[test]
    fn mail_templates_dir_overrides_the_built_in_texts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/password_changed.subject"),
            "Your Acme password was changed",
        )
        .unwrap();
        let path = dir.path().display().to_string();
        let renderer = mail_renderer(&settings(&[("MAIL_TEMPLATES_DIR", &path)])).unwrap();
        let mail = renderer.render(&auth_core::MailMessage::PasswordChanged, None);
        assert_eq!(mail.subject, "Your Acme password was changed");

        let builtin = mail_renderer(&settings(&[])).unwrap();
        let mail = builtin.render(&auth_core::MailMessage::PasswordChanged, Some("de"));
        assert_eq!(mail.subject, "Ihr Passwort für SecureAuth wurde geändert");
    }

    #[test]
    fn a_bad_template_is_a_start_up_error_naming_the_variable_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("de")).unwrap();
        let file = dir.path().join("de/login_code.txt");
        std::fs::write(&file, "{% if code %}Ihr Code: {{ code }}").unwrap();
        let path = dir.path().display().to_string();
        let err = mail_renderer(&settings(&[("MAIL_TEMPLATES_DIR", &path)])).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("MAIL_TEMPLATES_DIR"), "{message}");
        assert!(message.contains(&file.display().to_string()), "{message}");

        let missing = dir.path().join("missing").display().to_string();
        let err = mail_renderer(&settings(&[("MAIL_TEMPLATES_DIR", &missing)])).unwrap_err();
        assert!(format!("{err:#}").contains(&missing), "{err:#}");
    }
}

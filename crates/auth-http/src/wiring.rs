//! Builds the adapters named by the settings and hands them to the service. The only place
//! where concrete adapters meet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use auth_argon2::Argon2Hasher;
use auth_core::outbox::MailSeal;
use auth_core::{
    AuthPorts, AuthService, BreachedPasswords, Mailer, OsRandom, OtpSecret, OtpStore, OutboxStore,
    RateLimiter, SessionStore, SystemClock, UserRepository,
};
use auth_memory::MemoryStore;
use auth_postgres::{run_migrations, MigrationError, PgUserRepository};
use auth_redis::RedisStore;
use auth_smtp::{FileMailer, SmtpMailer};
use auth_sqlite::SqliteUserRepository;

use crate::mail::MailOutbox;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretBox};

use crate::settings::{
    AppEnv, BreachedPasswordSettings, DatabaseSettings, MailDelivery, SessionStoreSettings,
    Settings,
};

/// The mail templates: the built-in ones, with `MAIL_TEMPLATES_DIR` laid over them when set.
/// A template that does not load stops the start-up, naming the file.
pub fn mail_renderer(settings: &Settings) -> anyhow::Result<auth_smtp::Renderer> {
    match &settings.mail.templates_dir {
        Some(dir) => auth_smtp::Renderer::with_overrides(dir).with_context(|| {
            format!(
                "loading the mail templates in MAIL_TEMPLATES_DIR {}",
                dir.display()
            )
        }),
        None => Ok(auth_smtp::Renderer::builtin()),
    }
}

/// Applies pending migrations (safe when several instances do it at once).
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let applied = match &settings.database {
        DatabaseSettings::Postgres(pg) => run_migrations(pg).await.map_err(anyhow::Error::from),
        DatabaseSettings::Sqlite(sqlite) => auth_sqlite::run_migrations(sqlite)
            .await
            .map_err(anyhow::Error::from),
    }
    .context("applying database migrations (check DATABASE_URL)")?;
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
    match &settings.database {
        DatabaseSettings::Postgres(pg) => {
            let repo =
                PgUserRepository::connect(pg).context("PostgreSQL settings (DATABASE_URL)")?;
            Ok(Arc::new(repo.outbox()))
        }
        DatabaseSettings::Sqlite(sqlite) => {
            let repo = SqliteUserRepository::open(sqlite)
                .await
                .context("opening the SQLite database (DATABASE_URL)")?;
            Ok(Arc::new(repo.outbox()))
        }
    }
}

/// The security event store of the user database the settings name (migrated first), for
/// the `events` command.
pub async fn open_security_events(
    settings: &Settings,
) -> anyhow::Result<Arc<dyn auth_core::SecurityEvents>> {
    migrate(settings).await?;
    match &settings.database {
        DatabaseSettings::Postgres(pg) => {
            let repo =
                PgUserRepository::connect(pg).context("PostgreSQL settings (DATABASE_URL)")?;
            Ok(Arc::new(repo.security_events()))
        }
        DatabaseSettings::Sqlite(sqlite) => {
            let repo = SqliteUserRepository::open(sqlite)
                .await
                .context("opening the SQLite database (DATABASE_URL)")?;
            Ok(Arc::new(repo.security_events()))
        }
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
    let (service, outbox, _, _) = build_observed_service(settings).await?;
    Ok((service, outbox))
}

/// What runs beside the service: the webhook queue (its courier is the server's to start)
/// and the security-event writer (the server drains it when it stops).
#[derive(Debug, Clone)]
pub struct Background {
    /// The webhook queue.
    pub webhooks: crate::webhooks::WebhookRuntime,
    /// The security-event writer's queue.
    pub events: crate::events::EventDrain,
}

/// [`build_service`], with what the metrics read at scrape time (the hasher, the connection
/// pools, the outbox, the webhook queue) and what runs beside the service.
pub async fn build_observed_service(
    settings: &Settings,
) -> anyhow::Result<(AuthService, MailOutbox, crate::metrics::Probes, Background)> {
    let mut probes = crate::metrics::Probes::default();
    // First: a typo in a template stops the start-up before anything else is touched.
    let renderer = mail_renderer(settings)?;
    let mut profile = Vec::new();
    let outbox_store: Arc<dyn OutboxStore>;
    let totp_store: Arc<dyn auth_core::TotpStore>;
    let events_store: Arc<dyn auth_core::SecurityEvents>;
    let passkey_store: Arc<dyn auth_core::PasskeyStore>;
    let webhook_store: Arc<dyn auth_core::WebhookStore>;
    profile.push(format!("users:    {}", settings.database.describe()));
    let users: Arc<dyn UserRepository> = match &settings.database {
        DatabaseSettings::Postgres(pg) => {
            let repo =
                PgUserRepository::connect(pg).context("PostgreSQL settings (DATABASE_URL)")?;
            probes.postgres = Some(repo.pool().clone());
            outbox_store = Arc::new(repo.outbox());
            totp_store = Arc::new(repo.totp());
            events_store = Arc::new(repo.security_events());
            passkey_store = Arc::new(repo.passkeys());
            webhook_store = Arc::new(repo.webhooks());
            let migrated = Arc::new(AtomicBool::new(false));
            match run_migrations(pg).await {
                Ok(applied) => {
                    log_applied(&applied);
                    migrated.store(true, Ordering::Release);
                }
                Err(MigrationError::Unavailable(e)) => {
                    tracing::warn!(
                        error = %e,
                        "PostgreSQL is unavailable: starting anyway; /ready reports user_store \
                         down and the migrations are applied as soon as it answers"
                    );
                    let done = Arc::clone(&migrated);
                    let pg = pg.clone();
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
                Err(e) => {
                    return Err(e).context("applying database migrations (check DATABASE_URL)")
                }
            }
            Arc::new(crate::deferred::SchemaGate::new(repo, migrated))
        }
        DatabaseSettings::Sqlite(sqlite) => {
            migrate(settings).await?;
            let repo = SqliteUserRepository::open(sqlite)
                .await
                .context("opening the SQLite database (DATABASE_URL)")?;
            outbox_store = Arc::new(repo.outbox());
            totp_store = Arc::new(repo.totp());
            events_store = Arc::new(repo.security_events());
            passkey_store = Arc::new(repo.passkeys());
            webhook_store = Arc::new(repo.webhooks());
            Arc::new(repo)
        }
    };

    type Stores = (
        Arc<dyn SessionStore>,
        Arc<dyn OtpStore>,
        Arc<dyn RateLimiter>,
        Arc<dyn auth_core::PasskeyChallengeStore>,
    );
    let (sessions, otps, limiter, ceremonies): Stores = match &settings.sessions {
        SessionStoreSettings::Redis(redis) => {
            let store = Arc::new(
                RedisStore::new(redis)
                    .context("Redis settings (REDIS_URL, REDIS_KEY_PREFIX, REDIS_CLUSTER)")?,
            );
            profile.push(if redis.is_cluster() {
                "sessions: Redis Cluster (REDIS_URL), shared by every instance".to_owned()
            } else {
                "sessions: Redis (REDIS_URL), shared by every instance".to_owned()
            });
            probes.redis = Some(RedisStore::clone(&store));
            (store.clone(), store.clone(), store.clone(), store)
        }
        SessionStoreSettings::Memory(memory) => {
            let store =
                Arc::new(MemoryStore::with_settings(memory).context("in-memory session store")?);
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
        match &settings.mail.templates_dir {
            Some(dir) => format!("built-in, overridden by {}", dir.display()),
            None => "built-in (set MAIL_TEMPLATES_DIR to override)".to_owned(),
        },
        renderer.languages().join(", ")
    );
    let transport: Arc<dyn Mailer> = match &settings.mail.smtp {
        Some(smtp) => {
            profile.push(format!("mail:     SMTP via {}:{}", smtp.host, smtp.port));
            let mailer = SmtpMailer::new(smtp.clone());
            Arc::new(
                mailer
                    .context("SMTP settings (SMTP_*, MAIL_FROM)")?
                    .with_renderer(renderer),
            )
        }
        None => {
            let m = FileMailer::new(&settings.mail.dir)
                .with_context(|| format!("creating MAIL_DIR {}", settings.mail.dir.display()))?
                .with_from(&settings.mail.from)
                .context("MAIL_FROM")?
                .with_renderer(renderer);
            profile.push(format!(
                "mail:     written as .eml files into {} (set SMTP_HOST to send real mail)",
                settings.mail.dir.display()
            ));
            Arc::new(m)
        }
    };
    profile.push(texts);

    let hasher =
        Argon2Hasher::new(settings.argon2.clone()).context("Argon2 settings (ARGON2_*)")?;
    probes.hasher = Some(hasher.clone());

    let key = secret_key(settings)?;
    let seal = MailSeal::derive(&SecretBox::new(key.clone().into_boxed_slice()))
        .context("AUTH_SECRET must be at least 32 bytes")?;
    let (outbox, queue) = MailOutbox::new(
        outbox_store,
        Arc::clone(&transport),
        seal,
        &settings.mail.outbox,
    );
    // With the outbox, a mail that belongs to a change is written in the change's own
    // transaction (the repository and the outbox share the user database).
    let (mailer, transactional): (Arc<dyn Mailer>, _) = match settings.mail.delivery {
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
    let config = settings.auth.config();
    let webhook_seal = auth_core::webhooks::WebhookSeal::derive(&key);
    let otp_secret = OtpSecret::new(SecretBox::new(key.into_boxed_slice()))
        .context("AUTH_SECRET must be at least 32 bytes")?;
    let service = AuthService::new(ports, config, otp_secret);
    let service = match transactional {
        Some(queue) => service.with_outbox(queue),
        None => service,
    };
    let service = match breached_passwords(&settings.auth.breached_passwords).await? {
        Some(list) => service.with_breached_passwords(list),
        None => service,
    };
    // Each account's security history, in the user database.
    // Written by a task of their own, so that recording one costs a request no time.
    // Once an event is written, its webhook deliveries are queued in the same database.
    let webhooks = crate::webhooks::WebhookRuntime::new(
        Arc::clone(&webhook_store),
        Arc::new(
            crate::webhooks::HttpWebhookSender::new(settings.webhooks.timeout)
                .context("the webhook HTTP client")?,
        ),
        webhook_seal.clone(),
        &settings.webhooks,
    );
    let fanout = auth_core::webhooks::WebhookFanout::new(
        events_store,
        Arc::clone(&webhook_store),
        Arc::new(SystemClock),
        settings.webhooks.max_age,
    )
    .on_enqueue(webhooks.waker());
    let events = Arc::new(crate::events::QueuedSecurityEvents::spawn(Arc::new(fanout)));
    let drain = events.drain_handle();
    let service = service
        .with_security_events(events, settings.events.config())
        .with_webhooks(auth_core::Webhooks {
            store: Arc::clone(&webhook_store),
            seal: webhook_seal,
            allow_http: settings.webhooks.allow_http,
            max_endpoints: settings.webhooks.max_endpoints,
        });
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
    probes.webhooks = Some(webhook_store);
    Ok((
        service,
        outbox,
        probes,
        Background {
            webhooks,
            events: drain,
        },
    ))
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
    let key: Vec<u8> = match &settings.auth.secret {
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
        let config = (settings(&[("MFA_ISSUER", "Example Corp"), ("MFA_TOKEN_TTL", "2m")]))
            .auth
            .config();
        assert_eq!(config.totp_issuer, "Example Corp");
        assert_eq!(config.mfa_token_ttl, std::time::Duration::from_secs(120));
        let defaults = settings(&[]).auth.config();
        assert_eq!(
            defaults.totp_issuer,
            auth_core::AuthConfig::default().totp_issuer
        );
        assert_eq!(
            defaults.mfa_token_ttl,
            auth_core::AuthConfig::default().mfa_token_ttl
        );
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
        let mail = renderer.render(&auth_core::MailMessage::password_changed(), None);
        assert_eq!(mail.subject, "Your Acme password was changed");

        let builtin = mail_renderer(&settings(&[])).unwrap();
        let mail = builtin.render(&auth_core::MailMessage::password_changed(), Some("de"));
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

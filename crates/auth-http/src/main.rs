//! `auth-http serve` (default) runs the API; `auth-http migrate` applies database migrations;
//! `auth-http outbox list|retry|purge` looks at and acts on the mail outbox;
//! `auth-http events prune` deletes security events past their retention; `auth-http admin
//! create|promote EMAIL` makes the first administrators; `auth-http users import FILE` brings
//! accounts with their password hashes from another system.

use auth_http::settings::Settings;
use auth_http::{telemetry, wiring, Application};
use clap::{Parser, Subcommand};

/// jemalloc, with its background thread purging freed pages, gives memory back to the OS after
/// a flood of connections. Measured (debug build, 2 x 8000 connections trickling a body,
/// REQUEST_TIMEOUT=5s): glibc malloc peak 185-199 MiB, kept 199 MiB when idle; mimalloc kept
/// 100 MiB (79 after a few requests); jemalloc 188 MiB peak, 46 MiB when idle.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "auth-http",
    version,
    about = "SecureAuth: email + password authentication with server-side sessions"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (default). Applies pending migrations first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Look at and act on the mail outbox (in the user database of DATABASE_URL).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Print the OpenAPI document (the one served at /openapi.json) and exit.
    Openapi,
    /// Each account's security history (in the user database of DATABASE_URL).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Make administrators (in the user database of DATABASE_URL).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Bring accounts from another system (into the user database of DATABASE_URL).
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Import accounts from a file of JSON lines, one account a line:
    /// `{"email": "...", "password_hash": "...", "verified": true, "created_at": "RFC 3339"}`
    /// (`verified` and `created_at` optional). Hashes: Argon2 (any parameters), bcrypt, scrypt
    /// or PBKDF2-SHA256/512 in PHC form; each is replaced by a current Argon2id hash at the
    /// account's next login. Lines that cannot be imported are reported (never their hash)
    /// and skipped; the exit status is 1 when there was any.
    Import {
        /// The file of JSON lines.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Delete the events older than SECURITY_EVENT_RETENTION_DAYS (the server also does this
    /// once an hour).
    Prune,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a verified administrator account. The password is prompted for (without echo)
    /// on a terminal, or read as the first line of standard input; never from the command
    /// line, where other users could see it.
    Create {
        /// The account's email address.
        email: String,
    },
    /// Make an existing account an administrator.
    Promote {
        /// The account's email address.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// The backlog, then the dead (or with --pending, the waiting) messages, oldest first.
    List {
        /// List waiting messages instead of dead ones.
        #[arg(long)]
        pending: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Make dead messages due again, with their attempts reset.
    Retry {
        /// The message's id; without it, every dead message.
        id: Option<uuid::Uuid>,
    },
    /// Delete dead messages for good.
    Purge {
        /// The message's id; without it, every dead message.
        id: Option<uuid::Uuid>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        // Needs no settings: the document is the same whatever the configuration.
        use utoipa::OpenApi as _;
        return match auth_http::openapi::ApiDoc::openapi().to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("auth-http: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    // Purge freed pages on a timer, not only when the allocator is next used.
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    // A missing .env is normal; a malformed one is reported by the settings that follow.
    let _ = dotenvy::dotenv();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("auth-http: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init_with_traces(
        settings.log_format,
        "info",
        std::io::stdout,
        &settings.traces,
    );
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => wiring::migrate(&settings).await,
        Command::Outbox(command) => outbox(&settings, command).await,
        Command::Events(EventsCommand::Prune) => prune_events(&settings).await,
        Command::Admin(command) => admin(&settings, command).await,
        Command::Users(UsersCommand::Import { file }) => import_users(&settings, &file).await,
        Command::Serve => serve(settings).await,
        // Answered before the settings are read.
        Command::Openapi => Ok(()),
    };
    telemetry::shutdown_traces();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "auth-http stopped");
            eprintln!("auth-http: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let workers = settings
        .http
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let wanted = workers.saturating_mul(settings.http.max_connections);
    match auth_http::server::raise_fd_limit() {
        Some(limit) if (limit as usize) < wanted.saturating_add(256) => tracing::warn!(
            open_files = limit,
            max_connections = settings.http.max_connections,
            workers,
            "the open-file limit is below HTTP_WORKERS x MAX_CONNECTIONS: connections beyond \
             it will be refused by the kernel"
        ),
        Some(limit) => tracing::info!(open_files = limit, "open-file limit"),
        None => {}
    }
    let app = Application::build(settings.clone()).await?;
    tracing::info!(addr = %settings.http.bind_addr.ip(), port = app.port(), "listening");
    let ip = match settings.http.bind_addr.ip() {
        ip if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip => ip,
    };
    let url = format!("http://{}/", std::net::SocketAddr::new(ip, app.port()));
    tracing::info!(url = %url, "web UI: open {url} in a browser");
    app.run_until_stopped().await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn prune_events(settings: &Settings) -> anyhow::Result<()> {
    use auth_core::{Clock as _, SystemClock};
    let store = wiring::open_security_events(settings).await?;
    let before =
        SystemClock.now() - chrono::TimeDelta::days(i64::from(settings.events.retention_days));
    let n = store.prune(before).await?;
    println!(
        "{n} security event(s) older than {} day(s) deleted",
        settings.events.retention_days
    );
    Ok(())
}

async fn outbox(settings: &Settings, command: OutboxCommand) -> anyhow::Result<()> {
    use auth_core::{Clock as _, MailState, SystemClock};
    let store = wiring::open_outbox(settings).await?;
    let now = SystemClock.now();
    match command {
        OutboxCommand::List { pending, limit } => {
            let stats = store.stats(now).await?;
            println!(
                "pending: {}  oldest: {}  dead: {}  suppressed addresses: {}",
                stats.pending,
                stats
                    .oldest_pending
                    .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339()),
                stats.dead,
                stats.suppressed
            );
            let state = if pending {
                MailState::Pending
            } else {
                MailState::Dead
            };
            for e in store.list(state, limit).await? {
                println!(
                    "{}  {}  {:<36}  to {}  attempts {}  queued {}  next {}  {}",
                    e.id,
                    e.state.as_str(),
                    e.kind,
                    e.to,
                    e.attempts,
                    e.created_at.to_rfc3339(),
                    e.next_attempt_at.to_rfc3339(),
                    e.last_error.unwrap_or_default()
                );
            }
        }
        OutboxCommand::Retry { id } => {
            let n = store.revive(id, now).await?;
            println!("{n} message(s) due again");
        }
        OutboxCommand::Purge { id } => {
            let n = store.purge(id).await?;
            println!("{n} message(s) deleted");
        }
    }
    Ok(())
}

/// The password for `admin create`: prompted for without echo on a terminal, else the first
/// line of standard input.
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _};
    let raw = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password for the new administrator: ")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    Ok(raw.trim_end_matches(['\r', '\n']).to_owned())
}

/// One line of `users import`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportedUser {
    email: String,
    password_hash: String,
    #[serde(default)]
    verified: bool,
    #[serde(default)]
    created_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn import_users(settings: &Settings, file: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::BufRead as _;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let (service, _outbox) = wiring::build_service(settings).await?;
    let (mut imported, mut failed) = (0u64, 0u64);
    for (n, line) in reader.lines().enumerate() {
        let n = n + 1;
        let line = line.with_context(|| format!("reading line {n}"))?;
        if line.trim().is_empty() {
            continue;
        }
        // A line's error never quotes the line: it holds a password hash.
        let outcome = async {
            let user: ImportedUser = serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("not an account ({})", e.classify_name()))?;
            let email = auth_core::EmailAddress::parse(&user.email)
                .map_err(|e| anyhow::anyhow!("email: {e}"))?;
            if !auth_argon2::is_supported_hash(&user.password_hash) {
                anyhow::bail!(
                    "password_hash: not Argon2, bcrypt, scrypt or PBKDF2-SHA256/512 in PHC form"
                );
            }
            let now = chrono::Utc::now();
            let verified_at = user.verified.then(|| user.created_at.unwrap_or(now));
            service
                .import_user(
                    &email,
                    auth_core::PasswordHash::new(user.password_hash),
                    verified_at,
                    user.created_at,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok::<_, anyhow::Error>(email)
        }
        .await;
        match outcome {
            Ok(email) => {
                imported += 1;
                println!("line {n}: imported {email}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("line {n}: skipped: {e}");
            }
        }
    }
    println!("{imported} imported, {failed} skipped");
    if failed > 0 {
        anyhow::bail!("{failed} lines were not imported");
    }
    Ok(())
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "missing or unknown fields",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

async fn admin(settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let (service, _outbox) = wiring::build_service(settings).await?;
    match command {
        AdminCommand::Create { email } => {
            let email = auth_core::EmailAddress::parse(&email).context("EMAIL")?;
            let password = secrecy::SecretString::from(read_password()?);
            let password = service
                .password_policy()
                .parse(password, &email)
                .map_err(|e| anyhow::anyhow!("the password is not accepted: {e}"))?;
            let id = service
                .create_admin(&email, &password)
                .await
                .context("creating the administrator")?;
            println!("administrator {email} created (id {id})");
        }
        AdminCommand::Promote { email } => {
            let email = auth_core::EmailAddress::parse(&email).context("EMAIL")?;
            let id = service
                .promote_to_admin(&email)
                .await
                .context("promoting the account")?;
            println!("{email} (id {id}) is now an administrator");
        }
    }
    Ok(())
}

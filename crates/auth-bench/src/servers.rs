//! The servers under test, each in its own process: the real service (`auth-http serve`, or
//! this binary's `serve`, which runs the same `auth_http::Application`) and the one-Redis-GET
//! reference (`auth-bench reference`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::{bail, Context};
use auth_core::{SessionStore, SessionToken};
use auth_redis::{RedisSettings, RedisStore};
use secrecy::SecretString;

/// A child server process, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    pub name: &'static str,
    pub base_url: String,
    pub log: PathBuf,
    child: tokio::process::Child,
}

/// Memory of a process from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
}

impl ServerProcess {
    /// Starts `program args...` with exactly `env` (plus `PATH`), in `workdir`, on a free
    /// loopback port, and waits until `GET /health` answers 200.
    pub async fn start(
        name: &'static str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        workdir: &Path,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = workdir.join(format!("{name}.log"));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("log file")?)
            .stderr(log_file)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {}", program.display()))?;
        let mut server = Self {
            name,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
            child,
        };
        server.wait_healthy(Duration::from_secs(60)).await?;
        Ok(server)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited during start-up ({status}); its log ({}):\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log)
                );
            }
            let health = client
                .get(format!("{}/health", self.base_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(&health, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} did not answer /health within {within:?}; its log:\n{}",
                    self.name,
                    tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `VmRSS` and `VmHWM` (peak resident set since start).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.pid().context("server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("reading /proc/<pid>/status (Linux only)")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
            threads: field("Threads:")?,
        })
    }

    /// Stops the process (SIGKILL; the benchmark needs no graceful shutdown).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Last lines of a log, for error messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// `auth-bench serve`: the real service, exactly as `auth-http serve` runs it.
pub async fn serve_app() -> anyhow::Result<()> {
    let settings = auth_http::settings::Settings::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    auth_http::telemetry::init(settings.log_format, "info", std::io::stdout);
    let app = auth_http::Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

/// `auth-bench reference`: the floor of a Redis-backed session check. One handler: parse the
/// bearer token, SHA-256 it, one `GET` through the same adapter and pool as the service
/// (`RedisStore::get`, which also decodes the session JSON), answer 200. Same worker count
/// and Redis timeout as the service.
pub async fn serve_reference() -> anyhow::Result<()> {
    let var = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set"));
    let bind = var("BIND_ADDR")?;
    let mut redis = RedisSettings::new(
        SecretString::from(var("REDIS_URL")?),
        var("REDIS_KEY_PREFIX")?,
    );
    redis.timeout = Duration::from_secs(3);
    let store = web::Data::new(RedisStore::new(&redis)?);
    let workers: usize = match std::env::var("HTTP_WORKERS") {
        Ok(v) => v.parse().context("HTTP_WORKERS")?,
        Err(_) => std::thread::available_parallelism().map_or(1, usize::from),
    };
    HttpServer::new(move || {
        App::new()
            .app_data(store.clone())
            .route("/me", web::get().to(reference_me))
            .route("/health", web::get().to(HttpResponse::Ok))
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await?;
    Ok(())
}

async fn reference_me(req: HttpRequest, store: web::Data<RedisStore>) -> HttpResponse {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(SessionToken::parse);
    let Some(token) = token else {
        return HttpResponse::Unauthorized().finish();
    };
    match store.get(&token.hash()).await {
        Ok(Some(session)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(format!(r#"{{"user_id":"{}"}}"#, session.user.id)),
        Ok(None) => HttpResponse::Unauthorized().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

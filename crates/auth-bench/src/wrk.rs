//! Running `wrk` (the load generator) with the Lua scripts in `lua/` and reading their JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

const ME_LUA: &str = include_str!("../lua/me.lua");
const ME_MANY_LUA: &str = include_str!("../lua/me_many.lua");
const TOKEN_LUA: &str = include_str!("../lua/token.lua");
const LOGIN_LUA: &str = include_str!("../lua/login.lua");
const SIGNUP_LUA: &str = include_str!("../lua/signup.lua");
const REPORT_LUA: &str = include_str!("../lua/report.lua");

/// Fails with an actionable message when `wrk` is not on `PATH`.
pub fn ensure_installed() -> anyhow::Result<()> {
    match std::process::Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "the load generator `wrk` is not installed ({e}); install it with \
             `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`"
        ),
    }
}

/// Writes the Lua scripts into `dir` (so the binary works from any directory).
pub fn write_scripts(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in [
        ("me.lua", ME_LUA),
        ("me_many.lua", ME_MANY_LUA),
        ("token.lua", TOKEN_LUA),
        ("login.lua", LOGIN_LUA),
        ("signup.lua", SIGNUP_LUA),
        ("report.lua", REPORT_LUA),
    ] {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(())
}

/// Which script drives the load.
#[derive(Debug, Clone)]
pub enum Load {
    /// `GET url` with `Authorization: Bearer token`, optionally paced by `delay_ms` per
    /// connection between requests.
    Me { token: String, delay_ms: u64 },
    /// `GET url` with a bearer token drawn at random, per request, from the file `tokens`
    /// (one per line).
    MeMany { tokens: PathBuf },
    /// `POST url` (`/token`) with `Authorization: Bearer token`: mints an access token.
    Token { token: String },
    /// `POST /login` cycling through `users` distinct users.
    Login { users: usize, password: String },
    /// `POST /signup`, each request with a fresh address `su-<run>-...@example.com`; `run`
    /// tells runs against the same database apart.
    Signup { run: String, password: String },
}

/// One wrk invocation.
#[derive(Debug, Clone)]
pub struct Run {
    pub label: String,
    pub url: String,
    pub threads: usize,
    pub connections: usize,
    pub duration: Duration,
    pub timeout: Duration,
    pub load: Load,
}

/// What the Lua `done()` hook wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrkOutput {
    pub duration_us: f64,
    pub requests: u64,
    pub bytes: u64,
    pub errors: SocketErrors,
    pub latency_us: Latency,
    /// Status code → count (login and signup scripts; the `/me` script counts only non-2xx).
    pub statuses: BTreeMap<String, u64>,
    pub missing_retry_after: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Responses with a status outside 2xx/3xx.
    pub status: u64,
    pub timeout: u64,
}

impl SocketErrors {
    /// Connection-level failures (not HTTP statuses).
    pub fn socket(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl WrkOutput {
    /// Completed requests per second.
    pub fn rps(&self) -> f64 {
        if self.duration_us <= 0.0 {
            return 0.0;
        }
        self.requests as f64 / (self.duration_us / 1e6)
    }

    /// Count of one status code (login and signup scripts).
    pub fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code.to_string()).copied().unwrap_or(0)
    }
}

impl Run {
    /// Spawns wrk; the returned future resolves when it is done.
    pub async fn execute(&self, lua_dir: &Path, out_dir: &Path) -> anyhow::Result<WrkOutput> {
        let out: PathBuf = out_dir.join(format!("wrk-{}.json", self.label));
        let _ = std::fs::remove_file(&out);
        let secs = self.duration.as_secs().max(1);
        let mut cmd = tokio::process::Command::new("wrk");
        cmd.arg("--threads")
            .arg(self.threads.to_string())
            .arg("--connections")
            .arg(self.connections.max(self.threads).to_string())
            .arg("--duration")
            .arg(format!("{secs}s"))
            .arg("--timeout")
            .arg(format!("{}s", self.timeout.as_secs().max(1)))
            .env("BENCH_LUA_DIR", lua_dir)
            .env("BENCH_OUT", &out)
            .env("BENCH_THREADS", self.threads.to_string())
            .kill_on_drop(true);
        match &self.load {
            Load::Me { token, delay_ms } => {
                cmd.arg("--script")
                    .arg(lua_dir.join("me.lua"))
                    .env("BENCH_TOKEN", token)
                    .env("BENCH_DELAY_MS", delay_ms.to_string());
            }
            Load::MeMany { tokens } => {
                cmd.arg("--script")
                    .arg(lua_dir.join("me_many.lua"))
                    .env("BENCH_TOKENS_FILE", tokens);
            }
            Load::Token { token } => {
                cmd.arg("--script")
                    .arg(lua_dir.join("token.lua"))
                    .env("BENCH_TOKEN", token);
            }
            Load::Login { users, password } => {
                cmd.arg("--script")
                    .arg(lua_dir.join("login.lua"))
                    .env("BENCH_USERS", users.to_string())
                    .env("BENCH_PASSWORD", password);
            }
            Load::Signup { run, password } => {
                cmd.arg("--script")
                    .arg(lua_dir.join("signup.lua"))
                    .env("BENCH_RUN", run)
                    .env("BENCH_PASSWORD", password);
            }
        }
        cmd.arg(&self.url);
        let output = cmd
            .output()
            .await
            .with_context(|| format!("running wrk for {}", self.label))?;
        std::fs::write(
            out_dir.join(format!("wrk-{}.txt", self.label)),
            &output.stdout,
        )
        .context("saving wrk's text output")?;
        if !output.status.success() {
            bail!(
                "wrk for {} failed ({}): {}",
                self.label,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let json = std::fs::read_to_string(&out)
            .with_context(|| format!("wrk for {} wrote no report {}", self.label, out.display()))?;
        serde_json::from_str(&json)
            .with_context(|| format!("parsing wrk report of {}: {json}", self.label))
    }
}

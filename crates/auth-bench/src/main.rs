//! `auth-bench`: the load benchmark of SecureAuth (issue 7). See `docs/BENCHMARKS.md`.
//!
//! `auth-bench [--smoke] [--server-bin target/release/auth-http]` creates a fresh PostgreSQL
//! database and Redis key prefix, seeds verified users, starts the service and a one-Redis-GET
//! reference server as separate processes, drives five scenarios with `wrk`, then a sixth
//! (signup with a slow loopback mail server, the outbox against inline delivery), prints one
//! table and writes a JSON report (default `target/bench/report.json`). `serve` and `reference`
//! are the two server processes it starts (the first is `auth-http serve` when
//! `--server-bin` is not given).

mod bench;
mod crowded;
mod curves;
mod servers;
mod signup;
mod wrk;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "auth-bench",
    about = "Load benchmark of the SecureAuth service"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmark (default).
    Run(RunArgs),
    /// Scenario 8, the cost curves: the service at 10k, 100k and 1M users and sessions.
    Curves(curves::CurvesArgs),
    /// Internal: run the real service (same as `auth-http serve`), configured by env vars.
    Serve,
    /// Internal: run the one-Redis-GET reference server (BIND_ADDR, REDIS_URL, REDIS_KEY_PREFIX).
    Reference,
}

/// Options of a benchmark run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A few seconds in total: every scenario very briefly (used by `cargo test`).
    #[arg(long)]
    pub smoke: bool,
    /// Server binary to benchmark (`auth-http`); default: this binary's `serve`.
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Where the JSON report goes; logs and raw wrk output go next to it.
    #[arg(long, default_value = "target/bench/report.json")]
    pub out: PathBuf,
    /// Seconds per scenario (default 10, smoke 1).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Extra environment of the server under test, `KEY=VALUE` (repeatable), e.g. to compare
    /// `MALLOC_ARENA_MAX=2`. Recorded in the report.
    #[arg(long = "server-env", value_parser = parse_key_value)]
    pub server_env: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("auth-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Serve) => runtime.block_on(servers::serve_app()),
        Some(Command::Reference) => {
            // actix-web runs its own per-worker runtimes; `run()` needs a local set.
            actix_web::rt::System::new().block_on(servers::serve_reference())
        }
        Some(Command::Run(args)) => runtime.block_on(bench::run(args)),
        Some(Command::Curves(args)) => runtime.block_on(curves::run(args)),
        None => runtime.block_on(bench::run(cli.run)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auth-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

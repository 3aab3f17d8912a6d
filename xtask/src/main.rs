//! SecureAuth's developer tasks, run as `cargo xtask <task>` (the alias is in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask test [CARGO TEST ARGS]`: makes sure what the test suite needs is there, then
//!   runs `cargo test --workspace --all-features [CARGO TEST ARGS]`. It starts PostgreSQL
//!   (127.0.0.1:5432) and Redis (127.0.0.1:6379) when they are down, installs Chromium, wrk,
//!   Node and npm with `apt-get` when they are missing, and runs `npm ci` in `tests/browser`
//!   when its packages are missing. Starting services and installing packages needs root:
//!   without it, the task prints the exact commands that will do it and stops. `--no-setup`
//!   (before any cargo argument) skips all of this. `DATABASE_URL` / `REDIS_URL` set in the
//!   environment mean "use that server": the task leaves PostgreSQL / Redis alone.
//! - `cargo xtask setup`: only the set-up part of `test`.
//! - `cargo xtask lint`: `cargo fmt --check`, clippy with warnings as errors, the rustdoc
//!   of `auth-core` with warnings as errors, and the OpenAPI document (`auth-http openapi`,
//!   written to `target/openapi.json`) through Redocly's linter with the rules of
//!   `redocly.yaml` (the pinned `@redocly/cli` comes from the npm registry through `npx`;
//!   Node and npm are installed with `apt-get` when they are missing).
//! - `cargo xtask mutants [ARGS]`: mutation testing of `auth-core` with cargo-mutants
//!   (installed first when missing): every mutant of the core must make a test fail, except
//!   those of `Debug`/`Display` impls (`exclude_re` in `.cargo/mutants.toml`). Fails when any
//!   mutant is missed and lists them; the report is in `mutants.out/`. One build at a time
//!   unless `CARGO_MUTANTS_JOBS` or `-j` says otherwise. Too slow for every CI run (minutes to
//!   tens of minutes), so `.ci/run` does not run it.
//!
//! `.ci/run` is `cargo xtask lint && cargo xtask test`. Nothing but std: this must build in
//! seconds on a fresh clone.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [--no-setup] [ARGS]  set up PostgreSQL, Redis, Chromium, wrk and the browser test's npm
                            packages (or print the commands that will), then run
                            `cargo test --workspace --all-features ARGS`
  setup                     only the set-up part of `test`
  lint                      cargo fmt --check; clippy -D warnings; rustdoc of auth-core -D warnings;
                            the OpenAPI document through Redocly's linter (redocly.yaml)
  mutants [ARGS]            mutation testing of auth-core (installs cargo-mutants if missing);
                            fails when a test misses any mutant but Debug/Display impls
  help                      this text";

/// Where PostgreSQL and Redis are expected (the test suite's defaults).
const POSTGRES_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 5432);
const REDIS_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 6379);
/// How long a freshly started service may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The browser test's npm packages; their folders tell whether `npm ci` ran.
const BROWSER_DIR: &str = "tests/browser";
const BROWSER_PACKAGES: [&str; 2] = ["playwright-core", "smtp-server"];
/// The cargo-mutants release `cargo xtask mutants` installs when there is none.
const CARGO_MUTANTS_VERSION: &str = "27.1.0";
/// The Redocly CLI release that lints the OpenAPI document (needs Node 20.19 or later).
const REDOCLY_CLI: &str = "@redocly/cli@2.77.0";
/// Where `cargo xtask lint` writes the OpenAPI document it checks.
const OPENAPI_FILE: &str = "target/openapi.json";
/// The package whose mutants must all be caught.
const MUTANTS_PACKAGE: &str = "auth-core";

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();
    let outcome = match task.as_ref().and_then(|t| t.to_str()) {
        Some("test") => test(rest),
        Some("setup") => setup().map(exit_if),
        Some("lint") => lint(),
        Some("mutants") => mutants(rest),
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => {
            eprintln!("xtask: unknown task `{other}`\n\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("xtask: {e}");
        ExitCode::FAILURE
    })
}

fn exit_if(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// --- tasks ---

fn test(args: Vec<OsString>) -> Result<ExitCode, Error> {
    let (flags, passthrough): (Vec<OsString>, Vec<OsString>) = {
        let split = args
            .iter()
            .position(|a| a != "--no-setup")
            .unwrap_or(args.len());
        let (flags, rest) = args.split_at(split);
        (flags.to_vec(), rest.to_vec())
    };
    if flags.is_empty() && !setup()? {
        return Ok(ExitCode::FAILURE);
    }
    say("cargo test --workspace --all-features");
    let status = cargo()?
        .args(["test", "--workspace", "--all-features"])
        .args(passthrough)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(exit_code(status))
}

fn lint() -> Result<ExitCode, Error> {
    /// What to print, cargo's arguments, and an environment variable to set.
    type Step<'a> = (&'a str, &'a [&'a str], Option<(&'a str, &'a str)>);
    let steps: [Step<'_>; 3] = [
        (
            "cargo fmt --check",
            &["fmt", "--all", "--", "--check"],
            None,
        ),
        (
            "cargo clippy -D warnings",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
            None,
        ),
        (
            "cargo doc -p auth-core (RUSTDOCFLAGS=-D warnings)",
            &["doc", "-p", "auth-core", "--all-features", "--no-deps"],
            Some(("RUSTDOCFLAGS", "-D warnings")),
        ),
    ];
    for (what, args, env) in steps {
        say(what);
        let mut cmd = cargo()?;
        cmd.args(args);
        if let Some((key, value)) = env {
            cmd.env(key, value);
        }
        let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            eprintln!("xtask: `{what}` failed");
            return Ok(exit_code(status));
        }
    }
    lint_openapi()
}

/// Writes the OpenAPI document the server serves to [`OPENAPI_FILE`] and lints it with
/// [`REDOCLY_CLI`] and the rules of `redocly.yaml`.
fn lint_openapi() -> Result<ExitCode, Error> {
    say(&format!("auth-http openapi > {OPENAPI_FILE}"));
    let out = cargo()?
        .args(["run", "--quiet", "-p", "auth-http", "--", "openapi"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        eprintln!("xtask: `auth-http openapi` failed");
        return Ok(exit_code(out.status));
    }
    let root = workspace_root()?;
    std::fs::write(root.join(OPENAPI_FILE), &out.stdout)
        .map_err(|e| format!("cannot write {OPENAPI_FILE}: {e}"))?;
    if !in_path("npx") {
        if !is_root() {
            return Err("the OpenAPI lint needs Node and npm (20.19 or later): run \
                        `sudo apt-get update && sudo apt-get install -y nodejs npm`, then \
                        `cargo xtask lint` again"
                .into());
        }
        say("installing nodejs, npm");
        let install = ["apt-get", "install", "-y", "-qq", "nodejs", "npm"];
        // The package lists may be stale or absent (a fresh container): update and retry once.
        let installed = apt(&install)? || (apt(&["apt-get", "update", "-qq"])? && apt(&install)?);
        if !installed {
            return Err(format!("`{}` failed", shell_words(&install)).into());
        }
    }
    let args = [
        "--yes",
        REDOCLY_CLI,
        "lint",
        OPENAPI_FILE,
        "--config",
        "redocly.yaml",
    ];
    say(&format!("npx {}", shell_words(&args)));
    let status = Command::new("npx")
        .args(args)
        .current_dir(&root)
        // No usage reports and no update check: the lint talks to the npm registry only.
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .env("NO_UPDATE_NOTIFIER", "1")
        .status()
        .map_err(|e| format!("cannot run npx: {e}"))?;
    if !status.success() {
        eprintln!("xtask: the OpenAPI document does not pass `redocly lint` (see above)");
    }
    Ok(exit_code(status))
}

/// Runs cargo-mutants on [`MUTANTS_PACKAGE`] with the settings of `.cargo/mutants.toml`;
/// fails when a mutant is missed.
fn mutants(args: Vec<OsString>) -> Result<ExitCode, Error> {
    let installed = cargo()?
        .args(["mutants", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        let install = [
            "install",
            "cargo-mutants",
            "--locked",
            "--version",
            CARGO_MUTANTS_VERSION,
        ];
        say(&format!("cargo {}", shell_words(&install)));
        let status = cargo()?
            .args(install)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            eprintln!("xtask: cargo-mutants could not be installed");
            return Ok(exit_code(status));
        }
    }
    say(&format!(
        "cargo mutants --package {MUTANTS_PACKAGE} (settings: .cargo/mutants.toml)"
    ));
    let mut cmd = cargo()?;
    cmd.args(["mutants", "--package", MUTANTS_PACKAGE])
        .args(args);
    if env::var_os("CARGO_MUTANTS_JOBS").is_none() {
        // A mutant's build already uses every core; `-j N` on the command line still wins.
        cmd.env("CARGO_MUTANTS_JOBS", "1");
    }
    // Each mutant rebuilds the same crate after a one-token change: exactly what incremental
    // compilation is for (several times faster per mutant than a full rebuild).
    cmd.env("CARGO_INCREMENTAL", "1");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo mutants: {e}"))?;
    let report = workspace_root()?.join("mutants.out");
    let listed = |file: &str| std::fs::read_to_string(report.join(file)).unwrap_or_default();
    // cargo-mutants' exit codes: 0 all caught, 2 some missed, 3 some timed out (the mutant
    // made a test hang: caught, but said so), 4 the unmutated tests fail.
    match status.code() {
        Some(0) => {
            say("every mutant was caught");
            Ok(ExitCode::SUCCESS)
        }
        Some(3) => {
            say(&format!(
                "no mutant was missed; these made a test hang (counted as caught):\n{}",
                listed("timeout.txt")
            ));
            Ok(ExitCode::SUCCESS)
        }
        Some(2) => {
            eprintln!(
                "xtask: these mutants of {MUTANTS_PACKAGE} were not caught by any test \
                 (mutants.out/missed.txt; each needs a test that fails on it):\n{}",
                listed("missed.txt")
            );
            Ok(ExitCode::FAILURE)
        }
        _ => {
            eprintln!("xtask: cargo mutants failed (see its output above and mutants.out/)");
            Ok(exit_code(status))
        }
    }
}

/// The Schemathesis release the API suite's fuzzing test runs.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Makes the test suite's prerequisites ready. `Ok(false)`: something needs a command this
/// process cannot run (not root); the commands were printed.
fn setup() -> Result<bool, Error> {
    let mut setup = Setup {
        root: is_root(),
        todo: Vec::new(),
    };
    // Every step runs even when an earlier one failed, so one run lists everything to do.
    let outcomes = [
        setup.packages(),
        setup.postgres(),
        setup.redis(),
        setup.npm_packages(),
        setup.schemathesis(),
    ];
    let mut failed = false;
    for error in outcomes.into_iter().filter_map(Result::err) {
        eprintln!("xtask: {error}");
        failed = true;
    }
    if setup.todo.is_empty() {
        return if failed {
            Err("the test suite's prerequisites are not ready (see above)".into())
        } else {
            Ok(true)
        };
    }
    let mut message =
        String::from("the test suite is missing prerequisites that need root to set up; run:\n");
    for step in &setup.todo {
        let _ = writeln!(message, "    {step}");
    }
    message.push_str(
        "then `cargo xtask test` again (`cargo xtask test --no-setup` runs the tests anyway).",
    );
    eprintln!("xtask: {message}");
    Ok(false)
}

// --- set-up steps ---

struct Setup {
    root: bool,
    /// Commands (already prefixed with `sudo`) this process could not run.
    todo: Vec<String>,
}

impl Setup {
    /// Debian packages the tests run: Chromium (browser test), wrk (benchmark smoke test),
    /// Node and npm (browser test), Python's bcrypt (password import test), PgBouncer (the
    /// PostgreSQL adapter behind a pooler), redis-server when Redis is ours to start.
    fn packages(&mut self) -> Result<(), Error> {
        let mut missing = Vec::new();
        let chromium = match env::var_os("CHROMIUM_PATH") {
            Some(path) => Path::new(&path).is_file(),
            None => in_path("chromium"),
        };
        if !chromium {
            missing.push("chromium");
        }
        if !in_path("wrk") {
            missing.push("wrk");
        }
        if !in_path("node") {
            missing.push("nodejs");
        }
        if !in_path("npm") {
            missing.push("npm");
        }
        // Debian installs it outside a user's PATH.
        if !in_path("pgbouncer") && !Path::new("/usr/sbin/pgbouncer").is_file() {
            missing.push("pgbouncer");
        }
        if env::var_os("REDIS_URL").is_none() && !in_path("redis-server") {
            missing.push("redis-server");
        }
        // The import test checks hashes made by another bcrypt implementation (Python's).
        let python_bcrypt = ["python3", "/usr/bin/python3"].iter().any(|python| {
            Command::new(python)
                .args(["-c", "import bcrypt"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !python_bcrypt {
            missing.push("python3-bcrypt");
        }
        if missing.is_empty() {
            return Ok(());
        }
        let install: Vec<&str> = ["apt-get", "install", "-y", "-qq"]
            .into_iter()
            .chain(missing.iter().copied())
            .collect();
        if !self.root {
            self.todo.push(format!(
                "sudo apt-get update && sudo apt-get install -y {}",
                missing.join(" ")
            ));
            return Ok(());
        }
        say(&format!("installing {}", missing.join(", ")));
        // The package lists may be stale or absent (a fresh container): update and retry once.
        if !apt(&install)? {
            if !apt(&["apt-get", "update", "-qq"])? {
                return Err("`apt-get update` failed".into());
            }
            if !apt(&install)? {
                return Err(format!("`{}` failed", shell_words(&install)).into());
            }
        }
        Ok(())
    }

    fn postgres(&mut self) -> Result<(), Error> {
        if env::var_os("DATABASE_URL").is_some() {
            say("DATABASE_URL is set: using that PostgreSQL server as it is");
            return Ok(());
        }
        if postgres_ready() {
            return Ok(());
        }
        let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
            .map(|dir| {
                dir.filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
        let Some(version) = versions.last() else {
            return Err(
                "PostgreSQL is not running on 127.0.0.1:5432 and not installed \
                        (no /etc/postgresql): install it (`apt-get install -y postgresql`), \
                        let the role `postgres` connect to 127.0.0.1:5432 without a password, \
                        or set DATABASE_URL to a server whose role may create databases"
                    .into(),
            );
        };
        let start = [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            version,
            "main",
            "start",
        ];
        self.start_service("PostgreSQL", &start, postgres_ready)
    }

    fn redis(&mut self) -> Result<(), Error> {
        if env::var_os("REDIS_URL").is_some() {
            say("REDIS_URL is set: using that Redis server as it is");
            return Ok(());
        }
        if redis_ready() {
            return Ok(());
        }
        if self.root {
            for dir in ["/var/lib/redis", "/var/log/redis"] {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
            }
        }
        let start = [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1 -::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ];
        self.start_service("Redis", &start, redis_ready)
    }

    /// Runs `start` (root) or notes it (not root), then waits for `ready`.
    fn start_service(
        &mut self,
        name: &str,
        start: &[&str],
        ready: fn() -> bool,
    ) -> Result<(), Error> {
        if !self.root {
            self.todo.push(format!("sudo {}", shell_words(start)));
            return Ok(());
        }
        say(&format!(
            "{name} is down; starting it: {}",
            shell_words(start)
        ));
        let (program, args) = start.split_first().ok_or("empty command")?;
        let status = Command::new(program)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !status.success() {
            return Err(format!("`{}` failed ({status})", shell_words(start)).into());
        }
        if !wait_until(ready, START_TIMEOUT) {
            return Err(
                format!("{name} did not answer within {START_TIMEOUT:?} of starting").into(),
            );
        }
        Ok(())
    }

    /// Schemathesis, which the API suite runs against the OpenAPI document, from PyPI when it
    /// is missing or another version (`python3 -m pip install`).
    fn schemathesis(&mut self) -> Result<(), Error> {
        let installed = Command::new("schemathesis")
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(SCHEMATHESIS_VERSION));
        if installed {
            return Ok(());
        }
        let package = format!("schemathesis=={SCHEMATHESIS_VERSION}");
        say(&format!("pip install {package}"));
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "-q", &package])
            .status()
            .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
        if !status.success() {
            return Err(format!("`python3 -m pip install {package}` failed").into());
        }
        Ok(())
    }

    /// `npm ci` in `tests/browser` when its packages are missing (needs no root).
    fn npm_packages(&mut self) -> Result<(), Error> {
        let dir = workspace_root()?.join(BROWSER_DIR);
        let modules = dir.join("node_modules");
        let installed = BROWSER_PACKAGES
            .iter()
            .all(|package| modules.join(package).is_dir());
        // npm keeps a copy of the lock file it installed from; an older one means the lock
        // file changed since (a pull), and `npm ci` must run again.
        let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let current = match (
            modified(modules.join(".package-lock.json")),
            modified(dir.join("package-lock.json")),
        ) {
            (Some(installed_from), Some(lock)) => installed_from >= lock,
            _ => false,
        };
        if installed && current {
            return Ok(());
        }
        if !in_path("npm") {
            // Installing npm needs root: `packages` noted the command; this one follows it.
            self.todo
                .push(format!("(cd {BROWSER_DIR} && npm ci --no-audit --no-fund)"));
            return Ok(());
        }
        say(&format!("npm ci ({BROWSER_DIR})"));
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("cannot run npm: {e}"))?;
        if !status.success() {
            return Err(format!("`npm ci` failed in {}", dir.display()).into());
        }
        Ok(())
    }
}

// --- probes ---

fn postgres_ready() -> bool {
    if in_path("pg_isready") {
        return Command::new("pg_isready")
            .args(["-h", "127.0.0.1", "-p", "5432", "-q"])
            .status()
            .is_ok_and(|s| s.success());
    }
    TcpStream::connect_timeout(&SocketAddr::from(POSTGRES_ADDR), Duration::from_secs(1)).is_ok()
}

/// Redis answers `PING` with `+PONG`.
fn redis_ready() -> bool {
    let ping = || -> std::io::Result<bool> {
        let mut stream =
            TcpStream::connect_timeout(&SocketAddr::from(REDIS_ADDR), Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply)?;
        Ok(reply.starts_with(b"+PONG"))
    };
    ping().unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
}

fn in_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn wait_until(ready: fn() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

// --- helpers ---

/// `apt-get ...` without questions; `Ok(false)` when it fails.
fn apt(args: &[&str]) -> Result<bool, Error> {
    let (program, rest) = args.split_first().ok_or("empty command")?;
    let status = Command::new(program)
        .args(rest)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    Ok(status.success())
}

/// The same cargo that runs this task, in the workspace root.
fn cargo() -> Result<Command, Error> {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root()?);
    Ok(cmd)
}

/// The workspace root: the parent of this package's directory, as `cargo run` reports it at
/// run time (the compile-time path is only a fallback: a binary built from another checkout
/// sharing the target directory would point there).
fn workspace_root() -> Result<PathBuf, Error> {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .ok_or("xtask is not inside the workspace")?;
    if !root.is_dir() {
        return Err(format!("the workspace root {} does not exist", root.display()).into());
    }
    Ok(root)
}

/// A command line as one would type it in a POSIX shell.
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b));
            if plain {
                (*arg).to_owned()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn exit_code(status: ExitStatus) -> ExitCode {
    status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from)
}

fn say(what: &str) {
    eprintln!("xtask: {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quotes_only_what_needs_it() {
        assert_eq!(
            shell_words(&["redis-server", "--bind", "127.0.0.1 -::1", "--save", ""]),
            "redis-server --bind '127.0.0.1 -::1' --save ''"
        );
        assert_eq!(shell_words(&["echo", "it's"]), r"echo 'it'\''s'");
    }
}

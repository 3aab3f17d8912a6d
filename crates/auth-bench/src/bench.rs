//! The scenarios (the five of issue 7 and signup with a slow mail server), the table and the
//! JSON report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use argon2::password_hash::{Output as PhcOutput, PasswordHash as PhcHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use auth_argon2::{Argon2Hasher, Argon2Settings};
use auth_core::{EmailAddress, NewUser, PasswordHash, PasswordHasher as _, UserId, UserRepository};
use auth_postgres::testing::TestDatabase;
use futures::{StreamExt as _, TryStreamExt as _};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::servers::{Memory, ServerProcess};
use crate::signup::{self, SignupResults};
use crate::wrk::{self, Load, WrkOutput};
use crate::RunArgs;

const PASSWORD: &str = "correct horse battery staple";

/// Sizes of one run.
#[derive(Debug, Clone)]
struct Plan {
    smoke: bool,
    cores: usize,
    users: usize,
    duration: Duration,
    /// Longer for scenarios whose rate is a few dozen per second.
    login_duration: Duration,
    me_connections: usize,
    half_connections: usize,
    login_connections: usize,
    mixed_me_connections: usize,
    mixed_me_delay_ms: u64,
    storm_connections: usize,
    storm_duration: Duration,
    /// Idle time after the storm before the RSS is read again.
    settle_after_storm: Duration,
    /// Sessions of scenario 7's crowded account.
    crowded_sessions: usize,
    wrk_threads: usize,
    signup_connections: usize,
    /// Messages queued directly for the outbox drain without mail latency.
    drain_prequeued: usize,
}

impl Plan {
    fn new(args: &RunArgs) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let secs = |full: u64, smoke: u64| {
            Duration::from_secs(
                args.duration
                    .unwrap_or(if args.smoke { smoke } else { full }),
            )
        };
        Self {
            smoke: args.smoke,
            cores,
            users: if args.smoke { 64 } else { 2000 },
            duration: secs(10, 1),
            login_duration: secs(15, 2),
            me_connections: if args.smoke { 16 } else { 64 },
            half_connections: if args.smoke { 8 } else { 64 },
            login_connections: 4 * cores,
            mixed_me_connections: 8,
            mixed_me_delay_ms: 10,
            storm_connections: 1000,
            storm_duration: secs(10, 2),
            // jemalloc's background thread returns dirty pages after ~10 s.
            settle_after_storm: secs(12, 2),
            crowded_sessions: if args.smoke { 500 } else { 10_000 },
            wrk_threads: cores.max(1),
            // Fewer than the 16 sessions the mail sink serves at once, so inline delivery is
            // bounded by the mail server's latency and not by the sink's threads.
            signup_connections: 4 * cores,
            drain_prequeued: if args.smoke { 200 } else { 2000 },
        }
    }
}

/// Everything the run created, cleaned up whatever happens.
struct Fixture {
    db: TestDatabase,
    redis_url: String,
    redis_prefix: String,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    wrk::ensure_installed()?;
    let plan = Plan::new(&args);
    let out_dir = args
        .out
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out_dir = std::fs::canonicalize(&out_dir)?;
    let lua_dir = out_dir.join("lua");
    wrk::write_scripts(&lua_dir)?;

    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let redis_prefix = format!("bench-{}", uuid::Uuid::new_v4().simple());
    eprintln!("auth-bench: creating a fresh PostgreSQL database");
    let db = TestDatabase::create()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.report()))?;
    let fixture = Fixture {
        db,
        redis_url,
        redis_prefix,
    };
    let started = chrono::Utc::now();
    let load_before = load_average();
    let result = scenarios(&plan, &args, &fixture, &out_dir, &lua_dir).await;
    let load_after = load_average();

    // Clean up: our Redis keys and our database, whatever happened.
    if let Err(e) = delete_redis_prefix(&fixture.redis_url, &fixture.redis_prefix).await {
        eprintln!(
            "auth-bench: could not delete Redis keys {}:*: {e:#}",
            fixture.redis_prefix
        );
    }
    if let Err(e) = fixture.db.cleanup().await {
        eprintln!("auth-bench: could not drop the database: {}", e.report());
    }

    let results = result?;
    let report = build_report(&plan, &results, started, load_before, load_after);
    print_table(&plan, &results, &report);
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("auth-bench: report written to {}", args.out.display());
    Ok(())
}

/// Raw results of every scenario.
struct Results {
    me: WrkOutput,
    reference: WrkOutput,
    me_half: WrkOutput,
    half_target_rps: f64,
    token: WrkOutput,
    verifier_per_s: f64,
    verifier_verifies: u64,
    login: WrkOutput,
    argon2_raw_per_s: f64,
    argon2_raw_verifies: u64,
    mixed_me: WrkOutput,
    mixed_login: WrkOutput,
    storm: WrkOutput,
    memory_idle: Memory,
    memory_warm: Memory,
    memory_before_storm: Memory,
    memory_after_storm: Memory,
    memory_settled: Memory,
    alive_after_storm: bool,
    login_after_storm: u16,
    recovery: Duration,
    crowded: crate::crowded::CrowdedResults,
    signup: SignupResults,
    server_bin: String,
    server_env: Vec<(String, String)>,
}

async fn scenarios(
    plan: &Plan,
    args: &RunArgs,
    fx: &Fixture,
    out_dir: &Path,
    lua_dir: &Path,
) -> anyhow::Result<Results> {
    // Seed verified users with one real Argon2id hash of the server's parameters.
    let argon = Argon2Settings::default();
    let hasher = Argon2Hasher::new(argon.clone())?;
    let hash = hasher.hash(&SecretString::from(PASSWORD)).await?;
    eprintln!("auth-bench: seeding {} verified users", plan.users);
    seed_users(&fx.db, plan.users, &hash).await?;

    let self_exe = std::env::current_exe().context("locating auth-bench")?;
    let (program, server_args): (PathBuf, Vec<&str>) = match &args.server_bin {
        Some(bin) => (resolve_server_bin(bin, &self_exe)?, vec!["serve"]),
        None => (self_exe.clone(), vec!["serve"]),
    };
    let workers = plan.cores.to_string();
    let auth_secret = hex::encode(rand::random::<[u8; 32]>());
    let mut base_env: Vec<(String, String)> = vec![
        ("APP_ENV", "development".to_owned()),
        (
            "DATABASE_URL",
            secrecy::ExposeSecret::expose_secret(fx.db.url()).to_owned(),
        ),
        ("REDIS_URL", fx.redis_url.clone()),
        ("REDIS_KEY_PREFIX", fx.redis_prefix.clone()),
        ("MAIL_DIR", out_dir.join("mail").display().to_string()),
        ("AUTH_SECRET", auth_secret.clone()),
        ("LOG_FORMAT", "json".to_owned()),
        // Request logs at `info` would measure the log sink; warnings and errors still show.
        ("RUST_LOG", "warn".to_owned()),
        ("HTTP_WORKERS", workers.clone()),
        ("ARGON2_MEMORY_KIB", argon.memory_kib.to_string()),
        ("ARGON2_ITERATIONS", argon.iterations.to_string()),
        ("ARGON2_PARALLELISM", argon.parallelism.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    base_env.extend(rate_limit_overrides());
    let env: Vec<(String, String)> = base_env.iter().chain(&args.server_env).cloned().collect();

    eprintln!(
        "auth-bench: starting {} and the reference",
        program.display()
    );
    let mut server = ServerProcess::start("server", &program, &server_args, &env, out_dir).await?;
    let reference_env = vec![
        ("REDIS_URL".to_owned(), fx.redis_url.clone()),
        ("REDIS_KEY_PREFIX".to_owned(), fx.redis_prefix.clone()),
        ("HTTP_WORKERS".to_owned(), workers),
    ];
    let reference = ServerProcess::start(
        "reference",
        &self_exe,
        &["reference"],
        &reference_env,
        out_dir,
    )
    .await?;
    let memory_idle = server.memory()?;
    // The resting state of a server that has served: every hashing thread holds its Argon2
    // working memory (kept on purpose, so a login allocates nothing) and the pools have
    // opened their connections. Scenario 5b compares with this, not with a server that never
    // hashed.
    warm_up(&server.base_url, 4 * plan.cores).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory_warm = server.memory()?;

    let token = login_token(&server.base_url).await?;
    let me_url = format!("{}/me", server.base_url);
    let ref_url = format!("{}/me", reference.base_url);
    let me_load = |delay_ms| Load::Me {
        token: token.clone(),
        delay_ms,
    };
    let login_load = Load::Login {
        users: plan.users,
        password: PASSWORD.to_owned(),
    };
    let timeout = Duration::from_secs(30);
    let run = |label: &str, url: &str, connections, threads, duration, load| wrk::Run {
        label: label.to_owned(),
        url: url.to_owned(),
        threads,
        connections,
        duration,
        timeout,
        load,
    };

    if !plan.smoke {
        eprintln!("auth-bench: warm-up");
        let w = Duration::from_secs(2);
        for (label, url) in [("warmup-me", &me_url), ("warmup-ref", &ref_url)] {
            run(
                label,
                url,
                plan.me_connections,
                plan.wrk_threads,
                w,
                me_load(0),
            )
            .execute(lua_dir, out_dir)
            .await?;
        }
    }

    eprintln!(
        "auth-bench: 1. GET /me at {} connections",
        plan.me_connections
    );
    let me = run(
        "me",
        &me_url,
        plan.me_connections,
        plan.wrk_threads,
        plan.duration,
        me_load(0),
    )
    .execute(lua_dir, out_dir)
    .await?;
    eprintln!(
        "auth-bench: 2. reference (one Redis GET) at {} connections",
        plan.me_connections
    );
    let reference_out = run(
        "reference",
        &ref_url,
        plan.me_connections,
        plan.wrk_threads,
        plan.duration,
        me_load(0),
    )
    .execute(lua_dir, out_dir)
    .await?;
    reference.stop().await;

    // wrk paces each connection by a whole number of milliseconds between a response and the
    // next request; rounding down makes up for the response time itself.
    let half_target_rps = me.rps() / 2.0;
    let delay_ms = if half_target_rps > 0.0 {
        ((plan.half_connections as f64 * 1000.0 / half_target_rps).floor() as u64).max(1)
    } else {
        1000
    };
    eprintln!("auth-bench: 1b. GET /me paced at ~half of peak ({half_target_rps:.0}/s)");
    let me_half = run(
        "me-half",
        &me_url,
        plan.half_connections,
        plan.wrk_threads,
        plan.duration,
        me_load(delay_ms),
    )
    .execute(lua_dir, out_dir)
    .await?;

    eprintln!(
        "auth-bench: 1c. POST /token (mint an access JWT) at {} connections",
        plan.me_connections
    );
    let token_out = run(
        "token",
        &format!("{}/token", server.base_url),
        plan.me_connections,
        plan.wrk_threads,
        plan.duration,
        Load::Token {
            token: token.clone(),
        },
    )
    .execute(lua_dir, out_dir)
    .await?;
    eprintln!(
        "auth-bench: 1d. auth-jwt verifier, in-process on {} tasks",
        plan.cores
    );
    let (verifier_verifies, verifier_time) =
        jwt_verifies(&server.base_url, &token, plan.cores, plan.duration / 2).await?;
    let verifier_per_s = verifier_verifies as f64 / verifier_time.as_secs_f64();

    // The raw rate is measured right before and right after the login flood and averaged,
    // so that background load drifting during the run biases both sides alike.
    eprintln!(
        "auth-bench: 3. raw Argon2id verify rate on {} threads",
        plan.cores
    );
    let half = plan.duration / 2;
    let (raw_a, raw_a_time) = raw_argon2_verifies(hash.as_str(), &argon, plan.cores, half).await?;
    eprintln!(
        "auth-bench: 3. POST /login flood at {} connections",
        plan.login_connections
    );
    let login = run(
        "login",
        &server.base_url,
        plan.login_connections,
        plan.wrk_threads,
        plan.login_duration,
        login_load.clone(),
    )
    .execute(lua_dir, out_dir)
    .await?;
    let (raw_b, raw_b_time) = raw_argon2_verifies(hash.as_str(), &argon, plan.cores, half).await?;
    let argon2_raw_verifies = raw_a + raw_b;
    let argon2_raw_per_s = argon2_raw_verifies as f64 / (raw_a_time + raw_b_time).as_secs_f64();

    eprintln!("auth-bench: 4. GET /me while a login flood saturates the hasher");
    let mixed_login_run = run(
        "mixed-login",
        &server.base_url,
        plan.login_connections,
        1,
        plan.login_duration,
        login_load.clone(),
    );
    let mixed_me_run = run(
        "mixed-me",
        &me_url,
        plan.mixed_me_connections,
        1,
        plan.login_duration,
        me_load(plan.mixed_me_delay_ms),
    );
    let (mixed_login, mixed_me) = tokio::join!(mixed_login_run.execute(lua_dir, out_dir), async {
        // Let the login flood fill the hasher first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        mixed_me_run.execute(lua_dir, out_dir).await
    });
    let (mixed_login, mixed_me) = (mixed_login?, mixed_me?);

    eprintln!(
        "auth-bench: 5. {} concurrent logins",
        plan.storm_connections
    );
    let memory_before_storm = server.memory()?;
    let storm = run(
        "storm",
        &server.base_url,
        plan.storm_connections,
        plan.wrk_threads,
        plan.storm_duration,
        login_load,
    )
    .execute(lua_dir, out_dir)
    .await?;
    let memory_after_storm = server.memory()?;
    let alive_after_storm = server.alive();
    let (login_after_storm, recovery) = login_status(&server.base_url).await;
    let server_bin = program.display().to_string();
    if !alive_after_storm {
        eprintln!(
            "auth-bench: the server died; its log:\n{}",
            crate::servers::tail(&server.log)
        );
    }
    eprintln!(
        "auth-bench: 5b. idle for {:?} after the storm",
        plan.settle_after_storm
    );
    tokio::time::sleep(plan.settle_after_storm).await;
    let memory_settled = server.memory()?;

    eprintln!(
        "auth-bench: 7. another user's GET /me while an account with {} sessions lists and ends them",
        plan.crowded_sessions
    );
    let crowded = crate::crowded::run(crate::crowded::Setup {
        base_url: &server.base_url,
        db: &fx.db,
        redis_url: &fx.redis_url,
        redis_prefix: &fx.redis_prefix,
        email: "bench-1@example.com",
        password: PASSWORD,
        sessions: plan.crowded_sessions,
        other_me: run(
            "crowded-me",
            &me_url,
            plan.half_connections,
            plan.wrk_threads,
            plan.duration,
            me_load(delay_ms),
        ),
        out_dir,
        lua_dir,
    })
    .await?;
    server.stop().await;

    let signup = signup::run(&signup::Setup {
        program: &program,
        server_args: &server_args,
        base_env: &base_env,
        server_env: &args.server_env,
        auth_secret: &auth_secret,
        db: &fx.db,
        out_dir,
        lua_dir,
        password: PASSWORD,
        connections: plan.signup_connections,
        wrk_threads: plan.wrk_threads,
        duration: plan.duration,
        prequeued: plan.drain_prequeued,
    })
    .await?;

    Ok(Results {
        me,
        reference: reference_out,
        me_half,
        half_target_rps,
        token: token_out,
        verifier_per_s,
        verifier_verifies,
        login,
        argon2_raw_per_s,
        argon2_raw_verifies,
        mixed_me,
        mixed_login,
        storm,
        memory_idle,
        memory_warm,
        memory_before_storm,
        memory_after_storm,
        memory_settled,
        alive_after_storm,
        login_after_storm,
        recovery,
        crowded,
        signup,
        server_bin,
        server_env: args.server_env.clone(),
    })
}

/// `--server-bin auth-http` (a bare name) means the binary next to this one, so
/// `cargo run --release -p auth-bench -- --server-bin auth-http` works whatever the target dir.
pub(crate) fn resolve_server_bin(bin: &Path, self_exe: &Path) -> anyhow::Result<PathBuf> {
    if bin.components().count() == 1 && !bin.exists() {
        if let Some(sibling) = self_exe.parent().map(|d| d.join(bin)) {
            if sibling.exists() {
                return Ok(sibling);
            }
        }
    }
    if !bin.exists() {
        bail!(
            "server binary {} not found (build it with `cargo build --release -p auth-http`)",
            bin.display()
        );
    }
    Ok(std::fs::canonicalize(bin)?)
}

/// Env vars that lift the API's request rate limits for the benchmark (all of its traffic
/// comes from 127.0.0.1 and cycles through a few thousand addresses), including the per-client
/// share of the password hasher (`0`: no bound) and the bound on connections per client,
/// which would otherwise turn most of the concurrent requests from the one client into 429s.
pub(crate) fn rate_limit_overrides() -> Vec<(String, String)> {
    auth_http::settings::RATE_LIMIT_VARS
        .iter()
        .map(|k| ((*k).to_owned(), "off".to_owned()))
        .chain([
            ("HASHES_IN_FLIGHT_PER_CLIENT".to_owned(), "0".to_owned()),
            // The storm's thousand connections come from one address too, and wrk sends tens
            // of thousands of requests a second from it.
            ("MAX_CONNECTIONS_PER_CLIENT".to_owned(), "off".to_owned()),
            ("MAX_REQUESTS_PER_CLIENT".to_owned(), "off".to_owned()),
        ])
        .collect()
}

async fn seed_users(db: &TestDatabase, n: usize, hash: &PasswordHash) -> anyhow::Result<()> {
    let repo = db.repository();
    let repo = &repo;
    futures::stream::iter(0..n)
        .map(|i| async move {
            let now = chrono::Utc::now();
            let user = repo
                .create(&NewUser {
                    id: UserId::from_uuid(uuid::Uuid::new_v4()),
                    email: EmailAddress::parse(&format!("bench-{i}@example.com"))?,
                    password_hash: hash.clone(),
                    created_at: now,
                    language: None,
                })
                .await?;
            repo.mark_verified(user.id, now).await?;
            anyhow::Ok(())
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// `n` logins at once (each a 200), so every hashing thread and pooled connection has been
/// used.
async fn warm_up(base: &str, n: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let logins = (0..n).map(|_| {
        client
            .post(format!("{base}/login"))
            .json(&json!({"email": "bench-0@example.com", "password": PASSWORD}))
            .send()
    });
    for response in futures::future::join_all(logins).await {
        let status = response.context("warm-up login")?.status();
        anyhow::ensure!(status.is_success(), "warm-up login answered {status}");
    }
    Ok(())
}

async fn login_token(base: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .post(format!("{base}/login"))
        .json(&json!({"email": "bench-0@example.com", "password": PASSWORD}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    body.pointer("/session/token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("login for the /me token answered {status}: {body}"))
}

/// Status of an ordinary login after the storm, retried while the server still answers 503
/// (the queue of the storm drains first), with how long it took to get a 200. A status other
/// than 200 after 30 s (0: no answer at all) means the server did not recover.
/// Verifications per second of `auth-jwt`'s `JwksVerifier` (signature, `iss`, `aud`, `exp`),
/// `tasks` at once for `duration`, on one token minted for `session` by the server at `base`
/// (its development issuer and key; the key set is fetched once, then cached).
async fn jwt_verifies(
    base: &str,
    session: &str,
    tasks: usize,
    duration: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let minted: Value = reqwest::Client::new()
        .post(format!("{base}/token"))
        .bearer_auth(session)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let jwt = minted["access_token"]
        .as_str()
        .context("POST /token gave no access_token")?
        .to_owned();
    let verifier = std::sync::Arc::new(auth_jwt::JwksVerifier::new(
        auth_jwt::VerifierConfig::new(base, "secureauth"),
    )?);
    verifier.verify(&jwt).await?;
    let started = std::time::Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks.max(1) {
        let (verifier, jwt) = (std::sync::Arc::clone(&verifier), jwt.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < duration {
                for _ in 0..64 {
                    verifier.verify(&jwt).await?;
                    n += 1;
                }
                // Let the other tasks (and the runtime) in.
                tokio::task::yield_now().await;
            }
            Ok::<u64, auth_jwt::VerifyError>(n)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await??;
    }
    Ok((total, started.elapsed()))
}

async fn login_status(base: &str) -> (u16, Duration) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let status = client
            .post(format!("{base}/login"))
            .json(&json!({"email": "bench-1@example.com", "password": PASSWORD}))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        if status != 503 || start.elapsed() > Duration::from_secs(30) {
            return (status, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Argon2id verifies of `phc` on `threads` OS threads for `duration`, in-process: the
/// physical limit of a login on these cores. Each thread keeps its Argon2 working memory
/// from run to run (as the best possible hasher would), so nothing but Argon2 itself and
/// the final comparison is measured.
async fn raw_argon2_verifies(
    phc: &str,
    settings: &Argon2Settings,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let params = Params::new(
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
        Some(auth_argon2::OUTPUT_LEN),
    )
    .map_err(|e| anyhow::anyhow!("Argon2 parameters: {e}"))?;
    let phc = phc.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Duration)> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let parsed = PhcHash::new(&phc).map_err(|e| anyhow::anyhow!("seed hash: {e}"))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            bail!("seed hash has no salt or no output");
        };
        let mut salt_buf = [0u8; 64];
        let salt = salt
            .decode_b64(&mut salt_buf)
            .map_err(|e| anyhow::anyhow!("seed hash salt: {e}"))?;
        let blocks = params.block_count();
        let start = Instant::now();
        let deadline = start + duration;
        let total = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut memory = vec![Block::default(); blocks];
                        let mut out = [0u8; auth_argon2::OUTPUT_LEN];
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            let ran = argon2.hash_password_into_with_memory(
                                PASSWORD.as_bytes(),
                                salt,
                                &mut out,
                                &mut memory,
                            );
                            // `Output` compares in constant time, as a real verify does.
                            let matched = PhcOutput::new(&out).is_ok_and(|o| o == expected);
                            if ran.is_ok() && matched {
                                n += 1;
                            }
                        }
                        n
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or(0))
                .sum::<u64>()
        });
        let elapsed = start.elapsed();
        if total == 0 {
            bail!("no Argon2 verify succeeded");
        }
        Ok((total, elapsed))
    })
    .await?
}

pub(crate) async fn delete_redis_prefix(url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn ms(us: f64) -> f64 {
    (us / 1000.0 * 100.0).round() / 100.0
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// Unexpected outcomes of a `/me` run: any non-2xx and any socket error.
fn me_errors(o: &WrkOutput) -> u64 {
    o.errors.status + o.errors.socket()
}

/// Unexpected outcomes of a login run that should never be refused: anything but 200.
fn login_errors(o: &WrkOutput) -> u64 {
    o.statuses
        .iter()
        .filter(|(k, _)| k.as_str() != "200")
        .map(|(_, v)| v)
        .sum::<u64>()
        + o.errors.socket()
}

/// Unexpected outcomes of the storm: anything but 200 or a 503 with `Retry-After`, socket
/// errors (including client timeouts: a hang), a dead server.
fn storm_errors(r: &Results) -> u64 {
    let o = &r.storm;
    let other: u64 = o
        .statuses
        .iter()
        .filter(|(k, _)| k.as_str() != "200" && k.as_str() != "503")
        .map(|(_, v)| v)
        .sum();
    other
        + o.missing_retry_after
        + o.errors.socket()
        + u64::from(!r.alive_after_storm)
        + u64::from(r.login_after_storm != 200)
}

pub(crate) fn scenario_json(o: &WrkOutput, connections: usize, unexpected: u64) -> Value {
    json!({
        "connections": connections,
        "requests": o.requests,
        "duration_s": o.duration_us / 1e6,
        "rps": (o.rps() * 10.0).round() / 10.0,
        "p50_ms": ms(o.latency_us.p50),
        "p90_ms": ms(o.latency_us.p90),
        "p99_ms": ms(o.latency_us.p99),
        "max_ms": ms(o.latency_us.max),
        "statuses": o.statuses,
        "non_2xx": o.errors.status,
        "socket_errors": o.errors,
        "unexpected_errors": unexpected,
    })
}

fn build_report(
    plan: &Plan,
    r: &Results,
    started: chrono::DateTime<chrono::Utc>,
    load_before: String,
    load_after: String,
) -> Value {
    let mib = |kib: u64| (kib as f64 / 1024.0 * 10.0).round() / 10.0;
    let peak_rss_mib = mib(r.memory_after_storm.hwm_kib);
    let me_ratio = ratio(r.me.rps(), r.reference.rps());
    let token_ratio = ratio(r.token.rps(), r.me.rps());
    let verifier_per_s = r.verifier_per_s.round();
    let login_ratio = ratio(r.login.rps(), r.argon2_raw_per_s);
    let storm_unexpected = storm_errors(r);
    let settled_ratio = ratio(
        r.memory_settled.rss_kib as f64,
        r.memory_warm.rss_kib as f64,
    );
    let signup_ratio = r.signup.ratio();
    let signup_p50_ms = ms(r.signup.outbox.latency_us.p50);
    let drain_per_s = (r.signup.drain_slow.per_s() * 10.0).round() / 10.0;
    let targets = json!([
        {"name": "/me throughput vs one-Redis-GET reference", "value": me_ratio, "goal": ">= 0.75", "met": me_ratio >= 0.75},
        {"name": "/me p99 at half of peak (ms)", "value": ms(r.me_half.latency_us.p99), "goal": "< 5", "met": r.me_half.latency_us.p99 < 5000.0},
        {"name": "POST /token mints/s vs GET /me", "value": token_ratio, "goal": ">= 0.5", "met": token_ratio >= 0.5},
        {"name": "auth-jwt verifications/s (in-process)", "value": verifier_per_s, "goal": ">= 10000", "met": verifier_per_s >= 10_000.0},
        {"name": "logins/s vs raw Argon2id verify rate", "value": login_ratio, "goal": ">= 0.90", "met": login_ratio >= 0.90},
        {"name": "/me p99 while logins saturate the hasher (ms)", "value": ms(r.mixed_me.latency_us.p99), "goal": "< 10", "met": r.mixed_me.latency_us.p99 < 10_000.0},
        {"name": "peak server RSS with 1000 concurrent logins (MiB)", "value": peak_rss_mib, "goal": "< 256", "met": peak_rss_mib < 256.0},
        {"name": "storm: only 200 or 503+Retry-After, no hang, server alive", "value": storm_unexpected, "goal": "0 unexpected", "met": storm_unexpected == 0},
        {"name": "RSS 5b: after the storm and an idle pause, vs warm idle before", "value": settled_ratio, "goal": "<= 1.5", "met": settled_ratio <= 1.5},
        {"name": "7: /me p99 beside an account with many sessions (ms)", "value": ms(r.crowded.other_me.latency_us.p99), "goal": "< 5", "met": r.crowded.other_me.latency_us.p99 < 5000.0},
        {"name": "signups/s, outbox vs inline, 60 ms mail server", "value": signup_ratio, "goal": ">= 5", "met": signup_ratio >= 5.0},
        {"name": "outbox signup p50 with a 60 ms mail server (ms)", "value": signup_p50_ms, "goal": "< 30", "met": signup_p50_ms < 30.0},
        {"name": "courier drain to a 60 ms mail server (mails/s)", "value": drain_per_s, "goal": ">= 100", "met": drain_per_s >= 100.0},
    ]);
    let unexpected = me_errors(&r.me)
        + me_errors(&r.reference)
        + me_errors(&r.me_half)
        + me_errors(&r.token)
        + login_errors(&r.login)
        + me_errors(&r.mixed_me)
        + login_errors(&r.mixed_login)
        + storm_unexpected
        + me_errors(&r.crowded.other_me)
        + u64::from(r.crowded.logout_all_status != 204)
        + u64::from(r.crowded.me_after_logout_all != 401)
        + r.signup.outbox_errors()
        + r.signup.inline_errors()
        + r.signup.drain_fast_errors();
    json!({
        "mode": if plan.smoke { "smoke" } else { "full" },
        "started_at": started.to_rfc3339(),
        "machine": {
            "cores": plan.cores,
            "cpu": cpu_model(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "server": {
            "binary": r.server_bin,
            "extra_env": r.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "http_workers": plan.cores,
            "argon2": {"memory_kib": Argon2Settings::OWASP_MEMORY_KIB, "iterations": Argon2Settings::OWASP_ITERATIONS, "parallelism": Argon2Settings::OWASP_PARALLELISM},
        },
        "scenarios": {
            "me": scenario_json(&r.me, plan.me_connections, me_errors(&r.me)),
            "reference": scenario_json(&r.reference, plan.me_connections, me_errors(&r.reference)),
            "me_half_load": {
                "target_rps": (r.half_target_rps * 10.0).round() / 10.0,
                "fraction_of_peak": ratio(r.me_half.rps(), r.me.rps()),
                "result": scenario_json(&r.me_half, plan.half_connections, me_errors(&r.me_half)),
            },
            "token": scenario_json(&r.token, plan.me_connections, me_errors(&r.token)),
            "jwt_verifier": {
                "tasks": plan.cores,
                "verifies": r.verifier_verifies,
                "verifies_per_s": verifier_per_s,
            },
            "login": scenario_json(&r.login, plan.login_connections, login_errors(&r.login)),
            "argon2_raw": {
                "threads": plan.cores,
                "verifies": r.argon2_raw_verifies,
                "verifies_per_s": (r.argon2_raw_per_s * 100.0).round() / 100.0,
            },
            "mixed": {
                "me": scenario_json(&r.mixed_me, plan.mixed_me_connections, me_errors(&r.mixed_me)),
                "login": scenario_json(&r.mixed_login, plan.login_connections, login_errors(&r.mixed_login)),
            },
            "storm": {
                "result": scenario_json(&r.storm, plan.storm_connections, storm_unexpected),
                "ok_200": r.storm.status(200),
                "unavailable_503": r.storm.status(503),
                "missing_retry_after": r.storm.missing_retry_after,
                "rss_idle_mib": mib(r.memory_idle.rss_kib),
                "rss_warm_idle_mib": mib(r.memory_warm.rss_kib),
                "peak_rss_before_mib": mib(r.memory_before_storm.hwm_kib),
                "peak_rss_mib": peak_rss_mib,
                "rss_after_mib": mib(r.memory_after_storm.rss_kib),
                "rss_settled_mib": mib(r.memory_settled.rss_kib),
                "settled_after_s": plan.settle_after_storm.as_secs_f64(),
                "rss_settled_vs_warm_idle": settled_ratio,
                "threads_idle": r.memory_idle.threads,
                "threads_after": r.memory_after_storm.threads,
                "server_alive_after": r.alive_after_storm,
                "login_after_storm_status": r.login_after_storm,
                "login_after_storm_s": (r.recovery.as_secs_f64() * 100.0).round() / 100.0,
            },
            "crowded": {
                "result": scenario_json(&r.crowded.other_me, plan.half_connections, me_errors(&r.crowded.other_me)),
                "account": r.crowded.json(ms(r.crowded.other_me.latency_us.p99)),
            },
            "signup_slow_mail": r.signup.json(),
        },
        "ratios": {
            "me_vs_reference": me_ratio,
            "token_vs_me": token_ratio,
            "login_vs_raw_argon2": login_ratio,
            "signup_outbox_vs_inline": r.signup.ratio(),
        },
        "targets": targets,
        "unexpected_errors": unexpected,
    })
}

/// Scenario 6's rows and summary line.
fn print_signup(s: &SignupResults) {
    let latency = signup::MAIL_LATENCY.as_millis();
    println!();
    println!(
        "| {:<36} | {:>5} | {:>9} | {:>7} | {:>7} | {:>6} |",
        "scenario", "conns", "signups/s", "p50 ms", "p99 ms", "errors"
    );
    println!(
        "|{:-<38}|{:->7}|{:->11}|{:->9}|{:->9}|{:->8}|",
        "", "", "", "", "", ""
    );
    for (name, o, errors) in [
        (
            format!("6. POST /signup, outbox, {latency} ms SMTP"),
            &s.outbox,
            s.outbox_errors(),
        ),
        (
            format!("6. POST /signup, inline, {latency} ms SMTP"),
            &s.inline,
            s.inline_errors(),
        ),
    ] {
        println!(
            "| {name:<36} | {:>5} | {:>9.1} | {:>7.2} | {:>7.2} | {errors:>6} |",
            s.connections,
            o.rps(),
            o.latency_us.p50 / 1000.0,
            o.latency_us.p99 / 1000.0
        );
    }
    println!();
    let (slow, fast) = (&s.drain_slow, &s.drain_fast);
    println!(
        "6. outbox/inline signups/s: {:.2}; courier drain: {:.1} mails/s to the {latency} ms server ({} pending after the run, {} delivered in {:.1} s{}), {:.1} mails/s without latency ({} pending, {} delivered in {:.1} s{})",
        s.ratio(),
        slow.per_s(),
        slow.backlog,
        slow.delivered,
        slow.elapsed.as_secs_f64(),
        if slow.drained { "" } else { ", NOT drained" },
        fast.per_s(),
        fast.backlog,
        fast.delivered,
        fast.elapsed.as_secs_f64(),
        if fast.drained { "" } else { ", NOT drained" },
    );
}

fn print_table(plan: &Plan, r: &Results, report: &Value) {
    let row = |name: &str, c: usize, o: &WrkOutput, errors: u64| {
        println!(
            "| {name:<36} | {c:>5} | {:>9.1} | {:>7.2} | {:>7.2} | {errors:>6} |",
            o.rps(),
            o.latency_us.p50 / 1000.0,
            o.latency_us.p99 / 1000.0
        );
    };
    println!();
    println!(
        "SecureAuth load benchmark ({} mode, {} cores, {})",
        if plan.smoke { "smoke" } else { "full" },
        plan.cores,
        cpu_model()
    );
    println!();
    println!(
        "| {:<36} | {:>5} | {:>9} | {:>7} | {:>7} | {:>6} |",
        "scenario", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    println!(
        "|{:-<38}|{:->7}|{:->11}|{:->9}|{:->9}|{:->8}|",
        "", "", "", "", "", ""
    );
    row(
        "1. GET /me (peak)",
        plan.me_connections,
        &r.me,
        me_errors(&r.me),
    );
    row(
        "2. reference: one Redis GET",
        plan.me_connections,
        &r.reference,
        me_errors(&r.reference),
    );
    row(
        "1b. GET /me at ~half of peak",
        plan.half_connections,
        &r.me_half,
        me_errors(&r.me_half),
    );
    row(
        "1c. POST /token (mint access JWT)",
        plan.me_connections,
        &r.token,
        me_errors(&r.token),
    );
    println!(
        "| {:<36} | {:>5} | {:>9.1} | {:>7} | {:>7} | {:>6} |",
        "1d. auth-jwt verify (in-process)", plan.cores, r.verifier_per_s, "-", "-", 0
    );
    row(
        "3. POST /login flood",
        plan.login_connections,
        &r.login,
        login_errors(&r.login),
    );
    println!(
        "| {:<36} | {:>5} | {:>9.1} | {:>7} | {:>7} | {:>6} |",
        "3. raw Argon2id verify (in-process)", plan.cores, r.argon2_raw_per_s, "-", "-", 0
    );
    row(
        "4. GET /me during login flood",
        plan.mixed_me_connections,
        &r.mixed_me,
        me_errors(&r.mixed_me),
    );
    row(
        "4. POST /login flood (same time)",
        plan.login_connections,
        &r.mixed_login,
        login_errors(&r.mixed_login),
    );
    row(
        "5. 1000 concurrent logins",
        plan.storm_connections,
        &r.storm,
        storm_errors(r),
    );
    row(
        "7. GET /me beside a crowded account",
        plan.half_connections,
        &r.crowded.other_me,
        me_errors(&r.crowded.other_me),
    );
    println!();
    let crowded = &report["scenarios"]["crowded"]["account"];
    println!(
        "7. crowded account: {} sessions written in {} s; {} rounds of list a page (p50 {} ms, max {} ms) + end one by id (p50 {} ms, max {} ms); logout everywhere: {} in {} ms, then /me of one of them: {}",
        crowded["sessions"],
        crowded["write_s"],
        crowded["rounds"],
        crowded["list_page_p50_ms"],
        crowded["list_page_max_ms"],
        crowded["delete_by_id_p50_ms"],
        crowded["delete_by_id_max_ms"],
        crowded["logout_all_status"],
        crowded["logout_all_ms"],
        crowded["me_after_logout_all"],
    );
    println!(
        "5b. RSS {:.1} MiB after {:.0} s idle following the storm (warm idle before {:.1} MiB, cold idle {:.1} MiB, peak {:.1} MiB)",
        r.memory_settled.rss_kib as f64 / 1024.0,
        plan.settle_after_storm.as_secs_f64(),
        r.memory_warm.rss_kib as f64 / 1024.0,
        r.memory_idle.rss_kib as f64 / 1024.0,
        r.memory_after_storm.hwm_kib as f64 / 1024.0,
    );
    println!(
        "5. storm: {} x 200, {} x 503 (missing Retry-After: {}), socket errors {}, peak RSS {:.1} MiB (idle {:.1} MiB), alive after: {}, next login: {} after {:.1} s",
        r.storm.status(200),
        r.storm.status(503),
        r.storm.missing_retry_after,
        r.storm.errors.socket(),
        r.memory_after_storm.hwm_kib as f64 / 1024.0,
        r.memory_idle.rss_kib as f64 / 1024.0,
        r.alive_after_storm,
        r.login_after_storm,
        r.recovery.as_secs_f64()
    );
    print_signup(&r.signup);
    println!();
    println!(
        "| {:<58} | {:>9} | {:>12} | {:<4} |",
        "target", "measured", "goal", "met"
    );
    println!("|{:-<60}|{:->11}|{:->14}|{:-<6}|", "", "", "", "");
    if let Some(targets) = report["targets"].as_array() {
        for t in targets {
            println!(
                "| {:<58} | {:>9} | {:>12} | {:<4} |",
                t["name"].as_str().unwrap_or_default(),
                t["value"].to_string(),
                t["goal"].as_str().unwrap_or_default(),
                if t["met"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "NO"
                }
            );
        }
    }
    println!();
    println!("unexpected errors: {}", report["unexpected_errors"]);
}

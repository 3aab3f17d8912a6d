//! Scenario 8, the cost curves: how the service's costs grow with its data.
//!
//! `auth-bench curves [--sizes 10000,100000,1000000]` grows one database and one Redis key
//! prefix to each size in turn: that many verified users (bulk-inserted with one real Argon2id
//! hash) and that many live sessions (written straight through the session store, one per
//! user, not through Argon2). At each size, against one running server, it measures `/me`
//! (req/s and p99, tokens drawn at random from the whole session set), login p99, signup p99,
//! logout-everywhere of an account with 1,000 sessions, Redis bytes per session (the growth of
//! `used_memory`) and PostgreSQL bytes per user (`pg_total_relation_size('users')`).
//!
//! Targets (see docs/SCALING.md): `/me` req/s and p99 flat within 10% from the smallest size
//! to the largest, at most 300 Redis bytes per session, logout-everywhere of 1,000 sessions
//! under 50 ms.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use auth_argon2::{Argon2Hasher, Argon2Settings};
use auth_core::{
    ClientInfo, EmailAddress, PasswordHash, PasswordHasher as _, Session, SessionId, SessionStore,
    SessionToken, User, UserId,
};
use auth_postgres::testing::TestDatabase;
use auth_redis::RedisSettings;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures::{StreamExt as _, TryStreamExt as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{json, Value};

use crate::servers::ServerProcess;
use crate::wrk::{self, Load, WrkOutput};

const PASSWORD: &str = "correct horse battery staple";
/// Sessions of the account whose logout-everywhere is timed.
const CROWD: usize = 1000;
/// A browser's user agent, as a login stores it with the session.
const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
/// Tokens `/me` draws from (a random sample of every size's sessions).
const SAMPLE: usize = 10_000;

/// Options of `auth-bench curves`.
#[derive(Debug, Clone, clap::Args)]
pub struct CurvesArgs {
    /// Sizes (users and sessions), ascending, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<usize>,
    /// Small sizes (500 and 2,000) and one-second runs (used by `cargo test`).
    #[arg(long)]
    pub smoke: bool,
    /// Server binary to measure (`auth-http`); default: this binary's `serve`.
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Seconds per measurement (default 10, smoke 1).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Where the JSON report goes; logs and raw wrk output go next to it.
    #[arg(long, default_value = "target/bench/curves.json")]
    pub out: PathBuf,
}

/// What one size measured.
struct Point {
    size: usize,
    seed_s: f64,
    me: WrkOutput,
    login: WrkOutput,
    signup: WrkOutput,
    logout_all_ms: Vec<f64>,
    redis_bytes_per_session: f64,
    pg_bytes_per_user: f64,
}

pub async fn run(args: CurvesArgs) -> anyhow::Result<()> {
    wrk::ensure_installed()?;
    let sizes = if args.smoke {
        vec![500, 2000]
    } else {
        args.sizes.clone()
    };
    anyhow::ensure!(
        !sizes.is_empty() && sizes.windows(2).all(|w| w[0] < w[1]),
        "--sizes must be ascending"
    );
    let duration = Duration::from_secs(args.duration.unwrap_or(if args.smoke { 1 } else { 10 }));
    let out_dir = args
        .out
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&out_dir)?;
    let out_dir = std::fs::canonicalize(&out_dir)?;
    let lua_dir = out_dir.join("lua");
    wrk::write_scripts(&lua_dir)?;
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("curves-{}", uuid::Uuid::new_v4().simple());
    let db = TestDatabase::create()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.report()))?;
    let load_before = crate::bench::load_average();
    let result = measure(
        &args, &sizes, duration, &db, &redis_url, &prefix, &out_dir, &lua_dir,
    )
    .await;
    let load_after = crate::bench::load_average();
    if let Err(e) = crate::bench::delete_redis_prefix(&redis_url, &prefix).await {
        eprintln!("auth-bench: could not delete Redis keys {prefix}:*: {e:#}");
    }
    if let Err(e) = db.cleanup().await {
        eprintln!("auth-bench: could not drop the database: {}", e.report());
    }
    let points = result?;
    let report = report(&points, &load_before, &load_after);
    print(&points, &report);
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("auth-bench: report written to {}", args.out.display());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &CurvesArgs,
    sizes: &[usize],
    duration: Duration,
    db: &TestDatabase,
    redis_url: &str,
    prefix: &str,
    out_dir: &Path,
    lua_dir: &Path,
) -> anyhow::Result<Vec<Point>> {
    let argon = Argon2Settings::default();
    let hash = Argon2Hasher::new(argon.clone())?
        .hash(&SecretString::from(PASSWORD))
        .await?;
    let mut sql = AsyncPgConnection::establish(db.url().expose_secret()).await?;
    let mut settings = RedisSettings::new(redis_url.to_owned().into(), prefix);
    settings.max_sessions_per_user = 0;
    let store = settings.store()?;
    let mut redis = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let self_exe = std::env::current_exe()?;
    let program = match &args.server_bin {
        Some(bin) => crate::bench::resolve_server_bin(bin, &self_exe)?,
        None => self_exe.clone(),
    };
    let mut env: Vec<(String, String)> = [
        ("APP_ENV", "development".to_owned()),
        ("DATABASE_URL", db.url().expose_secret().to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("MAIL_DIR", out_dir.join("mail").display().to_string()),
        ("AUTH_SECRET", hex::encode(rand::random::<[u8; 32]>())),
        ("RUST_LOG", "warn".to_owned()),
        ("HTTP_WORKERS", cores.to_string()),
        ("NEW_DEVICE_MAIL", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(crate::bench::rate_limit_overrides());
    let server = ServerProcess::start("curves-server", &program, &["serve"], &env, out_dir).await?;
    let base = server.base_url.clone();
    let run = |label: String, url: String, connections: usize, load: Load| wrk::Run {
        label,
        url,
        threads: cores,
        connections,
        duration,
        timeout: Duration::from_secs(30),
        load,
    };

    let mut points = Vec::new();
    let mut have = 0usize;
    let mut sample: Vec<String> = Vec::new();
    let now = chrono::Utc::now();
    for &size in sizes {
        let started = Instant::now();
        eprintln!("auth-bench: growing to {size} users and sessions");
        // Users bench-<i>@example.com with ids derived from i, so sessions need no read back.
        diesel::sql_query(
            "INSERT INTO users (id, email, password_hash, verified_at, created_at, updated_at) \
             SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, \
                    'bench-' || g || '@example.com', $1, now(), now(), now() \
             FROM generate_series($2::bigint, $3::bigint) g",
        )
        .bind::<diesel::sql_types::Text, _>(hash.as_str())
        .bind::<diesel::sql_types::BigInt, _>(have as i64)
        .bind::<diesel::sql_types::BigInt, _>(size as i64 - 1)
        .execute(&mut sql)
        .await
        .context("bulk insert of users")?;
        let memory_before = used_memory(&mut redis).await?;
        // Keep a uniform sample of SAMPLE tokens over all sessions written so far.
        let new_tokens = futures::stream::iter(have..size)
            .map(|i| {
                let store = store.clone();
                async move {
                    let token = SessionToken::from_bytes(rand::random());
                    store
                        .insert(&session(i, token.hash(), now)?, Duration::from_secs(86_400))
                        .await?;
                    anyhow::Ok((i, token.expose().to_owned()))
                }
            })
            .buffer_unordered(64)
            .try_collect::<Vec<_>>()
            .await?;
        for (i, token) in new_tokens {
            if sample.len() < SAMPLE {
                sample.push(token);
            } else {
                let j = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=i);
                if j < SAMPLE {
                    sample[j] = token;
                }
            }
        }
        let seed_s = started.elapsed().as_secs_f64();
        // What this step's sessions added (the users' own keys, such as login budgets and
        // devices, come later and are not sessions).
        let redis_bytes_per_session =
            (used_memory(&mut redis).await? - memory_before) as f64 / (size - have) as f64;
        let pg_bytes_per_user = table_bytes(&mut sql).await? as f64 / size as f64;
        have = size;

        let tokens = out_dir.join(format!("tokens-{size}.txt"));
        let mut file = std::fs::File::create(&tokens)?;
        for t in &sample {
            writeln!(file, "{t}")?;
        }
        drop(file);
        let me = wrk::Run::execute(
            &run(
                format!("curves-me-{size}"),
                format!("{base}/me"),
                64,
                Load::MeMany { tokens },
            ),
            lua_dir,
            out_dir,
        )
        .await?;
        let login = wrk::Run::execute(
            &run(
                format!("curves-login-{size}"),
                format!("{base}/login"),
                4 * cores,
                Load::Login {
                    users: size,
                    password: PASSWORD.to_owned(),
                },
            ),
            lua_dir,
            out_dir,
        )
        .await?;
        let signup = wrk::Run::execute(
            &run(
                format!("curves-signup-{size}"),
                format!("{base}/signup"),
                4 * cores,
                Load::Signup {
                    run: format!("c{size}"),
                    password: PASSWORD.to_owned(),
                },
            ),
            lua_dir,
            out_dir,
        )
        .await?;
        let mut logout_all_ms = Vec::new();
        for round in 0..3 {
            logout_all_ms.push(logout_all(&mut sql, &hash, &store, &base, size, round, now).await?);
        }
        points.push(Point {
            size,
            seed_s,
            me,
            login,
            signup,
            logout_all_ms,
            redis_bytes_per_session,
            pg_bytes_per_user,
        });
    }
    server.stop().await;
    Ok(points)
}

/// The id of bulk-inserted user `i` (what the `INSERT ... generate_series` builds).
fn user_id(i: usize) -> UserId {
    const BASE: u128 = 0x0000_0000_0000_4000_8000_0000_0000_0000;
    UserId::from_uuid(uuid::Uuid::from_u128(BASE | i as u128))
}

/// The session of user `i` (one of the bulk-inserted users), as a login would store it.
fn session(
    i: usize,
    token_hash: auth_core::TokenHash,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Session> {
    Ok(Session {
        id: SessionId::from_uuid(uuid::Uuid::new_v4()),
        token_hash,
        user: User {
            id: user_id(i),
            email: EmailAddress::parse(&format!("bench-{i}@example.com"))?,
            verified_at: Some(now),
            created_at: now,
            updated_at: now,
        },
        created_at: now,
        expires_at: now + chrono::TimeDelta::hours(24),
        last_seen_at: now,
        client: ClientInfo::new(
            Some([10, (i >> 16) as u8, (i >> 8) as u8, i as u8].into()),
            Some(USER_AGENT),
        ),
        passkey: None,
    })
}

/// Creates user `10 × size + round` (a fresh account, so every round starts alike), gives it
/// [`CROWD`] sessions and times its `POST /logout-all` (ms); checks it answered 204 and ended them.
#[allow(clippy::too_many_arguments)]
async fn logout_all(
    sql: &mut AsyncPgConnection,
    hash: &PasswordHash,
    store: &auth_redis::RedisStore,
    base: &str,
    size: usize,
    round: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<f64> {
    let user = size * 10 + round;
    diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, verified_at, created_at, updated_at) \
         VALUES ($1, $2, $3, now(), now(), now())",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id(user).as_uuid())
    .bind::<diesel::sql_types::Text, _>(format!("bench-{user}@example.com"))
    .bind::<diesel::sql_types::Text, _>(hash.as_str())
    .execute(sql)
    .await
    .context("inserting the crowded account")?;
    let kept = SessionToken::from_bytes(rand::random());
    let kept_hash = kept.hash();
    futures::stream::iter(0..CROWD)
        .map(|k| {
            let token_hash = if k == 0 {
                kept_hash
            } else {
                SessionToken::from_bytes(rand::random()).hash()
            };
            async move {
                store
                    .insert(
                        &session(user, token_hash, now)?,
                        Duration::from_secs(86_400),
                    )
                    .await
                    .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let status = http
        .post(format!("{base}/logout-all"))
        .bearer_auth(kept.expose())
        .send()
        .await?
        .status();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(status.as_u16() == 204, "logout-all answered {status}");
    let after = http
        .get(format!("{base}/me"))
        .bearer_auth(kept.expose())
        .send()
        .await?
        .status();
    anyhow::ensure!(
        after.as_u16() == 401,
        "a session outlived logout-all: {after}"
    );
    Ok(ms)
}

async fn used_memory(redis: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(redis).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

#[derive(diesel::QueryableByName)]
struct Bytes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bytes: i64,
}

async fn table_bytes(sql: &mut AsyncPgConnection) -> anyhow::Result<i64> {
    let row: Bytes = diesel::sql_query("SELECT pg_total_relation_size('users') AS bytes")
        .get_result(sql)
        .await?;
    Ok(row.bytes)
}

/// Answers of a login or signup run that were not 2xx, and socket errors.
fn not_2xx(o: &WrkOutput) -> u64 {
    o.statuses
        .iter()
        .filter(|(code, _)| !code.starts_with('2'))
        .map(|(_, n)| n)
        .sum::<u64>()
        + o.errors.socket()
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn report(points: &[Point], load_before: &str, load_after: &str) -> Value {
    let ms = |us: f64| (us / 10.0).round() / 100.0;
    let rows: Vec<Value> = points
        .iter()
        .map(|p| {
            json!({
                "size": p.size,
                "seed_s": (p.seed_s * 10.0).round() / 10.0,
                "me_rps": p.me.rps().round(),
                "me_p99_ms": ms(p.me.latency_us.p99),
                "me_errors": p.me.errors.status + p.me.errors.socket(),
                "login_p99_ms": ms(p.login.latency_us.p99),
                "login_errors": not_2xx(&p.login),
                "signup_errors": not_2xx(&p.signup),
                "login_rps": (p.login.rps() * 10.0).round() / 10.0,
                "signup_p99_ms": ms(p.signup.latency_us.p99),
                "logout_all_1000_ms": p.logout_all_ms.iter().map(|m| (m * 100.0).round() / 100.0).collect::<Vec<_>>(),
                "redis_bytes_per_session": p.redis_bytes_per_session.round(),
                "pg_bytes_per_user": p.pg_bytes_per_user.round(),
            })
        })
        .collect();
    let first = points.first();
    let last = points.last();
    let me_rps_ratio = match (first, last) {
        (Some(f), Some(l)) => crate::bench::ratio(l.me.rps(), f.me.rps()),
        _ => 0.0,
    };
    let me_p99_ratio = match (first, last) {
        (Some(f), Some(l)) => crate::bench::ratio(l.me.latency_us.p99, f.me.latency_us.p99),
        _ => 0.0,
    };
    let bytes = last.map_or(0.0, |l| l.redis_bytes_per_session);
    let logout_max = points
        .iter()
        .flat_map(|p| p.logout_all_ms.iter().copied())
        .fold(0.0, f64::max);
    json!({
        "load_average": {"before": load_before, "after": load_after},
        "sizes": rows,
        "targets": {
            "me_rps_largest_over_smallest": {"value": me_rps_ratio, "target": ">= 0.9", "met": me_rps_ratio >= 0.9},
            "me_p99_largest_over_smallest": {"value": me_p99_ratio, "target": "<= 1.1", "met": me_p99_ratio > 0.0 && me_p99_ratio <= 1.1},
            "redis_bytes_per_session_at_largest": {"value": bytes.round(), "target": "<= 300", "met": bytes <= 300.0},
            "logout_all_1000_sessions_max_ms": {"value": (logout_max * 100.0).round() / 100.0, "target": "< 50", "met": logout_max < 50.0},
            "logout_all_1000_sessions_median_ms": median(&points.iter().flat_map(|p| p.logout_all_ms.iter().copied()).collect::<Vec<_>>()),
        },
    })
}

fn print(points: &[Point], report: &Value) {
    println!(
        "{:>9} {:>8} {:>10} {:>10} {:>12} {:>13} {:>16} {:>14} {:>12}",
        "size",
        "seed s",
        "/me req/s",
        "/me p99",
        "login p99",
        "signup p99",
        "logout-all 1k",
        "Redis B/sess",
        "PG B/user"
    );
    for p in points {
        println!(
            "{:>9} {:>8.1} {:>10.0} {:>8.2}ms {:>10.1}ms {:>11.1}ms {:>14.1}ms {:>14.0} {:>12.0}",
            p.size,
            p.seed_s,
            p.me.rps(),
            p.me.latency_us.p99 / 1000.0,
            p.login.latency_us.p99 / 1000.0,
            p.signup.latency_us.p99 / 1000.0,
            median(&p.logout_all_ms),
            p.redis_bytes_per_session,
            p.pg_bytes_per_user,
        );
    }
    for (name, target) in report["targets"].as_object().into_iter().flatten() {
        if let Some(met) = target.get("met") {
            println!(
                "target {name}: {} ({}) {}",
                target["value"],
                target["target"].as_str().unwrap_or(""),
                if met == true { "met" } else { "MISSED" }
            );
        }
    }
}

//! Scenario 7: one account with many sessions must not slow anybody else down.
//!
//! Redis runs one command at a time, so a script that walks every session of an account
//! (listing, deleting by id, logging out everywhere) delays every other user's `/me` for as
//! long as it runs. The session store keeps per-user bookkeeping that makes the request-path
//! scripts independent of that count (an id map for delete-by-id, pagination for listing, the
//! cap `MAX_SESSIONS_PER_USER` for logins). This scenario writes many sessions for one account
//! straight through the session store (without the cap, as an older deployment with a higher
//! cap might have left them), then measures another user's `/me`, paced like scenario 1b,
//! while the crowded account lists a page of its sessions and ends one by id, over and over;
//! then how long the crowded account's logout-everywhere takes.

use std::time::{Duration, Instant};

use anyhow::Context;
use auth_core::{
    ClientInfo, EmailAddress, Session, SessionId, SessionStore as _, SessionToken,
    UserRepository as _,
};
use auth_postgres::testing::TestDatabase;
use auth_redis::RedisSettings;
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{json, Value};

use crate::wrk::{Run, WrkOutput};

/// What the scenario needs from the benchmark.
pub struct Setup<'a> {
    pub base_url: &'a str,
    pub db: &'a TestDatabase,
    pub redis_url: &'a str,
    pub redis_prefix: &'a str,
    /// The crowded account (verified, password [`Setup::password`]).
    pub email: &'a str,
    pub password: &'a str,
    /// Sessions written for it.
    pub sessions: usize,
    /// The other user's `/me`, paced (scenario 1b's run with another label).
    pub other_me: Run,
    pub out_dir: &'a std::path::Path,
    pub lua_dir: &'a std::path::Path,
}

/// What it measured.
pub struct CrowdedResults {
    pub sessions: usize,
    pub write_s: f64,
    pub other_me: WrkOutput,
    /// Rounds of (list a page, delete one by id) during the run, and their latencies (ms).
    pub rounds: usize,
    pub list_ms: Vec<f64>,
    pub delete_ms: Vec<f64>,
    pub logout_all_ms: f64,
    pub logout_all_status: u16,
    /// `/me` of one of the crowded account's sessions after the logout-everywhere.
    pub me_after_logout_all: u16,
}

impl CrowdedResults {
    pub fn json(&self, p99_ms: f64) -> Value {
        json!({
            "sessions": self.sessions,
            "write_s": round1(self.write_s),
            "other_me_p99_ms": round2(p99_ms),
            "rounds": self.rounds,
            "list_page_p50_ms": round2(percentile(&self.list_ms, 0.5)),
            "list_page_max_ms": round2(percentile(&self.list_ms, 1.0)),
            "delete_by_id_p50_ms": round2(percentile(&self.delete_ms, 0.5)),
            "delete_by_id_max_ms": round2(percentile(&self.delete_ms, 1.0)),
            "logout_all_ms": round2(self.logout_all_ms),
            "logout_all_status": self.logout_all_status,
            "me_after_logout_all": self.me_after_logout_all,
        })
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn run(setup: Setup<'_>) -> anyhow::Result<CrowdedResults> {
    let http = reqwest::Client::new();
    let base = setup.base_url;
    // The crowded account's own session, through the API: the one that lists and deletes.
    let login: Value = http
        .post(format!("{base}/login"))
        .json(&json!({"email": setup.email, "password": setup.password}))
        .send()
        .await?
        .json()
        .await?;
    let token = login
        .pointer("/session/token")
        .and_then(Value::as_str)
        .with_context(|| format!("crowded account login: {login}"))?
        .to_owned();

    let email = EmailAddress::parse(setup.email)?;
    let creds = setup
        .db
        .repository()
        .find_by_email(&email)
        .await?
        .context("the crowded account is not seeded")?;
    let mut settings = RedisSettings::new(setup.redis_url.to_owned().into(), setup.redis_prefix);
    settings.max_sessions_per_user = 0;
    let store = settings.store()?;
    let started = Instant::now();
    let now = chrono::Utc::now();
    let user = creds.user;
    // One session the benchmark keeps the token of: it must be dead after logout-everywhere.
    let kept = SessionToken::from_bytes(rand::random());
    let kept_hash = kept.hash();
    futures::stream::iter(0..setup.sessions)
        .map(|i| {
            let store = store.clone();
            let user = user.clone();
            let token_hash = if i == 0 {
                kept_hash
            } else {
                SessionToken::from_bytes(rand::random()).hash()
            };
            async move {
                let session = Session {
                    passkey: None,
                    id: SessionId::from_uuid(uuid::Uuid::new_v4()),
                    token_hash,
                    user,
                    created_at: now,
                    // Spread over the lifetime, so that the index is ordered as in real use.
                    expires_at: now + chrono::TimeDelta::seconds(3600 + i as i64),
                    last_seen_at: now,
                    client: ClientInfo::new(
                        Some([10, 0, (i / 256 % 256) as u8, (i % 256) as u8].into()),
                        Some("auth-bench crowded account"),
                    ),
                };
                store
                    .insert(&session, Duration::from_secs(7200))
                    .await
                    .map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    let write_s = started.elapsed().as_secs_f64();

    // The crowded account pages and deletes while the other user's /me is measured.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let http = http.clone();
        let base = base.to_owned();
        let token = token.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut list_ms, mut delete_ms) = (Vec::new(), Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let page: Value = http
                    .get(format!("{base}/sessions?limit=100"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                let victim = page["sessions"]
                    .as_array()
                    .and_then(|s| s.iter().find(|s| s["current"] == false))
                    .and_then(|s| s["id"].as_str())
                    .map(str::to_owned);
                if let Some(id) = victim {
                    let t = Instant::now();
                    http.delete(format!("{base}/sessions/{id}"))
                        .bearer_auth(&token)
                        .send()
                        .await?
                        .error_for_status()?;
                    delete_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok((list_ms, delete_ms))
        })
    };
    let other_me = setup.other_me.execute(setup.lua_dir, setup.out_dir).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (list_ms, delete_ms) = churn.await??;
    let other_me = other_me?;

    let t = Instant::now();
    let logout_all_status = http
        .post(format!("{base}/logout-all"))
        .bearer_auth(&token)
        .send()
        .await?
        .status()
        .as_u16();
    let logout_all_ms = t.elapsed().as_secs_f64() * 1000.0;
    let me_after_logout_all = http
        .get(format!("{base}/me"))
        .bearer_auth(kept.expose())
        .send()
        .await?
        .status()
        .as_u16();

    Ok(CrowdedResults {
        sessions: setup.sessions,
        write_s,
        other_me,
        rounds: list_ms.len(),
        list_ms,
        delete_ms,
        logout_all_ms,
        logout_all_status,
        me_after_logout_all,
    })
}

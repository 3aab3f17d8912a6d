//! `auth-bench --smoke`: every scenario of the load benchmark, very briefly, against the real
//! service, PostgreSQL, Redis and a loopback mail server, so the benchmark cannot rot. Checks
//! that the report has sane numbers and no unexpected errors; it does not check the
//! performance targets (a debug build on a busy machine says nothing about them).

use std::process::Command;

use serde_json::Value;

#[test]
fn smoke_run_produces_a_sane_report() {
    let wrk = Command::new("wrk").arg("--version").output();
    assert!(
        wrk.is_ok(),
        "the load generator `wrk` is not installed: install it with `apt-get install -y wrk` \
         (CI does this in .ci/run); the benchmark smoke test needs it"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_auth-bench"))
        .arg("--smoke")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "auth-bench --smoke failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("| target"), "no table printed:\n{stdout}");
    eprintln!("{stdout}\n(smoke run took {:?})", started.elapsed());

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["mode"], "smoke");
    assert_eq!(
        report["unexpected_errors"], 0,
        "unexpected errors:\n{report:#}"
    );
    let s = &report["scenarios"];
    for (name, scenario) in [
        ("me", &s["me"]),
        ("reference", &s["reference"]),
        ("me_half_load", &s["me_half_load"]["result"]),
        ("token", &s["token"]),
        ("login", &s["login"]),
        ("mixed.me", &s["mixed"]["me"]),
        ("mixed.login", &s["mixed"]["login"]),
        ("storm", &s["storm"]["result"]),
        ("crowded", &s["crowded"]["result"]),
        ("signup_slow_mail.outbox", &s["signup_slow_mail"]["outbox"]),
        ("signup_slow_mail.inline", &s["signup_slow_mail"]["inline"]),
    ] {
        let rps = scenario["rps"].as_f64().unwrap();
        let p50 = scenario["p50_ms"].as_f64().unwrap();
        let p99 = scenario["p99_ms"].as_f64().unwrap();
        assert!(rps > 0.0, "{name}: no throughput: {scenario:#}");
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 < 30_000.0,
            "{name}: odd latencies: {scenario:#}"
        );
        assert!(
            scenario["requests"].as_u64().unwrap() > 0,
            "{name}: {scenario:#}"
        );
    }
    assert!(s["login"]["statuses"]["200"].as_u64().unwrap() > 0);
    assert!(s["argon2_raw"]["verifies_per_s"].as_f64().unwrap() > 0.0);
    assert!(s["jwt_verifier"]["verifies_per_s"].as_f64().unwrap() > 0.0);
    let storm = &s["storm"];
    // Only 200s and 503s (with Retry-After: counted in `unexpected_errors`). How many 200s a
    // debug build gets in two seconds says nothing: a login let in waits, at each store round
    // trip, for its turn among the thousand connections, and may not finish before the storm
    // ends. The login after the storm must succeed.
    assert_eq!(
        storm["ok_200"].as_u64().unwrap() + storm["unavailable_503"].as_u64().unwrap(),
        storm["result"]["requests"].as_u64().unwrap(),
        "{storm:#}"
    );
    assert!(
        storm["unavailable_503"].as_u64().unwrap() > 0,
        "no storm: {storm:#}"
    );
    assert_eq!(storm["login_after_storm_status"], 200, "{storm:#}");
    assert_eq!(storm["server_alive_after"], true);
    let rss = storm["peak_rss_mib"].as_f64().unwrap();
    assert!(rss > 1.0 && rss < 4096.0, "odd peak RSS {rss}");
    let signup = &s["signup_slow_mail"];
    // Inline answers only after the 60 ms mail server took the message.
    let inline_p50 = signup["inline"]["p50_ms"].as_f64().unwrap();
    assert!(
        inline_p50 >= 60.0,
        "inline signup faster than its mail: {signup:#}"
    );
    for (run, created, delivered) in [
        ("outbox", "outbox_created", "outbox_delivered"),
        ("inline", "inline_created", "inline_delivered"),
    ] {
        let created = signup["mails"][created].as_u64().unwrap();
        assert!(created > 0, "{run}: no signup: {signup:#}");
        assert!(
            signup["mails"][delivered].as_u64().unwrap() >= created,
            "{run}: mail lost: {signup:#}"
        );
    }
    let drain = &signup["drain"];
    for measured in [&drain["after_outbox_run"], &drain["no_latency"]["measured"]] {
        assert_eq!(measured["drained"], true, "{drain:#}");
        assert!(measured["messages_per_s"].as_f64().unwrap() >= 0.0);
    }
    assert!(
        drain["no_latency"]["measured"]["messages_per_s"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{drain:#}"
    );
    assert_eq!(
        drain["no_latency"]["queued"],
        drain["no_latency"]["delivered_in_all"]
    );
    let ratios = &report["ratios"];
    assert!(ratios["me_vs_reference"].as_f64().unwrap() > 0.0);
    assert!(ratios["login_vs_raw_argon2"].as_f64().unwrap() > 0.0);
    assert!(ratios["signup_outbox_vs_inline"].as_f64().unwrap() > 0.0);
    assert!(ratios["token_vs_me"].as_f64().unwrap() > 0.0);
    assert_eq!(report["targets"].as_array().unwrap().len(), 13);
    let settled = storm["rss_settled_mib"].as_f64().unwrap();
    assert!(
        settled > 1.0 && settled < 4096.0,
        "odd settled RSS {settled}"
    );
    let crowded = &s["crowded"]["account"];
    assert_eq!(crowded["sessions"], 500, "{crowded:#}");
    assert!(crowded["rounds"].as_u64().unwrap() > 0, "{crowded:#}");
    assert!(
        crowded["delete_by_id_max_ms"].as_f64().unwrap() > 0.0,
        "{crowded:#}"
    );
    // Every session of the account ended, the one the benchmark kept the token of too.
    assert_eq!(crowded["logout_all_status"], 204, "{crowded:#}");
    assert_eq!(crowded["me_after_logout_all"], 401, "{crowded:#}");
}

/// `auth-bench curves --smoke`: scenario 8 at two small sizes, so it cannot rot either. Checks
/// that every size was measured without errors and that logout-everywhere ended the sessions
/// (the run fails otherwise); not the targets.
#[test]
fn curves_smoke_run_measures_every_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("curves.json");
    let output = Command::new(env!("CARGO_BIN_EXE_auth-bench"))
        .args(["curves", "--smoke", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "auth-bench curves --smoke failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let sizes = report["sizes"].as_array().unwrap();
    assert_eq!(
        sizes
            .iter()
            .map(|s| s["size"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [500, 2000]
    );
    for size in sizes {
        for key in ["me_errors", "login_errors", "signup_errors"] {
            assert_eq!(size[key], 0, "{key}: {size:#}");
        }
        for key in ["me_rps", "redis_bytes_per_session", "pg_bytes_per_user"] {
            assert!(size[key].as_f64().unwrap() > 0.0, "{key}: {size:#}");
        }
        assert_eq!(size["logout_all_1000_ms"].as_array().unwrap().len(), 3);
    }
    assert!(report["targets"]["redis_bytes_per_session_at_largest"]["met"].is_boolean());
}

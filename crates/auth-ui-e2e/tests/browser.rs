//! Runs the browser test of the web UI (`tests/browser/run.mjs`): `npm ci` first when its
//! packages are missing, then `node run.mjs`, whose output is printed and whose exit code must be
//! 0. A missing Chromium, Node or npm fails the test with a message; it never skips.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/browser")
        .canonicalize()
        .expect("tests/browser exists")
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start ({e}); is it installed?"));
    println!("---- {what}: {}", out.status);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn web_ui_flows_in_headless_chromium() {
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").is_dir()
        || !dir.join("node_modules/smtp-server").is_dir()
    {
        let out = run(
            "npm ci",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        );
        assert!(out.status.success(), "npm ci failed in {}", dir.display());
    }
    let mut node = Command::new("node");
    node.arg("run.mjs").current_dir(&dir);
    // The Node test builds auth-http with the same cargo that runs this test.
    node.env(
        "CARGO",
        std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()),
    );
    let out = run("node tests/browser/run.mjs", &mut node);
    assert!(
        out.status.success(),
        "the browser test failed (see its output above; the server log is in \
         tests/browser/artifacts/server.log)"
    );
}

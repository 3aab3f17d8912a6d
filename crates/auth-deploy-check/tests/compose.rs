#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Static checks of `docker/compose.yaml`, `docker/Dockerfile` and `.dockerignore` against
//! `auth-http` and against each other. No Docker engine is needed (or used): images are not
//! built and containers are not started.
//!
//! Compose interpolation (`${VAR:-default}`) is resolved to its defaults, as if nothing were set
//! in the shell or in `docker/.env`: the checks are about the stack as shipped.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use auth_http::settings::{AppEnv, ConfigError, Settings};
use auth_smtp::TlsMode;
use auth_smtp::{SmtpConfigError, SmtpMailer};
use serde::Deserialize;
use serde_norway::Value;
use url::Url;

/// The compose service that runs the API.
const API: &str = "auth-http";
/// The package whose binary the image runs.
const PACKAGE: &str = "auth-http";
/// Ports the upstream images listen on (unless told otherwise, which the checks look for).
const POSTGRES_PORT: u16 = 5432;
const REDIS_PORT: u16 = 6379;
const MAILPIT_SMTP_PORT: u16 = 1025;
const MAILPIT_UI_PORT: u16 = 8025;
/// Target the Docker image is built for (the dependency graph is filtered to it).
const DOCKER_TARGET: &str = "x86_64-unknown-linux-gnu";

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Resolves compose interpolation with nothing set: `${VAR:-default}` and `${VAR-default}` give
/// the default, `$$` is a literal `$`. A variable without a default (`${VAR}`, `$VAR`,
/// `${VAR:?message}`) is an error: the stack would then depend on the caller's shell, or a
/// shell variable meant for a health check lacks its `$$` escape.
fn interpolate(s: &str) -> Result<String, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            let mut depth = 1usize;
            let mut end = None;
            for (j, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let body = &inner[..end];
            rest = &inner[end + 1..];
            let (name, op) = body.split_at(body.find(|c| !is_name(c)).unwrap_or(body.len()));
            if name.is_empty() {
                return Err(format!("bad interpolation ${{{body}}} in {s:?}"));
            }
            if let Some(default) = op.strip_prefix(":-").or_else(|| op.strip_prefix('-')) {
                out.push_str(&interpolate(default)?);
            } else {
                return Err(format!(
                    "${{{body}}} in {s:?} has no default: give it one (${{{name}:-...}})"
                ));
            }
        } else {
            let len = after.find(|c| !is_name(c)).unwrap_or(after.len());
            if len == 0 {
                return Err(format!("lone $ in {s:?}: write $$ for a literal dollar"));
            }
            return Err(format!(
                "${} in {s:?} has no default (write $${} for a shell variable)",
                &after[..len],
                &after[..len]
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn interpolate_value(value: &mut Value) -> Result<(), String> {
    match value {
        Value::String(s) => *s = interpolate(s)?,
        Value::Sequence(items) => {
            for item in items {
                interpolate_value(item)?;
            }
        }
        Value::Mapping(map) => {
            for (_, item) in map.iter_mut() {
                interpolate_value(item)?;
            }
        }
        Value::Tagged(tagged) => interpolate_value(&mut tagged.value)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A YAML scalar as compose reads it into an environment variable.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => panic!("not a scalar: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Compose model: only the keys the checks read; every other key is ignored.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
    #[serde(default)]
    volumes: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Service {
    image: Option<String>,
    build: Option<Build>,
    command: Option<Args>,
    entrypoint: Option<Args>,
    environment: Environment,
    ports: Vec<Value>,
    healthcheck: Option<Healthcheck>,
    depends_on: DependsOn,
    volumes: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Build {
    Context(String),
    Config {
        context: Option<String>,
        dockerfile: Option<String>,
    },
}

/// `command`, `entrypoint` or a health check `test`: a string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Args {
    Shell(String),
    Exec(Vec<String>),
}

impl Args {
    fn words(&self) -> Vec<String> {
        match self {
            Args::Shell(s) => s.split_whitespace().map(str::to_owned).collect(),
            Args::Exec(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Environment {
    Map(BTreeMap<String, Value>),
    List(Vec<String>),
}

impl Default for Environment {
    fn default() -> Self {
        Environment::Map(BTreeMap::new())
    }
}

impl Environment {
    /// Variables with a value (a bare `KEY` would come from the caller's shell: not counted).
    fn vars(&self) -> BTreeMap<String, String> {
        match self {
            Environment::Map(map) => map
                .iter()
                .filter_map(|(k, v)| scalar(v).map(|v| (k.clone(), v)))
                .collect(),
            Environment::List(list) => list
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Healthcheck {
    test: Option<Args>,
    #[serde(default)]
    disable: bool,
}

impl Healthcheck {
    /// The probe's words without the `CMD`/`CMD-SHELL` marker; `None` when disabled.
    fn probe(&self) -> Option<Vec<String>> {
        if self.disable {
            return None;
        }
        let test = self.test.as_ref()?;
        let words = match test {
            Args::Shell(s) => s.split_whitespace().map(str::to_owned).collect(),
            Args::Exec(v) => match v.first().map(String::as_str) {
                Some("CMD") => v[1..].to_vec(),
                Some("CMD-SHELL") => v[1..]
                    .join(" ")
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                _ => return None, // ["NONE"] or malformed
            },
        };
        (!words.is_empty()).then_some(words)
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, Dependency>),
}

impl Default for DependsOn {
    fn default() -> Self {
        DependsOn::List(Vec::new())
    }
}

#[derive(Debug, Deserialize)]
struct Dependency {
    condition: Option<String>,
}

impl DependsOn {
    /// (service, condition); the short list form means `service_started`.
    fn entries(&self) -> Vec<(String, String)> {
        match self {
            DependsOn::List(list) => list
                .iter()
                .map(|s| (s.clone(), "service_started".to_owned()))
                .collect(),
            DependsOn::Map(map) => map
                .iter()
                .map(|(s, d)| {
                    let c = d
                        .condition
                        .clone()
                        .unwrap_or_else(|| "service_started".into());
                    (s.clone(), c)
                })
                .collect(),
        }
    }
}

/// One entry of `ports`.
#[derive(Debug, PartialEq)]
struct PortMapping {
    host_ip: Option<String>,
    published: Option<u16>,
    target: u16,
}

fn port_mapping(value: &Value) -> PortMapping {
    let port = |s: &str| -> u16 {
        s.parse().unwrap_or_else(|_| {
            panic!("{s:?} in ports is not a single port number (ranges are not checked)")
        })
    };
    match value {
        Value::Number(n) => PortMapping {
            host_ip: None,
            published: None,
            target: port(&n.to_string()),
        },
        Value::String(s) => {
            let s = s.split('/').next().unwrap_or_default();
            let parts: Vec<&str> = s.rsplitn(3, ':').collect();
            match parts.as_slice() {
                [target] => PortMapping {
                    host_ip: None,
                    published: None,
                    target: port(target),
                },
                [target, published] => PortMapping {
                    host_ip: None,
                    published: Some(port(published)),
                    target: port(target),
                },
                [target, published, ip] => PortMapping {
                    host_ip: Some((*ip).to_owned()),
                    published: Some(port(published)),
                    target: port(target),
                },
                _ => panic!("bad port mapping {s:?}"),
            }
        }
        Value::Mapping(m) => {
            let get = |k: &str| m.get(k).and_then(scalar);
            PortMapping {
                host_ip: get("host_ip"),
                published: get("published").map(|p| port(&p)),
                target: port(&get("target").expect("a long port mapping has a target")),
            }
        }
        other => panic!("bad port mapping {other:?}"),
    }
}

impl Service {
    fn ports(&self) -> Vec<PortMapping> {
        self.ports.iter().map(port_mapping).collect()
    }
}

fn compose() -> Compose {
    let text = read("docker/compose.yaml");
    let mut value: Value = serde_norway::from_str(&text).expect("docker/compose.yaml is YAML");
    interpolate_value(&mut value).unwrap_or_else(|e| panic!("docker/compose.yaml: {e}"));
    serde_norway::from_value(value).expect("docker/compose.yaml has the shape of a compose file")
}

fn service<'a>(compose: &'a Compose, name: &str) -> &'a Service {
    compose
        .services
        .get(name)
        .unwrap_or_else(|| panic!("compose has no service {name:?}"))
}

// ---------------------------------------------------------------------------------------------
// Dockerfile model
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    name: Option<String>,
    base: String,
    instructions: Vec<Instruction>,
}

#[derive(Debug)]
struct Dockerfile {
    stages: Vec<Stage>,
}

/// Substitutes `${NAME}`, `${NAME:-x}` and `$NAME` from `vars` (Dockerfile build-time expansion).
fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {s:?}"));
            let body = &inner[..end];
            let (name, op) = body.split_at(body.find(|c| !is_name(c)).unwrap_or(body.len()));
            let value = vars.get(name).cloned().filter(|v| !v.is_empty());
            out.push_str(&match (value, op.strip_prefix(":-")) {
                (Some(v), _) => v,
                (None, Some(default)) => default.to_owned(),
                (None, None) => String::new(),
            });
            rest = &inner[end + 1..];
        } else {
            let len = after.find(|c| !is_name(c)).unwrap_or(after.len());
            out.push_str(
                vars.get(&after[..len])
                    .map(String::as_str)
                    .unwrap_or_default(),
            );
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// `KEY=value` pairs of an `ARG`/`ENV` line (double quotes allowed), or the legacy `ENV KEY value`.
fn assignments(args: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    match words.first() {
        Some(first) if !first.contains('=') && words.len() > 1 => {
            vec![(first.clone(), words[1..].join(" "))]
        }
        _ => words
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (w, String::new()),
            })
            .collect(),
    }
}

fn dockerfile() -> Dockerfile {
    let text = read("docker/Dockerfile");
    // Logical lines: comments dropped (also inside a continuation), `\` joins lines.
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continuation"
    );

    let mut global_args = HashMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in lines {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.trim().to_owned();
        if keyword == "FROM" {
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--platform"))
                .collect();
            let base = expand(words[0], &global_args);
            let name = match words.as_slice() {
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                [_] => None,
                _ => panic!("unexpected FROM {args:?}"),
            };
            stages.push(Stage {
                name,
                base,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(Instruction { keyword, args });
        } else if keyword == "ARG" {
            global_args.extend(assignments(&args));
        }
    }
    assert!(!stages.is_empty(), "the Dockerfile has no FROM");
    Dockerfile { stages }
}

impl Dockerfile {
    fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name.as_deref() == Some(name))
    }

    /// The stage whose image runs: the last one.
    fn runtime(&self) -> &Stage {
        self.stages.last().unwrap()
    }

    /// The stage and its ancestors (`FROM <stage>`), nearest first.
    fn lineage<'a>(&'a self, stage: &'a Stage) -> Vec<&'a Stage> {
        let mut out = vec![stage];
        let mut base = stage.base.as_str();
        while let Some(parent) = self.stage(base) {
            out.push(parent);
            base = parent.base.as_str();
        }
        out
    }

    /// The external image a stage starts from.
    fn root_image<'a>(&'a self, stage: &'a Stage) -> &'a str {
        self.lineage(stage).last().unwrap().base.as_str()
    }

    /// Build-time variables visible in a stage: ARG defaults and ENV of its lineage.
    fn vars(&self, stage: &Stage) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        for s in self.lineage(stage).into_iter().rev() {
            for i in &s.instructions {
                if i.keyword == "ARG" || i.keyword == "ENV" {
                    for (k, v) in assignments(&i.args) {
                        let v = expand(&v, &vars);
                        vars.insert(k, v);
                    }
                }
            }
        }
        vars
    }

    /// `ENV` of the image a stage produces (what a container of it starts with).
    fn env(&self, stage: &Stage) -> HashMap<String, String> {
        let mut env = HashMap::new();
        let mut vars = HashMap::new();
        for s in self.lineage(stage).into_iter().rev() {
            for i in &s.instructions {
                if i.keyword == "ARG" || i.keyword == "ENV" {
                    for (k, v) in assignments(&i.args) {
                        let v = expand(&v, &vars);
                        if i.keyword == "ENV" {
                            env.insert(k.clone(), v.clone());
                        }
                        vars.insert(k, v);
                    }
                }
            }
        }
        env
    }

    /// The last `WORKDIR` of a stage or its ancestors.
    fn workdir(&self, stage: &Stage) -> Option<String> {
        self.lineage(stage).into_iter().find_map(|s| {
            s.instructions
                .iter()
                .rev()
                .find(|i| i.keyword == "WORKDIR")
                .map(|i| expand(&i.args, &self.vars(s)))
        })
    }

    fn last<'a>(&self, stage: &'a Stage, keyword: &str) -> Option<&'a Instruction> {
        stage
            .instructions
            .iter()
            .rev()
            .find(|i| i.keyword == keyword)
    }
}

/// An exec-form (`["a", "b"]`) instruction argument.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|_| panic!("{args:?} is not in exec form [\"...\"]"))
}

// ---------------------------------------------------------------------------------------------
// Workspace facts from `cargo metadata`
// ---------------------------------------------------------------------------------------------

fn cargo_metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Process::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            DOCKER_TARGET,
        ])
        .current_dir(repo_root())
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed (the image builds with --locked too):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn package<'a>(metadata: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name && members.contains(&p["id"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("no workspace package {name}"))
}

/// The binary target of the package the image runs.
fn binary_name() -> String {
    let metadata = cargo_metadata();
    let bins: Vec<String> = package(&metadata, PACKAGE)["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        bins.len(),
        1,
        "{PACKAGE} should have exactly one binary, has {bins:?}"
    );
    bins[0].clone()
}

fn parse_version(v: &str) -> (u64, u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

// ---------------------------------------------------------------------------------------------
// The container's environment and settings
// ---------------------------------------------------------------------------------------------

/// What the `auth-http` container starts with: the image's `ENV`, overridden by compose.
fn api_env(compose: &Compose, dockerfile: &Dockerfile) -> HashMap<String, String> {
    let mut env = dockerfile.env(dockerfile.runtime());
    env.extend(service(compose, API).environment.vars());
    env
}

fn settings(env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
    Settings::from_lookup(|k| env.get(k).cloned())
}

fn with(env: &HashMap<String, String>, overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = env.clone();
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// The mailer `auth_http::wiring::build_service` builds from these settings (the same
/// settings), minus the connection: sender, credentials and TLS are checked without any network.
fn mailer(settings: &Settings) -> Result<SmtpMailer, SmtpConfigError> {
    let smtp = settings.mail.smtp.clone().expect("SMTP is configured");
    SmtpMailer::new(smtp)
}

fn url(env: &HashMap<String, String>, var: &str) -> Url {
    let raw = env.get(var).unwrap_or_else(|| panic!("{var} is not set"));
    Url::parse(raw.trim()).unwrap_or_else(|e| panic!("{var} is not a URL: {e}"))
}

/// `BIND_ADDR` as the settings read it (set explicitly: the default listens on loopback only).
fn bind_addr(env: &HashMap<String, String>) -> SocketAddr {
    let raw = env.get("BIND_ADDR").expect("BIND_ADDR is set");
    raw.trim()
        .parse()
        .unwrap_or_else(|_| panic!("BIND_ADDR {raw:?} is not host:port"))
}

/// The `http://` URLs in a probe's words (quotes stripped).
fn probe_urls(words: &[String]) -> Vec<String> {
    words
        .iter()
        .filter_map(|w| {
            w.find("http://")
                .map(|i| w[i..].trim_matches(|c| c == '"' || c == '\'').to_owned())
        })
        .collect()
}

/// The port and path of an `http://host:port/path` probe URL, the port kept as text: it may be
/// a shell expression such as `${BIND_ADDR##*:}`. (Host names and IPv4 only.)
fn url_port(url: &str) -> (&str, &str) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let port = authority.split_once(':').map_or("80", |(_, p)| p);
    (port, path)
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

#[test]
fn interpolation_follows_compose_rules() {
    assert_eq!(interpolate("${A:-x}/${B-y}").unwrap(), "x/y");
    assert_eq!(interpolate("$$HOME ${A:-${B:-z}}").unwrap(), "$HOME z");
    assert_eq!(interpolate("${A:-}").unwrap(), "");
    assert!(interpolate("${A}").is_err());
    assert!(interpolate("${A:?needed}").is_err());
    assert!(interpolate("$A").is_err());
}

#[tokio::test]
async fn the_api_environment_is_complete_and_accepted_by_the_settings() {
    let (compose, dockerfile) = (compose(), dockerfile());
    let env = api_env(&compose, &dockerfile);

    // Set explicitly: the development fallbacks name 127.0.0.1, the container itself.
    for names in [
        &["APP_ENV"][..],
        &["BIND_ADDR"],
        &["DATABASE_URL"],
        &["REDIS_URL"],
        &["SMTP_HOST", "SMTP_SERVER"],
        &["SMTP_PORT"],
        &["SMTP_TLS"],
        &["MAIL_FROM", "SMTP_EMAIL"],
        &["AUTH_SECRET"],
        &["COOKIE_SECURE"],
    ] {
        assert!(
            names
                .iter()
                .any(|n| env.get(*n).is_some_and(|v| !v.trim().is_empty())),
            "{names:?} is not set for the {API} service"
        );
    }
    assert!(
        env["AUTH_SECRET"].trim().len() >= 32,
        "AUTH_SECRET must be at least 32 bytes"
    );

    let s = settings(&env).unwrap_or_else(|e| panic!("auth-http would refuse to start: {e}"));
    assert_eq!(
        s.app_env,
        AppEnv::Development,
        "Mailpit has no TLS: development only"
    );
    assert!(s.auth.secret.is_some());
    assert!(
        !s.http.cookie_secure,
        "served over plain http://localhost: COOKIE_SECURE=false"
    );
    assert!(
        s.http.bind_addr.ip().is_unspecified(),
        "BIND_ADDR {} must listen on all interfaces, or the published port reaches nothing",
        s.http.bind_addr
    );
    let smtp = s
        .mail
        .smtp
        .as_ref()
        .expect("SMTP is configured (mail to Mailpit)");
    assert_eq!(smtp.tls, TlsMode::None);
    assert!(
        smtp.username.is_none() && smtp.password.is_none(),
        "Mailpit needs no login"
    );

    // The mailer the server builds accepts the sender and the TLS/credential combination.
    mailer(&s)
        .map(drop)
        .unwrap_or_else(|e| panic!("the SMTP mailer would refuse: {e}"));
}

#[test]
fn urls_name_compose_services_on_their_ports_with_their_credentials() {
    let (compose, dockerfile) = (compose(), dockerfile());
    let env = api_env(&compose, &dockerfile);

    // PostgreSQL 16, reached as postgres:5432 with the user, password and database it creates.
    let db = url(&env, "DATABASE_URL");
    let host = db.host_str().unwrap();
    let pg = service(&compose, host);
    let pg_image = pg.image.as_deref().unwrap_or_default();
    assert!(
        pg_image.starts_with("postgres:16"),
        "{host} runs {pg_image:?}, not PostgreSQL 16"
    );
    assert_eq!(db.port().unwrap_or(POSTGRES_PORT), POSTGRES_PORT);
    let pg_env = pg.environment.vars();
    assert_eq!(
        Some(db.username()),
        pg_env.get("POSTGRES_USER").map(String::as_str)
    );
    assert_eq!(
        db.password(),
        pg_env.get("POSTGRES_PASSWORD").map(String::as_str)
    );
    assert_eq!(
        Some(db.path().trim_start_matches('/')),
        pg_env.get("POSTGRES_DB").map(String::as_str)
    );

    // Redis 7 with a password: the URL carries the one redis-server requires.
    let redis_url = url(&env, "REDIS_URL");
    let host = redis_url.host_str().unwrap();
    let redis = service(&compose, host);
    let redis_image = redis.image.as_deref().unwrap_or_default();
    assert!(
        redis_image.starts_with("redis:7"),
        "{host} runs {redis_image:?}, not Redis 7"
    );
    let args = redis.command.as_ref().expect("redis has a command").words();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
    };
    let port = arg("--port").map_or(REDIS_PORT, |p| p.parse().unwrap());
    assert_eq!(redis_url.port().unwrap_or(REDIS_PORT), port);
    let required = arg("--requirepass").expect("redis-server runs with --requirepass");
    assert!(!required.is_empty());
    assert_eq!(
        redis_url.password(),
        Some(required.as_str()),
        "REDIS_URL password"
    );
    if let Some(cli) = redis.environment.vars().get("REDISCLI_AUTH") {
        assert_eq!(
            cli, &required,
            "REDISCLI_AUTH (health check) differs from --requirepass"
        );
    }

    // Mailpit: SMTP on 1025 inside the network, web inbox published on 8025.
    let s = settings(&env).unwrap();
    let smtp = s.mail.smtp.unwrap();
    let mailpit = service(&compose, &smtp.host);
    assert!(mailpit
        .image
        .as_deref()
        .unwrap_or_default()
        .contains("mailpit"));
    let mp_env = mailpit.environment.vars();
    assert!(!mp_env.contains_key("MP_SMTP_BIND_ADDR") && !mp_env.contains_key("MP_UI_BIND_ADDR"));
    assert_eq!(smtp.port, MAILPIT_SMTP_PORT);
    let ui = mailpit.ports();
    assert!(
        ui.iter()
            .any(|p| p.target == MAILPIT_UI_PORT && p.published == Some(8025)),
        "the inbox is published on 8025: {ui:?}"
    );
}

#[test]
fn published_port_and_health_checks_follow_bind_addr() {
    let (compose, dockerfile) = (compose(), dockerfile());
    let env = api_env(&compose, &dockerfile);
    let port = bind_addr(&env).port();
    let api = service(&compose, API);

    let ports = api.ports();
    assert!(
        ports
            .iter()
            .any(|p| p.target == port && p.published == Some(8080)),
        "the API is published on 8080 to BIND_ADDR's port {port}: {ports:?}"
    );
    for p in &ports {
        assert_eq!(
            p.target, port,
            "{p:?} does not lead to BIND_ADDR's port {port}"
        );
    }
    // Development passwords and secret: published on the loopback interface only.
    for (name, svc) in &compose.services {
        for p in svc.ports() {
            assert!(
                p.published.is_none() || p.host_ip.as_deref() == Some("127.0.0.1"),
                "{name} publishes {p:?} beyond 127.0.0.1"
            );
        }
    }

    // Compose health check: GET /health on BIND_ADDR's port, with a tool the image has.
    let probe = api
        .healthcheck
        .as_ref()
        .and_then(Healthcheck::probe)
        .expect("auth-http has a health check");
    let urls = probe_urls(&probe);
    assert_eq!(urls.len(), 1, "one URL in the probe {probe:?}");
    let (probe_port, path) = url_port(&urls[0]);
    assert_eq!(probe_port, port.to_string(), "health check port");
    assert_eq!(path, "/health");

    let runtime = dockerfile.runtime();
    let installs = |tool: &str| {
        runtime.instructions.iter().any(|i| {
            i.keyword == "RUN"
                && i.args.contains("install")
                && i.args.split_whitespace().any(|w| w == tool)
        })
    };
    assert!(
        installs(&probe[0]),
        "the runtime image does not install {}",
        probe[0]
    );

    // The image's own HEALTHCHECK and EXPOSE.
    let hc = dockerfile
        .last(runtime, "HEALTHCHECK")
        .expect("the runtime stage has a HEALTHCHECK");
    let cmd = hc
        .args
        .split_once("CMD ")
        .expect("HEALTHCHECK ... CMD ...")
        .1;
    let words: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
    assert!(
        installs(&words[0]),
        "the runtime image does not install {}",
        words[0]
    );
    let urls = probe_urls(&words);
    assert_eq!(urls.len(), 1, "one URL in HEALTHCHECK {cmd:?}");
    let (hc_port, path) = url_port(&urls[0]);
    assert!(
        hc_port == port.to_string() || hc_port == "${BIND_ADDR##*:}",
        "HEALTHCHECK probes port {hc_port}, BIND_ADDR says {port}"
    );
    assert_eq!(path, "/health");
    let image_port = bind_addr(&dockerfile.env(runtime)).port();
    let exposed: Vec<u16> = runtime
        .instructions
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .flat_map(|i| {
            i.args
                .split_whitespace()
                .map(|p| p.split('/').next().unwrap().parse::<u16>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        exposed.contains(&image_port),
        "EXPOSE {exposed:?} lacks the image's BIND_ADDR port"
    );
    assert!(
        exposed.contains(&port),
        "EXPOSE {exposed:?} lacks the compose BIND_ADDR port"
    );
}

#[test]
fn every_service_is_health_checked_and_waited_for() {
    let compose = compose();
    for (name, svc) in &compose.services {
        let probe = svc.healthcheck.as_ref().and_then(Healthcheck::probe);
        assert!(probe.is_some(), "service {name} has no health check");
        for (dep, condition) in svc.depends_on.entries() {
            let target = compose
                .services
                .get(&dep)
                .unwrap_or_else(|| panic!("{name} depends on unknown service {dep}"));
            assert_eq!(condition, "service_healthy", "{name} -> {dep}");
            assert!(
                target
                    .healthcheck
                    .as_ref()
                    .and_then(Healthcheck::probe)
                    .is_some(),
                "{name} waits for {dep}, which has no health check"
            );
        }
    }

    // The API waits for every service its URLs name.
    let env = api_env(&compose, &dockerfile());
    let s = settings(&env).unwrap();
    let deps: Vec<String> = service(&compose, API)
        .depends_on
        .entries()
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    for host in [
        url(&env, "DATABASE_URL").host_str().unwrap().to_owned(),
        url(&env, "REDIS_URL").host_str().unwrap().to_owned(),
        s.mail.smtp.unwrap().host,
    ] {
        assert!(
            deps.contains(&host),
            "{API} does not wait for {host}: {deps:?}"
        );
    }
}

#[test]
fn postgres_data_lives_in_a_named_volume() {
    let compose = compose();
    let env = api_env(&compose, &dockerfile());
    let host = url(&env, "DATABASE_URL").host_str().unwrap().to_owned();
    let mounts: Vec<String> = service(&compose, &host)
        .volumes
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Mapping(m) => format!(
                "{}:{}",
                m.get("source").and_then(scalar).unwrap_or_default(),
                m.get("target").and_then(scalar).unwrap_or_default()
            ),
            other => panic!("bad volume {other:?}"),
        })
        .collect();
    let data = mounts
        .iter()
        .find_map(|m| m.strip_suffix(":/var/lib/postgresql/data"))
        .unwrap_or_else(|| panic!("no volume on /var/lib/postgresql/data: {mounts:?}"));
    assert!(
        compose.volumes.contains_key(data),
        "{data:?} is not a named volume declared under volumes:"
    );
}

#[test]
fn the_dockerfile_builds_copies_and_runs_the_binary_compose_runs() {
    let (compose, dockerfile) = (compose(), dockerfile());
    let bin = binary_name();
    let root = repo_root();

    // Compose builds this Dockerfile with the repository root as context.
    let api = service(&compose, API);
    let (context, file) = match api.build.as_ref().expect("auth-http is built by compose") {
        Build::Context(c) => (c.clone(), "Dockerfile".to_owned()),
        Build::Config {
            context,
            dockerfile,
        } => (
            context.clone().unwrap_or_else(|| ".".into()),
            dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
        ),
    };
    let context = root.join("docker").join(context).canonicalize().unwrap();
    assert_eq!(context, root, "the build context is the workspace root");
    assert_eq!(
        context.join(file).canonicalize().unwrap(),
        root.join("docker/Dockerfile").canonicalize().unwrap()
    );

    // The builder runs `cargo build --release --locked -p auth-http --bin auth-http`, after a
    // dependency-only layer (cargo chef cook) that precedes the copy of the sources.
    let (builder, build) = dockerfile
        .stages
        .iter()
        .find_map(|s| {
            s.instructions
                .iter()
                .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
                .map(|i| (s, i))
        })
        .expect("a stage runs cargo build");
    let words: Vec<&str> = build.args.split_whitespace().collect();
    let flag = |names: &[&str]| {
        words
            .windows(2)
            .find(|w| names.contains(&w[0]))
            .map(|w| w[1])
    };
    assert!(words.contains(&"--release"), "cargo build --release");
    assert!(
        words.contains(&"--locked"),
        "cargo build --locked (the image builds Cargo.lock)"
    );
    assert_eq!(
        flag(&["-p", "--package"]),
        Some(PACKAGE),
        "cargo build -p {PACKAGE}"
    );
    assert_eq!(
        flag(&["--bin"]),
        Some(bin.as_str()),
        "cargo build --bin {bin}"
    );
    let position = |pred: &dyn Fn(&Instruction) -> bool| builder.instructions.iter().position(pred);
    let cook = position(&|i| i.keyword == "RUN" && i.args.contains("cargo chef cook"))
        .expect("dependencies are built in their own layer (cargo chef cook)");
    let sources =
        position(&|i| i.keyword == "COPY" && i.args.split_whitespace().next() == Some("."))
            .expect("the builder copies the sources");
    let build_at = position(&|i| std::ptr::eq(i, build)).unwrap();
    assert!(
        cook < sources && sources < build_at,
        "cook, then COPY . ., then cargo build"
    );

    // The runtime stage copies that artifact and runs it.
    let artifact = format!(
        "{}/target/release/{bin}",
        dockerfile
            .workdir(builder)
            .expect("the builder has a WORKDIR")
            .trim_end_matches('/')
    );
    let builder_name = builder.name.as_deref().expect("the builder stage is named");
    let runtime = dockerfile.runtime();
    let copy = runtime
        .instructions
        .iter()
        .filter(|i| i.keyword == "COPY")
        .map(|i| i.args.split_whitespace().collect::<Vec<_>>())
        .find(|w| {
            w.contains(&format!("--from={builder_name}").as_str()) && w.contains(&artifact.as_str())
        })
        .unwrap_or_else(|| panic!("the runtime stage copies {artifact} from {builder_name}"));
    let dest = copy.last().unwrap();
    let installed = if dest.ends_with('/') {
        format!("{dest}{bin}")
    } else {
        (*dest).to_owned()
    };
    let entrypoint = exec_form(
        &dockerfile
            .last(runtime, "ENTRYPOINT")
            .expect("ENTRYPOINT")
            .args,
    );
    let entrypoint = match &api.entrypoint {
        Some(e) => e.words(),
        None => entrypoint,
    };
    assert_eq!(
        entrypoint,
        vec![installed.clone()],
        "ENTRYPOINT runs {installed}"
    );
    let command = match &api.command {
        Some(c) => c.words(),
        None => exec_form(&dockerfile.last(runtime, "CMD").expect("CMD").args),
    };
    assert_eq!(
        command,
        vec!["serve".to_owned()],
        "the container serves (and migrates on start)"
    );
    let image_cmd = exec_form(&dockerfile.last(runtime, "CMD").expect("CMD").args);
    assert_eq!(image_cmd, vec!["serve".to_owned()]);

    // Not root.
    let user = dockerfile
        .last(runtime, "USER")
        .expect("the runtime stage sets USER")
        .args
        .clone();
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "root" && uid != "0",
        "the image runs as root ({user})"
    );

    // Builder and runtime on the same Debian release (glibc of the link = glibc at run time).
    let builder_image = dockerfile.root_image(builder);
    let runtime_image = dockerfile.root_image(runtime);
    let release = ["bullseye", "bookworm", "trixie"]
        .into_iter()
        .find(|r| builder_image.contains(r))
        .unwrap_or_else(|| panic!("builder image {builder_image} names no Debian release"));
    assert!(
        runtime_image.contains(release),
        "builder on {release} ({builder_image}), runtime on {runtime_image}"
    );
}

#[test]
fn the_rust_toolchain_of_the_image_can_build_the_locked_dependencies() {
    let dockerfile = dockerfile();
    let metadata = cargo_metadata();
    let image = dockerfile
        .stages
        .iter()
        .map(|s| dockerfile.root_image(s))
        .find(|i| i.starts_with("rust:"))
        .expect("a stage starts from the official rust image");
    let tag = image.trim_start_matches("rust:");
    let version = tag.split('-').next().unwrap();
    let (major, minor, _) = parse_version(version);
    assert!(
        major >= 1 && minor > 0,
        "pin the Rust version ({image}), not a moving tag"
    );

    // rust-version of auth-http and of everything it builds (normal and build dependencies).
    let packages: HashMap<&str, &serde_json::Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &serde_json::Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = package(&metadata, PACKAGE)["id"].as_str().unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let kinds = dep["dep_kinds"].as_array().unwrap();
            if kinds
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build")
            {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let (needed, by) = seen
        .iter()
        .filter_map(|id| {
            let p = packages[id];
            let v = p["rust_version"].as_str()?;
            Some((
                parse_version(v),
                format!("{} {}", p["name"].as_str()?, p["version"].as_str()?),
            ))
        })
        .max()
        .expect("some package declares a rust-version");
    assert!(
        (major, minor) >= (needed.0, needed.1),
        "{image} is too old: {by} needs rustc {}.{}",
        needed.0,
        needed.1
    );
}

/// Whether `.dockerignore` leaves `path` (relative, `/`-separated) out of the build context.
fn docker_ignored(patterns: &[String], path: &str) -> bool {
    fn glob(pattern: &[u8], text: &[u8]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) if pattern.get(1) == Some(&b'*') => {
                let rest = pattern[2..].strip_prefix(b"/").unwrap_or(&pattern[2..]);
                (0..=text.len()).any(|i| glob(rest, &text[i..]))
            }
            (Some(b'*'), _) => {
                glob(&pattern[1..], text)
                    || (text.first().is_some_and(|c| *c != b'/') && glob(pattern, &text[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => glob(&pattern[1..], &text[1..]),
            (Some(p), Some(c)) if p == c => glob(&pattern[1..], &text[1..]),
            _ => false,
        }
    }
    // A pattern that matches a directory leaves out everything below it.
    let prefixes: Vec<&str> = path
        .match_indices('/')
        .map(|(i, _)| &path[..i])
        .chain([path])
        .collect();
    let mut ignored = false;
    for pattern in patterns {
        let (negated, p) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        let p = p.trim_start_matches('/').trim_end_matches('/');
        if prefixes
            .iter()
            .any(|prefix| glob(p.as_bytes(), prefix.as_bytes()))
        {
            ignored = !negated;
        }
    }
    ignored
}

#[test]
fn dockerignore_keeps_the_workspace_and_leaves_out_the_rest() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(docker_ignored(&["target/".into()], "target/release/x"));
    assert!(!docker_ignored(
        &["target/".into()],
        "crates/a/src/target.rs"
    ));

    for out in [
        "target/release/auth-http",
        ".git/HEAD",
        "data/mail/1.eml",
        "node_modules/x/index.js",
        ".env",
    ] {
        assert!(
            docker_ignored(&patterns, out),
            "{out} should not be in the build context"
        );
    }

    // Every workspace member (the workspace does not load without them), the lock file and
    // the migrations compiled into the binary stay in.
    let metadata = cargo_metadata();
    let root = repo_root();
    let mut needed = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned()];
    for entry in std::fs::read_dir(root.join("migrations")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        needed.push(format!("migrations/{name}/up.sql"));
    }
    for id in metadata["workspace_members"].as_array().unwrap() {
        let p = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| &p["id"] == id)
            .unwrap();
        let manifest = Path::new(p["manifest_path"].as_str().unwrap());
        let dir = manifest.parent().unwrap().strip_prefix(&root).unwrap();
        let dir = dir.to_str().unwrap().replace('\\', "/");
        needed.push(format!("{dir}/Cargo.toml"));
        for target in p["targets"].as_array().unwrap() {
            let src = Path::new(target["src_path"].as_str().unwrap());
            let src = src
                .strip_prefix(&root)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            needed.push(src);
        }
    }
    for path in needed {
        assert!(
            !docker_ignored(&patterns, &path),
            ".dockerignore leaves out {path}"
        );
    }
}

#[tokio::test]
async fn the_readme_production_overrides_are_accepted() {
    let (compose, dockerfile) = (compose(), dockerfile());
    let env = api_env(&compose, &dockerfile);
    let secret = "9e41c7a05fd28b36e1a94c0d7b52f813a6c9e0d47b218f5c3ad6e90b1f74c285";

    // A real server with STARTTLS on 587 or implicit TLS on 465, in production.
    for (port, tls, expected) in [
        ("587", "starttls", TlsMode::StartTls),
        ("465", "implicit", TlsMode::Implicit),
    ] {
        let prod = with(
            &env,
            &[
                ("APP_ENV", "production"),
                ("SMTP_HOST", "smtp.example.com"),
                ("SMTP_PORT", port),
                ("SMTP_TLS", tls),
                ("SMTP_USERNAME", "mailer"),
                ("SMTP_PASSWORD", "from-the-provider"),
                ("MAIL_FROM", "SecureAuth <no-reply@example.com>"),
                ("AUTH_SECRET", secret),
                ("COOKIE_SECURE", "true"),
            ],
        );
        let s = settings(&prod).unwrap_or_else(|e| panic!("production override refused: {e}"));
        assert_eq!(s.app_env, AppEnv::Production);
        let smtp = s.mail.smtp.as_ref().unwrap();
        assert_eq!((smtp.port, smtp.tls), (port.parse().unwrap(), expected));
        mailer(&s)
            .map(drop)
            .unwrap_or_else(|e| panic!("the SMTP mailer would refuse: {e}"));
    }

    // Production with Mailpit's plain SMTP is refused, naming the variable (as the README says).
    let e = settings(&with(&env, &[("APP_ENV", "production")])).unwrap_err();
    assert_eq!(e.var, "SMTP_TLS");
    // So are credentials over plain SMTP, even in development.
    let creds = with(&env, &[("SMTP_USERNAME", "u"), ("SMTP_PASSWORD", "p")]);
    assert!(matches!(
        mailer(&settings(&creds).unwrap()),
        Err(SmtpConfigError::CredentialsWithoutTls)
    ));
}

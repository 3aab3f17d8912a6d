//! A throwaway Redis Cluster of the test's own: three masters and three replicas of
//! `redis-server --cluster-enabled yes` on free loopback ports, joined with
//! `redis-cli --cluster create`. Kill a master to see a failover.
//!
//! ```no_run
//! use auth_testkit::redis_cluster::ThrowawayCluster;
//!
//! let mut cluster = ThrowawayCluster::start();
//! // ... build the store with cluster.urls() (comma-separated node URLs) ...
//! let killed = cluster.kill_a_master();
//! // ... within a few seconds its replica takes over ...
//! # let _ = killed;
//! ```
//!
//! Every node persists nothing, keeps its files in a private temporary directory and is killed
//! when the value is dropped. `redis-server` and `redis-cli` come from `PATH` (or
//! `$REDIS_SERVER_BIN` and `$REDIS_CLI_BIN`). The node timeout is one second, so a killed
//! master is replaced within a few seconds.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::redis_server::{connect, free_port, ping, BINARY_ENV};

/// Environment variable naming `redis-cli`, when it is not on `PATH`.
pub const CLI_ENV: &str = "REDIS_CLI_BIN";
/// Longest wait for the cluster to form (or to heal after a failover).
pub const FORM_TIMEOUT: Duration = Duration::from_secs(30);
/// `cluster-node-timeout` of every node, in milliseconds.
pub const NODE_TIMEOUT_MS: u64 = 1000;

static INSTANCE: AtomicU32 = AtomicU32::new(0);

struct Node {
    port: u16,
    child: Option<Child>,
}

/// Six `redis-server` processes forming one cluster. See the [module docs](self).
pub struct ThrowawayCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl ThrowawayCluster {
    /// Starts six nodes, creates the cluster (three masters, one replica each) and waits
    /// until every node reports `cluster_state:ok`.
    ///
    /// # Panics
    /// When a node cannot be started or the cluster does not form, with the reason.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start a throwaway Redis Cluster: {e}"))
    }

    /// Like [`Self::start`], but returns the failure.
    pub fn try_start() -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "auth-testkit-redis-cluster-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..6 {
            let port = cluster_port()?;
            let child = cluster.spawn(port)?;
            cluster.nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        for node in &cluster.nodes {
            wait_for(&format!("node {} to answer", node.port), || {
                ping(addr(node.port)).is_ok()
            })?;
        }
        let cli = std::env::var_os(CLI_ENV).unwrap_or_else(|| "redis-cli".into());
        let out = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(
                cluster
                    .nodes
                    .iter()
                    .map(|n| format!("127.0.0.1:{}", n.port)),
            )
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {cli:?}: {e}")))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    fn spawn(&self, port: u16) -> io::Result<Child> {
        let binary = std::env::var_os(BINARY_ENV).unwrap_or_else(|| "redis-server".into());
        let dir = self.dir.join(port.to_string());
        fs::create_dir_all(&dir)?;
        Command::new(&binary)
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // The other masters keep serving their slots while one is replaced.
            .args(["--cluster-require-full-coverage", "no"])
            // Replicas in sync at once (the default waits 5 s for more replicas to join).
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {binary:?}: {e}")))
    }

    /// The node URLs, comma-separated (`redis://127.0.0.1:p1,redis://127.0.0.1:p2,...`): what
    /// `REDIS_URL` holds for a cluster.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URL of the first node alone (with `REDIS_CLUSTER=true` the rest is discovered).
    pub fn first_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].port)
    }

    /// Ports of the running nodes that are masters now.
    pub fn masters(&mut self) -> Vec<u16> {
        let mut out = Vec::new();
        for n in &mut self.nodes {
            let running = matches!(n.child.as_mut().map(Child::try_wait), Some(Ok(None)));
            if running && role(n.port).is_ok_and(|r| r == "master") {
                out.push(n.port);
            }
        }
        out
    }

    /// Kills (SIGKILL) the master on `port`; returns when the process is gone.
    ///
    /// # Panics
    /// When no node of this cluster runs on `port`.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"));
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills one of the masters; returns its port.
    ///
    /// # Panics
    /// When no master is running.
    pub fn kill_a_master(&mut self) -> u16 {
        let port = *self
            .masters()
            .first()
            .unwrap_or_else(|| panic!("no master is running"));
        self.kill(port);
        port
    }

    /// Waits until every running node reports `cluster_state:ok` and every replica whose
    /// master runs is in sync with it (so a master killed afterwards can be replaced).
    pub fn wait_until_ok(&mut self) -> io::Result<()> {
        let ports: Vec<u16> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect();
        wait_for("cluster_state:ok on every node", || {
            ports
                .iter()
                .all(|p| info(*p, "CLUSTER INFO").is_ok_and(|i| i.contains("cluster_state:ok")))
        })?;
        wait_for("every replica in sync", || {
            ports.iter().all(|p| {
                info(*p, "INFO replication")
                    .is_ok_and(|i| !i.contains("role:slave") || i.contains("master_link_status:up"))
            })
        })
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for ThrowawayCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrowawayCluster")
            .field(
                "ports",
                &self.nodes.iter().map(|n| n.port).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A free port whose cluster bus port (`port + 10000`) exists and is free too.
fn cluster_port() -> io::Result<u16> {
    for _ in 0..100 {
        let port = free_port()?;
        if port < 55_000
            && std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok()
        {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free port pair for a cluster node"))
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + FORM_TIMEOUT;
    while !ready() {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out after {FORM_TIMEOUT:?} waiting for {what}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The text of an inline command whose reply is one bulk string (`INFO`, `CLUSTER INFO`).
fn info(port: u16, command: &str) -> io::Result<String> {
    let mut stream = connect(addr(port))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some((len, rest)) = text.strip_prefix('$').and_then(|t| t.split_once("\r\n")) {
            if len.parse::<usize>().is_ok_and(|len| rest.len() >= len) {
                return Ok(rest.to_owned());
            }
        } else if text.starts_with('-') {
            return Err(io::Error::other(text.trim().to_owned()));
        }
    }
    Err(io::Error::other("short reply"))
}

/// `master` or `slave`, from `INFO replication`.
fn role(port: u16) -> io::Result<String> {
    let text = info(port, "INFO replication")?;
    text.lines()
        .find_map(|l| l.strip_prefix("role:"))
        .map(|r| r.trim().to_owned())
        .ok_or_else(|| io::Error::other("no role in INFO replication"))
}

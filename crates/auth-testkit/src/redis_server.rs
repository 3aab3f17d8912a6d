//! A throwaway `redis-server` of the test's own, for fault tests: kill it mid-use, start it
//! again on the same port, and see how an adapter copes. Never point those tests at a shared
//! Redis.
//!
//! ```no_run
//! use auth_testkit::redis_server::ThrowawayRedis;
//!
//! let mut redis = ThrowawayRedis::start();
//! // ... build the store with redis.url() ...
//! redis.kill();
//! // ... the store must now answer `Unavailable` ...
//! redis.restart();
//! // ... and work again, on the same port ...
//! ```
//!
//! The server listens on `127.0.0.1` only, persists nothing (`--save "" --appendonly no`) and
//! keeps its log in a private temporary directory, quoted when it fails to start. The binary
//! is `redis-server` from `PATH`, or `$REDIS_SERVER_BIN`. Dropping the value kills the server.
//!
//! The methods block for as long as the server takes to start (normally a few milliseconds,
//! at most [`START_TIMEOUT`]); calling them from an async test is fine.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Longest wait for a started server to answer `PING`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable naming the server binary, when it is not `redis-server` on `PATH`.
pub const BINARY_ENV: &str = "REDIS_SERVER_BIN";

/// Free ports are found by binding port 0 and letting go, so another process may take one
/// before the server binds it; a fresh port is then tried, this many times in all.
const PORT_TRIES: u32 = 5;
const POLL_INTERVAL: Duration = Duration::from_millis(20);

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// A `redis-server` child process on a loopback port. See the [module docs](self).
pub struct ThrowawayRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    tls: Option<TlsPort>,
}

/// The TLS listener of a server started with [`ThrowawayRedis::start_tls`].
struct TlsPort {
    port: u16,
    cert: PathBuf,
    key: PathBuf,
}

impl ThrowawayRedis {
    /// Starts a server on a free loopback port and waits until it answers.
    ///
    /// # Panics
    /// When the server cannot be started, with the reason and the end of its log.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start a throwaway redis-server: {e}"))
    }

    /// Like [`Self::start`], plus a TLS listener on a second loopback port serving
    /// `cert_pem` (with its private key `key_pem`); clients are not asked for certificates.
    /// The plain port stays open (readiness is checked on it).
    ///
    /// # Panics
    /// When the server cannot be started, with the reason and the end of its log.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::try_start_with(Some((cert_pem, key_pem)))
            .unwrap_or_else(|e| panic!("cannot start a throwaway redis-server with TLS: {e}"))
    }

    /// `rediss://{host}:{tls port}` of a server started with [`Self::start_tls`].
    ///
    /// # Panics
    /// When the server has no TLS listener.
    pub fn tls_url(&self, host: &str) -> String {
        let tls = self
            .tls
            .as_ref()
            .unwrap_or_else(|| panic!("this server was started without TLS"));
        format!("rediss://{host}:{}", tls.port)
    }

    /// Like [`Self::start`], but returns the failure.
    pub fn try_start() -> io::Result<Self> {
        Self::try_start_with(None)
    }

    fn try_start_with(pems: Option<(&str, &str)>) -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "auth-testkit-redis-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        let mut last_err = None;
        let tls_files = match pems {
            Some((cert_pem, key_pem)) => {
                let (cert, key) = (dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
                fs::write(&cert, cert_pem)?;
                fs::write(&key, key_pem)?;
                Some((cert, key))
            }
            None => None,
        };
        for _ in 0..PORT_TRIES {
            let port = free_port()?;
            let tls = match &tls_files {
                Some((cert, key)) => Some(TlsPort {
                    port: free_port()?,
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                None => None,
            };
            let mut server = Self {
                child: None,
                port,
                dir: dir.clone(),
                tls,
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                // `server` is dropped here, which removes `dir`; recreate it for the next try.
                Err(e) => last_err = Some(e),
            }
            fs::create_dir_all(&dir)?;
            if let (Some((cert, key)), Some((cert_pem, key_pem))) = (&tls_files, pems) {
                fs::write(cert, cert_pem)?;
                fs::write(key, key_pem)?;
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_err.unwrap_or_else(|| io::Error::other("no attempt was made")))
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback port, the same for the whole life of this value.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Kills the server (SIGKILL, like a crash) and waits for the process to end. Open
    /// connections are reset; the port refuses connections until [`Self::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new, empty server on the same port (killing the running one first, if any)
    /// and waits until it answers.
    ///
    /// # Panics
    /// When the server cannot be started, with the reason and the end of its log.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        // The killed server's port can take a moment to be released: retry until the
        // deadline.
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!(
                    "cannot restart the throwaway redis-server on port {}: {e}",
                    self.port
                ),
                Err(_) => std::thread::sleep(POLL_INTERVAL),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn spawn_and_wait(&mut self) -> io::Result<()> {
        let binary = std::env::var_os(BINARY_ENV).unwrap_or_else(|| "redis-server".into());
        let log = self.log_path();
        let _ = fs::remove_file(&log);
        let mut command = Command::new(&binary);
        if let Some(tls) = &self.tls {
            command
                .arg("--tls-port")
                .arg(tls.port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .args(["--tls-auth-clients", "no"]);
        }
        let child = command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot run {:?} ({e}); install redis-server or set {BINARY_ENV}",
                        binary
                    ),
                )
            })?;
        self.child = Some(child);
        match self.wait_until_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill();
                let tail = fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(io::Error::new(
                    e.kind(),
                    format!(
                        "redis-server on port {} did not come up: {e}; its log ends with:\n{}",
                        self.port,
                        tail.join("\n")
                    ),
                ))
            }
        }
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(io::Error::other(format!("it exited with {status}")));
                }
            }
            if ping(addr).is_ok() {
                // Make sure the PONG came from our child, not from another server that took
                // the port first.
                let ours = self.child.as_ref().map(Child::id);
                let theirs = server_pid(addr)?;
                if ours == Some(theirs) {
                    return Ok(());
                }
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another server (pid {theirs}) answers on the port"),
                ));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no PONG within {START_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for ThrowawayRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrowawayRedis")
            .field("port", &self.port)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish()
    }
}

pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// One inline `PING`, answered `+PONG` once the server accepts commands (not while loading).
pub(crate) fn ping(addr: SocketAddr) -> io::Result<()> {
    let mut stream = connect(addr)?;
    stream.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf)?;
    if &buf == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(io::Error::other("unexpected reply to PING"))
    }
}

/// The `process_id` that the server on `addr` reports in `INFO server`.
fn server_pid(addr: SocketAddr) -> io::Result<u32> {
    let mut stream = connect(addr)?;
    stream.write_all(b"INFO server\r\n")?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    // The field sits in the first few hundred bytes; stop reading once it has been seen.
    while reply.len() < 64 * 1024 {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some(rest) = text.split("\r\nprocess_id:").nth(1) {
            if let Some((pid, _)) = rest.split_once("\r\n") {
                return pid
                    .trim()
                    .parse()
                    .map_err(|_| io::Error::other("unreadable process_id in INFO"));
            }
        }
    }
    Err(io::Error::other("no process_id in INFO"))
}

pub(crate) fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.set_write_timeout(Some(Duration::from_millis(500)))?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_kills_restarts_on_the_same_port() {
        let mut redis = ThrowawayRedis::start();
        let port = redis.port();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        ping(addr).unwrap();
        assert!(redis.is_running());

        redis.kill();
        assert!(!redis.is_running());
        assert!(ping(addr).is_err());

        redis.restart();
        assert_eq!(redis.port(), port);
        ping(addr).unwrap();

        let dir = redis.dir.clone();
        drop(redis);
        assert!(ping(addr).is_err());
        assert!(!dir.exists());
    }
}

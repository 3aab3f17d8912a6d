//! `TestApp`: the server on port 0 with a fresh PostgreSQL database, its own Redis key prefix
//! and a real SMTP server on loopback, plus typed helpers for every endpoint. Every answer its
//! clients get is checked against the OpenAPI document (see `conformance`).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use auth_http::settings::Settings;
use auth_http::{telemetry, Application};
use auth_postgres::testing::TestDatabase;
use auth_testkit::smtp::{MailSink, ReceivedMail};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

pub use crate::conformance::{ApiClient, Conformance};

pub const PASSWORD: &str = "correct horse battery staple";
/// The bearer token that shows `/ready`'s mail backlog.
pub const OPS_TOKEN: &str = "test-ops-token-test-ops-token-0123456789";
/// The service-token signing key of the server profile (Ed25519, PKCS#8; test only).
pub const TEST_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIBERERERERERERERERERERERERERERERERERERERERER
-----END PRIVATE KEY-----
";
pub const MAIL_WAIT: Duration = Duration::from_secs(10);

/// Every log line the servers of this test binary wrote (tests grep it for secrets).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stdout().write_all(buf)?;
        }
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let buf = log_buffer().clone();
        telemetry::init(
            telemetry::LogFormat::Json,
            "debug,h2=info,hyper=info,tokio_postgres=info,diesel=info,actix_server=warn",
            move || BufWriter(buf.clone()),
        );
    });
}

/// Which adapters the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// PostgreSQL + Redis + SMTP (the mail sink).
    Server,
    /// SQLite + in-memory store + `.eml` files (nothing else running).
    Embedded,
}

/// Where the app's mail arrives: the loopback SMTP sink, or the folder of `.eml` files.
pub enum Mailbox {
    Smtp(MailSink),
    Dir(std::path::PathBuf),
}

impl Mailbox {
    /// Every message to `to`, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<ReceivedMail> {
        match self {
            Self::Smtp(sink) => sink.messages_to(to),
            Self::Dir(dir) => {
                let mut files: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(dir)
                    .map(|rd| {
                        rd.filter_map(Result::ok)
                            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                            .filter_map(|e| {
                                let modified = e.metadata().ok()?.modified().ok()?;
                                Some((modified, std::fs::read_to_string(e.path()).ok()?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                files.sort_by_key(|(t, _)| *t);
                files
                    .into_iter()
                    .map(|(_, raw)| ReceivedMail {
                        from: String::new(),
                        to: String::new(),
                        raw,
                    })
                    .filter(|m| m.to_header().iter().any(|a| a.eq_ignore_ascii_case(to)))
                    .collect()
            }
        }
    }

    pub fn count_to(&self, to: &str) -> usize {
        self.messages_to(to).len()
    }

    /// Waits for the first mail to `to`.
    pub async fn wait_for_mail(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.messages_to(to).into_iter().next() {
                return m;
            }
            assert!(tokio::time::Instant::now() < deadline, "no mail to {to}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts that no mail to `to` arrives within `wait`.
    pub async fn assert_no_new_mail(&self, to: &str, wait: Duration) {
        let before = self.count_to(to);
        tokio::time::sleep(wait).await;
        assert_eq!(self.count_to(to), before, "unexpected mail to {to}");
    }
}

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:PORT` of the metrics listener, when `METRICS_ADDR` is set.
    pub metrics_address: Option<String>,
    pub client: ApiClient,
    pub mail: Mailbox,
    pub redis_prefix: String,
    pub cookie_name: &'static str,
    pub profile: Profile,
    vars: HashMap<String, String>,
    db: Option<TestDatabase>,
    dir: Option<tempfile::TempDir>,
    handle: actix_web::dev::ServerHandle,
    conformance: Conformance,
}

impl TestApp {
    pub async fn spawn(profile: Profile) -> Self {
        Self::spawn_with(profile, &[]).await
    }

    /// Spawns the app; `overrides` are extra environment-style settings.
    pub async fn spawn_with(profile: Profile, overrides: &[(&str, &str)]) -> Self {
        init_logs();
        let redis_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let mut vars: HashMap<String, String> = HashMap::new();
        let (db, dir, mail) = match profile {
            Profile::Server => {
                let db = TestDatabase::new().await;
                let sink = MailSink::start();
                let redis_url =
                    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                for (k, v) in [
                    ("DATABASE_URL", db.url().expose_secret().to_owned()),
                    ("REDIS_URL", redis_url),
                    ("REDIS_KEY_PREFIX", redis_prefix.clone()),
                    ("SMTP_HOST", "127.0.0.1".to_owned()),
                    ("SMTP_PORT", sink.port().to_string()),
                    ("SMTP_TLS", "none".to_owned()),
                    // As in production: the signing key from JWT_SIGNING_KEYS.
                    ("JWT_SIGNING_KEYS", TEST_SIGNING_KEY.to_owned()),
                ] {
                    vars.insert(k.to_owned(), v);
                }
                // REDIS_URL=<a node> REDIS_CLUSTER=true runs the suite against a Redis Cluster.
                if let Ok(cluster) = std::env::var("REDIS_CLUSTER") {
                    vars.insert("REDIS_CLUSTER".to_owned(), cluster);
                }
                (Some(db), None, Mailbox::Smtp(sink))
            }
            Profile::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let db_path = dir.path().join("data").join("secureauth.db");
                let mail_dir = dir.path().join("mail");
                vars.insert(
                    "DATABASE_URL".into(),
                    format!("sqlite://{}", db_path.display()),
                );
                vars.insert("MAIL_DIR".into(), mail_dir.display().to_string());
                // The development signing key, generated on first start (0600).
                vars.insert(
                    "JWT_KEY_FILE".into(),
                    dir.path()
                        .join("data")
                        .join("jwt-signing-key.pem")
                        .display()
                        .to_string(),
                );
                (None, Some(dir), Mailbox::Dir(mail_dir))
            }
        };
        vars.extend(
            [
                ("BIND_ADDR", "127.0.0.1:0"),
                ("MAIL_FROM", "SecureAuth <no-reply@secureauth.test>"),
                (
                    "AUTH_SECRET",
                    "test-secret-test-secret-test-secret-0123456789",
                ),
                // Cheap hashing keeps the suite fast; the cost is tested in auth-argon2.
                ("ARGON2_MEMORY_KIB", "1024"),
                ("ARGON2_ITERATIONS", "1"),
                ("HTTP_WORKERS", "2"),
                ("OPS_TOKEN", OPS_TOKEN),
                ("JWT_ISSUER", "https://auth.secureauth.test"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let (address, handle, cookie_name, metrics_address) = start(&vars).await;
        let conformance = Conformance::default();
        let client = ApiClient::new(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            conformance.clone(),
        );
        Self {
            address,
            metrics_address,
            client,
            mail,
            redis_prefix,
            cookie_name,
            profile,
            vars,
            db,
            dir,
            handle,
            conformance,
        }
    }

    /// `client` with its answers checked against the OpenAPI document like this app's own.
    pub fn observed(&self, client: reqwest::Client) -> ApiClient {
        ApiClient::new(client, self.conformance.clone())
    }

    /// Where answers read from raw sockets are checked against the OpenAPI document.
    pub fn conformance(&self) -> Conformance {
        self.conformance.clone()
    }

    /// Restarts on the same storage with some settings changed.
    pub async fn restart_with(&mut self, overrides: &[(&str, &str)]) {
        for (k, v) in overrides {
            self.vars.insert((*k).to_owned(), (*v).to_owned());
        }
        self.restart().await;
    }

    /// Stops the server and starts a new one on the same storage (a new port).
    pub async fn restart(&mut self) {
        self.handle.stop(true).await;
        let (address, handle, _, metrics_address) = start(&self.vars).await;
        self.address = address;
        self.metrics_address = metrics_address;
        self.handle = handle;
    }

    /// A setting the server was started with.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The loopback SMTP sink of the server profile.
    pub fn sink(&self) -> &MailSink {
        match &self.mail {
            Mailbox::Smtp(sink) => sink,
            Mailbox::Dir(_) => panic!("the embedded profile writes mail to files"),
        }
    }

    /// `GET /ready`'s `mail_outbox` report, as an operator (with `OPS_TOKEN`) sees it.
    pub async fn outbox_report(&self) -> Value {
        let ready: Value = self
            .client
            .get(self.url("/ready"))
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ready["mail_outbox"].clone()
    }

    /// The running server's handle (to stop it from a test).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Option<&Value>) -> Response {
        let mut req = self.client.post(self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.unwrap()
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn client_delete_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// A request authenticated by the session cookie (`pair` is `name=value`).
    pub async fn with_cookie(&self, method: reqwest::Method, path: &str, pair: &str) -> Response {
        self.client
            .request(method, self.url(path))
            .header("cookie", pair)
            .send()
            .await
            .unwrap()
    }

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post("/signup", &json!({"email": email, "password": password}))
            .await
    }

    pub async fn verify(&self, email: &str, otp: &str) -> Response {
        self.post("/verify-otp", &json!({"email": email, "otp": otp}))
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/login", &json!({"email": email, "password": password}))
            .await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get_auth("/me", token).await
    }

    /// The code in the `n`-th (1-based) mail to `to`, waiting for it to arrive.
    pub async fn nth_code(&self, to: &str, n: usize) -> String {
        let deadline = tokio::time::Instant::now() + MAIL_WAIT;
        loop {
            let mails = self.mail.messages_to(to);
            if mails.len() >= n {
                return mails[n - 1].code();
            }
            if tokio::time::Instant::now() > deadline {
                panic!("expected {n} mails to {to}, got {}", mails.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/ready` until the hasher reports `saturated` (every worker busy and the queue
    /// full); panics after 10 s, or when `/ready` reports no hasher load at all.
    pub async fn until_the_hasher_is_full(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ready: Value = self
                .client
                .get(self.url("/ready"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match ready["checks"]["password_hasher"].as_str() {
                Some("saturated") => return,
                Some("ok") => assert!(
                    tokio::time::Instant::now() < deadline,
                    "the hasher never filled up"
                ),
                other => panic!("/ready reports no hasher load: {ready}, {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A fresh unique address.
    pub fn email(&self) -> String {
        format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
    }

    /// Signs up and verifies a new account; returns its address.
    pub async fn verified_user(&self) -> String {
        let email = self.email();
        assert_eq!(
            self.signup(&email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        let code = self.nth_code(&email, 1).await;
        assert_eq!(self.verify(&email, &code).await.status(), StatusCode::OK);
        email
    }

    /// Logs in with the bearer transport and returns the token.
    pub async fn token(&self, email: &str, password: &str) -> String {
        let res = self.login(email, password).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["session"]["token"].as_str().unwrap().to_owned()
    }

    /// Stops the server and drops the database and the Redis keys of this test; then fails
    /// the test if the OpenAPI document does not declare an answer its clients got.
    pub async fn cleanup(mut self) {
        self.handle.stop(true).await;
        if let Some(db) = self.db.take() {
            db.cleanup().await.unwrap();
        }
        if self.profile == Profile::Server {
            delete_prefix(&self.redis_prefix).await;
        }
        drop(self.dir.take());
        self.conformance.assert_declared();
    }
}

impl Drop for TestApp {
    /// A test that ends without `cleanup` is checked against the document all the same
    /// (unless it is failing already).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.conformance.assert_declared();
        }
    }
}

async fn start(
    vars: &HashMap<String, String>,
) -> (
    String,
    actix_web::dev::ServerHandle,
    &'static str,
    Option<String>,
) {
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings");
    let cookie_name = if settings.http.cookie_secure {
        "__Host-session"
    } else {
        "session"
    };
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    (address, handle, cookie_name, metrics_address)
}

/// Deletes every key under `prefix` (never FLUSH: the server is shared).
pub async fn delete_prefix(prefix: &str) {
    if std::env::var("REDIS_CLUSTER").is_ok_and(|v| v == "true") {
        // A cluster for the tests is thrown away whole; SCAN and a multi-key DEL would need
        // every node and one slot.
        return;
    }
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = {
        use redis::AsyncCommands as _;
        let mut iter = con
            .scan_match::<_, String>(format!("{prefix}:*"))
            .await
            .unwrap();
        let mut keys = Vec::new();
        while let Some(k) = iter.next_item().await {
            keys.push(k.unwrap());
        }
        keys
    };
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut con)
            .await
            .unwrap();
    }
}

/// The JSON body and the error code of a response.
pub async fn error_code(res: Response) -> String {
    let body: Value = res.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The value of the session cookie set by a response, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// One `COUNT(*)` row of a raw SQLite query.
#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl TestApp {
    /// How many rows the `users` table holds, read straight from the database of this app
    /// (PostgreSQL or the SQLite file), behind the API's back.
    pub async fn user_rows(&self) -> i64 {
        match (&self.db, &self.dir) {
            (Some(db), _) => {
                let (client, conn) =
                    tokio_postgres::connect(db.url().expose_secret(), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                let conn = tokio::spawn(conn);
                let row = client
                    .query_one("SELECT COUNT(*) FROM users", &[])
                    .await
                    .unwrap();
                drop(client);
                let _ = conn.await;
                row.get(0)
            }
            (None, Some(dir)) => {
                use diesel::{Connection as _, RunQueryDsl as _};
                let path = dir.path().join("data").join("secureauth.db");
                let mut conn =
                    diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
                diesel::sql_query("SELECT COUNT(*) AS n FROM users")
                    .get_result::<Count>(&mut conn)
                    .unwrap()
                    .n
            }
            (None, None) => panic!("no database to count rows in"),
        }
    }
}

impl TestApp {
    /// Runs `statements` (PostgreSQL's on the server profile, SQLite's on the embedded one)
    /// on this app's database, behind the API's back: for fault injection.
    pub async fn execute_sql(&self, postgres: &str, sqlite: &str) {
        match (&self.db, &self.dir) {
            (Some(db), _) => {
                let (client, conn) =
                    tokio_postgres::connect(db.url().expose_secret(), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                let conn = tokio::spawn(conn);
                client.batch_execute(postgres).await.unwrap();
                drop(client);
                let _ = conn.await;
            }
            (None, Some(dir)) => {
                use diesel::{Connection as _, RunQueryDsl as _};
                let path = dir.path().join("data").join("secureauth.db");
                let mut conn =
                    diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
                diesel::sql_query("PRAGMA busy_timeout = 5000")
                    .execute(&mut conn)
                    .unwrap();
                for statement in sqlite.split(";;").filter(|s| !s.trim().is_empty()) {
                    diesel::sql_query(statement).execute(&mut conn).unwrap();
                }
            }
            (None, None) => panic!("no database to run statements on"),
        }
    }

    /// The temporary folder of the embedded profile (`data/` and `mail/` live in it).
    pub fn temp_dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }
}

/// One text row of a raw SQLite query.
#[derive(diesel::QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

impl TestApp {
    /// Every row of the `security_events` table as one JSON text each, read straight from
    /// this app's database behind the API's back (to look for what must not be there).
    pub async fn security_event_rows(&self) -> Vec<String> {
        match (&self.db, &self.dir) {
            (Some(db), _) => {
                let (client, conn) =
                    tokio_postgres::connect(db.url().expose_secret(), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                let conn = tokio::spawn(conn);
                let rows = client
                    .query("SELECT row_to_json(e)::text FROM security_events e", &[])
                    .await
                    .unwrap();
                drop(client);
                let _ = conn.await;
                rows.iter().map(|r| r.get::<_, String>(0)).collect()
            }
            (None, Some(dir)) => {
                use diesel::{Connection as _, RunQueryDsl as _};
                let path = dir.path().join("data").join("secureauth.db");
                let mut conn =
                    diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
                diesel::sql_query(
                    "SELECT json_object('id', id, 'user_id', user_id, 'at', at, 'kind', kind, \
                     'reason', reason, 'ip', ip, 'user_agent', user_agent, \
                     'request_id', request_id) AS t FROM security_events",
                )
                .load::<TextRow>(&mut conn)
                .unwrap()
                .into_iter()
                .map(|r| r.t)
                .collect()
            }
            (None, None) => panic!("no database to read rows from"),
        }
    }
}

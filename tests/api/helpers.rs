//! `TestApp`: the server on port 0 with a fresh PostgreSQL database, its own Redis key prefix
//! and a real SMTP server on loopback, plus typed helpers for every endpoint.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use auth_http::settings::Settings;
use auth_http::{telemetry, Application};
use auth_postgres::testing::TestDatabase;
use auth_testkit::smtp::MailSink;
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";
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

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub mail: MailSink,
    pub redis_prefix: String,
    pub cookie_name: &'static str,
    db: Option<TestDatabase>,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Spawns the app; `overrides` are extra environment-style settings.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        init_logs();
        let db = TestDatabase::new().await;
        let mail = MailSink::start();
        let redis_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let port = mail.port().to_string();
        let mut vars: HashMap<String, String> = [
            ("BIND_ADDR", "127.0.0.1:0"),
            ("DATABASE_URL", db.url().expose_secret()),
            ("REDIS_URL", redis_url.as_str()),
            ("REDIS_KEY_PREFIX", redis_prefix.as_str()),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", port.as_str()),
            ("SMTP_TLS", "none"),
            ("MAIL_FROM", "SecureAuth <no-reply@secureauth.test>"),
            (
                "AUTH_SECRET",
                "test-secret-test-secret-test-secret-0123456789",
            ),
            // Cheap hashing keeps the suite fast; the cost is tested in auth-argon2.
            ("ARGON2_MEMORY_KIB", "1024"),
            ("ARGON2_ITERATIONS", "1"),
            ("HTTP_WORKERS", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings");
        let cookie_name = if settings.cookie_secure {
            "__Host-session"
        } else {
            "session"
        };
        let app = Application::build(settings)
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            address,
            client,
            mail,
            redis_prefix,
            cookie_name,
            db: Some(db),
            handle,
        }
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

    /// Stops the server and drops the database and the Redis keys of this test.
    pub async fn cleanup(mut self) {
        self.handle.stop(true).await;
        if let Some(db) = self.db.take() {
            db.cleanup().await.unwrap();
        }
        delete_prefix(&self.redis_prefix).await;
    }
}

/// Deletes every key under `prefix` (never FLUSH: the server is shared).
pub async fn delete_prefix(prefix: &str) {
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
            keys.push(k);
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

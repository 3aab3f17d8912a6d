//! A real SMTP server on loopback that keeps every message it receives.
//!
//! [`MailSink::start`] binds `127.0.0.1` on a free port and serves SMTP (no TLS, no AUTH) from
//! its own threads, so it works under any async runtime, or none. Point the mailer under test at
//! [`MailSink::host`] and [`MailSink::port`], then read what arrived:
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use auth_testkit::smtp::MailSink;
//!
//! let sink = MailSink::start();
//! // ... configure the mailer with sink.host() and sink.port(), trigger a signup ...
//! let mail = sink.wait_for_mail("ada@example.com", Duration::from_secs(5)).await;
//! assert!(mail.subject().contains("verification code"));
//! let code: String = mail.code();
//! # let _ = code;
//! # }
//! ```
//!
//! Every message is stored once per envelope recipient, like a mailbox delivery, so
//! [`MailSink::count_to`] and [`MailSink::wait_for_mail`] work per address. Addresses are
//! compared case-insensitively.
//!
//! The server is `mailin-embedded`, which has no way to stop its accept loop. Dropping the sink
//! marks it closed: from then on it answers every new session with `421` and stores nothing,
//! and its idle threads stay parked until the test process exits.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailin_embedded::{response, Handler, Response, Server, SslConfig};

/// Concurrent SMTP sessions the sink serves. A pooled mailer keeps idle connections open, and
/// each open connection holds one of these threads.
const SESSION_THREADS: u32 = 16;

/// How often [`MailSink::wait_for_mail`] looks at the mailbox.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A loopback SMTP server that records every message it accepts. See the [module docs](self).
pub struct MailSink {
    addr: SocketAddr,
    host: String,
    state: Arc<SinkState>,
}

#[derive(Default)]
struct SinkState {
    closed: AtomicBool,
    mailbox: Mutex<Vec<Stored>>,
    /// Reply code, and how many more times (`None`: until accepted again).
    refusals: Mutex<HashMap<String, (u16, Option<u32>)>>,
    /// `RCPT TO` commands seen per address.
    attempts: Mutex<HashMap<String, usize>>,
    /// How long each message takes to accept, in milliseconds.
    latency_ms: std::sync::atomic::AtomicU64,
}

struct Stored {
    mail: ReceivedMail,
    /// Already handed out by `wait_for_mail`.
    taken: bool,
}

impl SinkState {
    fn mailbox(&self) -> MutexGuard<'_, Vec<Stored>> {
        // A panicking test thread must not take every later assertion down with it.
        self.mailbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refusals(&self) -> MutexGuard<'_, HashMap<String, (u16, Option<u32>)>> {
        self.refusals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn attempts(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MailSink {
    /// Starts a sink on `127.0.0.1` on a free port. It accepts connections as soon as this
    /// returns.
    ///
    /// # Panics
    /// When no loopback port can be bound or the server thread cannot be spawned.
    pub fn start() -> MailSink {
        Self::start_on(0)
    }

    /// Starts a sink on `127.0.0.1:port` (0: a free port), say to bring a mail server "back"
    /// on the port an application was configured with while nothing listened there.
    ///
    /// # Panics
    /// When the port cannot be bound or the server thread cannot be spawned.
    pub fn start_on(port: u16) -> MailSink {
        let listener =
            TcpListener::bind(("127.0.0.1", port)).expect("bind a loopback port for the mail sink");
        let addr = listener
            .local_addr()
            .expect("local address of the mail sink");
        let state = Arc::new(SinkState::default());
        let handler = SinkHandler::new(Arc::clone(&state));
        let mut server = Server::new(handler);
        server
            .with_name("mail-sink.localhost")
            .with_num_threads(SESSION_THREADS)
            .with_tcp_listener(listener);
        server
            .with_ssl(SslConfig::None)
            .unwrap_or_else(|e| panic!("mail sink without TLS: {e}"));
        std::thread::Builder::new()
            .name(format!("mail-sink-{}", addr.port()))
            .spawn(move || {
                // Runs for the rest of the process (the library cannot stop it).
                let _ = server.serve();
            })
            .expect("spawn the mail sink thread");
        MailSink {
            addr,
            host: addr.ip().to_string(),
            state,
        }
    }

    /// The host to connect to: `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port the sink listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The socket address the sink listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, oldest first (one entry per envelope recipient).
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.state
            .mailbox()
            .iter()
            .map(|s| s.mail.clone())
            .collect()
    }

    /// Every message received so far for `to`, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<ReceivedMail> {
        let to = normalise(to);
        self.state
            .mailbox()
            .iter()
            .filter(|s| s.mail.to == to)
            .map(|s| s.mail.clone())
            .collect()
    }

    /// How many messages have been received for `to` (taken or not).
    pub fn count_to(&self, to: &str) -> usize {
        let to = normalise(to);
        self.state
            .mailbox()
            .iter()
            .filter(|s| s.mail.to == to)
            .count()
    }

    /// Waits for the oldest message to `to` that no earlier call has returned, and returns it.
    ///
    /// Each message is returned once, like reading a mailbox: after a signup mail and a resend,
    /// the first call returns the signup mail and the second waits for the resent one. Polls
    /// every 10 ms until `timeout`.
    ///
    /// # Panics
    /// When nothing new for `to` arrives within `timeout`; the message lists what did arrive.
    pub async fn wait_for_mail(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let wanted = normalise(to);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut mailbox = self.state.mailbox();
                if let Some(stored) = mailbox.iter_mut().find(|s| !s.taken && s.mail.to == wanted) {
                    stored.taken = true;
                    return stored.mail.clone();
                }
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no new mail to {wanted} within {timeout:?}; the sink on port {} holds {}",
                    self.port(),
                    self.summary()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits `wait` and asserts that no message to `to` arrived that
    /// [`wait_for_mail`](Self::wait_for_mail) has not already returned.
    ///
    /// # Panics
    /// When such a message is there (at the start or by the end of the wait).
    pub async fn assert_no_new_mail(&self, to: &str, wait: Duration) {
        let wanted = normalise(to);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let unexpected = self
                .state
                .mailbox()
                .iter()
                .any(|s| !s.taken && s.mail.to == wanted);
            if unexpected {
                panic!(
                    "expected no new mail to {wanted}, but the sink on port {} holds {}",
                    self.port(),
                    self.summary()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// From now on, answer `RCPT TO:<to>` with `code` (e.g. `550` for a permanent refusal,
    /// `451` for a temporary one), so tests can check how a mailer maps server refusals.
    pub fn refuse_recipient(&self, to: &str, code: u16) {
        self.state.refusals().insert(normalise(to), (code, None));
    }

    /// Answer the next `times` `RCPT TO:<to>` with `code`, then accept again.
    pub fn refuse_recipient_times(&self, to: &str, code: u16, times: u32) {
        self.state
            .refusals()
            .insert(normalise(to), (code, Some(times)));
    }

    /// How many times a client has named `to` in `RCPT TO` (accepted or refused).
    pub fn recipient_attempts(&self, to: &str) -> usize {
        self.state
            .attempts()
            .get(&normalise(to))
            .copied()
            .unwrap_or(0)
    }

    /// From now on, take `latency` to accept each message (a slow mail server).
    pub fn set_latency(&self, latency: Duration) {
        self.state.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Accept mail for `to` again after [`refuse_recipient`](Self::refuse_recipient).
    pub fn accept_recipient(&self, to: &str) {
        self.state.refusals().remove(&normalise(to));
    }

    /// One line per stored message, for failure messages.
    fn summary(&self) -> String {
        let mailbox = self.state.mailbox();
        if mailbox.is_empty() {
            return "no messages".to_owned();
        }
        let lines: Vec<String> = mailbox
            .iter()
            .map(|s| {
                format!(
                    "\n  - to {} from {}{}: {:?}",
                    s.mail.to,
                    s.mail.from,
                    if s.taken { " (already returned)" } else { "" },
                    s.mail.try_subject().unwrap_or_default()
                )
            })
            .collect();
        format!("{} message(s):{}", mailbox.len(), lines.concat())
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
    }
}

impl fmt::Debug for MailSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSink")
            .field("addr", &self.addr)
            .field("messages", &self.state.mailbox().len())
            .finish()
    }
}

/// Lower-cased, without surrounding whitespace or angle brackets.
fn normalise(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase()
}

/// One message as delivered to one envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Envelope sender (`MAIL FROM`), normalised (lower case, no angle brackets).
    pub from: String,
    /// Envelope recipient (`RCPT TO`), normalised (lower case, no angle brackets).
    pub to: String,
    /// The message as received after `DATA` (headers and body, MIME-encoded, CRLF line ends).
    pub raw: String,
}

impl ReceivedMail {
    fn parse(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(self.raw.as_bytes())
            .unwrap_or_else(|| {
                panic!(
                    "the mail to {} is not a parseable message:\n{}",
                    self.to, self.raw
                )
            })
    }

    fn try_subject(&self) -> Option<String> {
        MessageParser::default()
            .parse(self.raw.as_bytes())
            .and_then(|m| m.subject().map(str::to_owned))
    }

    /// The decoded `Subject` header.
    ///
    /// # Panics
    /// When the message has no subject.
    pub fn subject(&self) -> String {
        self.try_subject()
            .unwrap_or_else(|| panic!("the mail to {} has no Subject:\n{}", self.to, self.raw))
    }

    /// The raw (unfolded, undecoded, trimmed) value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        let message = self.parse();
        let value = message
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.replace("\r\n", "").replace('\n', "").trim().to_owned());
        value
    }

    /// The address of the `From` header (lower-cased), e.g. `no-reply@example.com`.
    pub fn from_header(&self) -> Option<String> {
        let message = self.parse();
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_lowercase)
    }

    /// The display name of the `From` header, e.g. `SecureAuth`.
    pub fn from_name(&self) -> Option<String> {
        let message = self.parse();
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .map(str::to_owned)
    }

    /// The addresses of the `To` header (lower-cased).
    pub fn to_header(&self) -> Vec<String> {
        let message = self.parse();
        message
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The top-level MIME type, e.g. `multipart/alternative` or `text/plain`.
    pub fn content_type(&self) -> String {
        let message = self.parse();
        let root = message.root_part();
        match root.content_type() {
            Some(ct) => match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
                None => ct.ctype().to_lowercase(),
            },
            // RFC 2045: the default.
            None => "text/plain".to_owned(),
        }
    }

    /// The decoded `text/plain` part (quoted-printable and base64 are undone), if there is one.
    /// Unlike [`text_body`](Self::text_body), never derived from the HTML part.
    pub fn text_part(&self) -> Option<String> {
        let message = self.parse();
        let part = message.parts.iter().find(|p| {
            matches!(p.body, PartType::Text(_))
                && p.content_type()
                    .is_none_or(|ct| ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain")))
        });
        part.and_then(|p| p.text_contents()).map(str::to_owned)
    }

    /// The decoded `text/html` part, if there is one.
    pub fn html_part(&self) -> Option<String> {
        let message = self.parse();
        let part = message
            .parts
            .iter()
            .find(|p| matches!(p.body, PartType::Html(_)));
        part.and_then(|p| p.text_contents()).map(str::to_owned)
    }

    /// The decoded plain-text body: the `text/plain` part, or, when there is none, text derived
    /// from the HTML part.
    ///
    /// # Panics
    /// When the message has no text at all.
    pub fn text_body(&self) -> String {
        let message = self.parse();
        message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_else(|| panic!("the mail to {} has no text body:\n{}", self.to, self.raw))
    }

    /// The first one-time code in the message: the first run of exactly six ASCII digits in the
    /// subject, else in the decoded plain-text body, else in the decoded HTML part.
    pub fn try_code(&self) -> Option<String> {
        let message = self.parse();
        let subject = message.subject().map(str::to_owned);
        let text = message.body_text(0).map(|t| t.into_owned());
        let html = self.html_part();
        [subject, text, html]
            .into_iter()
            .flatten()
            .find_map(|s| find_six_digits(&s))
    }

    /// The one-time code in the message (see [`try_code`](Self::try_code)).
    ///
    /// # Panics
    /// When the message contains no six-digit code.
    pub fn code(&self) -> String {
        self.try_code()
            .unwrap_or_else(|| panic!("no 6-digit code in the mail to {}:\n{}", self.to, self.raw))
    }
}

/// The first run of exactly six ASCII digits (not part of a longer run of digits).
fn find_six_digits(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(s[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// One instance per SMTP session (the server clones the prototype for each connection).
#[derive(Clone)]
struct SinkHandler {
    state: Arc<SinkState>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl SinkHandler {
    fn new(state: Arc<SinkState>) -> Self {
        Self {
            state,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        }
    }

    fn closed(&self) -> bool {
        self.state.closed.load(Ordering::SeqCst)
    }
}

impl Handler for SinkHandler {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        if self.closed() {
            response::NO_SERVICE
        } else {
            response::OK
        }
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let to = normalise(to);
        *self.state.attempts().entry(to.clone()).or_insert(0) += 1;
        let mut refusals = self.state.refusals();
        let Some((code, left)) = refusals.get_mut(&to) else {
            return response::OK;
        };
        let code = *code;
        match left {
            Some(0) => {
                refusals.remove(&to);
                return response::OK;
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Response::custom(code, "Refused by the test mail sink".to_owned())
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        if self.closed() {
            return response::NO_SERVICE;
        }
        self.from = normalise(from);
        self.to = to.iter().map(|t| normalise(t)).collect();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if self.closed() {
            return response::NO_SERVICE;
        }
        let latency = self.state.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            std::thread::sleep(Duration::from_millis(latency));
        }
        let raw = String::from_utf8_lossy(&self.data).into_owned();
        let mut mailbox = self.state.mailbox();
        for to in self.to.drain(..) {
            mailbox.push(Stored {
                mail: ReceivedMail {
                    from: self.from.clone(),
                    to,
                    raw: raw.clone(),
                },
                taken: false,
            });
        }
        self.data.clear();
        response::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digit_runs_only() {
        assert_eq!(
            find_six_digits("123456 is your code"),
            Some("123456".into())
        );
        assert_eq!(
            find_six_digits("id 1234567, code 000042."),
            Some("000042".into())
        );
        assert_eq!(find_six_digits("12345 and 1234567"), None);
        assert_eq!(find_six_digits("code:654321"), Some("654321".into()));
    }

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(normalise(" <Ada@Example.COM> "), "ada@example.com");
    }

    #[test]
    fn parses_quoted_printable_and_base64_parts() {
        let raw = "From: SecureAuth <no-reply@example.com>\r\n\
To: ada@example.com\r\n\
Subject: =?utf-8?b?MTIzNDU2IGlzIHlvdXIgY29kZQ==?=\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Your code is 12=\r\n\
3456 =E2=80=94 thanks\r\n\
--b\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+MTIzNDU2PC9wPg==\r\n\
--b--\r\n";
        let mail = ReceivedMail {
            from: "no-reply@example.com".into(),
            to: "ada@example.com".into(),
            raw: raw.into(),
        };
        assert_eq!(mail.subject(), "123456 is your code");
        assert_eq!(mail.content_type(), "multipart/alternative");
        assert_eq!(
            mail.text_part().unwrap().trim_end(),
            "Your code is 123456 — thanks"
        );
        assert_eq!(mail.html_part().unwrap(), "<p>123456</p>");
        assert_eq!(mail.from_header().unwrap(), "no-reply@example.com");
        assert_eq!(mail.from_name().unwrap(), "SecureAuth");
        assert_eq!(mail.to_header(), vec!["ada@example.com".to_owned()]);
        assert_eq!(mail.code(), "123456");
        assert_eq!(mail.header("mime-version").unwrap(), "1.0");
    }

    #[tokio::test]
    async fn receives_over_smtp_and_hands_each_mail_out_once() {
        use std::io::{BufRead, BufReader, Write};
        use std::net::TcpStream;

        let sink = MailSink::start();
        sink.refuse_recipient("nobody@example.com", 550);
        let port = sink.port();
        // A minimal hand-written SMTP client, so the sink is tested without the adapter.
        let replies = tokio::task::spawn_blocking(move || {
            let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            fn read_reply(reader: &mut BufReader<TcpStream>) -> String {
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.as_bytes().get(3) != Some(&b'-') {
                        return line[..3].to_owned();
                    }
                }
            }
            let mut replies = vec![read_reply(&mut reader)];
            for cmd in [
                "EHLO test\r\n",
                "MAIL FROM:<Sender@Example.com>\r\n",
                "RCPT TO:<nobody@example.com>\r\n",
                "RCPT TO:<Ada@Example.com>\r\n",
                "RCPT TO:<bob@example.com>\r\n",
                "DATA\r\n",
                "Subject: hello 987654\r\n\r\n..dot-stuffed line\r\n.\r\n",
                "QUIT\r\n",
            ] {
                writer.write_all(cmd.as_bytes()).unwrap();
                replies.push(read_reply(&mut reader));
            }
            replies
        })
        .await
        .unwrap();
        assert_eq!(
            replies,
            ["220", "250", "250", "550", "250", "250", "354", "250", "221"]
        );

        assert_eq!(sink.count_to("ada@example.com"), 1);
        assert_eq!(sink.count_to("BOB@example.com"), 1);
        assert_eq!(sink.count_to("nobody@example.com"), 0);
        assert_eq!(sink.messages().len(), 2);
        let mail = sink
            .wait_for_mail("ADA@example.com", Duration::from_secs(2))
            .await;
        assert_eq!(mail.from, "sender@example.com");
        assert_eq!(mail.to, "ada@example.com");
        assert_eq!(mail.code(), "987654");
        assert!(mail.raw.contains("\r\n.dot-stuffed line"));
        // Handed out once; the count still includes it.
        sink.assert_no_new_mail("ada@example.com", Duration::from_millis(30))
            .await;
        assert_eq!(sink.count_to("ada@example.com"), 1);
        assert_eq!(sink.messages_to("ada@example.com"), vec![mail]);
    }

    #[tokio::test]
    #[should_panic(expected = "no new mail to ada@example.com")]
    async fn wait_for_mail_panics_with_a_clear_message() {
        let sink = MailSink::start();
        sink.wait_for_mail("ada@example.com", Duration::from_millis(50))
            .await;
    }
}

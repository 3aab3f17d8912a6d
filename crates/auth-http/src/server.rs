//! The connection layer under the app: listening socket, connection limits and the deadline of
//! every request.
//!
//! actix-web's `HttpServer` bounds only the head of the *first* request of a connection
//! (`client_request_timeout`): a client that trickles a body, trickles the head of a second
//! request on a kept-alive connection, or never reads its response holds the connection (and
//! its buffers) for as long as it likes. So the server is assembled here from actix-server and
//! actix-http around [`DeadlineIo`], a socket wrapper that enforces one deadline per request:
//!
//! - the deadline is set when the connection is accepted, and again by the first byte of each
//!   later request, to `REQUEST_TIMEOUT` (plus [`WRITE_GRACE`] to deliver a 408);
//! - it is cleared once the response has been written out in full (the app marks the end of
//!   the response body, [`ConnDeadline::response_done`], the socket sees the flush);
//! - once it has passed, every read, write or flush of the connection fails, so actix drops
//!   the connection and everything it holds, whatever state it was in (reading the head or
//!   the body, waiting for the handler, writing a response nobody reads);
//! - the middleware [`deadline_middleware`] bounds the handler by the same deadline and answers
//!   408 with `Connection: close`, so a client that is merely slow learns why.
//!
//! Idle kept-alive connections are closed by actix's keep-alive timer (5 s).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Response, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::error::{ErrorBody, ErrorCode, ErrorDetail};

/// Listen backlog: connections the kernel queues while every worker is at `MAX_CONNECTIONS`
/// (capped by `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 2048;

/// Time past the request deadline in which a 408 may still be written before the connection
/// is cut.
pub const WRITE_GRACE: Duration = Duration::from_millis(500);

/// Default of `SEND_BUFFER_SIZE`: the kernel send buffer of each connection, in bytes.
///
/// A client that sends requests but never reads the answers (HTTP/1.1 pipelining) makes the
/// server work until the answers fill the client's receive buffer and this one; only then
/// does actix stop reading the connection. Left to the kernel's auto-tuning (up to
/// `net.ipv4.tcp_wmem`'s 4 MiB on Linux) that is some ten thousand answers per connection,
/// served at full speed to nobody while other clients wait. Linux doubles the value for its
/// own bookkeeping; 16 KiB still takes any answer of the API in one write, and the larger
/// pages of the web UI go out in a few.
pub const DEFAULT_SEND_BUFFER: usize = 16 * 1024;

/// Binds `addr` with a listen backlog of `backlog` (std's `TcpListener::bind` uses 128) and,
/// when given, the send buffer its connections inherit (Linux; see [`DEFAULT_SEND_BUFFER`]).
pub fn bind(
    addr: SocketAddr,
    backlog: i32,
    send_buffer: Option<usize>,
) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A restarted server can bind again at once while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if let Some(size) = send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Raises the soft limit of open files to the hard limit, where the process may; returns the
/// limit in force afterwards (`None` where there is no such limit).
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        let (soft, hard) = Resource::NOFILE.get().ok()?;
        if soft >= hard {
            return Some(soft);
        }
        match rlimit::increase_nofile_limit(hard) {
            Ok(now) => Some(now),
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open-file limit");
                Some(soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The deadline of the request a connection is serving, shared by its socket ([`DeadlineIo`])
/// and its requests (through the connection data actix hands to each request).
#[derive(Debug, Default)]
pub struct ConnDeadline {
    /// When the current request must be answered (`None` between requests).
    deadline: Mutex<Option<Instant>>,
    /// Set when the app has produced the last byte of a response body; the socket clears the
    /// deadline at its next completed flush.
    response_done: AtomicBool,
}

impl ConnDeadline {
    /// The deadline of the current request, if one is running.
    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }

    /// Marks the end of the current response body.
    pub fn response_done(&self) {
        self.response_done.store(true, Ordering::Release);
    }
}

/// A TCP connection whose every operation fails once the current request's deadline passed.
#[derive(Debug)]
pub struct DeadlineIo {
    io: TcpStream,
    shared: Arc<ConnDeadline>,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    /// The connection's place in its client's share, given back when it closes.
    _slot: Option<crate::connections::ConnectionSlot>,
}

impl DeadlineIo {
    /// Wraps an accepted connection; its first request's deadline starts now.
    pub fn new(io: TcpStream, timeout: Duration) -> Self {
        let mut this = Self {
            io,
            shared: Arc::new(ConnDeadline::default()),
            timeout,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
            _slot: None,
        };
        this.arm();
        this
    }

    /// Holds `slot` (of [`ClientConnections`](crate::connections::ClientConnections)) for
    /// as long as the connection lives.
    #[must_use]
    pub fn holding(mut self, slot: Option<crate::connections::ConnectionSlot>) -> Self {
        self._slot = slot;
        self
    }

    /// What requests on this connection see of its deadline.
    pub fn shared(&self) -> Arc<ConnDeadline> {
        Arc::clone(&self.shared)
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &TcpStream {
        &self.io
    }

    fn arm(&mut self) {
        let now = Instant::now();
        self.sleep.as_mut().reset(now + self.timeout + WRITE_GRACE);
        self.shared.set(Some(now + self.timeout));
        self.armed = true;
    }

    fn disarm(&mut self) {
        self.armed = false;
        self.shared.set(None);
    }

    /// `Err` once the deadline passed; otherwise registers the waker for it.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.armed && self.sleep.as_mut().poll(cx).is_ready() {
            // Reset rather than close gracefully: the kernel drops what is still queued for a
            // client that does not read, instead of keeping it for minutes.
            let _ = socket2::SockRef::from(&self.io).set_linger(Some(Duration::ZERO));
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request deadline (REQUEST_TIMEOUT) passed",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for DeadlineIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        let before = buf.filled().len();
        let res = ready!(Pin::new(&mut this.io).poll_read(cx, buf));
        if res.is_ok() && buf.filled().len() > before && !this.armed {
            // The first byte of the next request.
            this.arm();
            this.check(cx)?;
        }
        Poll::Ready(res)
    }
}

impl AsyncWrite for DeadlineIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.armed {
            // A response without a request in flight (pipelining): bound it all the same.
            this.arm();
        }
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.armed {
            this.arm();
        }
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        ready!(Pin::new(&mut this.io).poll_flush(cx))?;
        // actix flushes the socket once its whole write buffer went out: with the body's end
        // marked, the response is delivered and the connection waits for the next request.
        if this.shared.response_done.swap(false, Ordering::AcqRel) {
            this.disarm();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.armed {
            this.arm();
        }
        this.check(cx)?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// A response body that tells the connection when its last byte has been produced.
struct Tracked {
    body: BoxBody,
    conn: Option<Arc<ConnDeadline>>,
}

impl MessageBody for Tracked {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = ready!(Pin::new(&mut this.body).poll_next(cx));
        if next.is_none() {
            if let Some(conn) = this.conn.take() {
                conn.response_done();
            }
        }
        Poll::Ready(next)
    }
}

/// 408 for a request whose deadline passed before its response was ready; the connection is
/// closed after it (its body may be half-read).
pub fn request_timeout_response() -> HttpResponse {
    let mut res = HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::CONNECTION, HeaderValue::from_static("close")))
        // Outside the app, so the app's security headers are added here.
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Content-Security-Policy", "frame-ancestors 'none'"))
        .json(ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::RequestTimeout,
                message: "The request was not completed in time.".into(),
                fields: None,
            },
        });
    res.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    res
}

/// Runs the app (`fut`, serving one request) under the request's deadline (the
/// connection's, or `timeout` from now for a request that arrived another way), answering 408
/// past it, and marks the end of the response body for the connection.
pub async fn with_deadline<B, Fut>(
    fut: Fut,
    conn: Option<Arc<ConnDeadline>>,
    timeout: Duration,
) -> Result<Response<BoxBody>, HttpResponse>
where
    B: MessageBody + 'static,
    Fut: Future<Output = Result<ServiceResponse<B>, HttpResponse>>,
{
    let deadline = conn
        .as_ref()
        .and_then(|c| c.deadline())
        .unwrap_or_else(|| Instant::now() + timeout);
    let res: Response<BoxBody> = match tokio::time::timeout_at(deadline, fut).await {
        Ok(Ok(res)) => res.map_into_boxed_body().into(),
        Ok(Err(res)) => res.into(),
        Err(_) => {
            crate::telemetry::count_refusal("request_timeout");
            request_timeout_response().into()
        }
    };
    Ok(match res.body().size() {
        BodySize::None | BodySize::Sized(0) => {
            if let Some(conn) = &conn {
                conn.response_done();
            }
            res
        }
        _ => res.map_body(|_, body| BoxBody::new(Tracked { body, conn })),
    })
}

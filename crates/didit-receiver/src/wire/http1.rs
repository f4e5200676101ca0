//! The HTTP/1.1 connection layer of the hyper-based variants (hyper, axum, axum-naive) and the
//! axum extractor: body reading, replies, accept loop, connection limit, header and body
//! timeouts, lingering close, graceful shutdown. actix binds and stops through it too.
//!
//! Keeping this in one place means those variants differ only in how a request is handled, which
//! is the part the benchmark compares.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::{Limits, RETRY_AFTER_SECS, Reply};

use super::MAX_HEAD;

/// The accept queue asked of the kernel.
const LISTEN_BACKLOG: u32 = 8192;

/// Longest wait for in-flight requests after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Longest a closed connection's input is drained (never past the body timeout).
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);

/// Most input a closed connection's drain reads before it gives up: twice the body limit, and at
/// least this much, so the answer to any oversize body up to that size still arrives.
pub(crate) const LINGER_BYTES: usize = 16 << 20;

/// The drain's byte bound for a body limit of `max_body`.
pub(crate) fn linger_bytes(max_body: usize) -> usize {
    max_body.saturating_mul(2).max(LINGER_BYTES)
}

pub(crate) use didit_webhook_axum::{read_body, signature_headers};

/// Turns a [`Reply`] into a hyper response.
pub(crate) fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let content_type = reply.content_type();
    let status = reply.status;
    let retry_after = reply.retry_after;
    let allow = reply.allow;
    let body = match reply.body {
        crate::app::ReplyBody::Json(s) => Bytes::from_static(s.as_bytes()),
        crate::app::ReplyBody::Metrics(s) => Bytes::from(s),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if retry_after {
        h.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    if let Some(allow) = allow {
        h.insert(ALLOW, HeaderValue::from_static(allow));
    }
    // The body was refused or cut off unread: the connection's framing is lost, so say it closes
    // (RFC 9112 §9.6) and the client opens a new one instead of failing on a dead one.
    if matches!(status, 408 | 413) {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A request whose head the handlers must not see: the status to answer (431 for a head over
/// [`MAX_HEAD`], which hyper does not enforce itself), and the connection is closed after it.
pub(crate) fn refuse_head<B>(req: &Request<B>) -> Option<u16> {
    let mut size = req.uri().path().len() + req.uri().query().map_or(0, str::len);
    for (name, value) in req.headers() {
        // Name, ": ", value, CRLF.
        size += name.as_str().len() + value.len() + 4;
    }
    (size > MAX_HEAD).then_some(431)
}

/// Wraps a service so that [`refuse_head`] is applied before it, for every tokio variant.
#[derive(Clone, Debug)]
pub(crate) struct Guard<S>(pub S);

type Guarded<B> = Response<http_body_util::Either<B, Full<Bytes>>>;
type GuardMap<B> = fn(Result<Response<B>, Infallible>) -> Result<Guarded<B>, Infallible>;

impl<S, B> hyper::service::Service<Request<Incoming>> for Guard<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
{
    type Response = Guarded<B>;
    type Error = Infallible;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<Guarded<B>, Infallible>>,
        futures_util::future::Map<S::Future, GuardMap<B>>,
    >;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        use futures_util::FutureExt;
        if let Some(status) = refuse_head(&req) {
            tracing::debug!(status, "request head refused");
            let mut resp = Response::new(http_body_util::Either::Right(Full::new(
                Bytes::from_static(crate::app::BODY_HEAD_TOO_LARGE.as_bytes()),
            )));
            *resp.status_mut() =
                hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
            let h = resp.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(CONNECTION, HeaderValue::from_static("close"));
            return futures_util::future::Either::Left(std::future::ready(Ok(resp)));
        }
        let left: GuardMap<B> = |r| r.map(|resp| resp.map(http_body_util::Either::Left));
        futures_util::future::Either::Right(self.0.call(req).map(left))
    }
}

/// A connection's socket that closes the way nginx's `lingering_close` does.
///
/// When the server ends a connection that may still carry unread input (an early 413, a 400, a
/// 408, an idle timeout), closing the socket outright makes the kernel answer that input with a
/// reset, and a reset destroys the answer the client has not read yet. A client that writes its
/// whole request before reading (Python's `http.client`) then sees a broken pipe instead of the
/// 413, and retries what it should give up. So on drop, unless the client already closed its
/// side, the socket is handed to a task that half-closes it (the answer is already written:
/// hyper flushes before it lets go), reads and discards input until the client closes, and stops
/// after [`LINGER_TIME`] or [`linger_bytes`], so lingering cannot hold a connection for long.
/// The connection's permit is held until then, so lingering sockets count against the limit.
struct Lingering {
    stream: Option<TcpStream>,
    /// The client closed its side (a read saw EOF or failed): nothing can be left unread.
    client_done: bool,
    permit: Option<OwnedSemaphorePermit>,
    linger: Duration,
    linger_bytes: usize,
}

impl Lingering {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        // Only `drop` takes the stream out.
        Pin::new(self.stream.as_mut().expect("stream present until drop"))
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let r = ready!(self.stream().poll_read(cx, buf));
        if r.is_err() || (room && buf.filled().len() == before) {
            self.client_done = true;
        }
        Poll::Ready(r)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if self.client_done {
            return;
        }
        let permit = self.permit.take();
        let (linger, max) = (self.linger, self.linger_bytes);
        // Dropped inside the connection's task, so a runtime is there; without one (a runtime
        // shutting down) the socket simply closes.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                drain(stream, linger, max).await;
                drop(permit);
            });
        }
    }
}

/// Half-closes `stream` and discards its input until the peer closes, `limit` passes or `max`
/// bytes were read. Returns the bytes discarded.
async fn drain(mut stream: TcpStream, limit: Duration, max: usize) -> usize {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    while total < max {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => break,
        }
    }
    total
}

/// Binds `addr` and prints `listening on <addr>` once it accepts connections.
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    // A deep accept queue (the kernel caps it at net.core.somaxconn): with tokio's default of
    // 1,024, a burst of new connections (5,000 clients reconnecting at once) overflows it and
    // each dropped SYN costs its client a 1 s retransmission.
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    let listener = listen().map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    super::announce(listener.local_addr()?);
    Ok(listener)
}

/// Serves HTTP/1.1 on `listener` with `service` until `shutdown` resolves, then stops accepting
/// and waits (up to 20 s) for in-flight requests.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        // Waiting for a permit first bounds connections (and their memory); extra clients queue in
        // the kernel's backlog instead.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = Lingering {
            stream: Some(stream),
            client_done: false,
            permit: Some(permit),
            linger: LINGER_TIME.min(limits.body_timeout),
            linger_bytes: linger_bytes(limits.max_body),
        };
        let conn = builder.serve_connection(TokioIo::new(stream), Guard(service.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("in-flight requests still running after {SHUTDOWN_GRACE:?}; exiting");
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown signal received: draining");
}

/// Runs `service` on a multi-threaded tokio runtime with `workers` threads: binds `listen`,
/// announces it, and serves until SIGTERM or SIGINT.
pub(crate) fn run<S, B>(
    listen: SocketAddr,
    workers: usize,
    limits: Limits,
    service: S,
) -> anyhow::Result<()>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = bind(listen).await?;
        serve(listener, service, limits, shutdown_signal()).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = l.accept().await.expect("accept");
        (server, client)
    }

    #[tokio::test]
    async fn the_drain_reads_until_the_client_closes_and_the_client_sees_end_of_stream() {
        let (server, mut client) = pair().await;
        let writer = tokio::spawn(async move {
            client.write_all(&vec![b'x'; 3 << 20]).await.expect("write");
            // The server's half-close reaches the client as end of stream, not a reset.
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.expect("read");
            rest.len()
        });
        let drained = drain(server, Duration::from_secs(10), LINGER_BYTES).await;
        assert_eq!(drained, 3 << 20);
        assert_eq!(writer.await.expect("join"), 0);
    }

    #[tokio::test]
    async fn the_drain_stops_at_its_byte_bound_and_at_its_deadline() {
        let (server, mut client) = pair().await;
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            // Keeps writing until the server gives up on it.
            while client.write_all(&chunk).await.is_ok() {}
        });
        let drained = drain(server, Duration::from_secs(10), 1 << 20).await;
        assert!(
            (1 << 20..(1 << 20) + 64 * 1024).contains(&drained),
            "{drained}"
        );
        writer.await.expect("join");

        // A client that neither sends nor closes holds the drain only until its deadline.
        let (server, client) = pair().await;
        let started = std::time::Instant::now();
        assert_eq!(
            drain(server, Duration::from_millis(200), LINGER_BYTES).await,
            0
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(client);
    }
}

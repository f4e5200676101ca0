//! The HTTP/1.1 connection layer shared by the tokio-based variants (hyper, axum, axum-naive):
//! accept loop, connection limit, header and body timeouts, graceful shutdown.
//!
//! Keeping this in one place means those variants differ only in how a request is handled, which
//! is the part the benchmark compares.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER,
};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::{ContentLength, Limits, RETRY_AFTER_SECS, Reply, content_length};
use crate::metrics::Outcome;
use didit_webhook::{Rejection, Scratch, SignatureHeaders};

/// The accept queue asked of the kernel.
const LISTEN_BACKLOG: u32 = 8192;

/// Longest wait for in-flight requests after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

thread_local! {
    /// One verification scratch per worker thread; never held across an `.await`.
    pub static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// The four signature headers of a request, borrowed.
pub fn signature_headers(h: &HeaderMap) -> SignatureHeaders<'_> {
    SignatureHeaders::from_lookup(|name| h.get(name).map(HeaderValue::as_bytes))
}

/// Reads a request body within the size limit and the body timeout. A declared length over the
/// limit is refused before a byte is read.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    max_body: usize,
    body_timeout: Duration,
) -> Result<Bytes, Outcome>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let ContentLength::Valid(n) = content_length(
        headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .map(HeaderValue::as_bytes),
    ) && n > max_body
    {
        return Err(Outcome::Rejected(Rejection::PayloadTooLarge));
    }
    match tokio::time::timeout(body_timeout, Limited::new(body, max_body).collect()).await {
        Err(_) => Err(Outcome::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(Outcome::Rejected(Rejection::PayloadTooLarge))
        }
        // The client broke the framing (a short body, a bad chunk): nothing to verify.
        Ok(Err(_)) => Err(Outcome::BadContentLength),
    }
}

/// Turns a [`Reply`] into a hyper response.
pub fn to_response(reply: Reply) -> Response<Full<Bytes>> {
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

/// The largest request head (target and header fields) any variant accepts, as may's and hyper's
/// buffers allow. hyper caps its read buffer, not the head, so a head just over it can still parse.
pub const MAX_HEAD: usize = 64 * 1024;

/// A request whose head the handlers must not see: the status to answer (431 for a head over
/// [`MAX_HEAD`], which hyper does not enforce itself), and the connection is closed after it.
pub fn refuse_head<B>(req: &Request<B>) -> Option<u16> {
    let mut size = req.uri().path().len() + req.uri().query().map_or(0, str::len);
    for (name, value) in req.headers() {
        // Name, ": ", value, CRLF.
        size += name.as_str().len() + value.len() + 4;
    }
    (size > MAX_HEAD).then_some(431)
}

/// Wraps a service so that [`refuse_head`] is applied before it, for every tokio variant.
#[derive(Clone, Debug)]
pub struct Guard<S>(pub S);

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

/// Binds `addr` and prints `listening on <addr>` once it accepts connections.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
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
    crate::announce(listener.local_addr()?);
    Ok(listener)
}

/// Serves HTTP/1.1 on `listener` with `service` until `shutdown` resolves, then stops accepting
/// and waits (up to 20 s) for in-flight requests.
pub async fn serve<S, B>(
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
        let conn = builder.serve_connection(TokioIo::new(stream), Guard(service.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
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
pub async fn shutdown_signal() {
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
pub fn run<S, B>(
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

//! The may_minihttp variant: stackful coroutines, one per connection, with a per-connection
//! verification scratch.
//!
//! may_minihttp is minimal; the vendored copy (`vendor/may_minihttp/PATCHED.md`) answers what it
//! cannot parse, refuses a malformed `Content-Length` itself, closes the connection when the
//! framing or the request calls for it (and always lingering, so the answer is not lost to a
//! reset), sends `100 Continue`, and applies the header and body timeouts passed through the
//! factory. It still has no chunked decoding, so this variant answers 411 for a chunked body or
//! a missing length (may_minihttp then closes), 413 over the limit without reading the body,
//! 408 when the body times out, and marks those answers `Connection: close`. What it cannot do:
//! stop accepting before draining on SIGTERM.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use didit_webhook::{JsonBackend, Mac, Rejection, Scratch, SignatureHeaders, Tag};
use may_minihttp::{HttpServiceFactory, Request, Response};

use crate::app::{App, Handled, Reply, ReplyBody, Route, ack_reply, early_reply};
use crate::framing::{BodyPlan, body_plan};
use crate::metrics::Outcome;
use crate::ticket::{Ack, Ticket};

/// Coroutine stack (in words: 1 MiB). may's 32 KiB default is far too small: verification
/// recurses up to `canon::MAX_DEPTH` levels, and sonic-rs un-escapes strings in large on-stack
/// buffers (256 KiB overflowed, which wedges may's scheduler). Only touched pages cost memory.
const STACK_SIZE_WORDS: usize = 0x20000;

/// Room for one header value we care about: a 64-character tag, one more so a longer value is
/// still refused, or a timestamp.
const VALUE_CAP: usize = 2 * std::mem::size_of::<Tag>() + 1;

/// A header value copied out of the request (truncated to `VALUE_CAP`), without allocating.
#[derive(Clone, Copy)]
struct Copied {
    bytes: [u8; VALUE_CAP],
    len: usize,
}

impl Copied {
    fn new(v: &[u8]) -> Self {
        let len = v.len().min(VALUE_CAP);
        let mut bytes = [0u8; VALUE_CAP];
        bytes[..len].copy_from_slice(&v[..len]);
        Copied { bytes, len }
    }

    fn get(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What one pass over the request headers finds: the framing and the signature headers, copied
/// so that the body can be read afterwards.
#[derive(Clone, Copy)]
struct Head {
    plan: BodyPlan,
    signature: Option<Copied>,
    signature_v2: Option<Copied>,
    signature_simple: Option<Copied>,
    timestamp: Option<Copied>,
}

impl Head {
    fn of(req: &Request<'_, '_, '_>, max_body: usize) -> Self {
        let mut h = Head {
            plan: body_plan(req.headers().iter().map(|h| (h.name, h.value)), max_body),
            signature: None,
            signature_v2: None,
            signature_simple: None,
            timestamp: None,
        };
        for header in req.headers() {
            let name = header.name;
            let v = header.value;
            if name.eq_ignore_ascii_case(didit_webhook::HEADER_SIGNATURE) {
                h.signature = Some(Copied::new(v));
            } else if name.eq_ignore_ascii_case(didit_webhook::HEADER_SIGNATURE_V2) {
                h.signature_v2 = Some(Copied::new(v));
            } else if name.eq_ignore_ascii_case(didit_webhook::HEADER_SIGNATURE_SIMPLE) {
                h.signature_simple = Some(Copied::new(v));
            } else if name.eq_ignore_ascii_case(didit_webhook::HEADER_TIMESTAMP) {
                h.timestamp = Some(Copied::new(v));
            }
        }
        h
    }

    fn signatures(&self) -> SignatureHeaders<'_> {
        SignatureHeaders {
            signature: self.signature.as_ref().map(Copied::get),
            signature_v2: self.signature_v2.as_ref().map(Copied::get),
            signature_simple: self.signature_simple.as_ref().map(Copied::get),
            timestamp: self.timestamp.as_ref().map(Copied::get),
        }
    }
}

struct Service<M, J> {
    app: Arc<App<M, J>>,
    scratch: Scratch,
    body: Vec<u8>,
}

struct Factory<M, J>(Arc<App<M, J>>);

impl<M: Mac, J: JsonBackend> HttpServiceFactory for Factory<M, J> {
    type Service = Service<M, J>;

    fn new_service(&self, _id: usize) -> Self::Service {
        Service {
            app: Arc::clone(&self.0),
            scratch: Scratch::new(),
            body: Vec::new(),
        }
    }

    fn header_timeout(&self) -> Option<Duration> {
        Some(self.0.limits().header_timeout)
    }

    fn body_timeout(&self) -> Option<Duration> {
        Some(self.0.limits().body_timeout)
    }
}

/// Reads and handles a body-carrying request (the webhook or the null endpoint).
fn with_body<M: Mac, J: JsonBackend>(
    app: &App<M, J>,
    scratch: &mut Scratch,
    body: &mut Vec<u8>,
    route: Route,
    req: Request<'_, '_, '_>,
) -> io::Result<Reply> {
    let head = Head::of(&req, app.limits().max_body);
    // A body left unread makes may_minihttp close the connection after the answer (it skips
    // one already buffered), so refusals need not read it.
    let n = match head.plan {
        BodyPlan::LengthRequired => return Ok(early_reply(Outcome::LengthRequired)),
        BodyPlan::BadLength => return Ok(early_reply(Outcome::BadContentLength)),
        BodyPlan::TooLarge => {
            return Ok(early_reply(Outcome::Rejected(Rejection::PayloadTooLarge)));
        }
        BodyPlan::Read(n) => n,
    };
    body.clear();
    body.reserve(n);
    match req.body().read_to_end(body) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            return Ok(early_reply(Outcome::BodyTimeout));
        }
        Err(e) => return Err(e),
    }
    if body.len() != n {
        return Ok(early_reply(Outcome::BadContentLength));
    }
    Ok(match route {
        Route::Webhook => match app.webhook(&head.signatures(), body, scratch) {
            Handled::Ready(reply) => reply,
            Handled::Pending(ticket) => ack_reply(wait(ticket)),
        },
        _ => app.simple_route(Route::Null),
    })
}

/// Wakes a parked coroutine (or thread) when a store settles its ticket.
struct Unpark(Arc<may::sync::Blocker>);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits for a store's answer, parking only this coroutine: the worker thread runs the other
/// connections meanwhile.
fn wait(ticket: Ticket) -> Ack {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let blocker = may::sync::Blocker::current();
    let waker = Waker::from(Arc::new(Unpark(Arc::clone(&blocker))));
    let mut cx = Context::from_waker(&waker);
    let mut ticket = std::pin::pin!(ticket);
    loop {
        if let Poll::Ready(ack) = ticket.as_mut().poll(&mut cx) {
            return ack;
        }
        // A spurious wake-up only costs another poll.
        let _ = blocker.park(None);
    }
}

impl<M: Mac, J: JsonBackend> may_minihttp::HttpService for Service<M, J> {
    fn call(&mut self, req: Request<'_, '_, '_>, rsp: &mut Response<'_>) -> io::Result<()> {
        let started = Instant::now();
        let route = self.app.route(req.method(), req.path());
        let Service { app, scratch, body } = self;
        let reply = if let Some(reply) = oversized_head(&req) {
            // The tokio variants' limit. The patched may_minihttp bounds only a head still
            // incomplete at 64 KiB; one that arrived whole in a single read can be larger.
            reply
        } else {
            match route {
                Route::Webhook | Route::Null => {
                    let _in_flight = app.metrics().start();
                    with_body(app, scratch, body, route, req)?
                }
                other => app.simple_route(other),
            }
        };
        self.app.finish(&reply, started);
        write_reply(reply, rsp);
        Ok(())
    }
}

/// 414 for a request target over the head limit, 431 for a head over it (see
/// [`crate::wire::MAX_HEAD`]).
fn oversized_head(req: &Request<'_, '_, '_>) -> Option<Reply> {
    let limit = crate::wire::MAX_HEAD;
    if req.path().len() > limit {
        return Some(Reply::json(414, crate::app::BODY_URI_TOO_LONG));
    }
    let size: usize = req.path().len()
        + req
            .headers()
            .iter()
            .map(|h| h.name.len() + h.value.len() + 4)
            .sum::<usize>();
    (size > limit).then(|| Reply::json(431, crate::app::BODY_HEAD_TOO_LARGE))
}

fn write_reply(reply: Reply, rsp: &mut Response<'_>) {
    rsp.status_code(usize::from(reply.status), reply.reason());
    rsp.header(match reply.body {
        ReplyBody::Json(_) => "Content-Type: application/json",
        ReplyBody::Metrics(_) => "Content-Type: text/plain; version=0.0.4",
    });
    if reply.retry_after {
        rsp.header("Retry-After: 1");
    }
    match reply.allow {
        Some("POST") => {
            rsp.header("Allow: POST");
        }
        Some("GET") => {
            rsp.header("Allow: GET");
        }
        Some("GET, HEAD") => {
            rsp.header("Allow: GET, HEAD");
        }
        _ => {}
    }
    // The body was refused or cut off unread, or the head was refused: the framing is lost, so
    // say the connection closes (RFC 9112 §9.6), which may_minihttp then does.
    if matches!(reply.status, 408 | 413 | 414 | 431) {
        rsp.header("Connection: close");
    }
    match reply.body {
        ReplyBody::Json(s) => rsp.body(s),
        ReplyBody::Metrics(s) => rsp.body_vec(s.into_bytes()),
    }
}

/// Runs the may variant until SIGTERM or SIGINT, then waits for in-flight requests.
pub(crate) fn run<M: Mac, J: JsonBackend>(
    app: Arc<App<M, J>>,
    listen: std::net::SocketAddr,
    workers: usize,
) -> anyhow::Result<()> {
    may::config()
        .set_workers(workers)
        .set_stack_size(STACK_SIZE_WORDS);
    // may_minihttp binds inside `start` and does not report the address; resolve port 0 first.
    let addr = if listen.port() == 0 {
        std::net::TcpListener::bind(listen)
            .and_then(|l| l.local_addr())
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?
    } else {
        listen
    };
    let _server = Factory(Arc::clone(&app))
        .start(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    crate::wire::announce(addr);

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("shutdown signal received: draining");
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.metrics().in_flight() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    app.shutdown();
    Ok(())
}

//! The may_minihttp variant: stackful coroutines, one per connection, with a per-connection
//! verification scratch.
//!
//! may_minihttp is minimal: it has no chunked decoding, unwraps a malformed `Content-Length` (a
//! panic), and exposes no socket, so it has no read timeouts and no way to close a connection
//! from a handler. This variant therefore validates the framing itself before it asks for the
//! body (411 for a missing length or a chunked body, 400 for a malformed one, 413 over the limit),
//! and documents what it cannot do: cut off slow clients, stop accepting before draining, or
//! answer a chunked or malformed-length request (the bytes after the head are parsed as the next
//! request, fail, and may_minihttp drops the connection before writing the queued answer).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use didit_webhook::{JsonBackend, Mac, Rejection, Scratch, SignatureHeaders, Tag};
use may_minihttp::{HttpServiceFactory, Request, Response};

use crate::app::{App, ContentLength, Reply, ReplyBody, Route, content_length, early_reply};
use crate::metrics::Outcome;

/// Coroutine stack (in words: 1 MiB). may's 32 KiB default is far too small: verification
/// recurses up to `canon::MAX_DEPTH` levels, and sonic-rs un-escapes strings in large on-stack
/// buffers (256 KiB overflowed, which wedges may's scheduler). Only touched pages cost memory.
const STACK_SIZE_WORDS: usize = 0x20000;

/// The largest body drained (read and dropped) so that a refused request still gets its answer:
/// may_minihttp parses whatever follows the head as the next request, and on a parse error drops
/// the connection before writing the answers it has queued.
const DRAIN_CAP: usize = 16 << 20;

/// The signature headers copied out of the request, so the body can be read afterwards.
#[derive(Default)]
struct OwnedHeaders {
    signature: Option<Vec<u8>>,
    signature_v2: Option<Vec<u8>>,
    signature_simple: Option<Vec<u8>>,
    timestamp: Option<Vec<u8>>,
}

impl OwnedHeaders {
    fn collect(req: &Request<'_, '_, '_>) -> Self {
        let mut h = OwnedHeaders::default();
        for header in req.headers() {
            // Anything longer than a tag cannot be valid; keep a prefix so it is still rejected.
            let v = Some(
                header.value[..header.value.len().min(2 * std::mem::size_of::<Tag>() + 1)].to_vec(),
            );
            let name = header.name;
            if name.eq_ignore_ascii_case(didit_webhook::HEADER_SIGNATURE) {
                h.signature = v;
            } else if name.eq_ignore_ascii_case(didit_webhook::HEADER_SIGNATURE_V2) {
                h.signature_v2 = v;
            } else if name.eq_ignore_ascii_case(didit_webhook::HEADER_SIGNATURE_SIMPLE) {
                h.signature_simple = v;
            } else if name.eq_ignore_ascii_case(didit_webhook::HEADER_TIMESTAMP) {
                h.timestamp = v;
            }
        }
        h
    }

    fn borrow(&self) -> SignatureHeaders<'_> {
        SignatureHeaders {
            signature: self.signature.as_deref(),
            signature_v2: self.signature_v2.as_deref(),
            signature_simple: self.signature_simple.as_deref(),
            timestamp: self.timestamp.as_deref(),
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
}

/// How a request frames its body.
#[derive(Clone, Copy)]
struct Framing {
    chunked: bool,
    length: ContentLength,
}

impl Framing {
    fn of(req: &Request<'_, '_, '_>) -> Self {
        let headers = req.headers();
        Framing {
            chunked: headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding")),
            length: content_length(
                headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| h.value),
            ),
        }
    }

    /// Reads and drops the body when that is possible and bounded, so the next request on the
    /// connection parses. Never called with a malformed length: may_minihttp would panic on it.
    fn drain(self, req: Request<'_, '_, '_>) {
        if let (false, ContentLength::Valid(n)) = (self.chunked, self.length)
            && n > 0
            && n <= DRAIN_CAP
        {
            // BodyReader reads the rest of the declared body when dropped.
            drop(req.body());
        }
    }
}

impl<M: Mac, J: JsonBackend> Service<M, J> {
    fn webhook(&mut self, route: Route, req: Request<'_, '_, '_>) -> io::Result<Reply> {
        let framing = Framing::of(&req);
        // Never let may_minihttp see a length it would fail to parse.
        let n = match (framing.chunked, framing.length) {
            (true, _) | (false, ContentLength::Missing) => {
                return Ok(early_reply(Outcome::LengthRequired));
            }
            (false, ContentLength::Malformed) => return Ok(early_reply(Outcome::BadContentLength)),
            (false, ContentLength::Valid(n)) if n > self.app.limits().max_body => {
                framing.drain(req);
                return Ok(early_reply(Outcome::Rejected(Rejection::PayloadTooLarge)));
            }
            (false, ContentLength::Valid(n)) => n,
        };
        let headers = OwnedHeaders::collect(&req);
        self.body.clear();
        self.body.reserve(n);
        req.body().read_to_end(&mut self.body)?;
        if self.body.len() != n {
            return Ok(early_reply(Outcome::BadContentLength));
        }
        Ok(match route {
            Route::Webhook => self
                .app
                .webhook(&headers.borrow(), &self.body, &mut self.scratch),
            _ => self.app.simple_route(Route::Null),
        })
    }
}

impl<M: Mac, J: JsonBackend> may_minihttp::HttpService for Service<M, J> {
    fn call(&mut self, req: Request<'_, '_, '_>, rsp: &mut Response<'_>) -> io::Result<()> {
        let started = Instant::now();
        let route = self.app.route(req.method(), req.path());
        let reply = match route {
            Route::Webhook | Route::Null => {
                let app = Arc::clone(&self.app);
                let _in_flight = app.metrics().start();
                self.webhook(route, req)?
            }
            other => {
                Framing::of(&req).drain(req);
                self.app.simple_route(other)
            }
        };
        self.app.finish(&reply, started);
        write_reply(reply, rsp);
        Ok(())
    }
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
    match reply.body {
        ReplyBody::Json(s) => rsp.body(s),
        ReplyBody::Metrics(s) => rsp.body_vec(s.into_bytes()),
    }
}

/// Runs the may variant until SIGTERM or SIGINT, then waits for in-flight requests.
pub fn run<M: Mac, J: JsonBackend>(
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
    crate::announce(addr);

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

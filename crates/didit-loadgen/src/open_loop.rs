//! The open-loop precision engine: an HTTP/1.1 client (hyper's, or a raw one) on one thread per
//! core, a constant-arrival-rate schedule, and latency measured from each request's *intended*
//! send time (coordinated-omission corrected, as wrk2 does) into microsecond HdrHistograms, next
//! to the uncorrected figures.
//!
//! With `--threads N` each thread runs its own engine, pinned to its own core, with 1/N of the
//! rate and of the connections and its own traffic model; their histograms are added exactly at
//! the end.
//!
//! An `https://` target's connections go through TLS (`crate::tls`): hyper's client over a
//! tokio-rustls stream, the raw client over a `RawStream` whose TLS arm is the only one that
//! pays for it.
//!
//! One pacer task releases tickets on schedule; connection tasks take the next ticket whenever
//! they are free. A ticket that waits because every connection is busy keeps its intended time,
//! so that wait is part of the corrected latency. tokio's timers tick in milliseconds, so the
//! pacer sleeps only until a millisecond before a ticket is due and then yields in a loop: the
//! release is accurate to a few microseconds, at the price of a busy generator core.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::http::{Method, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::generator::Generator;
use crate::labels::{Expect, Judge, Verdict, check_with};
use crate::progress::{Live, Progress};
use crate::report::Stats;
use crate::scenario::{LoadShape, Scenario};
use crate::target::Target;

/// Why the engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the generator's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the acknowledged-deliveries log: {0}")]
    AckedLog(std::io::Error),
    #[error("goose: {0}")]
    Goose(String),
}

/// What a run produced.
#[derive(Debug)]
pub struct EngineOutput {
    pub stats: Stats,
    /// Wall time of the measured period, as run.
    pub measured: Duration,
    pub goose_reports: Vec<String>,
}

/// Everything an engine needs besides the traffic model.
#[derive(Debug)]
pub struct EngineConfig<'a> {
    pub scenario: &'a Scenario,
    pub target: &'a Target,
    pub acked_log: Option<File>,
    pub quiet: bool,
    /// Deliveries to cycle through instead of building one per request (empty: build each).
    pub pool: Pool,
    pub client: HttpClient,
    /// How answers are judged against their labels.
    pub judge: crate::labels::Judge,
}

/// Deliveries built before the run (`--pool`), each with the raw client's wire bytes.
#[derive(Debug, Default)]
pub struct Pool {
    deliveries: Vec<crate::generator::Delivery>,
    wire: Vec<Vec<u8>>,
}

impl Pool {
    /// Builds and signs `n` deliveries now, before the run's clock and CPU accounting start: a
    /// pool large enough to send only fresh deliveries takes seconds to sign.
    pub fn build(generator: &mut Generator, n: usize, client: HttpClient, target: &Target) -> Pool {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let deliveries: Vec<_> = (0..n).map(|_| generator.next(now_unix)).collect();
        let wire = if client == HttpClient::Raw {
            deliveries
                .iter()
                .map(|d: &crate::generator::Delivery| {
                    let mut wire = Vec::with_capacity(512 + d.body.len());
                    raw_head(target, d, &mut wire);
                    wire.extend_from_slice(&d.body);
                    wire
                })
                .collect()
        } else {
            Vec::new()
        };
        Pool { deliveries, wire }
    }
}

#[derive(Clone, Copy, Debug)]
struct Ticket {
    intended: Instant,
    measured: bool,
}

struct Shared {
    client: HttpClient,
    judge: Judge,
    generator: RefCell<Generator>,
    pool: Vec<crate::generator::Delivery>,
    /// With the raw client, each pool delivery's whole request (head and body) as it goes on
    /// the wire, built once: a pooled exchange is then one plain write.
    pool_wire: Vec<Vec<u8>>,
    pool_next: std::cell::Cell<usize>,
    stats: RefCell<Stats>,
    /// Shared by the threads; a line is written under the lock, so lines never interleave.
    acked_log: Option<Arc<Mutex<BufWriter<File>>>>,
    live: Arc<Live>,
    target: Target,
    timeout: Duration,
    /// Start of the measured period.
    measure_start: Instant,
    /// No request is sent after this.
    end: Instant,
    unix_base: Duration,
    instant_base: Instant,
}

impl Shared {
    fn transport_failed(&self, label: &crate::labels::Label, error: &str) {
        self.stats.borrow_mut().transport_error(label, error);
        if label.class != crate::labels::Class::Oversize {
            self.live.errors.fetch_add(1, Relaxed);
        }
    }

    /// Unix seconds from the monotonic clock (one clock read per delivery, not two).
    fn unix_now(&self) -> i64 {
        (self.unix_base + self.instant_base.elapsed()).as_secs() as i64
    }
}

impl Pool {
    /// Splits the pool into `n` parts, one per thread (deliveries dealt round-robin).
    fn split(self, n: usize) -> Vec<Pool> {
        let mut parts: Vec<Pool> = (0..n).map(|_| Pool::default()).collect();
        let wire = self
            .wire
            .into_iter()
            .map(Some)
            .chain(std::iter::repeat_with(|| None));
        for (i, (d, w)) in self.deliveries.into_iter().zip(wire).enumerate() {
            parts[i % n].deliveries.push(d);
            if let Some(w) = w {
                parts[i % n].wire.push(w);
            }
        }
        parts
    }
}

/// Runs the scenario with the open-loop engine: on the calling thread with one generator, or on
/// one thread per generator, each pinned to the next core of `cores` (the cores this process
/// may use, when empty) with its share of the rate, the connections and the pool.
pub fn run(
    cfg: EngineConfig<'_>,
    generators: Vec<Generator>,
    cores: &[usize],
    live: Arc<Live>,
) -> Result<EngineOutput, EngineError> {
    let n = generators.len().max(1);
    let start = Instant::now();
    let acked_log = cfg
        .acked_log
        .map(|f| Arc::new(Mutex::new(BufWriter::new(f))));
    let mut pools = cfg.pool.split(n).into_iter();
    let outputs: Vec<EngineOutput> = if n == 1 {
        let generator = generators.into_iter().next().ok_or_else(|| {
            EngineError::Runtime(std::io::Error::other("no traffic model to run"))
        })?;
        let one = Thread {
            scenario: cfg.scenario.clone(),
            target: cfg.target,
            acked_log: acked_log.clone(),
            progress: !cfg.quiet,
            pool: pools.next().unwrap_or_default(),
            client: cfg.client,
            judge: cfg.judge,
            start,
        };
        vec![run_thread(one, generator, live)?]
    } else {
        let cores: Vec<usize> = if cores.is_empty() {
            crate::cpu::allowed_cores()
        } else {
            cores.to_vec()
        };
        std::thread::scope(|scope| {
            let handles: Vec<_> = generators
                .into_iter()
                .enumerate()
                .map(|(i, generator)| {
                    let thread = Thread {
                        scenario: cfg.scenario.share(i, n),
                        target: cfg.target,
                        acked_log: acked_log.clone(),
                        // One progress display, of every thread's answers (`Live` is shared).
                        progress: !cfg.quiet && i == 0,
                        pool: pools.next().unwrap_or_default(),
                        client: cfg.client,
                        judge: cfg.judge,
                        start,
                    };
                    let core = cores.get(i % cores.len().max(1)).copied();
                    let live = live.clone();
                    scope.spawn(move || {
                        if let Some(c) = core {
                            crate::cpu::pin_current_thread(c);
                        }
                        run_thread(thread, generator, live)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EngineError::Runtime(std::io::Error::other(
                            "a generator thread panicked",
                        )))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?
    };
    if let Some(log) = acked_log
        && let Ok(mut w) = log.lock()
    {
        w.flush().map_err(EngineError::AckedLog)?;
    }
    let mut merged = EngineOutput {
        stats: Stats::default(),
        measured: Duration::ZERO,
        goose_reports: Vec::new(),
    };
    for o in outputs {
        merged.stats.merge(o.stats);
        // The threads share one clock and one schedule, so their measured periods agree; the
        // longest is the run's.
        merged.measured = merged.measured.max(o.measured);
    }
    merged.measured = merged.measured.max(Duration::from_millis(1));
    Ok(merged)
}

/// One thread's engine: its share of the scenario and of the pool.
struct Thread<'a> {
    scenario: Scenario,
    target: &'a Target,
    acked_log: Option<Arc<Mutex<BufWriter<File>>>>,
    progress: bool,
    pool: Pool,
    client: HttpClient,
    judge: Judge,
    /// The run's start, common to every thread.
    start: Instant,
}

fn run_thread(
    cfg: Thread<'_>,
    generator: Generator,
    live: Arc<Live>,
) -> Result<EngineOutput, EngineError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EngineError::Runtime)?;
    let local = tokio::task::LocalSet::new();
    let s = &cfg.scenario;
    let Pool {
        deliveries: pool,
        wire: pool_wire,
    } = cfg.pool;
    let start = cfg.start;
    let measure_start = start + s.warmup;
    let end = measure_start + s.duration;
    let shared = Rc::new(Shared {
        client: cfg.client,
        judge: cfg.judge,
        generator: RefCell::new(generator),
        pool,
        pool_wire,
        pool_next: std::cell::Cell::new(0),
        stats: RefCell::new(Stats::default()),
        acked_log: cfg.acked_log,
        live: live.clone(),
        target: cfg.target.clone(),
        timeout: s.request_timeout.unwrap_or(Duration::from_secs(10)),
        measure_start,
        end,
        unix_base: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
        instant_base: Instant::now(),
    });
    let mut progress = Progress::new(
        &format!("{} (open loop)", s.name),
        s.warmup + s.duration,
        live,
        !cfg.progress,
    );
    let shape = s.load;
    let connections = s.connections;
    let max_requests = s.max_requests;
    let duration = s.duration;
    local.block_on(&rt, async {
        let mut workers = Vec::with_capacity(connections);
        let pacer = match shape {
            LoadShape::Max => {
                for _ in 0..connections {
                    workers.push(tokio::task::spawn_local(closed_loop(
                        shared.clone(),
                        max_requests,
                    )));
                }
                None
            }
            _ => {
                let (tx, rx) = flume::unbounded::<Ticket>();
                for _ in 0..connections {
                    workers.push(tokio::task::spawn_local(connection(
                        shared.clone(),
                        rx.clone(),
                    )));
                }
                drop(rx);
                Some(tokio::task::spawn_local(pace(
                    shared.clone(),
                    tx,
                    shape,
                    duration,
                    max_requests,
                )))
            }
        };
        let ticker = tokio::task::spawn_local(async move {
            loop {
                progress.tick();
                tokio::time::sleep(Duration::from_millis(250)).await;
                if Instant::now() >= end {
                    progress.tick();
                    progress.finish();
                    break;
                }
            }
        });
        if let Some(p) = pacer {
            let _ = p.await;
        }
        for w in workers {
            let _ = w.await;
        }
        ticker.abort();
    });
    let measured = Instant::now()
        .min(shared.end.max(measure_start))
        .saturating_duration_since(measure_start)
        .max(Duration::from_millis(1));
    let stats = shared.stats.replace(Stats::default());
    Ok(EngineOutput {
        stats,
        measured,
        goose_reports: Vec::new(),
    })
}

/// Releases tickets on the shape's schedule until the end of the run.
async fn pace(
    shared: Rc<Shared>,
    tx: flume::Sender<Ticket>,
    shape: LoadShape,
    duration: Duration,
    max_requests: Option<u64>,
) {
    let mut t = Instant::now();
    let mut released_measured = 0u64;
    let mut burst = 0u32;
    while t < shared.end {
        let measured = t >= shared.measure_start;
        let at = if measured {
            t - shared.measure_start
        } else {
            Duration::ZERO
        };
        let rate = shape.rate_at(at, duration).unwrap_or(1.0).max(0.001);
        let now = Instant::now();
        if t > now {
            burst = 0;
            if t - now > Duration::from_millis(2) {
                tokio::time::sleep_until((t - Duration::from_millis(1)).into()).await;
            }
            while Instant::now() < t {
                tokio::task::yield_now().await;
            }
        } else {
            // Behind schedule: release what is due, but let connections run now and then.
            burst += 1;
            if burst.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
        let lag = Instant::now().saturating_duration_since(t);
        if measured {
            shared.stats.borrow_mut().record_lag(lag);
            released_measured += 1;
        }
        if tx
            .send(Ticket {
                intended: t,
                measured,
            })
            .is_err()
        {
            break;
        }
        if max_requests.is_some_and(|m| released_measured >= m) {
            break;
        }
        t += Duration::from_secs_f64(1.0 / rate);
    }
}

/// The HTTP/1.1 client the open-loop engine sends with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpClient {
    /// hyper's client (`hyper::client::conn::http1`): a full HTTP/1.1 implementation.
    #[default]
    Hyper,
    /// A minimal writer and `httparse` reader: one vectored write and one read per exchange,
    /// no per-request task hand-off. For ceilings; answers must carry `Content-Length`.
    Raw,
}

impl HttpClient {
    pub fn name(self) -> &'static str {
        match self {
            HttpClient::Hyper => "hyper",
            HttpClient::Raw => "raw",
        }
    }
}

/// One persistent connection.
enum Link {
    /// hyper's connection driver runs as its own task, so a close by the receiver is seen
    /// (`is_closed`) before the next request is put on it.
    Hyper(SendRequest<Full<Bytes>>),
    Raw(RawConn),
}

impl Link {
    fn is_closed(&self) -> bool {
        match self {
            Link::Hyper(s) => s.is_closed(),
            Link::Raw(r) => r.closed,
        }
    }
}

struct RawConn {
    stream: RawStream,
    head: Vec<u8>,
    buf: Vec<u8>,
    closed: bool,
}

/// The raw client's socket: plain, or TLS for an `https://` target. A `match` per call, so the
/// plain arm costs what a bare `TcpStream` does (no boxing, no dynamic dispatch).
enum RawStream {
    Plain(TcpStream),
    /// Boxed: a TLS session is a few kilobytes, a plain socket a few bytes.
    Tls(Box<TlsStream<TcpStream>>),
}

impl RawStream {
    async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncWriteExt;
        match self {
            RawStream::Plain(s) => s.write(buf).await,
            RawStream::Tls(s) => s.write(buf).await,
        }
    }

    async fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        use tokio::io::AsyncWriteExt;
        match self {
            RawStream::Plain(s) => s.write_vectored(bufs).await,
            RawStream::Tls(s) => s.write_vectored(bufs).await,
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            RawStream::Plain(s) => s.write_all(buf).await,
            RawStream::Tls(s) => s.write_all(buf).await,
        }
    }

    /// Sends what TLS still holds (a plain socket holds nothing).
    async fn flush(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            RawStream::Plain(_) => Ok(()),
            RawStream::Tls(s) => s.flush().await,
        }
    }

    async fn read_buf(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt;
        match self {
            RawStream::Plain(s) => s.read_buf(buf).await,
            RawStream::Tls(s) => s.read_buf(buf).await,
        }
    }

    /// Reads what has already arrived, without waiting: `None` when nothing has.
    async fn try_read_buf(&mut self, buf: &mut Vec<u8>) -> Option<std::io::Result<usize>> {
        match self {
            RawStream::Plain(s) => match s.try_read_buf(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                r => Some(r),
            },
            RawStream::Tls(s) => {
                use std::future::Future;
                use tokio::io::AsyncReadExt;
                // One poll of a read: ready now, or not. A dropped pending read loses nothing
                // (what arrived stays in the TLS session).
                let mut read = std::pin::pin!(s.read_buf(buf));
                match std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx)))
                    .await
                {
                    std::task::Poll::Ready(r) => Some(r),
                    std::task::Poll::Pending => None,
                }
            }
        }
    }
}

async fn connect(shared: &Shared) -> Result<Link, String> {
    let stream = TcpStream::connect(shared.target.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", shared.target.addr))?;
    let _ = stream.set_nodelay(true);
    let raw = shared.client == HttpClient::Raw;
    let Some(tls) = &shared.target.tls else {
        return if raw {
            Ok(Link::Raw(RawConn::new(RawStream::Plain(stream))))
        } else {
            hyper_link(stream).await
        };
    };
    let stream = tls.connect(stream).await.map_err(|e| e.to_string())?;
    if raw {
        Ok(Link::Raw(RawConn::new(RawStream::Tls(Box::new(stream)))))
    } else {
        hyper_link(stream).await
    }
}

impl RawConn {
    fn new(stream: RawStream) -> RawConn {
        RawConn {
            stream,
            head: Vec::with_capacity(512),
            buf: Vec::with_capacity(4096),
            closed: false,
        }
    }
}

/// hyper's HTTP/1.1 client on `io`, its connection driver spawned on this thread.
async fn hyper_link<T>(io: T) -> Result<Link, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (sender, driver) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::task::spawn_local(async move {
        let _ = driver.await;
    });
    Ok(Link::Hyper(sender))
}

/// The request head the raw client writes for `delivery`, appended to `out`.
fn raw_head(target: &Target, delivery: &crate::generator::Delivery, out: &mut Vec<u8>) {
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.path_uri.path().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(target.host_header.as_bytes());
    for (name, value) in &delivery.headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\ncontent-length: ");
    crate::template::write_int(delivery.body.len() as i64, out);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Largest piece of a body written before looking for an early answer.
const CHUNK: usize = 64 * 1024;

/// One exchange with the raw client: the request in one write (`wire`, when the whole request
/// was built beforehand) or one vectored write of head and body, the answer parsed by `httparse`
/// and framed by its `Content-Length`. The answer's body is left in `c.buf`, at the returned range.
async fn raw_exchange(
    c: &mut RawConn,
    shared: &Shared,
    delivery: &crate::generator::Delivery,
    wire: Option<&[u8]>,
) -> Result<(u16, Range<usize>), String> {
    c.buf.clear();
    let head = &mut c.head;
    head.clear();
    // Small bodies go out with the head in one write. A large one goes in chunks, and between
    // chunks an early answer is looked for: a receiver refuses an oversize body by its length
    // (413) and closes, and writing on would only meet a reset.
    let body = &delivery.body[..];
    let (first_parts, first) = match wire {
        Some(w) if body.len() <= CHUNK => ([w, &[][..]], body.len()),
        _ => {
            raw_head(&shared.target, delivery, head);
            let first = body.len().min(CHUNK);
            ([&head[..], &body[..first]], first)
        }
    };
    let mut parts = first_parts.map(std::io::IoSlice::new);
    let mut slices: &mut [std::io::IoSlice<'_>] = &mut parts;
    let mut early = false;
    while !slices.is_empty() {
        let written = if slices.len() == 2 && slices[1].is_empty() {
            c.stream.write(&slices[0]).await
        } else {
            c.stream.write_vectored(slices).await
        };
        match written {
            Ok(0) => return Err("the receiver stopped reading".into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut slices, n),
            Err(e) => return raw_early_answer(c, e).await,
        }
    }
    let mut sent = first;
    while sent < body.len() {
        c.buf.reserve(4096);
        if let Some(Ok(n)) = c.stream.try_read_buf(&mut c.buf).await
            && n > 0
        {
            early = true;
            break;
        }
        let end = (sent + CHUNK).min(body.len());
        match c.stream.write_all(&body[sent..end]).await {
            Ok(()) => sent = end,
            Err(e) => return raw_early_answer(c, e).await,
        }
    }
    if early {
        // The answer came before the body was sent: the connection cannot be reused.
        c.closed = true;
    } else if let Err(e) = c.stream.flush().await {
        return raw_early_answer(c, e).await;
    }
    loop {
        if let Some(answer) = parse_answer(c)? {
            return Ok(answer);
        }
        c.buf.reserve(4096);
        let n = c
            .stream
            .read_buf(&mut c.buf)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            c.closed = true;
            return Err("the receiver closed the connection before answering".into());
        }
    }
}

/// After a failed write: the receiver may have answered (and closed) before reading it all.
async fn raw_early_answer(
    c: &mut RawConn,
    e: std::io::Error,
) -> Result<(u16, Range<usize>), String> {
    c.closed = true;
    let read = tokio::time::timeout(Duration::from_millis(200), async {
        loop {
            if let Ok(Some(answer)) = parse_answer(c) {
                return Some(answer);
            }
            c.buf.reserve(4096);
            match c.stream.read_buf(&mut c.buf).await {
                Ok(n) if n > 0 => {}
                _ => return parse_answer(c).ok().flatten(),
            }
        }
    })
    .await;
    read.ok()
        .flatten()
        .ok_or_else(|| format!("writing the request: {e}"))
}

/// A complete answer in `c.buf`, if there is one yet.
fn parse_answer(c: &mut RawConn) -> Result<Option<(u16, Range<usize>)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(&c.buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            c.closed = true;
            return Err(format!("malformed answer: {e}"));
        }
    };
    let status = resp.code.unwrap_or(0);
    let mut length = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("connection")
            && h.value.eq_ignore_ascii_case(b"close")
        {
            c.closed = true;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            c.closed = true;
            return Err(
                "a chunked answer: the raw client needs Content-Length (use --http hyper)".into(),
            );
        }
    }
    let Some(length) = length else {
        c.closed = true;
        return Err(
            "an answer without Content-Length: the raw client cannot frame it (use --http hyper)"
                .into(),
        );
    };
    if c.buf.len() < head_len + length {
        return Ok(None);
    }
    if c.buf.len() > head_len + length {
        c.closed = true;
        return Err("bytes after the answer to a request that was not pipelined".into());
    }
    Ok(Some((status, head_len..head_len + length)))
}

/// Where an answer's body is.
enum AnswerBody {
    Owned(Bytes),
    /// In the raw connection's read buffer.
    InConn(Range<usize>),
}

/// Sends one delivery on `conn` (connecting first if needed) and records the answer.
/// `intended_is_now`: `intended` was read from the clock just before the call (closed loop), so
/// it also serves as the send time unless a delivery had to be built (outside the pool: the
/// uncorrected latency must not include signing) or a connection opened first.
async fn exchange(
    shared: &Shared,
    conn: &mut Option<Link>,
    intended: Instant,
    measured: bool,
    intended_is_now: bool,
) {
    let owned;
    let (delivery, wire) = if shared.pool.is_empty() {
        owned = shared.generator.borrow_mut().next(shared.unix_now());
        (&owned, None)
    } else {
        let i = shared.pool_next.get();
        shared.pool_next.set((i + 1) % shared.pool.len());
        (&shared.pool[i], shared.pool_wire.get(i).map(Vec::as_slice))
    };
    let mut send_now_known = intended_is_now && wire.is_some();
    if conn.as_ref().is_none_or(Link::is_closed) {
        send_now_known = false;
        if conn.is_some() {
            shared.stats.borrow_mut().reconnects += 1;
        }
        *conn = None;
        match connect(shared).await {
            Ok(c) => *conn = Some(c),
            Err(e) => {
                shared.transport_failed(&delivery.label, &e);
                // Do not spin on a dead target.
                tokio::time::sleep(Duration::from_millis(10)).await;
                return;
            }
        }
    }
    let Some(link) = conn.as_mut() else {
        return;
    };
    let t0 = if send_now_known {
        intended
    } else {
        Instant::now()
    };
    let send = async {
        match link {
            Link::Raw(c) => raw_exchange(c, shared, delivery, wire)
                .await
                .map(|(status, at)| (status, AnswerBody::InConn(at))),
            Link::Hyper(sender) => {
                let mut req = Request::new(Full::new(delivery.body.clone()));
                *req.method_mut() = Method::POST;
                *req.uri_mut() = shared.target.path_uri.clone();
                let h = req.headers_mut();
                h.reserve(delivery.headers.len() + 1);
                h.insert(header::HOST, shared.target.host_header.clone());
                for (name, value) in &delivery.headers {
                    h.insert(name.clone(), value.clone());
                }
                sender.ready().await.map_err(|e| e.to_string())?;
                let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok::<_, String>((status, AnswerBody::Owned(body)))
            }
        }
    };
    let result = tokio::time::timeout(shared.timeout, send)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", shared.timeout)));
    let t1 = Instant::now();
    match result {
        Ok((status, answer)) => {
            let body: &[u8] = match (&answer, &*link) {
                (AnswerBody::Owned(b), _) => b,
                (AnswerBody::InConn(at), Link::Raw(c)) => &c.buf[at.clone()],
                (AnswerBody::InConn(_), Link::Hyper(_)) => &[],
            };
            let verdict = check_with(shared.judge, delivery.label.expect, status, body);
            let latency = measured.then(|| (t1 - intended, t1 - t0));
            shared
                .stats
                .borrow_mut()
                .answer(&delivery.label, status, body, verdict, latency);
            shared.live.answered.fetch_add(1, Relaxed);
            if verdict == Verdict::Mismatch {
                shared.live.mismatches.fetch_add(1, Relaxed);
            }
            if status == 200 {
                if let (Some(log), Some(id)) = (&shared.acked_log, delivery.event_id())
                    && let Ok(mut log) = log.lock()
                {
                    let _ = writeln!(log, "{id}");
                }
                if verdict == Verdict::Correct && delivery.label.expect == Expect::Accepted {
                    shared.generator.borrow().remember(delivery);
                }
            }
        }
        Err(e) => {
            shared.transport_failed(&delivery.label, &e);
            *conn = None;
        }
    }
}

/// One connection of a scheduled run: takes due tickets while it is free.
async fn connection(shared: Rc<Shared>, rx: flume::Receiver<Ticket>) {
    let mut conn = None;
    while let Ok(ticket) = rx.recv_async().await {
        if Instant::now() >= shared.end {
            shared.stats.borrow_mut().unsent += 1;
            continue;
        }
        exchange(&shared, &mut conn, ticket.intended, ticket.measured, false).await;
    }
}

/// One connection of a closed-loop maximum run: next request as soon as the last is answered.
async fn closed_loop(shared: Rc<Shared>, max_requests: Option<u64>) {
    let mut conn = None;
    loop {
        let now = Instant::now();
        if now >= shared.end || max_requests.is_some_and(|m| shared.stats.borrow().measured >= m) {
            break;
        }
        exchange(&shared, &mut conn, now, now >= shared.measure_start, true).await;
    }
}

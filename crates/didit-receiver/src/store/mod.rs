//! Where verified events go: in memory, a durable SQLite file, a NATS JetStream stream, a
//! RabbitMQ queue or a Kafka topic.
//!
//! [`Store`] is an enum rather than another type parameter of `App`: the store is reached once
//! per accepted delivery (a queue send), not in the verification hot path, and one more generic
//! would multiply the monomorphised receivers (servers × MACs × JSON backends) by three.

pub mod amqp;
pub mod kafka;
pub mod nats;
mod publisher;
pub mod sqlite;

pub use publisher::PublishingStore;

use std::path::PathBuf;
use std::str::FromStr;

use didit_webhook::{Envelope, Verified};

use crate::process::{DedupKey, MemoryProcessor, Processor, RecentSet, Submit};
use crate::ticket::{Completer, ticket};

/// When a durable store answers Didit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum AckMode {
    /// 200 only once the event is committed and synced (SQLite) or confirmed by the stream
    /// (NATS): nothing acknowledged is lost, even at a crash.
    #[default]
    AfterCommit,
    /// 200 once the event is in the bounded in-memory queue: faster, and whatever is queued and
    /// not yet committed is lost if the process dies.
    AfterEnqueue,
}

/// `--store`: `memory`, `sqlite[:PATH]`, `nats://HOST:PORT`, `amqp://[USER:PASS@]HOST:PORT/VHOST`
/// or `kafka://HOST:PORT/TOPIC`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Memory,
    Sqlite(PathBuf),
    Nats(String),
    Amqp(String),
    Kafka(kafka::Target),
}

// By hand: an AMQP URL may carry a password, and `Debug` output ends up in logs.
impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("Memory"),
            StoreSpec::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            StoreSpec::Nats(u) => f.debug_tuple("Nats").field(u).finish(),
            StoreSpec::Amqp(u) => f.debug_tuple("Amqp").field(&amqp::redact(u)).finish(),
            StoreSpec::Kafka(t) => f.debug_tuple("Kafka").field(t).finish(),
        }
    }
}

/// The SQLite file used when `--store sqlite` names none: in the working directory.
pub const DEFAULT_SQLITE_PATH: &str = "didit-webhooks.db";

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(StoreSpec::Memory),
            "sqlite" => Ok(StoreSpec::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))),
            _ if s.starts_with("sqlite:") => {
                let path = &s["sqlite:".len()..];
                if path.is_empty() {
                    return Err("`sqlite:` needs a path, e.g. sqlite:data/didit.db".into());
                }
                Ok(StoreSpec::Sqlite(PathBuf::from(path)))
            }
            _ if s.starts_with("nats://") => Ok(StoreSpec::Nats(s.to_owned())),
            _ if s.starts_with("amqp://") => Ok(StoreSpec::Amqp(s.to_owned())),
            _ if s.starts_with("kafka://") => kafka::Target::parse(s).map(StoreSpec::Kafka),
            _ if s.starts_with("amqps://") => Err(
                "amqps:// (TLS) is not built in; reach the broker over amqp:// on a private network or through a TLS sidecar".into(),
            ),
            _ => Err(format!(
                "unknown store `{}`; use memory, sqlite[:PATH], nats://HOST:PORT, amqp://HOST:PORT/VHOST or kafka://HOST:PORT/TOPIC",
                amqp::redact(s)
            )),
        }
    }
}

impl std::fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreSpec::Nats(url) => f.write_str(url),
            StoreSpec::Amqp(url) => f.write_str(&amqp::redact(url)),
            StoreSpec::Kafka(t) => t.fmt(f),
        }
    }
}

/// A verified event as stored or published: the raw body and the envelope fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `e:<event_id>`, or `s:<hex signature>` for a delivery without one: unique per event.
    pub dedup_key: String,
    pub event_id: Option<String>,
    pub webhook_type: Option<String>,
    pub session_id: Option<String>,
    pub status: Option<String>,
    /// The body's `timestamp` (orders a session's updates).
    pub event_timestamp: Option<i64>,
    /// When the receiver verified it, Unix seconds.
    pub received_at: i64,
    pub body: Vec<u8>,
}

impl Record {
    pub(crate) fn of(event: &Verified<Envelope<'_>>, key: &DedupKey, body: &[u8]) -> Self {
        Record::from_envelope(event, key.to_text(), event.verified_at(), body)
    }

    /// A record from an envelope parsed elsewhere (the stream consumer re-parses bodies the
    /// receiver verified before publishing).
    pub fn from_envelope(
        env: &Envelope<'_>,
        dedup_key: String,
        received_at: i64,
        body: &[u8],
    ) -> Self {
        Record {
            dedup_key,
            event_id: env.event_id.as_ref().map(|t| t.as_str().to_owned()),
            webhook_type: env.webhook_type().map(|w| w.as_str().to_owned()),
            session_id: env.session_id().map(str::to_owned),
            status: env.status().map(|s| s.as_str().to_owned()),
            event_timestamp: env.timestamp_secs(),
            received_at,
            body: body.to_vec(),
        }
    }
}

/// A verified event on its way to a durable store's writer or publisher.
#[derive(Debug)]
pub(crate) struct Job {
    pub key: DedupKey,
    pub record: Record,
    /// The waiting request's ticket (`after-commit`); `None` once it has been answered.
    pub done: Option<Completer>,
}

/// The bounded queue in front of a durable store's writer: `push` never blocks (a full queue is
/// a 503), `close` lets the writer drain and stop.
#[derive(Debug)]
pub(crate) struct JobQueue {
    tx: std::sync::RwLock<Option<flume::Sender<Job>>>,
    depth: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JobQueue {
    /// The queue, its receiving end, and the depth counter the consumer decrements.
    pub fn new(
        capacity: usize,
    ) -> (
        JobQueue,
        flume::Receiver<Job>,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let (tx, rx) = flume::bounded(capacity.max(1));
        let depth = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let q = JobQueue {
            tx: std::sync::RwLock::new(Some(tx)),
            depth: std::sync::Arc::clone(&depth),
        };
        (q, rx, depth)
    }

    pub fn push(&self, job: Job) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let tx = self.tx.read().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = tx.as_ref() else { return false };
        self.depth.fetch_add(1, Relaxed);
        if tx.try_send(job).is_ok() {
            true
        } else {
            self.depth.fetch_sub(1, Relaxed);
            false
        }
    }

    pub fn depth(&self) -> usize {
        self.depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn close(&self) {
        self.tx.write().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// The request side of both durable stores. `recent` holds keys already kept (after-commit) or
/// queued (after-enqueue), so a hit is answered `duplicate` at once; otherwise the event is
/// queued with `enqueue` and answered per `mode`.
pub(crate) fn submit_durable(
    recent: &RecentSet,
    mode: AckMode,
    event: &Verified<Envelope<'_>>,
    body: &[u8],
    now_unix: i64,
    enqueue: impl FnOnce(Job) -> bool,
) -> Submit {
    let key = DedupKey::of(event);
    if recent.contains(&key, now_unix) {
        return Submit::DUPLICATE;
    }
    let record = Record::of(event, &key, body);
    match mode {
        AckMode::AfterCommit => {
            let (t, done) = ticket();
            let job = Job {
                key,
                record,
                done: Some(done),
            };
            if enqueue(job) {
                Submit::Pending(t)
            } else {
                Submit::SATURATED
            }
        }
        AckMode::AfterEnqueue => {
            if !recent.insert(key.clone(), now_unix) {
                return Submit::DUPLICATE;
            }
            let job = Job {
                key: key.clone(),
                record,
                done: None,
            };
            if enqueue(job) {
                Submit::ACCEPTED
            } else {
                // Forget it, so that Didit's retry is not mistaken for a duplicate.
                recent.remove(&key);
                Submit::SATURATED
            }
        }
    }
}

/// The processing stage a receiver runs with.
#[derive(Debug)]
pub enum Store {
    Memory(MemoryProcessor),
    Sqlite(sqlite::SqliteStore),
    /// NATS JetStream, RabbitMQ or Kafka.
    Broker(PublishingStore),
}

impl Store {
    /// Opens the store `spec` names; every failure here is a start-up error with the reason.
    pub fn open(
        spec: &StoreSpec,
        ack: AckMode,
        capacity: usize,
        window_secs: i64,
    ) -> anyhow::Result<Store> {
        Ok(match spec {
            StoreSpec::Memory => Store::Memory(MemoryProcessor::new(capacity, window_secs)),
            StoreSpec::Sqlite(path) => {
                Store::Sqlite(sqlite::SqliteStore::open(path, ack, capacity, window_secs)?)
            }
            StoreSpec::Nats(url) => Store::Broker(nats::connect(url, ack, capacity, window_secs)?),
            StoreSpec::Amqp(url) => Store::Broker(amqp::connect(url, ack, capacity, window_secs)?),
            StoreSpec::Kafka(t) => Store::Broker(kafka::connect(t, ack, capacity, window_secs)?),
        })
    }
}

impl Processor for Store {
    fn submit(&self, event: &Verified<Envelope<'_>>, body: &[u8], now_unix: i64) -> Submit {
        match self {
            Store::Memory(p) => p.submit(event, body, now_unix),
            Store::Sqlite(p) => p.submit(event, body, now_unix),
            Store::Broker(p) => p.submit(event, body, now_unix),
        }
    }

    fn queue_depth(&self) -> usize {
        match self {
            Store::Memory(p) => p.queue_depth(),
            Store::Sqlite(p) => p.queue_depth(),
            Store::Broker(p) => p.queue_depth(),
        }
    }

    fn drain(&self) {
        match self {
            Store::Memory(p) => p.drain(),
            Store::Sqlite(p) => p.drain(),
            Store::Broker(p) => p.drain(),
        }
    }
}

/// Options of `didit-receiver consume`.
#[derive(Clone, Debug, clap::Args)]
pub struct ConsumeOptions {
    /// Where the events wait: a NATS server holding the stream (nats://HOST:PORT), a RabbitMQ
    /// broker holding the queue (amqp://[USER:PASS@]HOST:PORT/VHOST) or a Kafka cluster holding
    /// the topic (kafka://HOST:PORT/TOPIC, read as the consumer group didit-sqlite).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub from: String,

    /// The SQLite store to apply events to (created on first use).
    #[arg(long, default_value = DEFAULT_SQLITE_PATH)]
    pub sqlite: std::path::PathBuf,

    /// Largest batch applied in one transaction.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,

    /// Exit once no message arrived for this long (e.g. 2s); without it, run until SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub exit_when_idle: Option<std::time::Duration>,
}

/// What `consume` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumeSummary {
    pub messages: u64,
    pub stored: u64,
    pub duplicates: u64,
}

impl ConsumeSummary {
    /// Counts a committed batch of `messages`; `fresh` says, per record, whether it was new.
    pub(crate) fn add_batch(&mut self, messages: usize, fresh: &[bool]) {
        let stored = fresh.iter().filter(|n| **n).count();
        self.messages += messages as u64;
        self.stored += stored as u64;
        self.duplicates += (fresh.len() - stored) as u64;
    }
}

/// Runs a consumer's loop over the SQLite store `--sqlite` on a current-thread runtime, with
/// `stop` raised by SIGTERM or SIGINT, and brings the session table up to date at the end.
pub(crate) fn run_consumer<F, Fut>(opts: &ConsumeOptions, body: F) -> anyhow::Result<ConsumeSummary>
where
    F: FnOnce(sqlite::Db, std::sync::Arc<std::sync::atomic::AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(sqlite::Db, ConsumeSummary)>>,
{
    use anyhow::Context as _;
    let db = sqlite::Db::open(&opts.sqlite)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the consumer runtime")?;
    let (mut db, summary) = rt.block_on(body(db, stop))?;
    db.flush_sessions()
        .context("writing the session table at exit")?;
    Ok(summary)
}

/// Runs `consume` for the CLI from the source `--from` names, printing what it did.
pub fn run_consume(opts: &ConsumeOptions) -> anyhow::Result<()> {
    let s = if opts.from.starts_with("amqp://") {
        amqp::consume(opts)?
    } else if opts.from.starts_with("nats://") {
        nats::consume(opts)?
    } else if opts.from.starts_with("kafka://") {
        kafka::consume(opts)?
    } else {
        anyhow::bail!(
            "--from {}: use nats://HOST:PORT, amqp://HOST:PORT/VHOST or kafka://HOST:PORT/TOPIC",
            amqp::redact(&opts.from)
        );
    };
    println!(
        "consumed {} messages: {} stored, {} already stored",
        s.messages, s.stored, s.duplicates
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs() {
        assert_eq!("memory".parse(), Ok(StoreSpec::Memory));
        assert_eq!(
            "sqlite".parse(),
            Ok(StoreSpec::Sqlite(DEFAULT_SQLITE_PATH.into()))
        );
        assert_eq!(
            "sqlite:data/x.db".parse(),
            Ok(StoreSpec::Sqlite("data/x.db".into()))
        );
        assert_eq!(
            "nats://127.0.0.1:4222".parse(),
            Ok(StoreSpec::Nats("nats://127.0.0.1:4222".into()))
        );
        assert!("sqlite:".parse::<StoreSpec>().is_err());
        assert!("postgres://x".parse::<StoreSpec>().is_err());
        assert_eq!(
            "amqp://u:pw@127.0.0.1:5672/%2f".parse(),
            Ok(StoreSpec::Amqp("amqp://u:pw@127.0.0.1:5672/%2f".into()))
        );
        // The password never shows in what is printed or logged.
        let spec: StoreSpec = "amqp://u:pw@h:5672/%2f".parse().expect("amqp");
        assert!(!spec.to_string().contains("pw") && !format!("{spec:?}").contains("pw"));
        let err = "amqps://u:pw@h/v".parse::<StoreSpec>().expect_err("no TLS");
        assert!(err.contains("amqp://"));
        let spec: StoreSpec = "kafka://127.0.0.1:9092/didit.webhooks"
            .parse()
            .expect("kafka");
        assert_eq!(spec.to_string(), "kafka://127.0.0.1:9092/didit.webhooks");
        let err = "kafka://127.0.0.1:9092"
            .parse::<StoreSpec>()
            .expect_err("no topic");
        assert!(err.contains("names no topic"), "{err}");
        assert_eq!(
            StoreSpec::Sqlite("a.db".into()).to_string(),
            "sqlite:a.db".to_owned()
        );
    }
}

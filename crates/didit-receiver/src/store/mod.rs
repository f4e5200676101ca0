//! Where verified events go: in memory, a durable SQLite file, a NATS JetStream stream, a
//! RabbitMQ queue or a Kafka topic.
//!
//! [`Store`] is an enum rather than another type parameter of `App`: the store is reached once
//! per accepted delivery (a queue send), not in the verification hot path, and one more generic
//! would multiply the monomorphised receivers (servers × MACs × JSON backends) by three.

mod amqp;
mod consume;
pub mod db;
mod durable;
mod kafka;
mod memory;
mod nats;
mod publisher;
mod sqlite;

pub(crate) use consume::ConsumeOptions;
pub(crate) use db::DEFAULT_SQLITE_PATH;
pub(crate) use durable::AckMode;
use memory::MemoryProcessor;
pub use nats::STREAM as NATS_STREAM;
use publisher::PublishingStore;

use std::path::PathBuf;
use std::str::FromStr;

use didit_webhook::{Envelope, Verified};

use crate::process::{Processor, Submit};

/// `--store`: `memory`, `sqlite[:PATH]`, `nats://HOST:PORT`, `amqp://[USER:PASS@]HOST:PORT/VHOST`
/// or `kafka://HOST:PORT/TOPIC`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    Memory,
    /// Takes every verified event and keeps nothing, not even for de-duplication: for measuring
    /// what processing costs (`webhook-bench cost`), never for receiving.
    Null,
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
            StoreSpec::Null => f.write_str("Null"),
            StoreSpec::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            StoreSpec::Nats(u) => f.debug_tuple("Nats").field(u).finish(),
            StoreSpec::Amqp(u) => f.debug_tuple("Amqp").field(&amqp::redact(u)).finish(),
            StoreSpec::Kafka(t) => f.debug_tuple("Kafka").field(t).finish(),
        }
    }
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(StoreSpec::Memory),
            "null" => Ok(StoreSpec::Null),
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
            StoreSpec::Null => f.write_str("null"),
            StoreSpec::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreSpec::Nats(url) => f.write_str(url),
            StoreSpec::Amqp(url) => f.write_str(&amqp::redact(url)),
            StoreSpec::Kafka(t) => t.fmt(f),
        }
    }
}

/// The processing stage a receiver runs with.
#[derive(Debug)]
pub(crate) enum Store {
    Memory(MemoryProcessor),
    Null,
    Sqlite(sqlite::SqliteStore),
    /// NATS JetStream, RabbitMQ or Kafka.
    Broker(PublishingStore),
}

impl Store {
    /// Opens the store `spec` names; every failure here is a start-up error with the reason.
    pub(crate) fn open(
        spec: &StoreSpec,
        ack: AckMode,
        capacity: usize,
        window_secs: i64,
    ) -> anyhow::Result<Store> {
        Ok(match spec {
            StoreSpec::Memory => Store::Memory(MemoryProcessor::new(capacity, window_secs)),
            StoreSpec::Null => {
                tracing::warn!("--store null keeps nothing: this receiver is for measurement only");
                Store::Null
            }
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
            Store::Null => Submit::ACCEPTED,
            Store::Sqlite(p) => p.submit(event, body, now_unix),
            Store::Broker(p) => p.submit(event, body, now_unix),
        }
    }

    fn queue_depth(&self) -> usize {
        match self {
            Store::Memory(p) => p.queue_depth(),
            Store::Null => 0,
            Store::Sqlite(p) => p.queue_depth(),
            Store::Broker(p) => p.queue_depth(),
        }
    }

    fn drain(&self) {
        match self {
            Store::Memory(p) => p.drain(),
            Store::Null => {}
            Store::Sqlite(p) => p.drain(),
            Store::Broker(p) => p.drain(),
        }
    }
}

/// Runs `consume` for the CLI from the source `--from` names, printing what it did.
pub(crate) fn consume(opts: &ConsumeOptions) -> anyhow::Result<()> {
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
        assert_eq!("null".parse(), Ok(StoreSpec::Null));
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

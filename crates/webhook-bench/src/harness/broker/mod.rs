//! Throwaway brokers on loopback, for the benchmark runner and the tests: a JetStream
//! `nats-server` (alone, or a cluster of routed nodes), a RabbitMQ node and a Kafka-protocol
//! broker (`tansu`), each on its own free ports with its own data folder, so they never meet the
//! system's broker or another run's. `nats-server` and RabbitMQ come from Debian's packages,
//! `tansu` from crates.io (`scripts/bench.sh` and `scripts/test.sh` install them). Each runs as
//! a [`Process`] of the harness: pinned, probed until it serves, killed as a crash when dropped.
//!
//! Every broker has one shape, [`Broker`]: [`start`] picks the one a store publishes to, and the
//! durability suite crashes each the same way. A new store with a broker is a file here, an arm
//! in `which`, and a row in the suite's data.

mod kafka;
mod nats;
mod rabbitmq;

pub use kafka::{Engine, Kafka, TANSU_VERSION, tansu_bin, tansu_memory_bin};
pub use nats::{Nats, NatsCluster};
pub use rabbitmq::RabbitMq;

use std::path::Path;
use std::time::Duration;

use super::Process;
use crate::matrix::StoreKind;

/// A running broker that a durable store publishes to, killed (as a crash) when dropped.
pub trait Broker: std::fmt::Debug + Send {
    /// The receiver's `--store` URL, which `didit-receiver consume --from` also takes.
    fn url(&self) -> String;

    /// Whether it drops a message whose id it has already stored (JetStream's `Nats-Msg-Id`), so
    /// that a retry reaching a restarted receiver is answered `duplicate`. RabbitMQ and Kafka keep
    /// both copies; the consumer stores the event once.
    fn deduplicates(&self) -> bool;

    /// Starts it on its ports and data: the first time, and again after a crash.
    fn boot(&mut self) -> Result<(), String>;

    /// Its process while it runs (RabbitMQ's is a process group).
    fn running(&self) -> Option<&Process>;

    /// Takes its process out, leaving it down.
    fn take_running(&mut self) -> Option<Process>;

    /// Its processes, for CPU accounting; empty while it is down.
    fn pids(&self) -> Vec<u32> {
        self.running().map(Process::pids).unwrap_or_default()
    }

    /// SIGKILL, as a crash; nothing when it is down.
    fn kill9(&mut self) {
        if let Some(mut p) = self.take_running() {
            p.kill();
        }
    }

    /// Starts it again on the same ports and data, after a crash (or kills it first).
    fn restart(&mut self) -> Result<(), String> {
        self.kill9();
        self.boot()
    }

    /// A crash, `down_for` without a broker, then the same broker on the same ports and data.
    fn crash_and_restart(&mut self, down_for: Duration) -> Result<(), String> {
        self.kill9();
        std::thread::sleep(down_for);
        self.boot()
    }
}

/// The broker a store publishes to: the one match from stores to brokers, which [`start`] and
/// [`durable_stores_with_a_broker`] both read.
#[derive(Clone, Copy)]
enum Which {
    Nats,
    Rabbitmq,
    Kafka(kafka::Engine),
}

fn which(store: StoreKind) -> Option<Which> {
    match store {
        StoreKind::Nats => Some(Which::Nats),
        StoreKind::Rabbitmq => Some(Which::Rabbitmq),
        StoreKind::Kafka => Some(Which::Kafka(kafka::Engine::Sqlite)),
        StoreKind::KafkaMemory => Some(Which::Kafka(kafka::Engine::Memory)),
        StoreKind::Memory | StoreKind::Sqlite | StoreKind::SqliteEnqueue | StoreKind::Null => None,
    }
}

/// Starts, with its data in `dir` and pinned to `cpus` when given, the broker a receiver with
/// `store` publishes to; `None` for a store without one (memory, SQLite).
pub fn start(
    store: StoreKind,
    dir: &Path,
    cpus: Option<String>,
) -> Option<Result<Box<dyn Broker>, String>> {
    fn boxed<B: Broker + 'static>(b: Result<B, String>) -> Result<Box<dyn Broker>, String> {
        b.map(|b| Box::new(b) as Box<dyn Broker>)
    }
    Some(match which(store)? {
        Which::Nats => boxed(Nats::start(dir, cpus)),
        Which::Rabbitmq => boxed(RabbitMq::start(dir, cpus)),
        Which::Kafka(engine) => boxed(Kafka::start_with(engine, dir, cpus)),
    })
}

/// The stores that publish to a durable broker, which the crash tests cover: every store with a
/// broker but tansu's in-memory engine, which loses everything at a crash by design.
pub fn durable_stores_with_a_broker() -> Vec<StoreKind> {
    StoreKind::ALL
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| match which(*k) {
            Some(Which::Kafka(kafka::Engine::Memory)) | None => false,
            Some(Which::Nats | Which::Rabbitmq | Which::Kafka(kafka::Engine::Sqlite)) => true,
        })
        .collect()
}

/// A loopback connection for a readiness probe, whose answer may take at most 2 s.
fn probe_connection(port: u16) -> Option<std::net::TcpStream> {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    Some(s)
}

//! The frame of `didit-receiver consume`: its options, what it reports, and the loop every
//! broker's consumer runs in (a current-thread runtime over the SQLite store, stopped by SIGTERM
//! or SIGINT, the session table brought up to date at the end). Which broker is read is chosen
//! by [`store::consume`](super::consume), as [`Store::open`](super::Store::open) chooses a store.

use super::db::DEFAULT_SQLITE_PATH;
use super::db::Db;

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
pub(super) struct ConsumeSummary {
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
    F: FnOnce(Db, std::sync::Arc<std::sync::atomic::AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Db, ConsumeSummary)>>,
{
    use anyhow::Context as _;
    let db = Db::open(&opts.sqlite)?;
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

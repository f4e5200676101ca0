//! Scale-out over Kafka: verified events go to a Kafka topic; a consumer group applies them to
//! SQLite.
//!
//! The receiver produces each verified event's raw body to the topic its URL names
//! (`kafka://HOST:PORT/TOPIC`) with an idempotent producer (`acks=all`), the message key being the
//! body's `session_id` (one session's updates stay in one partition, in order) and the `event_id`
//! in a header. With `--ack after-commit` it answers Didit only after librdkafka's delivery report
//! for that message: the partition leader has it, and so has every in-sync replica. A failed or
//! late delivery report (no broker, a slow one, a full local queue) is a 503 with `Retry-After`,
//! never a 200. Every producer setting, and why, is in [`producer_config`].
//!
//! Kafka's idempotence covers librdkafka's own retries, not Didit's: a Didit retry that reaches
//! another receiver (or this one after its replay window) is a second message. [`consume`] is the
//! other half: a consumer group that applies batches to the SQLite store, de-duplicated by
//! `event_id` against its UNIQUE key, and commits the group's offsets only after the SQLite
//! commit, so a consumer that crashes resumes from the last committed offset: what it applied
//! after that comes again and is recognised, nothing is skipped.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use didit_webhook::{JsonBackend, SerdeJson};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::consume::{ConsumeOptions, ConsumeSummary, run_consumer};
use super::db::Db;
use super::durable::{AckMode, Record};
use super::publisher::{Publish, PublishingStore, client_runtime};

/// The port a `kafka://` URL means when it names none.
pub(crate) const DEFAULT_PORT: u16 = 9092;
/// The consumer group `consume` joins: its committed offsets survive consumer restarts.
pub(crate) const GROUP: &str = "didit-sqlite";
/// The message header holding the event's `event_id` (absent when the body has none).
pub(crate) const HEADER_EVENT_ID: &str = "event_id";
/// The de-duplication key (`s:<signature>`) of an event without an `event_id`.
pub(crate) const HEADER_DEDUP_KEY: &str = "didit-dedup-key";
/// When the receiver verified the event (Unix seconds, decimal); the consumer stores it.
pub(crate) const HEADER_RECEIVED_AT: &str = "didit-received-at";

/// Longest wait for a delivery report before answering 503.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The wait instead while librdkafka reports every broker down: a 503 comes at once, yet a
/// message still goes out, so the first delivery after the broker's return ends the outage.
const DOWN_WAIT: Duration = Duration::from_millis(200);
/// How long start-up may take to reach the cluster and see the topic.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a consumer with `--exit-when-idle` waits for the group to assign it partitions.
const JOIN_LIMIT: Duration = Duration::from_secs(30);
/// The largest message the producer sends: above the receiver's default `--max-body` (1 MiB)
/// plus headers. The broker's (or topic's) `max.message.bytes` must allow as much.
const MESSAGE_MAX_BYTES: usize = 2 << 20;

/// A parsed `kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// librdkafka's `bootstrap.servers`: every host with its port.
    pub bootstrap: String,
    pub topic: String,
}

impl Target {
    /// Parses a `kafka://` URL; the error says what is wrong and what is expected.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        const FORM: &str = "kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC";
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| format!("`{url}` is not a Kafka URL; use {FORM}"))?;
        let (hosts, topic) = rest
            .split_once('/')
            .ok_or_else(|| format!("`{url}` names no topic; use {FORM}"))?;
        if hosts.contains('@') || topic.contains(['?', '#']) {
            return Err(format!(
                "`{url}`: no credentials or options are built in (no TLS or SASL); use {FORM}"
            ));
        }
        if topic.is_empty() {
            return Err(format!("`{url}` names no topic; use {FORM}"));
        }
        let valid = topic.len() <= 249
            && topic != "."
            && topic != ".."
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(format!(
                "`{topic}` is not a Kafka topic name (1 to 249 of a-z, A-Z, 0-9, `.`, `_`, `-`; not `.` or `..`)"
            ));
        }
        let mut servers = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err(format!("`{url}` names no host; use {FORM}"));
            }
            // A port is what follows the last `:` outside an IPv6 literal's brackets.
            let port_at = host.rfind(':').filter(|&i| !host[i..].contains(']'));
            match port_at {
                Some(i) => {
                    let port: u16 = host[i + 1..]
                        .parse()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| format!("`{host}` in `{url}` has no valid port"))?;
                    if i == 0 {
                        return Err(format!("`{host}` in `{url}` has no host name"));
                    }
                    servers.push(format!("{}:{port}", &host[..i]));
                }
                None => servers.push(format!("{host}:{DEFAULT_PORT}")),
            }
        }
        Ok(Target {
            bootstrap: servers.join(","),
            topic: topic.to_owned(),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kafka://{}/{}", self.bootstrap, self.topic)
    }
}

/// What librdkafka's callbacks report, shared with the publisher.
#[derive(Debug, Default)]
struct Health {
    /// librdkafka reported every broker down; cleared by the next delivery.
    down: AtomicBool,
    /// The producer hit a fatal error (e.g. its idempotence state cannot be recovered) and can
    /// never deliver again: it must be replaced.
    fatal: AtomicBool,
}

/// The client context: librdkafka's log and errors go to `tracing`, and the errors that matter
/// to the answers are noted in [`Health`].
#[derive(Debug, Clone)]
struct Context {
    health: Arc<Health>,
    /// Consumer side: raised once the group assigned this member its partitions.
    assigned: Arc<AtomicBool>,
}

impl Context {
    fn new() -> Self {
        Context {
            health: Arc::new(Health::default()),
            assigned: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                if !self.health.down.swap(true, Relaxed) {
                    tracing::warn!(%reason, "every Kafka broker is down: answering 503");
                }
            }
            Some(RDKafkaErrorCode::Fatal) => {
                self.health.fatal.store(true, Relaxed);
                tracing::error!(%error, %reason, "fatal Kafka client error");
            }
            _ => tracing::warn!(%error, %reason, "Kafka client error"),
        }
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = tpl.count(), "Kafka group assigned partitions");
                self.assigned.store(true, Relaxed);
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "Kafka group revoked partitions");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "Kafka rebalance error"),
        }
    }
}

/// What both the producer and the consumer set: where the cluster is, and how fast to find it
/// again.
fn base_config(t: &Target, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &t.bootstrap)
        .set("client.id", client_id)
        // Reconnect within a second of a broker's return (librdkafka backs off exponentially up to
        // 10 s by default, which would keep answering 503 long after an outage).
        .set("reconnect.backoff.max.ms", "1000")
        // Small requests are the norm (one webhook, one commit): send them at once rather than
        // wait for Nagle's algorithm to coalesce them.
        .set("socket.nagle.disable", "true")
        .set_log_level(RDKafkaLogLevel::Warning);
    c
}

/// The producer's settings, each for a reason:
///
/// - `enable.idempotence=true`: the broker keeps the producer id and per-partition sequence
///   numbers, so a batch librdkafka retries after a lost acknowledgement is written once, and
///   order within a partition holds across retries.
/// - `acks=all`: the leader acknowledges only once every in-sync replica has the message, so a
///   delivery report (and the 200 behind it) survives the loss of the leader. Idempotence implies
///   it; it is set explicitly so that no other setting can weaken it.
/// - `message.timeout.ms=5000`: librdkafka gives a message up (and reports it failed) 5 s after
///   it was produced. The request waits at most [`DELIVERY_TIMEOUT`]; beyond that a retry only
///   adds a copy that Didit's own retry brings anyway, and an outage must not pile up minutes of
///   messages in memory.
/// - `queue.buffering.max.messages` = the receiver's `--queue-capacity`, and
///   `queue.buffering.max.kbytes=131072` (128 MiB): the local queue is bounded; a full one
///   refuses at once (503) instead of growing while the broker is slow.
/// - `linger.ms=5` (librdkafka's default, set so that it is a decision): wait at most 5 ms to fill
///   a batch. Each request waits for its own delivery, so lingering is latency, but less is
///   dearer: measured here on `typical-mix-max` with the broker on the receiver's core, 1 ms made
///   librdkafka's threads wake so often that the receiver used twice the CPU (7.3 s against
///   3.3 s in 13 s) for less throughput (3,006 against 3,567 req/s); 10 ms and more cost
///   throughput (2,331 req/s), the median answer being 8 ms at 5 ms.
/// - `compression.type=none`: bodies are small JSON and the receiver's core is the budget (the
///   broker often shares it); librdkafka is built without zlib and zstd here.
/// - `partitioner=murmur2_random`: the Java client's partitioner, so that a session's key lands in
///   the same partition whichever client produced it; keyless messages go to a random one.
/// - `message.max.bytes` = [`MESSAGE_MAX_BYTES`]: the receiver's largest body fits.
fn producer_config(t: &Target, capacity: usize) -> ClientConfig {
    let mut c = base_config(t, "didit-receiver");
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "5000")
        .set(
            "queue.buffering.max.messages",
            capacity.clamp(1, 10_000_000).to_string(),
        )
        .set("queue.buffering.max.kbytes", "131072")
        .set("linger.ms", "5")
        .set("compression.type", "none")
        .set("partitioner", "murmur2_random")
        .set("message.max.bytes", MESSAGE_MAX_BYTES.to_string());
    c
}

/// The consumer's settings:
///
/// - `group.id` = [`GROUP`]: one group shares the partitions among its consumers and holds the
///   committed offsets.
/// - `enable.auto.commit=false`, `enable.auto.offset.store=false`: offsets are committed by the
///   loop, only after the SQLite commit of the batch they end.
/// - `auto.offset.reset=earliest`: a group with no committed offset starts at the oldest message.
/// - `session.timeout.ms=6000` (the brokers' usual minimum): a consumer killed without leaving
///   the group holds its partitions for this long before a successor gets them.
/// - `allow.auto.create.topics=false`: the topic is created explicitly, with a known shape.
fn consumer_config(t: &Target) -> ClientConfig {
    let mut c = base_config(t, "didit-consume");
    c.set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("allow.auto.create.topics", "false");
    c
}

/// Reaches the cluster and creates the topic when it is missing (with the brokers' default
/// partition count and replication factor: an operator who wants others creates it first).
async fn ensure_topic(t: &Target) -> anyhow::Result<()> {
    let admin: AdminClient<Context> = base_config(t, "didit-admin")
        .create_with_context(Context::new())
        .context("configuring the Kafka admin client")?;
    let has_topic = |admin: &AdminClient<Context>| -> anyhow::Result<bool> {
        let md = admin
            .inner()
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach Kafka at {} within {METADATA_TIMEOUT:?} ({e}); is the broker running?",
                    t.bootstrap
                )
            })?;
        Ok(md
            .topics()
            .iter()
            .any(|m| m.name() == t.topic && m.error().is_none() && !m.partitions().is_empty()))
    };
    if has_topic(&admin)? {
        return Ok(());
    }
    let new = NewTopic::new(&t.topic, -1, TopicReplication::Fixed(-1));
    let opts = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .with_context(|| format!("creating the topic {} at {}", t.topic, t.bootstrap))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                anyhow::bail!("the broker refused to create the topic {name}: {code}")
            }
        }
    }
    tracing::info!(topic = %t.topic, "Kafka topic created");
    // Creation is asynchronous on the brokers: wait until the topic has its partitions.
    let deadline = Instant::now() + METADATA_TIMEOUT;
    while !has_topic(&admin)? {
        if Instant::now() > deadline {
            anyhow::bail!(
                "the topic {} was created but has no partitions after {METADATA_TIMEOUT:?}",
                t.topic
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Connects to the cluster `target` names (creating the topic when it is missing) and starts the
/// publisher; an unreachable cluster or a refused topic is a start-up error.
pub(crate) fn connect(
    target: &Target,
    mode: AckMode,
    capacity: usize,
    window_secs: i64,
) -> anyhow::Result<PublishingStore> {
    let runtime = client_runtime("didit-kafka")?;
    runtime.block_on(ensure_topic(target))?;
    let producer = TopicProducer::new(target, capacity)?;
    tracing::info!(%target, ack = ?mode, "Kafka store connected");
    Ok(PublishingStore::start(
        runtime,
        producer,
        mode,
        capacity,
        window_secs,
        DELIVERY_TIMEOUT + Duration::from_secs(1),
    ))
}

/// The idempotent producer, replaced when it reports a fatal error.
struct TopicProducer {
    target: Target,
    capacity: usize,
    /// The current producer, numbered so that a fatal error seen late on an old one does not
    /// replace its successor.
    current: Mutex<(u64, FutureProducer<Context>, Arc<Health>)>,
    generation: AtomicU64,
}

impl TopicProducer {
    fn new(target: &Target, capacity: usize) -> anyhow::Result<TopicProducer> {
        let (p, h) = TopicProducer::create(target, capacity)?;
        Ok(TopicProducer {
            target: target.clone(),
            capacity,
            current: Mutex::new((0, p, h)),
            generation: AtomicU64::new(1),
        })
    }

    fn create(
        target: &Target,
        capacity: usize,
    ) -> anyhow::Result<(FutureProducer<Context>, Arc<Health>)> {
        let ctx = Context::new();
        let health = Arc::clone(&ctx.health);
        let p = producer_config(target, capacity)
            .create_with_context(ctx)
            .context("configuring the Kafka producer")?;
        Ok((p, health))
    }

    fn current(&self) -> (u64, FutureProducer<Context>, Arc<Health>) {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (cur.0, cur.1.clone(), Arc::clone(&cur.2))
    }

    /// Replaces the producer of generation `failed` with a new one (its id and sequence numbers
    /// start afresh); the old one is dropped off the runtime, since dropping it waits for it.
    fn replace(&self, failed: u64) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.0 != failed {
            return;
        }
        match TopicProducer::create(&self.target, self.capacity) {
            Ok((p, h)) => {
                let generation = self.generation.fetch_add(1, Relaxed);
                let old = std::mem::replace(&mut *cur, (generation, p, h));
                tracing::warn!("Kafka producer replaced after a fatal error");
                std::thread::spawn(move || drop(old));
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot replace the Kafka producer")
            }
        }
    }
}

impl Publish for TopicProducer {
    /// Kafka reports no duplicates to the producer: a delivered message is always new to it.
    async fn publish(&self, r: &Record) -> anyhow::Result<bool> {
        let (generation, producer, health) = self.current();
        if health.fatal.load(Relaxed) {
            self.replace(generation);
            anyhow::bail!("the Kafka producer failed fatally; replaced");
        }
        let received_at = r.received_at.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(2).insert(Header {
            key: HEADER_RECEIVED_AT,
            value: Some(received_at.as_bytes()),
        });
        headers = match &r.event_id {
            Some(id) => headers.insert(Header {
                key: HEADER_EVENT_ID,
                value: Some(id.as_bytes()),
            }),
            None => headers.insert(Header {
                key: HEADER_DEDUP_KEY,
                value: Some(r.dedup_key.as_bytes()),
            }),
        };
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.target.topic)
            .payload(r.body.as_slice())
            .headers(headers);
        if let Some(session) = &r.session_id {
            record = record.key(session.as_str());
        }
        let mut delivery = producer
            .send_result(record)
            .map_err(|(e, _)| anyhow::anyhow!("librdkafka refused the message: {e}"))?;
        let down = health.down.load(Relaxed);
        let wait = if down { DOWN_WAIT } else { DELIVERY_TIMEOUT };
        match tokio::time::timeout(wait, &mut delivery).await {
            Ok(Ok(Ok(_))) => {
                if health.down.swap(false, Relaxed) {
                    tracing::info!("Kafka delivers again");
                }
                Ok(false)
            }
            Ok(Ok(Err((e, _)))) => Err(e).context("delivering to Kafka"),
            Ok(Err(_)) => anyhow::bail!("the Kafka producer was dropped"),
            Err(_) => {
                if down {
                    // The request is answered 503, but the message is still on its way: its
                    // delivery, however late, ends the outage (else a broker slower than
                    // DOWN_WAIT would be refused for good).
                    tokio::spawn(async move {
                        if let Ok(Ok(_)) = delivery.await
                            && health.down.swap(false, Relaxed)
                        {
                            tracing::info!("Kafka delivers again");
                        }
                    });
                }
                anyhow::bail!("no delivery report from Kafka within {wait:?}")
            }
        }
    }
}

impl Drop for TopicProducer {
    /// Dropping a librdkafka producer purges what it has not delivered: give queued messages
    /// (already answered 200 with `--ack after-enqueue`) a bounded chance first.
    fn drop(&mut self) {
        let (_, producer, _) = self.current();
        if let Err(e) = producer.flush(DELIVERY_TIMEOUT) {
            tracing::warn!(error = %e, "Kafka messages left undelivered at exit");
        }
    }
}

/// Applies the topic to the SQLite store until idle (or forever): receiver → Kafka → consumer
/// group → store. The group's offsets are committed only after the batch they end is committed
/// to SQLite; a message whose `event_id` is already stored adds no second row.
pub(crate) fn consume(opts: &ConsumeOptions) -> anyhow::Result<ConsumeSummary> {
    let target = Target::parse(&opts.from).map_err(anyhow::Error::msg)?;
    run_consumer(opts, |db, stop| consume_async(opts, target, db, stop))
}

async fn consume_async(
    opts: &ConsumeOptions,
    target: Target,
    mut db: Db,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Db, ConsumeSummary)> {
    // A consumer started before any receiver finds the topic too.
    ensure_topic(&target).await?;
    let ctx = Context::new();
    let assigned = Arc::clone(&ctx.assigned);
    let consumer: StreamConsumer<Context> = consumer_config(&target)
        .create_with_context(ctx)
        .context("configuring the Kafka consumer")?;
    consumer
        .subscribe(&[&target.topic])
        .with_context(|| format!("subscribing to {}", target.topic))?;
    let batch = opts.batch.max(1);
    let mut summary = ConsumeSummary::default();
    let started = Instant::now();
    let mut idle_since = Instant::now();
    let mut was_assigned = false;
    let mut scratch = Vec::new();
    while !stop.load(Relaxed) {
        if !was_assigned && assigned.load(Relaxed) {
            // The idle clock starts once there is something to read from.
            was_assigned = true;
            idle_since = Instant::now();
        }
        let mut msgs: Vec<OwnedMessage> = Vec::new();
        match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(Ok(m)) => msgs.push(m.detach()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Kafka consumer error");
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
                    anyhow::bail!("the Kafka consumer failed fatally: {e}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(_) => {
                if let Some(idle) = opts.exit_when_idle {
                    if was_assigned && idle_since.elapsed() >= idle {
                        break;
                    }
                    if !was_assigned && started.elapsed() >= JOIN_LIMIT.max(idle) {
                        anyhow::bail!(
                            "the consumer group {GROUP} assigned no partitions of {} within {:?}",
                            target.topic,
                            JOIN_LIMIT.max(idle)
                        );
                    }
                }
                continue;
            }
        }
        // A batch: whatever arrives within 200 ms of the first message, up to --batch.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while msgs.len() < batch {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => msgs.push(m.detach()),
                Ok(Err(_)) | Err(_) => break,
            }
        }
        idle_since = Instant::now();
        let records: Vec<Option<Record>> =
            msgs.iter().map(|m| to_record(m, &mut scratch)).collect();
        for (m, r) in msgs.iter().zip(&records) {
            if r.is_none() {
                // Kafka has no per-message rejection: logged and skipped (the offset moves past
                // it), so an operator can find it in the topic by partition and offset.
                tracing::error!(
                    partition = m.partition(),
                    offset = m.offset(),
                    "message is not a Didit envelope: skipped"
                );
            }
        }
        let fresh = loop {
            match db.apply(records.iter().flatten()) {
                Ok(f) => break f,
                Err(e) => {
                    // Nothing committed, no offset moved: apply the same batch again.
                    tracing::error!(error = %e, "cannot apply a batch to SQLite; retrying");
                    if stop.load(Relaxed) {
                        return Ok((db, summary));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        summary.add_batch(msgs.len(), &fresh);
        // Now the offsets: the next message to read, per partition.
        let mut next: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
        for m in &msgs {
            let e = next.entry(m.partition()).or_insert(0);
            *e = (*e).max(m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next {
            tpl.add_partition_offset(&target.topic, partition, Offset::Offset(offset))
                .context("building the offsets to commit")?;
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            // The events are stored; the group will deliver them again (after a rebalance, or to
            // the next consumer) and the UNIQUE key absorbs them.
            tracing::warn!(error = %e, "cannot commit the group's offsets; they will be read again");
        }
    }
    Ok((db, summary))
}

/// The record a message stands for, de-duplicated by `event_id` (`e:<event_id>`, as the SQLite
/// store keys it) or, without one, by the [`HEADER_DEDUP_KEY`] header.
fn to_record(m: &OwnedMessage, scratch: &mut Vec<u8>) -> Option<Record> {
    let body = m.payload()?;
    let env = SerdeJson.parse_envelope(body, scratch).ok()?;
    let header = |name: &str| -> Option<&[u8]> {
        m.headers()?
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
    };
    let key = match &env.event_id {
        Some(id) => format!("e:{}", id.as_str()),
        None => std::str::from_utf8(header(HEADER_DEDUP_KEY)?)
            .ok()?
            .to_owned(),
    };
    let received_at = header(HEADER_RECEIVED_AT)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(Record::from_envelope(&env, key, received_at, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("kafka://127.0.0.1:9093/didit.webhooks").expect("valid");
        assert_eq!(t.bootstrap, "127.0.0.1:9093");
        assert_eq!(t.topic, "didit.webhooks");
        assert_eq!(t.to_string(), "kafka://127.0.0.1:9093/didit.webhooks");
        let t = Target::parse("kafka://k1,k2:19092,[::1]/t").expect("valid");
        assert_eq!(t.bootstrap, "k1:9092,k2:19092,[::1]:9092");
        let t = Target::parse("kafka://[::1]:9094/t").expect("valid");
        assert_eq!(t.bootstrap, "[::1]:9094");
        for (bad, says) in [
            ("kafka://127.0.0.1:9092", "no topic"),
            ("kafka://127.0.0.1:9092/", "no topic"),
            ("kafka:///t", "no host"),
            ("kafka://h:0/t", "no valid port"),
            ("kafka://h:x/t", "no valid port"),
            ("kafka://h:99999/t", "no valid port"),
            ("kafka://:9092/t", "no host name"),
            ("kafka://a,,b/t", "no host"),
            ("kafka://h/a b", "not a Kafka topic name"),
            ("kafka://h/a/b", "not a Kafka topic name"),
            ("kafka://h/..", "not a Kafka topic name"),
            ("kafka://u:p@h/t", "no credentials"),
            ("kafka://h/t?acks=1", "no credentials"),
            ("http://h/t", "not a Kafka URL"),
        ] {
            let e = Target::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(Target::parse(&format!("kafka://h/{}", "t".repeat(250))).is_err());
    }

    #[test]
    fn records_keep_their_keys() {
        let body = br#"{"event_id":"e-1","session_id":"s-1","status":"Approved","webhook_type":"status.updated","timestamp":1}"#;
        let m = OwnedMessage::new(
            Some(body.to_vec()),
            Some(b"s-1".to_vec()),
            "t".into(),
            rdkafka::Timestamp::NotAvailable,
            0,
            7,
            Some(OwnedHeaders::new().insert(Header {
                key: HEADER_RECEIVED_AT,
                value: Some("1700000000"),
            })),
        );
        let r = to_record(&m, &mut Vec::new()).expect("a record");
        assert_eq!(
            (r.dedup_key.as_str(), r.received_at),
            ("e:e-1", 1_700_000_000)
        );
        // Without an event_id, the header's key; without either, not a Didit record.
        let body = br#"{"session_id":"s-1","status":"Approved","webhook_type":"status.updated"}"#;
        let m = OwnedMessage::new(
            Some(body.to_vec()),
            None,
            "t".into(),
            rdkafka::Timestamp::NotAvailable,
            0,
            8,
            Some(OwnedHeaders::new().insert(Header {
                key: HEADER_DEDUP_KEY,
                value: Some("s:ab12"),
            })),
        );
        assert_eq!(
            to_record(&m, &mut Vec::new()).map(|r| r.dedup_key),
            Some("s:ab12".into())
        );
        let m = m.replace_headers(None);
        assert!(to_record(&m, &mut Vec::new()).is_none());
        let m = m.set_payload(Some(b"not json".to_vec()));
        assert!(to_record(&m, &mut Vec::new()).is_none());
    }
}

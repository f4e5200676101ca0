//! Scale-out over RabbitMQ: verified events go to a durable queue; a consumer applies them to
//! SQLite.
//!
//! The receiver publishes each verified event's raw body to the durable queue [`QUEUE`] (through
//! the default exchange) as a persistent message whose `message_id` is the `event_id`, on a
//! channel in publisher-confirm mode, and (with `--ack after-commit`) answers Didit only after the
//! broker's confirm: the message is then on disk (and on the quorum's replicas, for a quorum
//! queue). A negative confirm, a closed channel or an unreachable broker is a 503 at once (Didit
//! retries 5xx); the publisher reconnects in the background.
//!
//! RabbitMQ, unlike JetStream, does not de-duplicate: a Didit retry that reaches another receiver
//! (or this one after its replay window) is published twice. [`consume`] therefore de-duplicates
//! by `event_id` against the SQLite store's UNIQUE key, and acknowledges each message only after
//! the transaction holding it committed, so a consumer crash redelivers rather than loses.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use didit_webhook::{JsonBackend, SerdeJson};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use super::consume::{ConsumeOptions, ConsumeSummary, run_consumer};
use super::db::Db;
use super::durable::{AckMode, Record};
use super::publisher::{Publish, PublishingStore, client_runtime};

/// The durable queue the receivers publish to and the consumer reads.
pub(crate) const QUEUE: &str = "didit.webhooks";
/// When the receiver verified the event (Unix seconds), a message header the consumer stores.
pub(crate) const HEADER_RECEIVED_AT: &str = "didit-received-at";
/// The consumer's tag on the queue.
const CONSUMER_TAG: &str = "didit-sqlite";
/// Persistent delivery (AMQP 0-9-1 `delivery-mode` 2): written to disk before the confirm.
const PERSISTENT: u8 = 2;

/// Longest wait for the broker's confirm before answering 503.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between reconnection attempts while the broker is unreachable.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// User and password for a URL that carries none.
pub(crate) const ENV_USER: &str = "DIDIT_AMQP_USER";
pub(crate) const ENV_PASSWORD: &str = "DIDIT_AMQP_PASSWORD";

/// The URL with credentials from [`ENV_USER`] / [`ENV_PASSWORD`] when it names none (RabbitMQ's
/// own default is guest/guest, allowed from loopback only).
fn with_env_credentials(url: &str) -> anyhow::Result<lapin::uri::AMQPUri> {
    let mut uri = lapin::uri::AMQPUri::from_str(url)
        .map_err(|e| anyhow::anyhow!("`{}` is not an AMQP URL: {e}", redact(url)))?;
    if !url_has_userinfo(url) {
        if let Ok(user) = std::env::var(ENV_USER) {
            uri.authority.userinfo.username = user;
        }
        if let Ok(password) = std::env::var(ENV_PASSWORD) {
            uri.authority.userinfo.password = password;
        }
    }
    Ok(uri)
}

fn url_has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.contains('@')
}

/// The URL without its password, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// The message id: the `event_id` itself when it fits an AMQP short string as a plain token, else
/// the de-duplication key (`s:<signature>` without an `event_id`), hashed when odd or long.
pub(crate) fn message_id(record: &Record) -> String {
    match &record.event_id {
        Some(id) if id.len() <= 200 && id.bytes().all(|b| b.is_ascii_graphic()) => id.clone(),
        _ => super::durable::message_id(&record.dedup_key),
    }
}

/// A connected channel in confirm mode, with the durable queue declared.
async fn open_channel(url: &str) -> anyhow::Result<(Connection, Channel)> {
    let uri = with_env_credentials(url)?;
    let props = ConnectionProperties::default().with_connection_name("didit-receiver".into());
    let conn = Connection::connect_uri(uri, props)
        .await
        .with_context(|| {
            format!(
                "cannot connect to RabbitMQ at {}; is rabbitmq-server running, and are the credentials right (in the URL or {ENV_USER}/{ENV_PASSWORD})?",
                redact(url)
            )
        })?;
    let ch = queue_channel(&conn).await?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .context("enabling publisher confirms")?;
    Ok((conn, ch))
}

/// A channel on `conn` with the queue there: used as it is when it exists (an operator may have
/// declared it as a quorum queue; declaring it again with other arguments would be refused),
/// else declared durable.
async fn queue_channel(conn: &Connection) -> anyhow::Result<Channel> {
    let ch = conn
        .create_channel()
        .await
        .context("opening an AMQP channel")?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    if ch
        .queue_declare(QUEUE.into(), passive, FieldTable::default())
        .await
        .is_ok()
    {
        return Ok(ch);
    }
    // The broker closed that channel (404): declare on a new one.
    let ch = conn
        .create_channel()
        .await
        .context("opening an AMQP channel")?;
    // Classic queue storage version 2 (RabbitMQ 3.10+, the default from 3.12): measured here with
    // the node on the receiver's core, 4,576–5,030 req/s against 4,112–4,137 with version 1.
    let mut args = FieldTable::default();
    args.insert("x-queue-version".into(), AMQPValue::LongInt(2));
    ch.queue_declare(
        QUEUE.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .with_context(|| format!("declaring the durable queue {QUEUE}"))?;
    Ok(ch)
}

/// The publisher's link to the broker: the current channel, replaced after a failure.
struct Link {
    url: String,
    /// The connection and its channel, numbered so that a failure reported late for an old one
    /// does not drop its successor (channel ids repeat across connections).
    current: Mutex<Option<(u64, Connection, Channel)>>,
    generation: AtomicU64,
    last_attempt: Mutex<Option<Instant>>,
}

impl Link {
    fn new(url: &str, first: (Connection, Channel)) -> Self {
        Link {
            url: url.to_owned(),
            current: Mutex::new(Some((0, first.0, first.1))),
            generation: AtomicU64::new(1),
            last_attempt: Mutex::new(None),
        }
    }

    /// The channel to publish on (with its generation), reconnecting (at most every
    /// [`RECONNECT_EVERY`]) when the last one failed; `None` while the broker cannot be reached.
    async fn channel(&self) -> Option<(u64, Channel)> {
        if let Some((generation, conn, ch)) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && conn.status().connected()
            && ch.status().connected()
        {
            return Some((*generation, ch.clone()));
        }
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < RECONNECT_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match open_channel(&self.url).await {
            Ok((conn, ch)) => {
                tracing::info!(url = %redact(&self.url), "RabbitMQ connected");
                let generation = self.generation.fetch_add(1, Relaxed);
                let out = ch.clone();
                let old = self
                    .current
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .replace((generation, conn, ch));
                if let Some((_, conn, _)) = old {
                    close_in_background(conn);
                }
                Some((generation, out))
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "RabbitMQ unreachable: answering 503");
                None
            }
        }
    }

    /// Drops the connection of generation `failed`, so the next publish reconnects.
    fn failed(&self, failed: u64) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.as_ref().is_some_and(|(g, _, _)| *g == failed)
            && let Some((_, conn, _)) = cur.take()
        {
            close_in_background(conn);
        }
    }
}

/// Closes a connection given up on (a no-op on the broker's side if it is already gone).
fn close_in_background(conn: Connection) {
    tokio::spawn(async move {
        let _ = conn.close(200, "didit-receiver reconnects".into()).await;
    });
}

/// Connects to `url` and starts the publisher; an unreachable broker is a start-up error.
pub(crate) fn connect(
    url: &str,
    mode: AckMode,
    capacity: usize,
    window_secs: i64,
) -> anyhow::Result<PublishingStore> {
    let runtime = client_runtime("didit-amqp")?;
    let first = runtime.block_on(open_channel(url))?;
    let link = Link::new(url, first);
    tracing::info!(url = %redact(url), queue = QUEUE, ack = ?mode, "RabbitMQ store connected");
    Ok(PublishingStore::start(
        runtime,
        link,
        mode,
        capacity,
        window_secs,
        CONFIRM_TIMEOUT + Duration::from_secs(1),
    ))
}

impl Publish for Link {
    /// RabbitMQ has no de-duplication to report: a confirmed publish is always new to it.
    async fn publish(&self, r: &Record) -> anyhow::Result<bool> {
        publish(self, r).await.map(|()| false)
    }
}

/// Publishes one record and waits for the broker's positive confirm.
async fn publish(link: &Link, r: &Record) -> anyhow::Result<()> {
    let Some((generation, ch)) = link.channel().await else {
        anyhow::bail!("not connected to RabbitMQ");
    };
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_RECEIVED_AT.into(),
        AMQPValue::LongLongInt(r.received_at),
    );
    let props = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(ShortString::from(message_id(r)))
        .with_content_type("application/json".into())
        .with_headers(headers);
    let confirmed = async {
        ch.basic_publish(
            "".into(),
            QUEUE.into(),
            // Mandatory: if the queue is gone (deleted by an operator), the broker returns the
            // message instead of confirming a message it dropped.
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &r.body,
            props,
        )
        .await?
        .await
    };
    let outcome = match tokio::time::timeout(CONFIRM_TIMEOUT, confirmed).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            link.failed(generation);
            return Err(e).context("publishing to RabbitMQ");
        }
        Err(_) => anyhow::bail!("no confirm from RabbitMQ within {CONFIRM_TIMEOUT:?}"),
    };
    match outcome {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => {
            // Reconnecting declares the queue again.
            tracing::warn!(
                queue = QUEUE,
                "RabbitMQ returned a message: the queue is gone; declaring it again"
            );
            link.failed(generation);
            anyhow::bail!(
                "the broker returned the message unrouted: was the queue {QUEUE} deleted?"
            )
        }
        Confirmation::Nack(_) => anyhow::bail!("the broker refused the message (negative confirm)"),
        Confirmation::NotRequested => {
            link.failed(generation);
            anyhow::bail!("the channel is not in confirm mode")
        }
    }
}

/// Applies the queue to the SQLite store until idle (or forever): receiver → RabbitMQ → consumer
/// → store. A batch is committed before any of its messages is acknowledged; a message whose
/// `event_id` is already stored is acknowledged without a second row.
pub(crate) fn consume(opts: &ConsumeOptions) -> anyhow::Result<ConsumeSummary> {
    run_consumer(opts, |db, stop| consume_async(opts, db, stop))
}

async fn consume_async(
    opts: &ConsumeOptions,
    mut db: Db,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(Db, ConsumeSummary)> {
    let (_conn, ch) = open_channel(&opts.from).await?;
    let batch = opts.batch.clamp(1, usize::from(u16::MAX));
    ch.basic_qos(
        u16::try_from(batch).unwrap_or(u16::MAX),
        BasicQosOptions::default(),
    )
    .await
    .context("setting the prefetch")?;
    let mut consumer = ch
        .basic_consume(
            QUEUE.into(),
            CONSUMER_TAG.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("consuming from {QUEUE}"))?;
    let mut summary = ConsumeSummary::default();
    let mut idle_since = Instant::now();
    let mut scratch = Vec::new();
    while !stop.load(Relaxed) {
        // A batch: whatever arrives within 200 ms of the first message, up to the prefetch.
        let mut deliveries = Vec::new();
        let wait = Duration::from_millis(500);
        match tokio::time::timeout(wait, consumer.next()).await {
            Ok(Some(d)) => deliveries.push(d.context("the broker connection failed")?),
            Ok(None) => anyhow::bail!("the broker closed the consumer"),
            Err(_) => {
                if opts
                    .exit_when_idle
                    .is_some_and(|d| idle_since.elapsed() >= d)
                {
                    break;
                }
                continue;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while deliveries.len() < batch {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Ok(Some(d)) => deliveries.push(d.context("the broker connection failed")?),
                Ok(None) | Err(_) => break,
            }
        }
        idle_since = Instant::now();
        let records: Vec<Option<Record>> = deliveries
            .iter()
            .map(|d| to_record(d, &mut scratch))
            .collect();
        let fresh = match db.apply(records.iter().flatten()) {
            Ok(f) => f,
            Err(e) => {
                // Nothing committed: hand the batch back for redelivery and try again.
                tracing::error!(error = %e, "cannot apply a batch to SQLite; retrying");
                for d in &deliveries {
                    let _ = d.acker.reject(BasicRejectOptions { requeue: true }).await;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        summary.add_batch(deliveries.len(), &fresh);
        for (d, r) in deliveries.iter().zip(&records) {
            if r.is_some() {
                d.acker
                    .ack(BasicAckOptions::default())
                    .await
                    .context("acknowledging a message")?;
            } else {
                // Not silently acknowledged: rejected (not requeued) and logged, so an operator
                // can attach a dead-letter exchange and look at it.
                tracing::error!(
                    delivery_tag = d.delivery_tag,
                    "message is not a Didit envelope: rejected"
                );
                d.acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .context("rejecting a message")?;
            }
        }
    }
    Ok((db, summary))
}

/// The record a message stands for, de-duplicated by `event_id` (`e:<event_id>`, as the SQLite
/// store keys it) or, without one, by the message id (`s:<signature>`).
fn to_record(d: &lapin::message::Delivery, scratch: &mut Vec<u8>) -> Option<Record> {
    let env = SerdeJson.parse_envelope(&d.data, scratch).ok()?;
    let key = match &env.event_id {
        Some(id) => format!("e:{}", id.as_str()),
        None => d.properties.message_id().as_ref()?.as_str().to_owned(),
    };
    let received_at = d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(HEADER_RECEIVED_AT))
        .and_then(|v| match v {
            AMQPValue::LongLongInt(n) => Some(*n),
            _ => None,
        })
        .unwrap_or(0);
    Some(Record::from_envelope(&env, key, received_at, &d.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("amqp://didit:s3cret@10.0.0.5:5672/%2f"),
            "amqp://didit:***@10.0.0.5:5672/%2f"
        );
        assert_eq!(
            redact("amqp://127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert!(url_has_userinfo("amqp://u:p@h:1/v"));
        assert!(!url_has_userinfo("amqp://h:1/v@x"));
    }

    #[test]
    fn message_ids_are_event_ids() {
        let mut r = Record {
            dedup_key: "e:0b1c".into(),
            event_id: Some("0b1c".into()),
            webhook_type: None,
            session_id: None,
            status: None,
            event_timestamp: None,
            received_at: 0,
            body: Vec::new(),
        };
        assert_eq!(message_id(&r), "0b1c");
        r.event_id = Some("odd id\n".into());
        r.dedup_key = "e:odd id\n".into();
        assert!(message_id(&r).starts_with("x:"));
        r.event_id = None;
        r.dedup_key = "s:ab12".into();
        assert_eq!(message_id(&r), "s:ab12");
    }
}

//! Scale-out: verified events go to a NATS JetStream stream; a consumer applies them to SQLite.
//!
//! The receiver publishes each verified event's raw body to the subject [`SUBJECT`] with
//! `Nats-Msg-Id` set to the event's de-duplication key, and (with `--ack after-commit`) answers
//! Didit only after JetStream's publish acknowledgement: the event is then in the stream (on R
//! replicas, in a cluster). JetStream drops a second publish with the same id inside the stream's
//! duplicate window, so a Didit retry is answered `duplicate` and stored once. While the client is
//! not connected the receiver answers 503 at once (Didit retries 5xx) rather than buffering.
//!
//! The URL may list several servers of one cluster, `nats://a:4222,nats://b:4222,nats://c:4222`,
//! with `?replicas=3` to create the stream on three of them (a write then needs a quorum of
//! replicas before JetStream acknowledges it); the client fails over between the listed servers
//! and those the cluster announces.
//!
//! [`consume`] is the other half: a durable pull consumer that applies batches to the SQLite
//! store and acknowledges the messages only after the commit, so a consumer crash redelivers
//! rather than loses; the store's UNIQUE key absorbs the redelivery.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use didit_webhook::{JsonBackend, SerdeJson};
use futures_util::StreamExt;

use super::consume::{ConsumeOptions, ConsumeSummary, run_consumer};
use super::db::Db;
use super::durable::{AckMode, Record, message_id};
use super::publisher::{Publish, PublishingStore, client_runtime};

/// The stream the receivers publish to and the consumer reads.
pub const STREAM: &str = "DIDIT_WEBHOOKS";
/// The one subject of that stream.
pub(super) const SUBJECT: &str = "didit.webhooks";
/// When the receiver verified the event (Unix seconds); the consumer stores it.
pub(super) const HEADER_RECEIVED_AT: &str = "Didit-Received-At";
/// The consumer's durable name: it survives consumer restarts.
pub(super) const DURABLE: &str = "didit-sqlite";

/// Longest wait for JetStream's publish acknowledgement before answering 503.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// A `--store`/`--from` NATS URL: one server or a cluster's list, and the stream's replicas.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NatsUrl {
    pub servers: Vec<String>,
    /// Replicas of the stream when this receiver creates it (1 unless `?replicas=N`).
    pub replicas: usize,
}

impl NatsUrl {
    /// Parses `nats://HOST:PORT[,nats://HOST:PORT…][?replicas=N]`.
    pub(super) fn parse(url: &str) -> anyhow::Result<NatsUrl> {
        let (list, query) = match url.split_once('?') {
            Some((l, q)) => (l, Some(q)),
            None => (url, None),
        };
        let servers: Vec<String> = list
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() || servers.iter().any(|s| !s.starts_with("nats://")) {
            anyhow::bail!(
                "`{url}` is not nats://HOST:PORT or a comma-separated list of them (nats://a:4222,nats://b:4222?replicas=3)"
            );
        }
        let replicas = match query {
            None => 1,
            Some(q) => match q.strip_prefix("replicas=").map(str::parse::<usize>) {
                Some(Ok(n @ 1..=5)) => n,
                _ => anyhow::bail!(
                    "`?{q}` in `{url}`: the only option is replicas=N, N from 1 to 5 (JetStream's limit)"
                ),
            },
        };
        Ok(NatsUrl { servers, replicas })
    }
}

/// Connects, creating the stream when it does not exist.
async fn connect_stream(url: &str, window_secs: i64) -> anyhow::Result<jetstream::Context> {
    let parsed = NatsUrl::parse(url)?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .event_callback(|e| async move {
            match e {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                other => tracing::warn!(event = %other, "NATS connection event"),
            }
        })
        .connect(parsed.servers.as_slice())
        .await
        .with_context(|| {
            format!("cannot connect to NATS at {url}; is nats-server running (with -js)?")
        })?;
    let js = jetstream::ContextBuilder::new()
        .timeout(PUBLISH_TIMEOUT)
        .backpressure_on_inflight(true)
        .build(client);
    let window = Duration::from_secs(u64::try_from(window_secs.max(1)).unwrap_or(600));
    js.get_or_create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec![SUBJECT.into()],
        storage: stream::StorageType::File,
        duplicate_window: window,
        num_replicas: parsed.replicas,
        ..Default::default()
    })
    .await
    .with_context(|| {
        format!("cannot create or open the JetStream stream {STREAM} at {url}; was nats-server started with -js?")
    })?;
    Ok(js)
}

/// Connects to `url` and starts the publisher; an unreachable server is a start-up error.
pub(super) fn connect(
    url: &str,
    mode: AckMode,
    capacity: usize,
    window_secs: i64,
) -> anyhow::Result<PublishingStore> {
    let runtime = client_runtime("didit-nats")?;
    let js = runtime.block_on(connect_stream(url, window_secs))?;
    tracing::info!(url, stream = STREAM, ack = ?mode, "NATS JetStream store connected");
    Ok(PublishingStore::start(
        runtime,
        JetStream(js),
        mode,
        capacity,
        window_secs,
        PUBLISH_TIMEOUT + Duration::from_secs(1),
    ))
}

/// Publishes to the stream; JetStream reports a message id it already has as a duplicate.
struct JetStream(jetstream::Context);

impl Publish for JetStream {
    async fn publish(&self, r: &Record) -> anyhow::Result<bool> {
        let js = &self.0;
        if js.client().connection_state() != async_nats::connection::State::Connected {
            anyhow::bail!("not connected to NATS");
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HEADER_RECEIVED_AT, r.received_at.to_string().as_str());
        let msg = jetstream::message::PublishMessage::build()
            .payload(Bytes::copy_from_slice(&r.body))
            .headers(headers)
            .message_id(message_id(&r.dedup_key));
        let ack = js.send_publish(SUBJECT, msg).await?.await?;
        Ok(ack.duplicate)
    }
}

/// Applies the stream to the SQLite store until idle (or forever): receiver → JetStream →
/// consumer → store. Messages are acknowledged only after the batch holding them committed.
pub(super) fn consume(opts: &ConsumeOptions) -> anyhow::Result<ConsumeSummary> {
    run_consumer(opts, |db, stop| consume_async(opts, db, stop))
}

async fn consume_async(
    opts: &ConsumeOptions,
    mut db: Db,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(Db, ConsumeSummary)> {
    let js = connect_stream(&opts.from, 600).await?;
    let stream = js
        .get_stream(STREAM)
        .await
        .with_context(|| format!("no stream {STREAM} at {}", opts.from))?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            DURABLE,
            pull::Config {
                durable_name: Some(DURABLE.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("cannot create the durable consumer {DURABLE}"))?;
    let mut summary = ConsumeSummary::default();
    let mut idle_since = std::time::Instant::now();
    let mut scratch = Vec::new();
    while !stop.load(Relaxed) {
        // A failed fetch (a cluster electing a new stream leader, a server restarting) is waited
        // out, not fatal: nothing was taken, so nothing is lost.
        let fetched = consumer
            .fetch()
            .max_messages(opts.batch.max(1))
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut batch = match fetched {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch from the stream; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut msgs = Vec::new();
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => msgs.push(m),
                Err(e) => tracing::warn!(error = %e, "fetch error"),
            }
        }
        if msgs.is_empty() {
            if opts
                .exit_when_idle
                .is_some_and(|d| idle_since.elapsed() >= d)
            {
                break;
            }
            continue;
        }
        idle_since = std::time::Instant::now();
        let records: Vec<Option<Record>> =
            msgs.iter().map(|m| to_record(m, &mut scratch)).collect();
        let fresh = match db.apply(records.iter().flatten()) {
            Ok(f) => f,
            Err(e) => {
                // Nothing committed: hand the batch back for redelivery and try again.
                tracing::error!(error = %e, "cannot apply a batch to SQLite; retrying");
                for m in &msgs {
                    let _ = m
                        .ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        summary.add_batch(msgs.len(), &fresh);
        for (m, r) in msgs.iter().zip(&records) {
            let kind = if r.is_some() {
                jetstream::AckKind::Ack
            } else {
                // Not silently acknowledged: terminated (never redelivered) and logged, so an
                // operator can look at it in the stream.
                tracing::error!(
                    subject = %m.subject,
                    "message is not a Didit envelope with a message id: terminated"
                );
                jetstream::AckKind::Term
            };
            // An acknowledgement that does not arrive means a redelivery after `ack_wait`, which
            // the store's UNIQUE key absorbs: the event is committed already.
            if let Err(e) = m.ack_with(kind).await {
                tracing::warn!(error = %e, "acknowledging a committed message failed; it will be redelivered and absorbed");
            }
        }
    }
    Ok((db, summary))
}

fn to_record(m: &jetstream::Message, scratch: &mut Vec<u8>) -> Option<Record> {
    let h = m.headers.as_ref()?;
    let id = h.get("Nats-Msg-Id")?.as_str().to_owned();
    let received_at = h
        .get(HEADER_RECEIVED_AT)
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0);
    let env = SerdeJson.parse_envelope(&m.payload, scratch).ok()?;
    Some(Record::from_envelope(&env, id, received_at, &m.payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_list_a_cluster_and_its_replicas() {
        assert_eq!(
            NatsUrl::parse("nats://127.0.0.1:4222").expect("one server"),
            NatsUrl {
                servers: vec!["nats://127.0.0.1:4222".into()],
                replicas: 1
            }
        );
        let c = NatsUrl::parse("nats://a:1, nats://b:2,nats://c:3?replicas=3").expect("cluster");
        assert_eq!(c.servers, ["nats://a:1", "nats://b:2", "nats://c:3"]);
        assert_eq!(c.replicas, 3);
        for bad in [
            "nats://a:1?replicas=0",
            "nats://a:1?replicas=9",
            "nats://a:1?copies=3",
            "nats://a:1,http://b:2",
            ",",
        ] {
            assert!(NatsUrl::parse(bad).is_err(), "{bad} parsed");
        }
    }
}

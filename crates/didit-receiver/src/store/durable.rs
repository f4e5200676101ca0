//! What every durable store shares (SQLite and the brokers): when it answers ([`AckMode`]), the
//! record it keeps, the bounded queue in front of its writer or publisher, and the request side
//! that puts an event on that queue.

use didit_webhook::{Envelope, Verified};
use sha2::Digest as _;

use crate::process::{DedupKey, RecentSet, Submit, dedup_key, dedup_text};
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
    pub(crate) fn of(event: &Verified<Envelope<'_>>, body: &[u8]) -> Self {
        Record::from_envelope(event, dedup_text(event), event.verified_at(), body)
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
    pub(crate) fn new(
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

    pub(crate) fn push(&self, job: Job) -> bool {
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

    pub(crate) fn depth(&self) -> usize {
        self.depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn close(&self) {
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
    let key = dedup_key(event);
    if recent.contains(key, now_unix) {
        return Submit::DUPLICATE;
    }
    let record = Record::of(event, body);
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
            if !recent.insert(key, now_unix) {
                return Submit::DUPLICATE;
            }
            let job = Job {
                key,
                record,
                done: None,
            };
            if enqueue(job) {
                Submit::ACCEPTED
            } else {
                // Forget it, so that Didit's retry is not mistaken for a duplicate.
                recent.remove(key);
                Submit::SATURATED
            }
        }
    }
}

/// The id a broker de-duplicates on (JetStream's `Nats-Msg-Id`, AMQP's `message_id` without an
/// `event_id`): the de-duplication key when it is a plain token (event
/// ids are UUIDs), else a SHA-256 of it, so odd bytes in a signed `event_id` cannot break a
/// header.
pub(crate) fn message_id(dedup_key: &str) -> String {
    if dedup_key.len() <= 200 && dedup_key.bytes().all(|b| b.is_ascii_graphic()) {
        dedup_key.to_owned()
    } else {
        let d = sha2::Sha256::digest(dedup_key.as_bytes());
        format!("x:{}", hex::encode(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_header_safe() {
        assert_eq!(message_id("e:8d2f-11"), "e:8d2f-11");
        let odd = message_id("e:line\r\nbreak");
        assert!(odd.starts_with("x:") && odd.len() == 66, "{odd}");
        assert!(odd.bytes().all(|b| b.is_ascii_graphic()));
        assert_ne!(message_id("e:a b"), message_id("e:a c"));
        assert!(message_id(&"e".repeat(300)).starts_with("x:"));
    }
}

//! The processing stage's contract, below every store: what a submit answers ([`Submit`]), the
//! [`Processor`] trait the app calls, a delivery's identity ([`DedupKey`]) and the
//! recent-deliveries set that de-duplicates Didit's retries (every retry of an event carries the
//! same `event_id`). The stores themselves are in [`store`](crate::store).

use std::collections::HashMap;
use std::sync::Mutex;

use didit_webhook::{Envelope, Tag, Verified};

pub(crate) use crate::ticket::Ack;
use crate::ticket::Ticket;

/// What became of a submitted event: settled at once, or once the store has kept it.
#[derive(Debug)]
pub(crate) enum Submit {
    Done(Ack),
    /// Answer when the ticket settles (a durable store acknowledging after its commit).
    Pending(Ticket),
}

impl Submit {
    pub(crate) const ACCEPTED: Submit = Submit::Done(Ack::Accepted);
    pub(crate) const DUPLICATE: Submit = Submit::Done(Ack::Duplicate);
    pub(crate) const SATURATED: Submit = Submit::Done(Ack::Saturated);

    /// The settled answer, if there is one yet.
    #[cfg(test)]
    pub(crate) fn done(&self) -> Option<Ack> {
        match self {
            Submit::Done(a) => Some(*a),
            Submit::Pending(_) => None,
        }
    }
}

/// The stage that takes verified events. Implementations decide durability; the contract is:
/// `Accepted` means the event will be processed (or, for durable stores, is stored as the store's
/// acknowledgement mode promises), `Duplicate` that an identical delivery was kept before,
/// `Saturated` that nothing was kept. `body` is the raw body the signature covered.
pub(crate) trait Processor: Send + Sync + 'static {
    fn submit(&self, event: &Verified<Envelope<'_>>, body: &[u8], now_unix: i64) -> Submit;

    /// Events waiting to be applied.
    fn queue_depth(&self) -> usize;

    /// Stops taking events and applies everything queued; called once at shutdown.
    fn drain(&self);
}

/// A delivery's identity: its `event_id`, or the matched signature when there is none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DedupKey {
    Event(Box<str>),
    Signature(Tag),
}

impl DedupKey {
    pub(crate) fn of(event: &Verified<Envelope<'_>>) -> Self {
        match &event.event_id {
            Some(id) => DedupKey::Event(id.as_str().into()),
            None => DedupKey::Signature(*event.signature()),
        }
    }

    /// The key as stored: `e:<event_id>` or `s:<hex signature>`, so the two kinds never collide.
    pub(crate) fn to_text(&self) -> String {
        match self {
            DedupKey::Event(id) => format!("e:{id}"),
            DedupKey::Signature(tag) => format!("s:{}", didit_webhook::HexTag::new(tag).as_str()),
        }
    }
}

const SHARDS: usize = 16;

/// Recently accepted deliveries, sharded to keep lock contention low.
#[derive(Debug)]
pub(crate) struct RecentSet {
    shards: Vec<Mutex<Shard>>,
    window_secs: i64,
    sweep_every: u64,
}

#[derive(Debug, Default)]
struct Shard {
    seen: HashMap<DedupKey, i64>,
    /// When this shard last dropped expired entries (unix seconds).
    swept_at: i64,
}

impl RecentSet {
    pub(crate) fn new(window_secs: i64) -> Self {
        RecentSet {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            window_secs,
            sweep_every: (window_secs.unsigned_abs() / 16).max(1),
        }
    }

    /// Whether `key` was inserted and has not expired.
    pub(crate) fn contains(&self, key: &DedupKey, now: i64) -> bool {
        let shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        shard
            .seen
            .get(key)
            .is_some_and(|at| now - *at <= self.window_secs)
    }

    fn shard(&self, key: &DedupKey) -> &Mutex<Shard> {
        // The map hashes the key with SipHash anyway; the shard only needs a cheap spread. Event
        // ids are UUIDs and tags are HMAC output, so their last bytes are already uniform; the
        // map's own keyed hash still protects each shard against crafted collisions.
        let spread = match key {
            DedupKey::Event(id) => id.as_bytes().last().copied().unwrap_or(0),
            DedupKey::Signature(tag) => tag[31],
        };
        &self.shards[usize::from(spread) % SHARDS]
    }

    /// Inserts `key`; `false` if it is already there and not expired.
    pub(crate) fn insert(&self, key: DedupKey, now: i64) -> bool {
        use std::collections::hash_map::Entry;
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        let window = self.window_secs;
        match shard.seen.entry(key) {
            Entry::Occupied(e) if now - *e.get() <= window => return false,
            Entry::Occupied(mut e) => {
                e.insert(now);
            }
            Entry::Vacant(e) => {
                e.insert(now);
            }
        }
        // Expiry by the clock, every sixteenth of the window per shard, so the set holds one
        // window of deliveries (plus a sixteenth) whatever the rate; a sweep per N inserts let
        // it hold a rate-dependent extra. Each entry is visited 16 times per window: ~80 ns per
        // new event, 0.3 % of a core at 40,000 new events/s. `abs_diff`: a clock stepped back
        // must not stop the sweeps.
        if now.abs_diff(shard.swept_at) >= self.sweep_every {
            shard.swept_at = now;
            shard.seen.retain(|_, at| now - *at <= window);
            // Grow ahead of need: a table filled close to its resize threshold doubles at the
            // first burst after a stall, a step of RSS long after warm-up that never comes back
            // (the soak saw +25 %). With half its size spare, only a lasting rise in the rate
            // grows it.
            let len = shard.seen.len();
            let spare = len / 2;
            if shard.seen.capacity() < len + spare {
                shard.seen.reserve(spare);
            }
        }
        true
    }

    /// Deliveries remembered now, expired ones included until their shard's next sweep.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).seen.len())
            .sum()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).seen.capacity())
            .sum()
    }

    pub(crate) fn remove(&self, key: &DedupKey) {
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        shard.seen.remove(key);
    }
}

/// The latest known state of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub timestamp: i64,
    pub status: String,
    pub webhook_type: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use didit_webhook::canon::Value;
    use didit_webhook::{
        FixedClock, Mac, RingMac, Scratch, Secret, SerdeJson, SignatureHeaders, Signer, Verifier,
        VerifyConfig,
    };

    pub(crate) const NOW: i64 = 1_780_000_000;

    /// Signs and verifies an event so the processor gets a real `Verified` value.
    pub(crate) fn with_event<R>(
        event_id: Option<&str>,
        session: &str,
        status: &str,
        ts: i64,
        f: impl FnOnce(&Verified<Envelope<'_>>) -> R,
    ) -> R {
        let secret = Secret::new("k");
        let mut text = format!(
            r#"{{"webhook_type":"status.updated","timestamp":{ts},"session_id":"{session}","status":"{status}""#
        );
        if let Some(id) = event_id {
            text.push_str(&format!(r#","event_id":"{id}""#));
        }
        text.push('}');
        let v = Value::parse(text.as_bytes()).expect("valid");
        let d = Signer::<RingMac>::new(&secret).sign(&v).expect("signable");
        let verifier = Verifier::with_parts(
            RingMac::new(&secret),
            SerdeJson,
            FixedClock(NOW),
            VerifyConfig::default(),
        );
        let h = SignatureHeaders {
            signature: Some(d.signature.as_bytes()),
            ..SignatureHeaders::default()
        };
        let mut scratch = Scratch::new();
        let ok = verifier
            .verify(&h, &d.body, &mut scratch)
            .expect("verifies");
        f(&ok)
    }

    #[test]
    fn the_recent_set_expires_by_the_clock_and_keeps_headroom() {
        let window = 32; // sweeps every 2 s
        let set = RecentSet::new(window);
        // Hex ids: the last digit spreads them evenly over the 16 shards, as UUIDs do.
        let key = |i: usize| DedupKey::Event(format!("event-{i:08x}").into());
        // Filled over six seconds, then a sweep at the seventh sizes every shard ahead.
        for i in 0..3_000 {
            assert!(set.insert(key(i), NOW + i as i64 / 600));
        }
        set.insert(key(3_000), NOW + 6);
        let cap = set.capacity();
        assert!(cap >= 3_001 * 3 / 2, "capacity {cap} for 3,001 entries");
        // A burst of a quarter more does not resize any shard.
        for i in 3_001..3_750 {
            set.insert(key(i), NOW + 6);
        }
        assert_eq!(set.capacity(), cap, "a shard grew within its headroom");
        // A few inserts a window later drop everything older, with no insert-count threshold.
        for (n, i) in (10_000..10_032).enumerate() {
            set.insert(key(i), NOW + window + 7 + n as i64 % 2);
        }
        assert_eq!(set.len(), 32, "expired entries outlived the window");
        assert!(!set.contains(&key(3_700), NOW + window + 7));
        assert!(set.contains(&key(10_000), NOW + window + 7));
    }
}

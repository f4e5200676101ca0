//! The processing stage's contract, below every store: what a submit answers ([`Submit`]), the
//! [`Processor`] trait the app calls, a delivery's identity ([`DedupKey`]) and the
//! recent-deliveries set that de-duplicates Didit's retries (every retry of an event carries the
//! same `event_id`). The stores themselves are in [`store`](crate::store).

use std::collections::HashMap;
use std::sync::Mutex;

use didit_webhook::{Envelope, Verified};

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

/// A 128-bit fingerprint of `kind` and `bytes` under two process-random SipHash keys: what the
/// in-memory tables keep instead of the text, so that a fresh event costs no allocation and a
/// table entry is 16 bytes. The keys are secret to the process, so no sender can aim at a
/// collision (and only Didit-signed deliveries reach these tables at all); by chance, with
/// 10^8 entries held at once, a collision has a probability of about 10^-23.
pub(crate) fn fingerprint(kind: u8, bytes: &[u8]) -> Fingerprint {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<[std::collections::hash_map::RandomState; 2]> =
        std::sync::OnceLock::new();
    let [a, b] = KEYS.get_or_init(Default::default);
    Fingerprint(
        (u128::from(a.hash_one((kind, bytes))) << 64) | u128::from(b.hash_one((kind, bytes))),
    )
}

/// A [`fingerprint`]: the key of the in-memory tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint(u128);

impl Fingerprint {
    /// The upper half, for choosing a shard (the lower half hashes within it).
    pub(crate) fn shard_bits(self) -> u64 {
        (self.0 >> 64) as u64
    }
}

impl std::hash::Hash for Fingerprint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Already a keyed hash: half of it is the table's hash ([`Spread`]).
        state.write_u64(self.0 as u64);
    }
}

/// A delivery's identity: the fingerprint of its `event_id`, or of the matched signature when
/// there is none (the stores keep the text, [`DedupKey::text_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DedupKey(Fingerprint);

impl DedupKey {
    pub(crate) fn of(event: &Verified<Envelope<'_>>) -> Self {
        match &event.event_id {
            Some(id) => DedupKey::event(id.as_str()),
            None => DedupKey(fingerprint(b's', event.signature())),
        }
    }

    /// The key of an `event_id`.
    pub(crate) fn event(id: &str) -> Self {
        DedupKey(fingerprint(b'e', id.as_bytes()))
    }

    /// The key as stored: `e:<event_id>` or `s:<hex signature>`, so the two kinds never collide.
    pub(crate) fn text_of(event: &Verified<Envelope<'_>>) -> String {
        match &event.event_id {
            Some(id) => format!("e:{}", id.as_str()),
            None => format!(
                "s:{}",
                didit_webhook::HexTag::new(event.signature()).as_str()
            ),
        }
    }
}

/// The hasher of tables keyed by a fingerprint: the key's `write_u64` is the hash.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Spread(u64);

impl std::hash::Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only fingerprints are hashed with it; anything else still spreads, if slowly.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// A `HashMap` keyed by fingerprints.
pub(crate) type FingerprintMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Spread>>;

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
    seen: FingerprintMap<DedupKey, i64>,
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
        // The fingerprint's upper half picks the shard, its lower half hashes within it.
        &self.shards[key.0.shard_bits() as usize % SHARDS]
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
        let key = |i: usize| DedupKey::event(&format!("event-{i:08x}"));
        // Filled over five seconds, then 200 more at the seventh: every shard is swept and
        // sized ahead (fingerprints spread keys at random: 200 keys miss one of 16 shards with
        // a probability of 4e-5).
        for i in 0..3_000 {
            assert!(set.insert(key(i), NOW + i as i64 / 600));
        }
        for i in 3_000..3_200 {
            set.insert(key(i), NOW + 6);
        }
        let cap = set.capacity();
        assert!(cap >= 3_200 * 3 / 2, "capacity {cap} for 3,200 entries");
        // A burst of a quarter more does not resize any shard.
        for i in 3_200..4_000 {
            set.insert(key(i), NOW + 6);
        }
        assert_eq!(set.capacity(), cap, "a shard grew within its headroom");
        // Inserts a window later drop everything older in every shard they reach, with no
        // insert-count threshold (400 keys reach all 16 but with a probability of 1e-10).
        for (n, i) in (10_000..10_400).enumerate() {
            set.insert(key(i), NOW + window + 7 + n as i64 % 2);
        }
        assert_eq!(set.len(), 400, "expired entries outlived the window");
        assert!(!set.contains(&key(3_700), NOW + window + 7));
        assert!(set.contains(&key(10_000), NOW + window + 7));
    }
}

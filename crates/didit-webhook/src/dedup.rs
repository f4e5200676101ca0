//! Exactly once: a delivery's identity ([`DedupKey`]), the [`Dedup`] contract a receiver keeps it
//! with, and the in-memory window ([`Window`], [`MemoryDedup`]) that is the default.
//!
//! Didit retries a delivery it did not see answered 2xx, and every retry (and every resend) of an
//! event carries the same `event_id`. The rule a receiver follows, and [`crate::Inbox`] applies:
//! - the key is **reserved** before the handler runs ([`Dedup::reserve`]);
//! - it is **committed** once the handler succeeded ([`Dedup::commit`]): later copies are
//!   answered 200 `duplicate` without reaching the handler;
//! - it is **released** when the handler failed or was cancelled ([`Dedup::release`]), so that
//!   Didit's retry is processed, not mistaken for a duplicate;
//! - a copy that arrives while the first is still being handled is answered 503 with
//!   `Retry-After` ([`Reservation::InFlight`]): a 200 there would lose the event if the first
//!   attempt then failed.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Mutex, OnceLock};

use crate::payload::Envelope;
use crate::verify::Verified;

/// A 128-bit fingerprint of `kind` and `bytes` under two process-random SipHash keys: what the
/// in-memory tables keep instead of the text, so that a fresh event costs no allocation and a
/// table entry is 16 bytes. The keys are secret to the process, so no sender can aim at a
/// collision (and only Didit-signed deliveries reach these tables at all); by chance, with
/// 10^8 entries held at once, a collision has a probability of about 10^-23.
pub fn fingerprint(kind: u8, bytes: &[u8]) -> Fingerprint {
    static KEYS: OnceLock<[std::collections::hash_map::RandomState; 2]> = OnceLock::new();
    let [a, b] = KEYS.get_or_init(Default::default);
    Fingerprint(
        (u128::from(a.hash_one((kind, bytes))) << 64) | u128::from(b.hash_one((kind, bytes))),
    )
}

/// A [`fingerprint`]: the key of the in-memory tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(u128);

impl Fingerprint {
    /// The upper half, for choosing a shard (the lower half hashes within it).
    fn shard_bits(self) -> u64 {
        (self.0 >> 64) as u64
    }
}

impl std::hash::Hash for Fingerprint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Already a keyed hash: half of it is the table's hash ([`Spread`]).
        state.write_u64(self.0 as u64);
    }
}

/// The hasher of tables keyed by a fingerprint: the key's `write_u64` is the hash.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spread(u64);

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
pub type FingerprintMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Spread>>;

/// A delivery's identity, as the contract defines it (§5): its `event_id`, kept across retries
/// and resends; without one, `(session_id, webhook_type, timestamp)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DedupKey<'a> {
    EventId(&'a str),
    /// The contract's fallback for a delivery with no `event_id` (legacy and test payloads).
    Fallback {
        session_id: &'a str,
        webhook_type: &'a str,
        timestamp: i64,
    },
}

impl<'a> DedupKey<'a> {
    /// The key of a verified delivery.
    pub fn of(event: &'a Verified<Envelope<'_>>) -> Self {
        match &event.event_id {
            Some(id) => DedupKey::EventId(id.as_str()),
            None => DedupKey::Fallback {
                session_id: event.session_id().unwrap_or(""),
                webhook_type: event.webhook_type().map_or("", |t| t.as_str()),
                timestamp: event.timestamp_secs().unwrap_or(0),
            },
        }
    }

    /// The key as text, for a store of the app's own (a UNIQUE column): `event:<event_id>`, or
    /// `fallback:<timestamp>:<webhook_type>:<session_id>`. The two kinds never collide.
    pub fn text(&self) -> String {
        match self {
            DedupKey::EventId(id) => format!("event:{id}"),
            DedupKey::Fallback {
                session_id,
                webhook_type,
                timestamp,
            } => format!("fallback:{timestamp}:{webhook_type}:{session_id}"),
        }
    }

    /// The key's [`fingerprint`], for in-memory tables.
    pub fn fingerprint(&self) -> Fingerprint {
        match self {
            DedupKey::EventId(id) => fingerprint(b'e', id.as_bytes()),
            DedupKey::Fallback { .. } => fingerprint(b'f', self.text().as_bytes()),
        }
    }
}

/// What [`Dedup::reserve`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Not seen (or released, or expired): reserved now, so handle it.
    Fresh,
    /// Committed before: answer 200 `duplicate` and do nothing.
    Duplicate,
    /// Reserved by a request still being handled: answer 503 so that Didit retries.
    InFlight,
}

/// Where a receiver keeps the deliveries it has handled. [`MemoryDedup`] is the default; a
/// service whose own database must agree with its side effects implements this over that
/// database (a UNIQUE key on [`DedupKey::text`], a row inserted at reserve, marked at commit).
///
/// Implementations may assume: `reserve` is called once per verified delivery, then exactly one
/// of `commit` or `release` for every `Fresh` answer; `now` is the delivery's verification time in
/// Unix seconds. Callers may rely on: after `commit`, `reserve` of the same key answers
/// `Duplicate` for as long as the implementation keeps it (at least the freshness window, or a
/// stale replay could come back as new).
pub trait Dedup: Send + Sync + 'static {
    /// Why the store could not answer (the delivery is then answered 503 and Didit retries).
    type Error: std::error::Error + Send + Sync + 'static;

    fn reserve(
        &self,
        key: &DedupKey<'_>,
        now: i64,
    ) -> impl Future<Output = Result<Reservation, Self::Error>> + Send;

    fn commit(
        &self,
        key: &DedupKey<'_>,
        now: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Undoes a reservation. Not async because it also runs when the handler's future is dropped
    /// (the sender hung up, or the handler panicked): a store that cannot release at once lets the
    /// reservation lapse instead, as [`MemoryDedup`]'s lease does.
    fn release(&self, key: &DedupKey<'_>);
}

/// No de-duplication: for receivers whose store keeps exactly once itself (this project's
/// reference receivers de-duplicate in their stores). Every delivery is `Fresh`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDedup;

impl Dedup for NoDedup {
    type Error = std::convert::Infallible;

    async fn reserve(&self, _: &DedupKey<'_>, _: i64) -> Result<Reservation, Self::Error> {
        Ok(Reservation::Fresh)
    }

    async fn commit(&self, _: &DedupKey<'_>, _: i64) -> Result<(), Self::Error> {
        Ok(())
    }

    fn release(&self, _: &DedupKey<'_>) {}
}

const SHARDS: usize = 16;

/// One remembered delivery: when it was reserved or committed, and whether it is committed.
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: i64,
    committed: bool,
}

/// Recent deliveries by fingerprint, expiring after a window of seconds, sharded to keep lock
/// contention low. The table behind [`MemoryDedup`] and the reference receivers' stores.
#[derive(Debug)]
pub struct Window {
    shards: Vec<Mutex<Shard>>,
    window_secs: i64,
    sweep_every: u64,
}

#[derive(Debug, Default)]
struct Shard {
    seen: FingerprintMap<Fingerprint, Entry>,
    /// When this shard last dropped expired entries (unix seconds).
    swept_at: i64,
}

impl Window {
    /// A window that remembers a delivery for `window_secs` after it was kept.
    pub fn new(window_secs: i64) -> Self {
        Window {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            window_secs,
            sweep_every: (window_secs.unsigned_abs() / 16).max(1),
        }
    }

    fn shard(&self, key: Fingerprint) -> std::sync::MutexGuard<'_, Shard> {
        // The fingerprint's upper half picks the shard, its lower half hashes within it.
        let shard = &self.shards[key.shard_bits() as usize % SHARDS];
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` was kept and has not expired.
    pub fn contains(&self, key: Fingerprint, now: i64) -> bool {
        self.shard(key)
            .seen
            .get(&key)
            .is_some_and(|e| e.committed && now - e.at <= self.window_secs)
    }

    /// Keeps `key`; `false` if it is already kept and not expired.
    pub fn insert(&self, key: Fingerprint, now: i64) -> bool {
        self.claim(key, now, 0, true) == Reservation::Fresh
    }

    /// Reserves `key` unless it is kept, or reserved less than `lease_secs` ago.
    pub fn reserve(&self, key: Fingerprint, now: i64, lease_secs: i64) -> Reservation {
        self.claim(key, now, lease_secs, false)
    }

    /// Reserves (or, with `commit`, keeps) `key` under one lock.
    fn claim(&self, key: Fingerprint, now: i64, lease_secs: i64, commit: bool) -> Reservation {
        use std::collections::hash_map::Entry as Slot;
        let mut shard = self.shard(key);
        let window = self.window_secs;
        let fresh = Entry {
            at: now,
            committed: commit,
        };
        match shard.seen.entry(key) {
            Slot::Occupied(e) if e.get().committed && now - e.get().at <= window => {
                return Reservation::Duplicate;
            }
            Slot::Occupied(e) if !e.get().committed && now - e.get().at < lease_secs => {
                return Reservation::InFlight;
            }
            Slot::Occupied(mut e) => {
                e.insert(fresh);
            }
            Slot::Vacant(e) => {
                e.insert(fresh);
            }
        }
        self.sweep(&mut shard, now);
        Reservation::Fresh
    }

    /// Marks `key` as kept from `now`.
    pub fn commit(&self, key: Fingerprint, now: i64) {
        self.shard(key).seen.insert(
            key,
            Entry {
                at: now,
                committed: true,
            },
        );
    }

    /// Forgets `key` whatever its state.
    pub fn remove(&self, key: Fingerprint) {
        self.shard(key).seen.remove(&key);
    }

    /// Forgets `key` if it is only reserved.
    fn release(&self, key: Fingerprint) {
        let mut shard = self.shard(key);
        if shard.seen.get(&key).is_some_and(|e| !e.committed) {
            shard.seen.remove(&key);
        }
    }

    fn sweep(&self, shard: &mut Shard, now: i64) {
        // Expiry by the clock, every sixteenth of the window per shard, so the set holds one
        // window of deliveries (plus a sixteenth) whatever the rate; a sweep per N inserts let
        // it hold a rate-dependent extra. Each entry is visited 16 times per window: ~80 ns per
        // new event, 0.3 % of a core at 40,000 new events/s. `abs_diff`: a clock stepped back
        // must not stop the sweeps.
        if now.abs_diff(shard.swept_at) < self.sweep_every {
            return;
        }
        let window = self.window_secs;
        shard.swept_at = now;
        shard.seen.retain(|_, e| now - e.at <= window);
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

    /// Deliveries remembered now, expired ones included until their shard's next sweep.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).seen.len())
            .sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots allocated, for tests of the sizing.
    #[doc(hidden)]
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).seen.capacity())
            .sum()
    }
}

/// The in-memory [`Dedup`]: a [`Window`] of handled deliveries, kept twice the freshness
/// tolerance (a delivery older than that is refused as stale before it gets here), and a lease on
/// reservations so that one whose release never ran (a crashed handler thread) lapses.
///
/// One process only, and lost on restart: a retry that arrives after a restart is handled again.
/// Where that matters, implement [`Dedup`] over the service's own database.
#[derive(Debug)]
pub struct MemoryDedup {
    window: Window,
    lease_secs: i64,
}

impl MemoryDedup {
    /// How long a reservation holds off copies of its delivery: longer than Didit's 5 s timeout,
    /// shorter than its first retry about a minute later.
    pub const LEASE_SECS: i64 = 30;

    /// Remembers handled deliveries for `window_secs`.
    pub fn new(window_secs: i64) -> Self {
        MemoryDedup {
            window: Window::new(window_secs),
            lease_secs: Self::LEASE_SECS,
        }
    }

    /// Deliveries remembered now.
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }
}

impl Default for MemoryDedup {
    /// Twice the default tolerance of 300 s.
    fn default() -> Self {
        MemoryDedup::new(600)
    }
}

impl Dedup for MemoryDedup {
    type Error = std::convert::Infallible;

    async fn reserve(&self, key: &DedupKey<'_>, now: i64) -> Result<Reservation, Self::Error> {
        Ok(self.window.reserve(key.fingerprint(), now, self.lease_secs))
    }

    async fn commit(&self, key: &DedupKey<'_>, now: i64) -> Result<(), Self::Error> {
        self.window.commit(key.fingerprint(), now);
        Ok(())
    }

    fn release(&self, key: &DedupKey<'_>) {
        self.window.release(key.fingerprint());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    #[test]
    fn the_window_expires_by_the_clock_and_keeps_headroom() {
        let window = 32; // sweeps every 2 s
        let set = Window::new(window);
        let key = |i: usize| fingerprint(b'e', format!("event-{i:08x}").as_bytes());
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
        assert!(!set.contains(key(3_700), NOW + window + 7));
        assert!(set.contains(key(10_000), NOW + window + 7));
    }

    #[test]
    fn reserve_commit_release_follow_the_rule() {
        let w = Window::new(600);
        let k = fingerprint(b'e', b"evt-1");
        assert_eq!(w.reserve(k, NOW, 30), Reservation::Fresh);
        // A copy while the first is handled: retry later.
        assert_eq!(w.reserve(k, NOW + 1, 30), Reservation::InFlight);
        // The handler failed: released, so the retry is handled.
        w.release(k);
        assert_eq!(w.reserve(k, NOW + 60, 30), Reservation::Fresh);
        w.commit(k, NOW + 61);
        // Committed: a later copy is a duplicate, and release cannot undo a commit.
        w.release(k);
        assert_eq!(w.reserve(k, NOW + 120, 30), Reservation::Duplicate);
        assert!(w.contains(k, NOW + 120));
        // A reservation whose release never ran lapses after its lease.
        let lost = fingerprint(b'e', b"evt-2");
        assert_eq!(w.reserve(lost, NOW, 30), Reservation::Fresh);
        assert_eq!(w.reserve(lost, NOW + 29, 30), Reservation::InFlight);
        assert_eq!(w.reserve(lost, NOW + 30, 30), Reservation::Fresh);
        // A committed key expires with the window.
        assert_eq!(w.reserve(k, NOW + 61 + 601, 30), Reservation::Fresh);
    }

    #[test]
    fn fallback_keys_follow_the_contract_and_never_meet_event_ids() {
        let fallback = DedupKey::Fallback {
            session_id: "s-1",
            webhook_type: "status.updated",
            timestamp: 1_700_000_000,
        };
        assert_eq!(fallback.text(), "fallback:1700000000:status.updated:s-1");
        assert_eq!(DedupKey::EventId("e-1").text(), "event:e-1");
        let same_text = DedupKey::EventId("fallback:1700000000:status.updated:s-1");
        assert_ne!(fallback.fingerprint(), same_text.fingerprint());
    }
}

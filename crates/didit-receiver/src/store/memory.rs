//! The in-memory store: de-duplication and the latest status per session, nothing durable.
//!
//! A verified event is first checked against the recent-deliveries set, then queued for the
//! worker that applies it. The queue is bounded: when it is full the delivery is answered 503 with
//! `Retry-After`, is *not* remembered as seen, and Didit's retry brings it back.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use didit_webhook::{Envelope, Status, Verified, WebhookType};

use crate::process::{
    Fingerprint, FingerprintMap, Processor, RecentSet, SessionState, Submit, dedup_key, fingerprint,
};

/// A session's latest state as the table keeps it: the known statuses and types need no
/// allocation (an unknown one keeps its text).
#[derive(Clone, Debug)]
struct Latest {
    timestamp: i64,
    status: Status<'static>,
    webhook_type: Option<WebhookType<'static>>,
}

/// A session id's key in the table (see [`fingerprint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SessionKey(Fingerprint);

impl SessionKey {
    fn of(session_id: &str) -> Self {
        SessionKey(fingerprint(b'i', session_id.as_bytes()))
    }
}

type Sessions = FingerprintMap<SessionKey, Latest>;

#[derive(Debug)]
struct Update {
    session: SessionKey,
    latest: Latest,
}

/// How many sessions the in-memory processor remembers; past it the session first seen longest
/// ago is forgotten. Without a cap the table grows by one entry per new session forever (the
/// soak found it: +90 MiB in 30 s at 15,000 new sessions/s). The durable stores keep every
/// session on disk instead.
pub(crate) const MEMORY_SESSIONS: usize = 100_000;

/// In-memory processing: a de-duplication window and a worker thread that keeps the latest status
/// of the last [`MEMORY_SESSIONS`] sessions, ignoring deliveries older than what it already has
/// (Didit does not promise ordering). Nothing survives a restart; `store::sqlite` is the durable
/// one.
#[derive(Debug)]
pub(crate) struct MemoryProcessor {
    recent: RecentSet,
    tx: RwLock<Option<SyncSender<Update>>>,
    depth: Arc<AtomicUsize>,
    /// Queue depth at which a submit wakes the worker before its tick ends (half the capacity).
    nudge_at: usize,
    sessions: Arc<RwLock<Sessions>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_thread: Option<std::thread::Thread>,
}

/// How long the busy worker sleeps between batches. A worker blocked on the queue makes every
/// submit wake it (a futex call and two context switches: ~3 switches per event and a third of
/// the core at 38k fresh events/s on one core, measured with `perf stat`), so while events keep
/// coming it sleeps one tick and applies what queued meanwhile. It blocks again once a tick
/// brings nothing. Costs at most one tick before a status is readable; the answer to Didit does
/// not wait for it.
const TICK: std::time::Duration = std::time::Duration::from_millis(1);

impl MemoryProcessor {
    /// `capacity` bounds the queue; `window_secs` is how long a delivery is remembered (twice
    /// the freshness tolerance covers every retry that can still pass the freshness check).
    pub(crate) fn new(capacity: usize, window_secs: i64) -> Self {
        Self::with_session_cap(capacity, window_secs, MEMORY_SESSIONS)
    }

    /// As [`MemoryProcessor::new`], remembering at most `max_sessions` sessions.
    pub(crate) fn with_session_cap(capacity: usize, window_secs: i64, max_sessions: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        let sessions = Arc::new(RwLock::new(Sessions::default()));
        let depth = Arc::new(AtomicUsize::new(0));
        let worker = {
            let sessions = Arc::clone(&sessions);
            let depth = Arc::clone(&depth);
            std::thread::Builder::new()
                .name("didit-processor".into())
                .spawn(move || apply_loop(rx, &sessions, &depth, max_sessions.max(1)))
                .ok()
        };
        MemoryProcessor {
            recent: RecentSet::new(window_secs),
            tx: RwLock::new(Some(tx)),
            depth,
            nudge_at: capacity.max(1).div_ceil(2),
            sessions,
            worker_thread: worker.as_ref().map(|w| w.thread().clone()),
            worker: Mutex::new(worker),
        }
    }

    /// The latest state recorded for a session: what a team's handler reads. The receivers'
    /// contract has no read route, so only the tests call it here.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn session(&self, session_id: &str) -> Option<SessionState> {
        let map = self.sessions.read().unwrap_or_else(|p| p.into_inner());
        map.get(&SessionKey::of(session_id)).map(|l| SessionState {
            timestamp: l.timestamp,
            status: l.status.as_str().to_owned(),
            webhook_type: l
                .webhook_type
                .as_ref()
                .map_or_else(String::new, |w| w.as_str().to_owned()),
        })
    }
}

fn apply_loop(
    rx: Receiver<Update>,
    sessions: &RwLock<Sessions>,
    depth: &AtomicUsize,
    max_sessions: usize,
) {
    use std::sync::mpsc::TryRecvError;
    // Sessions in the order they were first seen: the front is forgotten first.
    let mut order: std::collections::VecDeque<SessionKey> = std::collections::VecDeque::new();
    let mut batch: Vec<Update> = Vec::new();
    // Idle: block until an event comes. Busy: take what queued each tick (see `TICK`).
    while let Ok(first) = rx.recv() {
        batch.push(first);
        loop {
            let open = loop {
                match rx.try_recv() {
                    Ok(u) => batch.push(u),
                    Err(TryRecvError::Empty) => break true,
                    Err(TryRecvError::Disconnected) => break false,
                }
            };
            if !batch.is_empty() {
                depth.fetch_sub(batch.len(), Relaxed);
                let mut map = sessions.write().unwrap_or_else(|p| p.into_inner());
                for u in batch.drain(..) {
                    apply(&mut map, &mut order, u, max_sessions);
                }
            } else if open {
                break;
            }
            if !open {
                return;
            }
            std::thread::park_timeout(TICK);
        }
    }
}

fn apply(
    map: &mut Sessions,
    order: &mut std::collections::VecDeque<SessionKey>,
    u: Update,
    max_sessions: usize,
) {
    match map.get(&u.session) {
        // An older delivery arriving late must not roll the session back.
        Some(cur) if cur.timestamp > u.latest.timestamp => {}
        Some(_) => {
            map.insert(u.session, u.latest);
        }
        None => {
            order.push_back(u.session);
            map.insert(u.session, u.latest);
            while map.len() > max_sessions {
                match order.pop_front() {
                    Some(oldest) => {
                        map.remove(&oldest);
                    }
                    None => break,
                }
            }
        }
    }
}

impl Processor for MemoryProcessor {
    fn submit(&self, event: &Verified<Envelope<'_>>, _body: &[u8], now_unix: i64) -> Submit {
        let key = dedup_key(event);
        if !self.recent.insert(key, now_unix) {
            return Submit::DUPLICATE;
        }
        let update = match (event.session_id(), event.status(), event.timestamp_secs()) {
            (Some(sid), Some(status), Some(ts)) => Some(Update {
                session: SessionKey::of(sid),
                latest: Latest {
                    timestamp: ts,
                    status: status.clone().into_owned(),
                    webhook_type: event.webhook_type().map(|w| w.clone().into_owned()),
                },
            }),
            // Entity and transaction events carry no session: de-duplicated and counted only.
            _ => None,
        };
        let Some(update) = update else {
            return Submit::ACCEPTED;
        };
        let tx = self.tx.read().unwrap_or_else(|p| p.into_inner());
        let sent = match tx.as_ref() {
            Some(tx) => {
                let depth = self.depth.fetch_add(1, Relaxed) + 1;
                match tx.try_send(update) {
                    Ok(()) => {
                        // A worker sleeping out its tick is woken before the queue fills.
                        if depth >= self.nudge_at
                            && let Some(t) = &self.worker_thread
                        {
                            t.unpark();
                        }
                        true
                    }
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        self.depth.fetch_sub(1, Relaxed);
                        false
                    }
                }
            }
            None => false,
        };
        if sent {
            Submit::ACCEPTED
        } else {
            // Forget it, so that Didit's retry is not mistaken for a duplicate.
            self.recent.remove(key);
            Submit::SATURATED
        }
    }

    fn queue_depth(&self) -> usize {
        self.depth.load(Relaxed)
    }

    fn drain(&self) {
        // Closing the channel lets the worker finish what is queued, then stop.
        self.tx.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::{NOW, with_event};
    use crate::ticket::Ack;

    #[test]
    fn duplicates_by_event_id_or_signature() {
        let p = MemoryProcessor::new(16, 600);
        let submit =
            |id, status| with_event(id, "s-1", status, NOW, |e| p.submit(e, b"", NOW).done());
        assert_eq!(submit(Some("e-1"), "Approved"), Some(Ack::Accepted));
        assert_eq!(submit(Some("e-1"), "Approved"), Some(Ack::Duplicate));
        assert_eq!(submit(Some("e-2"), "Approved"), Some(Ack::Accepted));
        // No event_id: the same body (same signature) is a duplicate, a different one is not.
        assert_eq!(submit(None, "Declined"), Some(Ack::Accepted));
        assert_eq!(submit(None, "Declined"), Some(Ack::Duplicate));
        assert_eq!(submit(None, "In Review"), Some(Ack::Accepted));
        // Past the window the key may come again.
        let later = with_event(Some("e-1"), "s-1", "Approved", NOW, |e| {
            p.submit(e, b"", NOW + 601).done()
        });
        assert_eq!(later, Some(Ack::Accepted));
    }

    #[test]
    fn latest_status_wins_and_late_deliveries_do_not_roll_back() {
        let p = MemoryProcessor::new(16, 600);
        with_event(Some("a"), "s-9", "In Progress", NOW - 10, |e| {
            p.submit(e, b"", NOW)
        });
        with_event(Some("b"), "s-9", "Approved", NOW, |e| p.submit(e, b"", NOW));
        with_event(Some("c"), "s-9", "Not Started", NOW - 20, |e| {
            p.submit(e, b"", NOW)
        });
        p.drain();
        let s = p.session("s-9").expect("recorded");
        assert_eq!((s.timestamp, s.status.as_str()), (NOW, "Approved"));
    }

    #[test]
    fn the_worker_applies_a_burst_then_wakes_for_the_next_event_when_idle() {
        let p = MemoryProcessor::new(8192, 600);
        let wait_for = |sid: &str| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while p.session(sid).is_none() {
                assert!(std::time::Instant::now() < deadline, "{sid} never applied");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        // A burst is applied in ticks, with the queue left open (no drain).
        for i in 0..500 {
            let (id, sid) = (format!("e-{i}"), format!("s-{i}"));
            with_event(Some(&id), &sid, "Approved", NOW, |e| p.submit(e, b"", NOW));
        }
        wait_for("s-499");
        assert!((0..500).all(|i| p.session(&format!("s-{i}")).is_some()));
        assert_eq!(p.queue_depth(), 0);
        // Once a tick brings nothing the worker blocks; the next event must still wake it.
        std::thread::sleep(TICK * 20);
        with_event(Some("late"), "s-late", "Declined", NOW, |e| {
            p.submit(e, b"", NOW)
        });
        wait_for("s-late");
    }

    #[test]
    fn the_session_table_is_bounded_and_forgets_the_oldest_first() {
        let p = MemoryProcessor::with_session_cap(64, 600, 3);
        for (i, sid) in ["s-1", "s-2", "s-3", "s-4"].iter().enumerate() {
            let id = format!("e-{i}");
            with_event(Some(&id), sid, "Approved", NOW, |e| p.submit(e, b"", NOW));
        }
        // An update to a remembered session does not make room or evict.
        with_event(Some("e-9"), "s-2", "Declined", NOW + 1, |e| {
            p.submit(e, b"", NOW)
        });
        p.drain();
        assert!(p.session("s-1").is_none(), "the oldest session was kept");
        assert_eq!(p.session("s-2").map(|s| s.status), Some("Declined".into()));
        assert!(p.session("s-3").is_some() && p.session("s-4").is_some());
    }

    #[test]
    fn a_full_queue_refuses_and_forgets() {
        let p = MemoryProcessor::new(1, 600);
        // Stop the worker so the queue stays full.
        p.tx.write().unwrap_or_else(|e| e.into_inner()).take();
        let r = with_event(Some("x"), "s-1", "Approved", NOW, |e| {
            p.submit(e, b"", NOW).done()
        });
        assert_eq!(r, Some(Ack::Saturated));
        // Not remembered: a retry is not reported as a duplicate.
        assert_eq!(p.recent.len(), 0);
    }
}

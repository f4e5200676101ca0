//! The embedded durable store: one SQLite file ([`Db`](super::db::Db)) in WAL mode, written by
//! one thread in batches.
//!
//! Requests hand their event to a bounded queue. The writer takes everything waiting (up to
//! [`MAX_BATCH`]), inserts it in one transaction and commits with `synchronous=FULL`, so one
//! fsync covers the whole batch (group commit). With `--ack after-commit` each request is answered
//! only after the commit holding its event returned; a failed commit answers 503 and keeps
//! nothing, so Didit retries.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use didit_webhook::{Envelope, Verified};

use super::db::{Db, StoreError};
use super::durable::{AckMode, Job, JobQueue, submit_durable};
use crate::process::{Processor, RecentSet, Submit};
use crate::ticket::Ack;

/// Most events committed in one transaction.
pub(crate) const MAX_BATCH: usize = 1024;

/// The SQLite processing stage: a bounded queue in front of one group-committing writer thread.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    recent: Arc<RecentSet>,
    queue: JobQueue,
    mode: AckMode,
    closing: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` and starts its writer.
    pub(crate) fn open(
        path: &Path,
        mode: AckMode,
        capacity: usize,
        window_secs: i64,
    ) -> Result<Self, StoreError> {
        let db = Db::open(path)?;
        // A file-size limit (RLIMIT_FSIZE) would otherwise kill the process with SIGXFSZ; with the
        // signal caught the write fails with EFBIG, which is answered 503 like a full disk.
        let _ = signal_hook::flag::register(
            signal_hook::consts::SIGXFSZ,
            Arc::new(AtomicBool::new(false)),
        );
        let (queue, rx, depth) = JobQueue::new(capacity);
        let recent = Arc::new(RecentSet::new(window_secs));
        let closing = Arc::new(AtomicBool::new(false));
        let worker = {
            let w = Writer {
                db,
                recent: Arc::clone(&recent),
                depth,
                closing: Arc::clone(&closing),
                mode,
                failing: false,
            };
            std::thread::Builder::new()
                .name("didit-sqlite".into())
                .spawn(move || w.run(rx))
                .map_err(|e| StoreError::CreateDir(path.into(), e))?
        };
        tracing::info!(path = %path.display(), ack = ?mode, "SQLite store open");
        Ok(SqliteStore {
            recent,
            queue,
            mode,
            closing,
            worker: Mutex::new(Some(worker)),
        })
    }
}

impl Processor for SqliteStore {
    fn submit(&self, event: &Verified<Envelope<'_>>, body: &[u8], now_unix: i64) -> Submit {
        submit_durable(&self.recent, self.mode, event, body, now_unix, |job| {
            self.queue.push(job)
        })
    }

    fn queue_depth(&self) -> usize {
        self.queue.depth()
    }

    fn drain(&self) {
        self.closing.store(true, Relaxed);
        self.queue.close();
        if let Some(w) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
    }
}

struct Writer {
    db: Db,
    recent: Arc<RecentSet>,
    depth: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    mode: AckMode,
    /// The last commit failed: log the recovery once it works again.
    failing: bool,
}

impl Writer {
    fn run(mut self, rx: flume::Receiver<Job>) {
        let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(j) => batch.push(j),
                Err(flume::RecvTimeoutError::Timeout) => continue,
                Err(flume::RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            self.depth.fetch_sub(batch.len(), Relaxed);
            self.commit(&mut batch);
        }
        if let Err(e) = self.db.flush_sessions() {
            // Not lost: the next start replays these from the events table.
            tracing::warn!(error = %e, "session table not brought up to date at shutdown");
        }
    }

    fn commit(&mut self, batch: &mut Vec<Job>) {
        let mut attempts = 0u32;
        loop {
            match self.db.apply(batch.iter().map(|j| &j.record)) {
                Ok(fresh) => {
                    if self.failing {
                        tracing::warn!("SQLite store writable again: acknowledging deliveries");
                        self.failing = false;
                    }
                    for (job, new) in batch.drain(..).zip(fresh) {
                        if self.mode == AckMode::AfterCommit {
                            // Stored now: later retries are answered from memory.
                            self.recent.insert(job.key, job.record.received_at);
                        }
                        if let Some(done) = job.done {
                            done.complete(if new { Ack::Accepted } else { Ack::Duplicate });
                        }
                    }
                    return;
                }
                Err(e) => {
                    if !self.failing {
                        tracing::error!(
                            error = %e,
                            "SQLite commit failed: answering 503 until the store is writable again"
                        );
                        self.failing = true;
                    }
                    match self.mode {
                        AckMode::AfterCommit => {
                            // Nothing was kept; every waiting request answers 503.
                            for job in batch.drain(..) {
                                if let Some(done) = job.done {
                                    done.complete(Ack::Saturated);
                                }
                            }
                            return;
                        }
                        AckMode::AfterEnqueue => {
                            // These were acknowledged already: keep trying while the queue in
                            // front fills up (and answers 503), give up only at shutdown.
                            attempts += 1;
                            if self.closing.load(Relaxed) && attempts >= 10 {
                                tracing::error!(
                                    lost = batch.len(),
                                    "shutting down with acknowledged events that could not be stored"
                                );
                                batch.clear();
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::{NOW, with_event};
    use crate::store::db::tests::temp_db;

    fn settle(s: Submit) -> Ack {
        match s {
            Submit::Done(a) => a,
            Submit::Pending(t) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                rt.block_on(t)
            }
        }
    }

    #[test]
    fn after_commit_answers_once_stored() {
        let path = temp_db("commit");
        let store = SqliteStore::open(&path, AckMode::AfterCommit, 64, 600).expect("opens");
        let submit = |id: &str, status| {
            with_event(Some(id), "s-7", status, NOW, |e| {
                let s = store.submit(e, br#"{"raw":1}"#, NOW);
                assert!(matches!(s, Submit::Pending(_)) || s.done() == Some(Ack::Duplicate));
                settle(s)
            })
        };
        assert_eq!(submit("e-1", "Approved"), Ack::Accepted);
        // Answered from memory now that it is stored.
        assert_eq!(submit("e-1", "Approved"), Ack::Duplicate);
        assert_eq!(submit("e-2", "Declined"), Ack::Accepted);
        // Stored on answer, before drain: another connection sees it.
        let ro = Db::open_read_only(&path).expect("opens");
        assert_eq!(ro.event_ids().expect("ids"), vec!["e-1", "e-2"]);
        assert_eq!(ro.body("e-1").expect("q"), Some(br#"{"raw":1}"#.to_vec()));
        assert_eq!(store.queue_depth(), 0, "answered, so no longer queued");
        store.drain();

        // After a restart the memory is empty, the table is not: a retry is a duplicate.
        let store = SqliteStore::open(&path, AckMode::AfterCommit, 64, 600).expect("reopens");
        let again = with_event(Some("e-1"), "s-7", "Approved", NOW, |e| {
            settle(store.submit(e, b"{}", NOW))
        });
        assert_eq!(again, Ack::Duplicate);
        store.drain();
        assert_eq!(
            Db::open_read_only(&path)
                .expect("o")
                .event_count()
                .expect("n"),
            2
        );
    }

    #[test]
    fn after_enqueue_answers_at_once_and_stores_by_drain() {
        let path = temp_db("enqueue");
        let store = SqliteStore::open(&path, AckMode::AfterEnqueue, 64, 600).expect("opens");
        for i in 0..20 {
            let r = with_event(Some(&format!("q-{i}")), "s-1", "Approved", NOW + i, |e| {
                store.submit(e, b"{}", NOW).done()
            });
            assert_eq!(r, Some(Ack::Accepted));
        }
        let dup = with_event(Some("q-3"), "s-1", "Approved", NOW + 3, |e| {
            store.submit(e, b"{}", NOW).done()
        });
        assert_eq!(dup, Some(Ack::Duplicate));
        store.drain();
        assert_eq!(store.queue_depth(), 0, "the writer took everything queued");
        let db = Db::open_read_only(&path).expect("opens");
        assert_eq!(db.event_count().expect("n"), 20);
        assert_eq!(
            db.session("s-1").expect("q").map(|s| s.timestamp),
            Some(NOW + 19)
        );
    }
}

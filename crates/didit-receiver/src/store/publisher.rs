//! The processing stage both broker stores share (NATS JetStream, RabbitMQ): a bounded queue in
//! front of a publisher task on its own small tokio runtime (so the may server, which has none,
//! can use it too). Each event is published with many others in flight, and its request answered
//! by what the broker said: only a positive acknowledgement is a 200.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use didit_webhook::{Envelope, Verified};

use super::durable::{AckMode, Job, JobQueue, Record, submit_durable};
use crate::process::{Processor, RecentSet, Submit};
use crate::ticket::Ack;

/// One broker's publish: send the record and wait for the broker's acknowledgement.
pub(crate) trait Publish: Send + Sync + 'static {
    /// `Ok(true)` when the broker reports the record as one it already has (JetStream's
    /// de-duplication); any error answers 503.
    fn publish(&self, record: &Record) -> impl Future<Output = anyhow::Result<bool>> + Send;
}

/// A broker store: the request side ([`submit_durable`]) and the publisher task.
#[derive(Debug)]
pub(crate) struct PublishingStore {
    recent: Arc<RecentSet>,
    queue: JobQueue,
    mode: AckMode,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// How long in-flight acknowledgements may take at shutdown.
    grace: Duration,
}

impl PublishingStore {
    /// Starts publishing with `publisher` on `runtime` (already connected by the caller).
    pub(crate) fn start<P: Publish>(
        runtime: tokio::runtime::Runtime,
        publisher: P,
        mode: AckMode,
        capacity: usize,
        window_secs: i64,
        grace: Duration,
    ) -> Self {
        let (queue, rx, depth) = JobQueue::new(capacity);
        let recent = Arc::new(RecentSet::new(window_secs));
        let task = runtime.spawn(publish_loop(
            Arc::new(publisher),
            rx,
            Arc::clone(&recent),
            depth,
            mode,
        ));
        PublishingStore {
            recent,
            queue,
            mode,
            runtime: Mutex::new(Some(runtime)),
            task: Mutex::new(Some(task)),
            grace,
        }
    }
}

/// A one-thread runtime for a broker client.
pub(crate) fn client_runtime(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("starting the {name} client runtime"))
}

async fn publish_loop<P: Publish>(
    publisher: Arc<P>,
    rx: flume::Receiver<Job>,
    recent: Arc<RecentSet>,
    depth: Arc<AtomicUsize>,
    mode: AckMode,
) {
    while let Ok(job) = rx.recv_async().await {
        depth.fetch_sub(1, Relaxed);
        let publisher = Arc::clone(&publisher);
        let recent = Arc::clone(&recent);
        // Each publish waits for its own acknowledgement; many are in flight at once.
        tokio::spawn(async move {
            // An after-enqueue event was answered 200 already: try hard before losing it.
            let tries = if mode == AckMode::AfterEnqueue { 30 } else { 1 };
            for attempt in 1..=tries {
                match publisher.publish(&job.record).await {
                    Ok(duplicate) => {
                        if mode == AckMode::AfterCommit {
                            recent.insert(job.key, job.record.received_at);
                        }
                        if let Some(done) = job.done {
                            done.complete(if duplicate {
                                Ack::Duplicate
                            } else {
                                Ack::Accepted
                            });
                        }
                        return;
                    }
                    Err(e) if attempt == tries => {
                        if mode == AckMode::AfterEnqueue {
                            tracing::error!(error = %format!("{e:#}"), key = %job.record.dedup_key,
                                "an acknowledged event could not be published: lost");
                        } else {
                            tracing::debug!(error = %format!("{e:#}"), "publish failed: answering 503");
                        }
                        // Dropping the completer answers 503.
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
    }
}

impl Processor for PublishingStore {
    fn submit(&self, event: &Verified<Envelope<'_>>, body: &[u8], now_unix: i64) -> Submit {
        submit_durable(&self.recent, self.mode, event, body, now_unix, |job| {
            self.queue.push(job)
        })
    }

    fn queue_depth(&self) -> usize {
        self.queue.depth()
    }

    fn drain(&self) {
        self.queue.close();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            if let Some(t) = task {
                let _ = rt.block_on(t);
            }
            // Let in-flight acknowledgements arrive, then stop.
            rt.shutdown_timeout(self.grace);
        }
    }
}

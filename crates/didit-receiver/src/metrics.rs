//! Prometheus metrics, lock-free on the request path.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

pub use didit_webhook::Outcome;

/// Upper bounds of the latency histogram, in microseconds.
const BUCKETS_US: [u64; 13] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Debug)]
pub struct Metrics {
    outcomes: [AtomicU64; Outcome::COUNT],
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    in_flight: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
        }
    }
}

/// Counts a request as in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self)
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    pub fn record(&self, outcome: Outcome, elapsed: Duration) {
        self.outcomes[outcome.index()].fetch_add(1, Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let b = BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[b].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()].load(Relaxed)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, queue_depth: usize) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP didit_webhooks_total Webhook requests by outcome.\n");
        out.push_str("# TYPE didit_webhooks_total counter\n");
        for (i, label) in Outcome::labels().enumerate() {
            let _ = writeln!(
                out,
                "didit_webhooks_total{{outcome=\"{label}\"}} {}",
                self.outcomes[i].load(Relaxed)
            );
        }
        out.push_str("# HELP didit_request_duration_seconds Time to answer a webhook request, from its head to its response.\n");
        out.push_str("# TYPE didit_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, le) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "didit_request_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *le as f64 / 1e6
            );
        }
        cumulative += self.buckets[BUCKETS_US.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "didit_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "didit_request_duration_seconds_sum {}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "didit_request_duration_seconds_count {cumulative}");
        out.push_str("# HELP didit_requests_in_flight Requests being handled now.\n");
        out.push_str("# TYPE didit_requests_in_flight gauge\n");
        let _ = writeln!(out, "didit_requests_in_flight {}", self.in_flight());
        out.push_str(
            "# HELP didit_processing_queue_depth Verified events waiting for processing.\n",
        );
        out.push_str("# TYPE didit_processing_queue_depth gauge\n");
        let _ = writeln!(out, "didit_processing_queue_depth {queue_depth}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_counter() {
        let m = Metrics::default();
        let outcomes: Vec<Outcome> = Outcome::all().collect();
        for (i, o) in outcomes.iter().enumerate() {
            for _ in 0..=i {
                m.record(*o, Duration::from_micros(70));
            }
        }
        for (i, o) in outcomes.iter().enumerate() {
            assert_eq!(m.count(*o), i as u64 + 1, "{o:?}");
        }
        let text = m.render(3);
        assert!(text.contains("didit_webhooks_total{outcome=\"invalid_signature\"}"));
        assert!(text.contains("didit_request_duration_seconds_bucket{le=\"0.0001\"}"));
        assert!(text.contains("didit_processing_queue_depth 3"));
        let total: usize = (1..=outcomes.len()).sum();
        assert!(text.contains(&format!("didit_request_duration_seconds_count {total}")));
    }
}

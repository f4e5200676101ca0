//! Live progress: a bar with the rate on a terminal, plain periodic lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Counters the engines bump; read by the progress display.
#[derive(Debug, Default)]
pub struct Live {
    pub answered: AtomicU64,
    pub mismatches: AtomicU64,
    pub errors: AtomicU64,
}

/// Shows a run's progress on stderr.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    live: Arc<Live>,
    start: Instant,
    total: Duration,
    last_line: Instant,
    last_count: u64,
    last_at: Instant,
    every: Duration,
    quiet: bool,
}

impl Progress {
    /// `total` is warm-up plus measured time; `quiet` prints nothing.
    pub fn new(what: &str, total: Duration, live: Arc<Live>, quiet: bool) -> Progress {
        let now = Instant::now();
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total.as_millis() as u64);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed}/{duration} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(what.to_owned());
            b
        });
        if !quiet && bar.is_none() {
            eprintln!("{what}: running for {:.1} s", total.as_secs_f64());
        }
        Progress {
            bar,
            live,
            start: now,
            total,
            last_line: now,
            last_count: 0,
            last_at: now,
            every: (total / 10).clamp(Duration::from_secs(1), Duration::from_secs(10)),
            quiet,
        }
    }

    /// Updates the display; call a few times a second.
    pub fn tick(&mut self) {
        if self.quiet {
            return;
        }
        let now = Instant::now();
        let n = self.live.answered.load(Relaxed);
        let dt = now.duration_since(self.last_at).as_secs_f64();
        let msg = format!(
            "{:>8.0} req/s  {} answered  {} mismatches  {} errors",
            if dt > 0.0 {
                (n - self.last_count) as f64 / dt
            } else {
                0.0
            },
            n,
            self.live.mismatches.load(Relaxed),
            self.live.errors.load(Relaxed)
        );
        match &self.bar {
            Some(b) => {
                b.set_position(now.duration_since(self.start).as_millis() as u64);
                b.set_message(msg);
            }
            None if now.duration_since(self.last_line) >= self.every => {
                eprintln!(
                    "  {:>5.1}/{:.1} s {msg}",
                    now.duration_since(self.start).as_secs_f64(),
                    self.total.as_secs_f64()
                );
                self.last_line = now;
            }
            None => return,
        }
        self.last_count = n;
        self.last_at = now;
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

//! Instructions per request: a layer's receiver run under Callgrind, sent fresh deliveries one
//! at a time on one keep-alive connection, its counters zeroed after a warm-up and dumped after
//! a fixed count. Unlike CPU time this does not move with the machine's noise, so two builds
//! compare to the instruction; but it counts what valgrind's virtual CPU executes (ring and the
//! SIMD parsers pick their code paths by the CPU features it reports) and nothing of cache
//! misses or the kernel, so it ranks layers rather than timing them.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use didit_loadgen::scenario::Scenario;
use didit_loadgen::{Acked, Class, Generator, PayloadKind, Templates};
use didit_webhook::{Clock, SystemClock};

use crate::harness::{Harness, SECRET, command};
use crate::matrix::Variant;
use crate::verify::wire;

/// Requests sent before the counters are zeroed: connection set-up, first-touch allocations,
/// lazily built tables.
pub const WARMUP_REQUESTS: usize = 200;

/// Longest wait for one answer: a receiver under valgrind runs tens of times slower.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// What every count needs: the traffic model and a harness to start receivers under valgrind.
#[derive(Debug)]
pub struct Counter {
    harness: Harness,
    templates: Arc<Templates>,
    scenario: Scenario,
    requests: usize,
    dir: PathBuf,
}

impl Counter {
    /// `harness` as the timed rounds use it, the traffic model they send; `requests` counted per
    /// layer after the warm-up.
    pub fn new(
        harness: &Harness,
        scenario: Scenario,
        templates: Arc<Templates>,
        requests: usize,
    ) -> Result<Counter, String> {
        let found = command("valgrind").arg("--version").output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Err(
                "valgrind is not installed (Debian: apt-get install valgrind); \
                        run without --callgrind, or install it"
                    .into(),
            );
        }
        let dir =
            std::env::temp_dir().join(format!("webhook-bench-callgrind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut harness = harness.clone();
        harness.wrap = vec![
            "valgrind".into(),
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}/callgrind.out.%p", dir.display()),
        ];
        Ok(Counter {
            harness,
            templates,
            scenario,
            requests,
            dir,
        })
    }

    /// Requests counted per layer.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Instructions per request of `v` answering fresh Approved deliveries on `path`.
    pub fn count(&self, v: &Variant, path: &str) -> Result<f64, String> {
        let rx = self.harness.start(v)?;
        let pid = rx.process().map(|p| p.pid()).ok_or("no receiver process")?;
        let result = self.drive(&rx.addr, path, pid);
        rx.stop();
        result
    }

    fn drive(&self, addr: &str, path: &str, pid: u32) -> Result<f64, String> {
        let mut g = Generator::new(
            self.templates.clone(),
            &self.scenario,
            &didit_webhook::Secret::new(SECRET).expect("a non-empty secret"),
            Acked::shared(),
            u64::from(pid),
        );
        let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        let mut r = BufReader::new(s);
        let mut send = |n: usize| -> Result<(), String> {
            for _ in 0..n {
                let d = g.make_kind(Class::Valid, PayloadKind::Approved, SystemClock.now_unix());
                w.write_all(&wire::request(path, addr, &d))
                    .map_err(|e| format!("write: {e}"))?;
                let a = wire::read_response(&mut r)?;
                if a.status != 200 {
                    return Err(format!(
                        "a fresh valid delivery was answered {} ({})",
                        a.status,
                        String::from_utf8_lossy(&a.body)
                    ));
                }
            }
            Ok(())
        };
        send(WARMUP_REQUESTS)?;
        control(pid, "-z")?;
        send(self.requests)?;
        control(pid, "-d")?;
        let ir = total_instructions(&self.dir, pid)?;
        Ok(ir as f64 / self.requests as f64)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `callgrind_control FLAG PID`: `-z` zeroes the counters, `-d` dumps them to a file.
fn control(pid: u32, flag: &str) -> Result<(), String> {
    let out = command("callgrind_control")
        .args([flag, &pid.to_string()])
        .output()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {flag} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The instructions (`Ir`) in the dump `callgrind_control -d` wrote for `pid`: its `totals:`
/// line (the `.1` file: the first dump).
fn total_instructions(dir: &Path, pid: u32) -> Result<u64, String> {
    let path = dir.join(format!("callgrind.out.{pid}.1"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_totals(&text).ok_or_else(|| format!("{}: no `totals:` line", path.display()))
}

/// The first event's count on a Callgrind profile's `totals:` line (else its `summary:`).
pub fn parse_totals(profile: &str) -> Option<u64> {
    let first = |key: &str| {
        profile
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    first("totals:").or_else(|| first("summary:"))
}

#[cfg(test)]
mod tests {
    use super::parse_totals;

    #[test]
    fn reads_the_instruction_total_of_a_dump() {
        let dump = "# callgrind format\nversion: 1\nevents: Ir\nfn=main\n3 10\nsummary: 3503893\ntotals: 3504014\n";
        assert_eq!(parse_totals(dump), Some(3_504_014));
        assert_eq!(parse_totals("events: Ir\nsummary: 12 7\n"), Some(12));
        assert_eq!(parse_totals("events: Ir\n"), None);
    }
}

//! Shared by the end-to-end tests: start a `didit-receiver` process on a loopback port it picks,
//! talk HTTP/1.1 to it over raw TCP, stop it with SIGTERM.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "conformance-secret-not-a-real-key";
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The backend pairs (HMAC, JSON) a server runs in the behaviour suites: every pair, except for
/// the naive peer, which is fixed to hmac+sha2 and serde_json::Value and ignores the flags.
pub fn backend_pairs(server: &str) -> Vec<(&'static str, &'static str)> {
    if server == "axum-naive" {
        return vec![("ring", "serde")];
    }
    let mut v = Vec::new();
    for m in ["ring", "rustcrypto", "aws-lc"] {
        for j in ["serde", "simd", "sonic"] {
            v.push((m, j));
        }
    }
    v
}

/// Raw HTTP/1.1 over TCP, shared with `webhook-bench verify` (each test binary uses a part).
#[allow(unused_imports)]
pub use webhook_bench::verify::wire::{Response, read_response, send};

pub struct Receiver {
    child: Child,
    pub addr: SocketAddr,
    pub label: String,
}

impl Receiver {
    pub fn start(server: &str, hmac: &str, json: &str, extra: &[&str]) -> Receiver {
        Receiver::try_start(server, hmac, json, extra, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a receiver; `stderr` captures its log in a file instead of the test's output.
    pub fn try_start(
        server: &str,
        hmac: &str,
        json: &str,
        extra: &[&str],
        stderr: Option<std::fs::File>,
    ) -> Result<Receiver, String> {
        let label = format!("{server}/{hmac}/{json} {}", extra.join(" "));
        let mut child = Command::new(env!("CARGO_BIN_EXE_didit-receiver"))
            .args([
                "--server",
                server,
                "--hmac",
                hmac,
                "--json",
                json,
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "1",
            ])
            .args([
                "--enable-null-endpoint",
                "--max-body",
                "64KiB",
                "--header-timeout",
                "1s",
                "--body-timeout",
                "1s",
            ])
            // In memory unless the test picks a store: receivers run side by side.
            .args(if extra.contains(&"--store") {
                &[][..]
            } else {
                &["--store", "memory"][..]
            })
            .args(extra)
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", "warn,may_minihttp=off")
            .stdout(Stdio::piped())
            .stderr(stderr.map_or_else(Stdio::inherit, Stdio::from))
            .spawn()
            .map_err(|e| format!("{label}: cannot start: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let announced = webhook_bench::harness::announced_addr(stdout, Duration::from_secs(20));
        match announced.as_deref().map(str::parse) {
            Ok(Ok(addr)) => Ok(Receiver { child, addr, label }),
            _ => {
                let line = announced.unwrap_or_else(|l| l);
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(format!(
                    "{label}: no `listening on` line within 20 s (first line {line:?}, {status})"
                ))
            }
        }
    }

    /// Whether the process still runs (not exited, not a zombie awaiting `wait`).
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            })
            .unwrap_or(false)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the process must exit 0 on its own (graceful shutdown).
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "{}: exited with {status} after SIGTERM",
                        self.label
                    );
                    return;
                }
                _ if Instant::now() > deadline => {
                    let metrics = send(self.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                        .map(|r| {
                            String::from_utf8_lossy(&r.body)
                                .lines()
                                .filter(|l| {
                                    l.starts_with("didit_requests_in_flight")
                                        || l.contains("_total")
                                })
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_else(|e| e);
                    let _ = self.child.kill();
                    panic!(
                        "{}: did not exit within 25 s of SIGTERM; metrics:\n{metrics}",
                        self.label
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

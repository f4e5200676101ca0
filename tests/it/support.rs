//! Shared by the end-to-end tests: start a `didit-receiver` process on a loopback port it picks
//! (through `webhook_bench::harness`, as the runner does), talk HTTP/1.1 to it over raw TCP,
//! stop it with SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use webhook_bench::harness::{Launch, Log, Process};

pub const SECRET: &str = "conformance-secret-not-a-real-key";

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

/// A binary of the target folder this test was built in: the workspace's `didit-receiver`,
/// `didit-loadgen` and `webhook-bench` (each in its own package, so Cargo's `CARGO_BIN_EXE_*`
/// does not reach them), or an example service. `cargo test --workspace` builds the workspace's;
/// a narrower `cargo test` needs `cargo build --workspace --bins` first (`scripts/test.sh` does
/// both, and builds `examples/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/<profile>/deps/it-<hash> -> <target>/<profile>/<name>
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .expect("a target folder");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --workspace --bins` (and, for an example, `cargo build \
         --locked --manifest-path examples/Cargo.toml` with the same CARGO_TARGET_DIR) first; \
         `bash scripts/test.sh` does both",
        bin.display()
    );
    bin
}

/// A fresh empty folder under the system's temporary folder, unique to this call (tests run in
/// parallel): a working folder with none of the checkout's files, or an install folder.
pub fn empty_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("didit-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// Raw HTTP/1.1 over TCP, shared with `webhook-bench verify`.
pub use webhook_bench::verify::wire::{Response, read_response, send};

/// A `didit-receiver` started through the harness the runner uses; killed when dropped.
pub struct Receiver {
    process: Process,
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
        let process = Launch::new(label.clone(), crate::support::bin("didit-receiver"))
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
            .log(stderr.map_or(Log::Inherit, Log::File))
            .start()?;
        Ok(Receiver {
            addr: process.addr,
            process,
            label,
        })
    }

    /// Whether the process still runs (not exited).
    pub fn alive(&self) -> bool {
        self.process.alive()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill9(mut self) {
        self.process.kill();
    }

    /// SIGTERM, then the process must exit 0 on its own (graceful shutdown).
    pub fn stop(mut self) {
        match self.process.terminate(Duration::from_secs(25)) {
            Some(status) => assert!(
                status.success(),
                "{}: exited with {status} after SIGTERM",
                self.label
            ),
            None => {
                let metrics = send(self.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .map(|r| {
                        String::from_utf8_lossy(&r.body)
                            .lines()
                            .filter(|l| {
                                l.starts_with("didit_requests_in_flight") || l.contains("_total")
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_else(|e| e);
                panic!(
                    "{}: did not exit within 25 s of SIGTERM; metrics:\n{metrics}",
                    self.label
                );
            }
        }
    }
}

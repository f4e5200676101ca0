//! The one process harness: every place that starts something under test — the runner, the
//! soak, `verify --receiver`, the end-to-end tests — starts it here.
//!
//! [`process`] spawns a process, pins it, waits until it is ready and tears it down (with its
//! process group when it has one); [`receiver`] builds on it for receivers of every kind: a
//! built-in variant with the throwaway broker or SQLite file its store needs, a command written
//! elsewhere, or a receiver that is already running; [`broker`] runs the throwaway brokers the
//! durable variants and the tests need; [`generator`] runs the load generator against them, and
//! [`machine`] records where a run was made.

pub mod broker;
pub mod cpus;
pub mod generator;
pub mod machine;
pub mod process;
pub mod provenance;
pub mod receiver;

pub use cpus::CpuSet;
pub use generator::{Generator, first_mismatch};
pub use machine::{cpu_model, hostname, machine_cores};
pub use process::{Launch, Log, Process, Ready, command, last_lines};
pub use provenance::{BuildInfo, Provenance, build_of, now_utc, today_utc};
pub use receiver::{Harness, Receiver, SECRET};

use std::io::{BufRead, BufReader};
use std::process::ChildStdout;
use std::time::Duration;

/// `n` distinct free loopback ports. The listeners are all held until every port is chosen, so
/// no two coincide; the kernel may still hand one to another process before the caller binds it,
/// which is why a cluster start retries with fresh ports.
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("no free loopback port: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// One free loopback port (see [`free_ports`]).
pub fn free_port() -> Result<u16, String> {
    Ok(free_ports(1)?[0])
}

/// The address a process announces on its first stdout line (`listening on <addr>`), waited for
/// at most `within`; `Err` holds the line it printed instead (empty if none in time).
pub fn announced_addr(stdout: ChildStdout, within: Duration) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    // A thread, so that a process that prints nothing cannot block past the deadline.
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(within).unwrap_or_default();
    match line.trim().strip_prefix("listening on ") {
        Some(addr) => Ok(addr.to_owned()),
        None => Err(line),
    }
}

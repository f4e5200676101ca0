//! What every place that starts a receiver needs: its `listening on <addr>` line. The runner,
//! the soak and the end-to-end tests all start receivers (ours, the peers, test doubles) that
//! announce their address on the first line of stdout.

use std::io::{BufRead, BufReader};
use std::process::ChildStdout;
use std::time::Duration;

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

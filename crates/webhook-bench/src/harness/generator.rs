//! The load generator as the runner, the soak and `cost` invoke it: `didit-loadgen` pinned to
//! its own cores, pointed at a started receiver, its typed report read back.

use std::path::PathBuf;

use didit_loadgen::Report;

use super::{CpuSet, Receiver, SECRET, command, last_lines};

/// Where `didit-loadgen` is, the cores it is pinned to and its HTTP client.
#[derive(Clone, Debug)]
pub struct Generator {
    pub bin_dir: PathBuf,
    pub cpus: CpuSet,
    /// The open-loop engine's client (`raw` or `hyper`).
    pub http: String,
}

impl Generator {
    /// One bounded run against `rx` with `threads` engine threads and the flags `args`: its
    /// report, or why there is none. `tag` keeps concurrent report files apart.
    pub fn run(
        &self,
        rx: &Receiver,
        args: &[String],
        threads: usize,
        tag: &str,
    ) -> Result<Report, String> {
        let report =
            std::env::temp_dir().join(format!("webhook-bench-{}-{tag}.json", std::process::id()));
        let _ = std::fs::remove_file(&report);
        let out = command("taskset")
            .arg("-c")
            .arg(self.cpus.to_string())
            .arg(self.bin_dir.join("didit-loadgen"))
            .args(args)
            .args(["--threads", &threads.max(1).to_string()])
            .args(["--target", &format!("http://{}", rx.addr)])
            .args(rx.cpu_args())
            // A receiver written elsewhere answers with bodies of its own: judged by status.
            .args(["--judge", rx.judge()])
            .args(["--http", &self.http, "--quiet", "--report"])
            .arg(&report)
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .output()
            .map_err(|e| format!("cannot run didit-loadgen: {e}"))?;
        // Exit 1 (mismatches) still writes a report; 2 is a setup error.
        let text = std::fs::read(&report).map_err(|_| {
            format!(
                "didit-loadgen wrote no report ({}): {}",
                out.status,
                last_lines(&String::from_utf8_lossy(&out.stderr), 3)
            )
        })?;
        let _ = std::fs::remove_file(&report);
        Report::from_json(&text).map_err(|e| format!("{}: {e}", report.display()))
    }
}

/// A wrong answer from a report, for a message: what was expected and what came back.
pub fn first_mismatch(r: &Report) -> String {
    r.mismatch_examples.first().map_or_else(
        || "no example kept".into(),
        |m| {
            format!(
                "{} ({}) expected {} {}, got {} {:?}",
                m.class, m.kind, m.expected_status, m.expected, m.got_status, m.got_body
            )
        },
    )
}

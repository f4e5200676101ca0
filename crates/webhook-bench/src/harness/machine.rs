//! The machine a run is made on, read from `/proc` and the binaries measured (no `date`,
//! `hostname` or `git` is spawned), and the record a run keeps of it.

use std::path::Path;

use crate::results::RunInfo;

/// The cores this machine has (all of them, not only those this process may use).
pub fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The host's name, for run and soak folder names.
pub fn hostname() -> String {
    proc_line("/proc/sys/kernel/hostname").unwrap_or_else(|| "host".into())
}

/// The CPU model, from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn proc_line(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

impl RunInfo {
    /// Where and when, and what was measured: the time, the machine, and the git commit, rustc
    /// and crates of the binaries in `bin_dir` (from their builds, not from the working
    /// directory's git, PATH's rustc or a lock file). The id is `<date>-<host>`; the plan's own
    /// fields (command, cores, repeats) are the caller's to fill.
    pub fn now(bin_dir: &Path) -> RunInfo {
        let built = super::Provenance::of(bin_dir);
        RunInfo {
            id: format!("{}-{}", super::today_utc(), hostname()),
            started: super::now_utc(),
            git_commit: built.commit,
            rustc: built.rustc,
            crates: built.crates,
            receiver_build: built.receiver,
            generator_build: built.generator,
            cpu_model: cpu_model(),
            cores: machine_cores(),
            kernel: proc_line("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            ..RunInfo::default()
        }
    }
}

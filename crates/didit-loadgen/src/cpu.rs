//! CPU time of a process from `/proc` (Linux), for generator and receiver utilisation.

use std::time::{Duration, Instant};

/// The ticks of `utime`/`stime` per second (USER_HZ), as the system reports it.
fn user_hz() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// The cores this process may run on (its affinity mask: `taskset` narrows it), in order.
pub fn allowed_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Pins the calling thread to `core`; false if the system refused.
pub fn pin_current_thread(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// User + system CPU seconds of process `pid` (`None` for this process), all threads.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / user_hz())
}

/// User + system CPU seconds of every process in process group `pgid` that is still running
/// (a receiver that runs as several processes: a shell, Node's cluster, uvicorn's workers).
pub fn group_cpu_seconds(pgid: u32) -> Option<f64> {
    let mut total = None;
    for pid in group_pids(pgid) {
        if let Some(s) = cpu_seconds(Some(pid)) {
            *total.get_or_insert(0.0) += s;
        }
    }
    total
}

/// The processes of group `pgid`, from `/proc/<pid>/stat`.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|t| {
                    // After the name: state, ppid, pgrp.
                    let rest = &t[t.rfind(')')? + 2..];
                    rest.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// Peak resident set size of `pid` in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A CPU stopwatch over one process, or over a process group.
#[derive(Debug, Clone, Copy)]
pub struct CpuWatch {
    pid: Option<u32>,
    group: bool,
    cpu0: Option<f64>,
    t0: Instant,
}

impl CpuWatch {
    pub fn start(pid: Option<u32>) -> CpuWatch {
        CpuWatch {
            pid,
            group: false,
            cpu0: cpu_seconds(pid),
            t0: Instant::now(),
        }
    }

    /// Over every process of group `pgid`.
    pub fn start_group(pgid: u32) -> CpuWatch {
        CpuWatch {
            pid: Some(pgid),
            group: true,
            cpu0: group_cpu_seconds(pgid),
            t0: Instant::now(),
        }
    }

    /// (CPU seconds, wall time) since `start`.
    pub fn read(&self) -> Option<(f64, Duration)> {
        let now = match (self.group, self.pid) {
            (true, Some(g)) => group_cpu_seconds(g)?,
            _ => cpu_seconds(self.pid)?,
        };
        Some((now - self.cpu0?, self.t0.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let w = CpuWatch::start(None);
        // Burn a little CPU so the reading can move; the assertion only needs it not to go back.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (cpu, wall) = w.read().expect("/proc is readable");
        assert!(cpu >= 0.0 && wall > Duration::ZERO);
        assert!(peak_rss_kib(None).is_some_and(|k| k > 0));
        // This test runs in some process group, which holds at least this process.
        let pgid = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| {
                t[t.rfind(')')? + 2..]
                    .split_whitespace()
                    .nth(2)?
                    .parse()
                    .ok()
            })
            .expect("own pgrp");
        assert!(group_pids(pgid).contains(&std::process::id()));
        assert!(group_cpu_seconds(pgid).is_some_and(|s| s >= 0.0));
    }
}

//! `webhook-bench soak`: one receiver under a steady share of its own measured maximum, for
//! minutes, to catch what short runs cannot: memory that creeps, latency that drifts, answers
//! that go wrong only after millions of requests.
//!
//! 1. Calibrate: the soak scenario's traffic at the closed-loop maximum on a fresh receiver.
//! 2. Soak: a fresh receiver at `load_factor` × that maximum, as back-to-back generator segments
//!    (each its own report, so p99 is seen over time), while the receiver's RSS is sampled
//!    every 500 ms. The first segments are the warm-up: the receiver's replay window (twice
//!    `--tolerance`) fills during it, so memory is expected to grow there and nowhere else.
//! 3. Verdict: zero mismatches; RSS after the warm-up grows less than 5 %; p99 does not drift
//!    (the median segment p99 of the second half of the soak is at most 1.5 × that of the
//!    first half). Everything is written to `soak.json` and `README.md` in the output folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::harness::first_mismatch;
use crate::matrix::Variant;
use crate::runner::Plan;

pub const SOAK_SCHEMA: &str = "didit-soak/1";

/// RSS growth after the warm-up that fails the soak.
pub const MAX_RSS_GROWTH_PCT: f64 = 5.0;
/// Second-half over first-half median p99 that fails the soak.
pub const MAX_P99_DRIFT: f64 = 1.5;

/// What to soak.
#[derive(Clone, Debug)]
pub struct SoakPlan {
    /// Binaries, cores and HTTP client as for `run`; `receiver_args` carries `--tolerance`.
    pub base: Plan,
    pub variant: Variant,
    pub scenario: PathBuf,
    /// Measured soak after the warm-up.
    pub duration: Duration,
    pub segment: Duration,
    pub warmup: Duration,
    pub calibration: Duration,
    pub load_factor: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Segment {
    pub index: usize,
    /// Seconds since the soak receiver started taking load.
    pub start_secs: f64,
    pub warmup: bool,
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub requests: u64,
    pub mismatches: u64,
    pub transport_errors: u64,
    pub shed: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// The receiver's RSS when the segment ended.
    pub rss_kib: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub failures: Vec<String>,
    pub mismatches: u64,
    pub transport_errors: u64,
    pub requests: u64,
    pub rss_after_warmup_kib: u64,
    pub rss_max_after_warmup_kib: u64,
    pub rss_growth_pct: f64,
    pub p99_first_half_us: u64,
    pub p99_second_half_us: u64,
    pub p99_drift: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SoakResult {
    pub schema: String,
    pub command: String,
    pub started: String,
    pub git_commit: String,
    pub cpu_model: String,
    pub variant: String,
    pub scenario: String,
    pub receiver_args: Vec<String>,
    pub calibrated_max_rps: f64,
    pub load_factor: f64,
    pub rate: f64,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub segments: Vec<Segment>,
    /// (seconds since load began, RSS KiB), every 500 ms.
    pub rss_timeline: Vec<(f64, u64)>,
    pub verdict: Verdict,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// The verdict over the segments and the RSS timeline.
pub fn judge(segments: &[Segment], rss: &[(f64, u64)], warmup_secs: f64) -> Verdict {
    let mut failures = Vec::new();
    let mismatches: u64 = segments.iter().map(|s| s.mismatches).sum();
    let transport_errors: u64 = segments.iter().map(|s| s.transport_errors).sum();
    let requests: u64 = segments.iter().map(|s| s.requests).sum();
    if mismatches > 0 {
        failures.push(format!("{mismatches} answers did not match their labels"));
    }
    // A dropped connection now and then is the network's; more is the receiver's.
    if transport_errors * 1000 > requests.max(1) {
        failures.push(format!(
            "{transport_errors} transport errors in {requests} requests (over 0.1 %)"
        ));
    }
    let after: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= warmup_secs)
        .map(|(_, k)| *k)
        .collect();
    let base = after.first().copied().unwrap_or(0);
    let max = after.iter().copied().max().unwrap_or(0);
    let growth = if base > 0 {
        (max as f64 - base as f64) / base as f64 * 100.0
    } else {
        0.0
    };
    if after.is_empty() {
        failures.push("no RSS sample after the warm-up: the soak was shorter than it".into());
    } else if growth >= MAX_RSS_GROWTH_PCT {
        failures.push(format!(
            "RSS grew {growth:.1} % after the warm-up ({base} -> {max} KiB; limit {MAX_RSS_GROWTH_PCT} %)"
        ));
    }
    let measured: Vec<&Segment> = segments.iter().filter(|s| !s.warmup).collect();
    let half = measured.len() / 2;
    let first = median(measured[..half].iter().map(|s| s.p99_us).collect());
    let second = median(measured[half..].iter().map(|s| s.p99_us).collect());
    let drift = if first > 0 {
        second as f64 / first as f64
    } else {
        0.0
    };
    if measured.len() < 2 {
        failures.push("fewer than two measured segments: p99 stability cannot be judged".into());
    } else if drift > MAX_P99_DRIFT {
        failures.push(format!(
            "p99 drifted from {first} µs to {second} µs ({drift:.2}×; limit {MAX_P99_DRIFT}×)"
        ));
    }
    Verdict {
        passed: failures.is_empty(),
        failures,
        mismatches,
        transport_errors,
        requests,
        rss_after_warmup_kib: base,
        rss_max_after_warmup_kib: max,
        rss_growth_pct: (growth * 100.0).round() / 100.0,
        p99_first_half_us: first,
        p99_second_half_us: second,
        p99_drift: (drift * 1000.0).round() / 1000.0,
    }
}

/// Samples a process's RSS every 500 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(f64, u64)>>,
}

impl Sampler {
    fn start(pid: u32, t0: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(k) = rss_kib(pid) {
                    out.push(((t0.elapsed().as_secs_f64() * 10.0).round() / 10.0, k));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            out
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Runs the soak; the result says whether it passed.
pub fn run(plan: &SoakPlan) -> anyhow::Result<SoakResult> {
    let base = &plan.base;
    for bin in ["didit-receiver", "didit-loadgen"] {
        if !base.bin_dir.join(bin).is_file() {
            bail!(
                "{} not found: build the release binaries first (`cargo build --release --bins`) or pass --bin-dir",
                base.bin_dir.join(bin).display()
            );
        }
    }
    if plan.segment.is_zero() || plan.duration < plan.segment * 2 {
        bail!("the soak needs at least two segments: --duration must be at least 2 × --segment");
    }
    let say = |msg: String| {
        if !base.quiet {
            eprintln!("webhook-bench soak: {msg}");
        }
    };
    let scenario = plan.scenario.display().to_string();
    // One engine thread per generator core (open loop), as in `run`.
    let threads = didit_loadgen::Scenario::load(&plan.scenario)
        .map(|s| match s.engine {
            didit_loadgen::EngineKind::OpenLoop => base.threads(s.connections),
            didit_loadgen::EngineKind::Goose => 1,
        })
        .map_err(|e| anyhow::anyhow!("{scenario}: {e}"))?;
    let started = crate::harness::now_utc();

    // 1. Calibrate.
    say(format!(
        "{}: calibrating the maximum rate on {scenario} ({:?})",
        plan.variant.name, plan.calibration
    ));
    let harness = base.harness();
    let mut rx = harness.start(&plan.variant).map_err(anyhow::Error::msg)?;
    let calib = base.generator().run(
        &rx,
        &[
            "--scenario".into(),
            scenario.clone(),
            "--max".into(),
            "--duration".into(),
            ms(plan.calibration),
            "--warmup".into(),
            "1s".into(),
        ],
        threads,
        "soak-calibrate",
    );
    let alive = rx.alive();
    rx.stop();
    let calib = calib.map_err(anyhow::Error::msg).context("calibration")?;
    alive
        .map_err(anyhow::Error::msg)
        .context("during calibration")?;
    if calib.requests.mismatches > 0 {
        bail!(
            "calibration: {} answers did not match their labels (e.g. {}); not soaking a receiver that is already wrong",
            calib.requests.mismatches,
            first_mismatch(&calib)
        );
    }
    let max = calib.load.achieved_rate;
    if max <= 0.0 {
        bail!("calibration measured no throughput");
    }
    let rate = (max * plan.load_factor).round();
    say(format!(
        "maximum {max:.0} req/s; soaking at {rate:.0} req/s ({:.0} %) for {:?} after a {:?} warm-up",
        plan.load_factor * 100.0,
        plan.duration,
        plan.warmup
    ));

    // 2. Soak.
    let mut rx = harness.start(&plan.variant).map_err(anyhow::Error::msg)?;
    let pid = rx
        .process()
        .map(|p| p.pid())
        .context("the harness started no process")?;
    let t0 = Instant::now();
    let sampler = Sampler::start(pid, t0);
    let total = plan.warmup + plan.duration;
    let n = total.as_secs_f64() / plan.segment.as_secs_f64();
    let n = n.ceil() as usize;
    let mut segments = Vec::new();
    let mut error = None;
    for i in 0..n {
        let start = t0.elapsed().as_secs_f64();
        let warm = start < plan.warmup.as_secs_f64();
        let r = base.generator().run(
            &rx,
            &[
                "--scenario".into(),
                scenario.clone(),
                "--rate".into(),
                format!("{rate}"),
                "--duration".into(),
                ms(plan.segment),
                "--warmup".into(),
                "0s".into(),
            ],
            threads,
            "soak",
        );
        if let Err(e) = rx.alive() {
            error = Some(e);
            break;
        }
        let report = match r {
            Ok(r) => r,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        let lat = &report.latency_us.corrected;
        let seg = Segment {
            index: i,
            start_secs: (start * 10.0).round() / 10.0,
            warmup: warm,
            offered_rps: rate,
            achieved_rps: report.load.achieved_rate.round(),
            requests: report.requests.total,
            mismatches: report.requests.mismatches,
            transport_errors: report.requests.transport_errors,
            shed: report.requests.shed,
            p50_us: lat.p50,
            p99_us: lat.p99,
            p999_us: lat.p999,
            max_us: lat.max,
            rss_kib: rss_kib(pid).unwrap_or(0),
        };
        say(format!(
            "segment {}/{n}{}: {:.0} req/s, p99 {} µs, RSS {:.1} MiB, {} mismatches",
            i + 1,
            if warm { " (warm-up)" } else { "" },
            seg.achieved_rps,
            seg.p99_us,
            seg.rss_kib as f64 / 1024.0,
            seg.mismatches
        ));
        if seg.mismatches > 0 {
            say(format!("e.g. {}", first_mismatch(&report)));
        }
        segments.push(seg);
    }
    let rss_timeline = sampler.finish();
    rx.stop();
    let mut verdict = judge(&segments, &rss_timeline, plan.warmup.as_secs_f64());
    if let Some(e) = error {
        verdict.passed = false;
        verdict.failures.insert(0, format!("the soak stopped: {e}"));
    }
    Ok(SoakResult {
        schema: SOAK_SCHEMA.into(),
        command: base.command.clone(),
        started,
        git_commit: crate::harness::Provenance::of(&base.bin_dir).commit,
        cpu_model: std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown".into()),
        variant: plan.variant.name.clone(),
        scenario,
        receiver_args: base.receiver_args.clone(),
        calibrated_max_rps: max.round(),
        load_factor: plan.load_factor,
        rate,
        warmup_secs: plan.warmup.as_secs_f64(),
        duration_secs: plan.duration.as_secs_f64(),
        segments,
        rss_timeline,
        verdict,
    })
}

/// The Markdown summary of a soak (its README, and the section in results/README.md).
pub fn markdown(r: &SoakResult, heading: &str) -> String {
    let v = &r.verdict;
    let mut s = format!(
        "{heading} Soak: `{}` at {:.0} % of its maximum\n\n\
         **{}.** {:.0} req/s ({:.0} % of the {:.0} req/s measured on the same traffic just before) \
         for {:.0} s after a {:.0} s warm-up, scenario `{}`, receiver flags `{}`. \
         {} requests, {} mismatches, {} transport errors. \
         RSS {:.1} MiB after the warm-up, at most {:.1} MiB after it ({:+.2} %; limit {MAX_RSS_GROWTH_PCT} %). \
         p99 {} µs in the first half, {} µs in the second ({:.2}×; limit {MAX_P99_DRIFT}×).\n\n",
        r.variant,
        r.load_factor * 100.0,
        if v.passed { "Passed" } else { "Failed" },
        r.rate,
        r.load_factor * 100.0,
        r.calibrated_max_rps,
        r.duration_secs,
        r.warmup_secs,
        r.scenario,
        r.receiver_args.join(" "),
        v.requests,
        v.mismatches,
        v.transport_errors,
        v.rss_after_warmup_kib as f64 / 1024.0,
        v.rss_max_after_warmup_kib as f64 / 1024.0,
        v.rss_growth_pct,
        v.p99_first_half_us,
        v.p99_second_half_us,
        v.p99_drift,
    );
    for fail in &v.failures {
        s.push_str(&format!("- failed: {fail}\n"));
    }
    if !v.failures.is_empty() {
        s.push('\n');
    }
    s.push_str("| segment | from (s) | req/s | p50 µs | p99 µs | p99.9 µs | max µs | mismatches | RSS MiB |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for g in &r.segments {
        s.push_str(&format!(
            "| {}{} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.1} |\n",
            g.index + 1,
            if g.warmup { " (warm-up)" } else { "" },
            g.start_secs,
            g.achieved_rps,
            g.p50_us,
            g.p99_us,
            g.p999_us,
            g.max_us,
            g.mismatches,
            g.rss_kib as f64 / 1024.0
        ));
    }
    s.push_str(&format!(
        "\nCommand: `{}` (commit {}, {}).\n",
        r.command,
        r.git_commit.chars().take(12).collect::<String>(),
        r.cpu_model
    ));
    s
}

/// Writes `soak.json` and `README.md` into `out`.
pub fn write(r: &SoakResult, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join("soak.json"),
        serde_json::to_string_pretty(r)? + "\n",
    )?;
    std::fs::write(out.join("README.md"), markdown(r, "#"))?;
    Ok(())
}

/// The newest soak under `results/soak/`, for the results README.
pub fn newest(results_dir: &Path) -> Option<(PathBuf, SoakResult)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(results_dir.join("soak"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("soak.json").is_file())
        .collect();
    dirs.sort();
    let dir = dirs.pop()?;
    let text = std::fs::read_to_string(dir.join("soak.json")).ok()?;
    let r: SoakResult = serde_json::from_str(&text).ok()?;
    Some((dir, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(i: usize, warmup: bool, p99: u64, mismatches: u64) -> Segment {
        Segment {
            index: i,
            start_secs: i as f64 * 10.0,
            warmup,
            offered_rps: 1000.0,
            achieved_rps: 1000.0,
            requests: 10_000,
            mismatches,
            transport_errors: 0,
            shed: 0,
            p50_us: p99 / 2,
            p99_us: p99,
            p999_us: p99 * 2,
            max_us: p99 * 3,
            rss_kib: 0,
        }
    }

    fn flat_rss(kib: u64) -> Vec<(f64, u64)> {
        (0..120).map(|i| (f64::from(i), kib)).collect()
    }

    #[test]
    fn a_steady_soak_passes() {
        let segs: Vec<Segment> = (0..8).map(|i| seg(i, i < 2, 1000, 0)).collect();
        let mut rss = flat_rss(30_000);
        // Growth during the warm-up is expected: the replay window fills.
        for s in rss.iter_mut().take(20) {
            s.1 = 10_000;
        }
        let v = judge(&segs, &rss, 20.0);
        assert!(v.passed, "{:?}", v.failures);
        assert_eq!(v.rss_growth_pct, 0.0);
    }

    #[test]
    fn mismatches_fail() {
        let segs: Vec<Segment> = (0..8)
            .map(|i| seg(i, i < 2, 1000, u64::from(i == 5)))
            .collect();
        let v = judge(&segs, &flat_rss(30_000), 20.0);
        assert!(!v.passed);
        assert_eq!(v.mismatches, 1);
    }

    #[test]
    fn creeping_memory_fails() {
        let segs: Vec<Segment> = (0..8).map(|i| seg(i, i < 2, 1000, 0)).collect();
        let rss: Vec<(f64, u64)> = (0..120)
            .map(|i| (f64::from(i), 30_000 + i as u64 * 20))
            .collect();
        let v = judge(&segs, &rss, 20.0);
        assert!(!v.passed);
        assert!(v.rss_growth_pct > 5.0, "{}", v.rss_growth_pct);
    }

    #[test]
    fn drifting_p99_fails_and_a_single_spike_does_not() {
        let drifting: Vec<Segment> = (0..10)
            .map(|i| seg(i, i < 2, 1000 + i as u64 * 300, 0))
            .collect();
        assert!(!judge(&drifting, &flat_rss(30_000), 20.0).passed);
        let spike: Vec<Segment> = (0..10)
            .map(|i| seg(i, i < 2, if i == 8 { 9000 } else { 1000 }, 0))
            .collect();
        assert!(judge(&spike, &flat_rss(30_000), 20.0).passed);
    }
}

//! The measurement: round by round, each scenario, each admitted variant, a fresh receiver per
//! run, so drift and warm caches hit every variant alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use didit_loadgen::{Report, ShapeKind};

use crate::harness::Harness;
use crate::results::{Cell, Repeat};

use super::admit::{Admitted, null_path};
use super::{Plan, Progress};

/// A scenario, read through the generator's own parser.
pub(super) struct ScenarioMeta {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    pub engine: String,
    pub shape: ShapeKind,
    /// Generator threads its runs get: one per generator core for the open-loop engine.
    pub threads: usize,
}

impl ScenarioMeta {
    pub(super) fn load(plan: &Plan, path: &Path) -> Result<ScenarioMeta, String> {
        let s = didit_loadgen::Scenario::load(path).map_err(|e| e.to_string())?;
        let threads = match s.engine {
            didit_loadgen::EngineKind::OpenLoop => plan.threads(s.connections),
            didit_loadgen::EngineKind::Goose => 1,
        };
        Ok(ScenarioMeta {
            path: path.to_owned(),
            name: s.name.clone(),
            description: s.description.clone(),
            engine: s.engine.name().to_owned(),
            shape: s.load.kind(),
            threads,
        })
    }
}

/// (throughput, percentile points) of the repeat whose latency curve is kept.
pub(super) type Kept = (f64, Vec<(f64, u64)>);

/// Per scenario, per admitted variant: its cell, and the curve of the repeat nearest the median.
pub(super) struct Grid {
    pub cells: Vec<Vec<Cell>>,
    pub curves: Vec<Vec<Kept>>,
}

impl Grid {
    pub(super) fn new(scenarios: usize, admitted: &[Admitted]) -> Grid {
        Grid {
            cells: (0..scenarios)
                .map(|_| {
                    admitted
                        .iter()
                        .map(|a| Cell::new(&a.variant.name))
                        .collect()
                })
                .collect(),
            curves: (0..scenarios)
                .map(|_| vec![(0.0, Vec::new()); admitted.len()])
                .collect(),
        }
    }
}

/// One round: every scenario on every admitted variant, once.
pub(super) fn round(
    plan: &Plan,
    harness: &Harness,
    scenarios: &[ScenarioMeta],
    admitted: &[Admitted],
    round: usize,
    grid: &mut Grid,
    progress: &Progress,
) {
    let timing = timing_args(plan);
    for (si, sc) in scenarios.iter().enumerate() {
        for (vi, a) in admitted.iter().enumerate() {
            let v = &a.variant;
            progress.note(format!(
                "round {round}/{}: {} on {}",
                plan.repeat, sc.name, v.name
            ));
            let (rep, curve) = measure_one(plan, harness, sc, a, &timing, round);
            if let Some(e) = &rep.error {
                eprintln!(
                    "webhook-bench: {} on {} round {round}: {e}",
                    sc.name, v.name
                );
            }
            // Keep the curve of the repeat nearest the running median.
            let slot = &mut grid.curves[si][vi];
            if let Some(points) = curve
                && (slot.1.is_empty() || round == plan.repeat.div_ceil(2))
            {
                *slot = (rep.rps, points);
            }
            grid.cells[si][vi].repeats.push(rep);
            progress.inc(1);
        }
    }
}

/// A fresh receiver, one generator run of the scenario, and for a paced scenario the machine's
/// floor at that rate: the same receiver's null endpoint, same schedule, right after.
fn measure_one(
    plan: &Plan,
    harness: &Harness,
    sc: &ScenarioMeta,
    a: &Admitted,
    timing: &[String],
    round: usize,
) -> (Repeat, Option<Vec<(f64, u64)>>) {
    let mut rx = match harness.start(&a.variant) {
        Err(e) => return (failed_repeat(round, e), None),
        Ok(rx) => rx,
    };
    let generator = plan.generator();
    let mut args = vec!["--scenario".to_owned(), sc.path.display().to_string()];
    args.extend(timing.iter().cloned());
    let r = generator.run(&rx, &args, sc.threads, "measure");
    let floor = match (&r, null_path(&a.variant)) {
        (Ok(_), Some(path)) if !sc.shape.is_max() && a.null_rps.is_some() => {
            let mut f = args.clone();
            f.extend([
                "--path".into(),
                path,
                "--calibrate".into(),
                "--pool".into(),
                "1000".into(),
            ]);
            generator.run(&rx, &f, sc.threads, "floor").ok()
        }
        _ => None,
    };
    let rss = rx.peak_rss_kib();
    let alive = rx.alive();
    rx.stop();
    match (r, alive) {
        (_, Err(e)) | (Err(e), _) => (failed_repeat(round, e), None),
        (Ok(report), Ok(())) => {
            let mut rep = repeat_from(&report, round, rss);
            if let Some(f) = &floor {
                rep.floor_p99_us = Some(f.latency_us.corrected.p99);
                rep.floor_p999_us = Some(f.latency_us.corrected.p999);
            }
            (rep, Some(curve_points(&report)))
        }
    }
}

fn timing_args(plan: &Plan) -> Vec<String> {
    let mut a = Vec::new();
    let (d, w) = if plan.quick {
        (
            Some(plan.duration.unwrap_or(Duration::from_secs(2))),
            Some(plan.warmup.unwrap_or(Duration::from_millis(500))),
        )
    } else {
        (plan.duration, plan.warmup)
    };
    if let Some(d) = d {
        a.push("--duration".into());
        a.push(format!("{}ms", d.as_millis()));
    }
    if let Some(w) = w {
        a.push("--warmup".into());
        a.push(format!("{}ms", w.as_millis()));
    }
    a
}

fn repeat_from(report: &Report, round: usize, rss: Option<u64>) -> Repeat {
    let total = report.requests.total;
    let cpu = report.receiver.as_ref().map(|c| c.cpu_seconds);
    let lat = &report.latency_us;
    Repeat {
        round,
        rps: report.load.achieved_rate,
        p50_us: lat.corrected.p50,
        p90_us: lat.corrected.p90,
        p99_us: lat.corrected.p99,
        p999_us: lat.corrected.p999,
        max_us: lat.corrected.max,
        uncorrected_p99_us: lat.uncorrected.p99,
        requests: total,
        mismatches: report.requests.mismatches,
        transport_errors: report.requests.transport_errors,
        shed: report.requests.shed,
        cpu_ms_per_1k: cpu
            .filter(|_| total > 0)
            .map(|c| (c * 1000.0 / total as f64 * 1000.0 * 1000.0).round() / 1000.0),
        peak_rss_kib: rss,
        generator_limited: report.generator_limited,
        error: None,
        lag_p99_us: (!report.load.shape.is_max()).then_some(lat.schedule_lag.p99),
        floor_p99_us: None,
        floor_p999_us: None,
        required_mismatches: Some(
            report
                .by_label
                .iter()
                .filter(|l| super::counted_class(&l.class))
                .map(|l| l.counts.mismatches)
                .sum(),
        ),
    }
}

fn failed_repeat(round: usize, error: String) -> Repeat {
    Repeat {
        round,
        rps: 0.0,
        p50_us: 0,
        p90_us: 0,
        p99_us: 0,
        p999_us: 0,
        max_us: 0,
        uncorrected_p99_us: 0,
        requests: 0,
        mismatches: 0,
        transport_errors: 0,
        shed: 0,
        cpu_ms_per_1k: None,
        peak_rss_kib: None,
        generator_limited: false,
        error: Some(error),
        lag_p99_us: None,
        floor_p99_us: None,
        floor_p999_us: None,
        required_mismatches: None,
    }
}

/// Percentile points from a loadgen report (the report keeps p50…max).
fn curve_points(report: &Report) -> Vec<(f64, u64)> {
    let c = &report.latency_us.corrected;
    if c.count == 0 {
        return Vec::new();
    }
    vec![
        (50.0, c.p50),
        (90.0, c.p90),
        (99.0, c.p99),
        (99.9, c.p999),
        (100.0, c.max),
    ]
}

//! `webhook-bench run`: for every variant, verify, calibrate, then measure every scenario
//! `--repeat` times, interleaving variants so drift hits all of them alike.
//!
//! Receivers and the generator are subprocesses (the release binaries beside this one), each
//! pinned to its own core with `taskset`; receivers listen on port 0 of 127.0.0.1 and every
//! generator run is bounded, so nothing here can load anything but loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use didit_loadgen::Report;
use indicatif::{ProgressBar, ProgressStyle};

use crate::harness::{CpuSet, Harness, Receiver, SECRET, command, last_lines};

use crate::matrix::{NAIVE, Variant};
use crate::results::{
    Cell, Curve, RESULTS_SCHEMA, Repeat, Results, RunInfo, ScenarioResult, VariantOutcome,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenarios: Vec<PathBuf>,
    pub receivers: String,
    pub repeat: usize,
    pub out: PathBuf,
    pub quick: bool,
    pub bin_dir: PathBuf,
    /// The receiver's cores (our receivers get one worker per core).
    pub receiver_cpus: CpuSet,
    /// The generator's cores (one open-loop engine thread per core).
    pub generator_cpus: CpuSet,
    pub http: String,
    pub command: String,
    /// Measured seconds per run (scenario's own when `None`).
    pub duration: Option<Duration>,
    pub warmup: Option<Duration>,
    pub quiet: bool,
    /// More receiver flags, after the variant's own (the soak passes `--tolerance`).
    pub receiver_args: Vec<String>,
    /// Receivers written elsewhere (`--receiver NAME=CMD`), measured beside ours.
    pub externals: Vec<Variant>,
    /// Receivers measured although their report card fails a required case (marked as such),
    /// and whose failures do not fail the run.
    pub allow_failing: AllowFailing,
    /// Count the strict group of the card and the strict class under load (`run --strict`).
    pub strict: bool,
}

/// Which receivers `--allow-failing` names: none, all, or these.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowFailing {
    #[default]
    None,
    All,
    Named(Vec<String>),
}

impl AllowFailing {
    /// From the command line: absent, given alone (all), or given names.
    pub fn from_arg(arg: Option<Vec<String>>) -> AllowFailing {
        match arg {
            None => AllowFailing::None,
            Some(v) if v.is_empty() => AllowFailing::All,
            Some(v) => AllowFailing::Named(v),
        }
    }

    pub fn allows(&self, variant: &str) -> bool {
        match self {
            AllowFailing::None => false,
            AllowFailing::All => true,
            AllowFailing::Named(v) => v.iter().any(|n| n == variant),
        }
    }
}

impl Plan {
    /// The harness that starts this plan's receivers: pinned to the receiver's cores, one
    /// worker per core, brokers on the cores neither the receiver nor the generator uses.
    pub(crate) fn harness(&self) -> Harness {
        Harness {
            bin_dir: self.bin_dir.clone(),
            cpus: Some(self.receiver_cpus.to_string()),
            broker_cpus: self.broker_cpus().map(|c| c.to_string()),
            workers: self.receiver_cpus.len(),
            receiver_args: self.receiver_args.clone(),
            wrap: Vec::new(),
        }
    }

    /// The brokers' own cores, when the machine has some that neither the receiver nor the
    /// generator uses; `None`: they share the receiver's.
    pub fn broker_cpus(&self) -> Option<CpuSet> {
        CpuSet::spare(
            machine_cores(),
            &[&self.receiver_cpus, &self.generator_cpus],
        )
    }

    /// Open-loop engine threads for a scenario of `connections` connections: one per generator
    /// core, never more than the connections.
    pub(crate) fn threads(&self, connections: usize) -> usize {
        self.generator_cpus.len().min(connections.max(1))
    }
}

/// The cores this machine has (all of them, not only those this process may use).
pub fn machine_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One generator run against `rx` with `threads` engine threads: its typed report, or why there
/// is none.
pub(crate) fn loadgen(
    plan: &Plan,
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
        .arg(plan.generator_cpus.to_string())
        .arg(plan.bin_dir.join("didit-loadgen"))
        .args(args)
        .args(["--threads", &threads.max(1).to_string()])
        .args(["--target", &format!("http://{}", rx.addr)])
        .args(rx.cpu_args())
        // A receiver written elsewhere answers with bodies of its own: judged by status.
        .args(["--judge", rx.judge()])
        .args(["--http", &plan.http, "--quiet", "--report"])
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

/// A wrong answer from a report, for a message: what was expected and what came back.
pub(crate) fn first_mismatch(r: &Report) -> String {
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
        lag_p99_us: (report.load.shape != "max").then_some(lat.schedule_lag.p99),
        floor_p99_us: None,
        floor_p999_us: None,
        required_mismatches: Some(
            report
                .by_label
                .iter()
                .filter(|l| counted_class(&l.class))
                .map(|l| l.counts.mismatches)
                .sum(),
        ),
    }
}

/// Whether a wrong answer to the generator's `class` fails a run: every class but those the
/// report card holds optional (`reformatted`: V2 after middleware re-encoded the body) or strict
/// (`timestamp_mismatch`: the unsigned header disagreeing with a fresh signed body).
pub fn counted_class(class: &str) -> bool {
    !matches!(class, "reformatted" | "timestamp_mismatch")
}

/// Why the run must exit 1: a measured receiver, other than the in-run reference, that its
/// report card refused, or that answered a required class wrongly under load. `--allow-failing`
/// keeps them as reports only.
pub fn receiver_failures(results: &Results, allow: &AllowFailing, strict: bool) -> Vec<String> {
    let reference = results
        .run
        .reference_naive
        .clone()
        .unwrap_or_else(|| NAIVE.to_owned());
    let mut out = Vec::new();
    for v in results
        .variants
        .iter()
        .filter(|v| v.variant != reference && !allow.allows(&v.variant))
    {
        if v.status == "refused" {
            out.push(format!(
                "{} was refused by its report card: {}",
                v.variant,
                v.reason.as_deref().unwrap_or("a required case failed")
            ));
        }
    }
    for sc in &results.scenarios {
        for c in sc
            .cells
            .iter()
            .filter(|c| c.variant != reference && !allow.allows(&c.variant))
        {
            // Strict: every wrong answer counts, the strict and optional classes too.
            let wrong: u64 = c
                .repeats
                .iter()
                .map(|r| {
                    if strict {
                        r.mismatches
                    } else {
                        r.required_mismatches.unwrap_or(r.mismatches)
                    }
                })
                .sum();
            if wrong > 0 {
                out.push(format!(
                    "{} answered {wrong} deliveries of required classes wrongly under {}",
                    c.variant, sc.scenario
                ));
            }
        }
    }
    out
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

/// The scenario's metadata, read through the generator's own parser.
struct ScenarioMeta {
    path: PathBuf,
    name: String,
    description: String,
    engine: String,
    shape: String,
    /// Generator threads its runs get: one per generator core for the open-loop engine.
    threads: usize,
}

fn scenario_meta(plan: &Plan, path: &Path) -> Result<ScenarioMeta, String> {
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
        shape: s.load.name().to_owned(),
        threads,
    })
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

/// The CPU model, from `/proc/cpuinfo`.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn run_info(plan: &Plan, id: String) -> RunInfo {
    let cpu_model = cpu_model();
    // From the binaries measured, not from the working directory's git, PATH's rustc or lock file.
    let built = crate::harness::Provenance::of(&plan.bin_dir);
    RunInfo {
        id,
        command: plan.command.clone(),
        started: crate::harness::now_utc(),
        git_commit: built.commit,
        rustc: built.rustc,
        crates: built.crates,
        receiver_build: built.receiver,
        generator_build: built.generator,
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into()),
        repeat: plan.repeat,
        quick: plan.quick,
        receiver_cpus: plan.receiver_cpus.to_string(),
        generator_cpus: plan.generator_cpus.to_string(),
        broker_cpus: plan.broker_cpus().map(|c| c.to_string()),
        http_client: plan.http.clone(),
        reference_naive: None,
    }
}

/// The core sets must exist on a machine of `cores` cores and must not overlap: a generator
/// sharing the receiver's core would be measured as the receiver's load.
pub(crate) fn check_cpus(plan: &Plan, cores: usize) -> anyhow::Result<()> {
    for (what, set) in [
        ("--receiver-cpus", &plan.receiver_cpus),
        ("--generator-cpus", &plan.generator_cpus),
    ] {
        if set.max() >= cores {
            bail!(
                "{what} {set} names core {} but this machine has {cores} (0-{})",
                set.max(),
                cores - 1
            );
        }
    }
    if plan.receiver_cpus.overlaps(&plan.generator_cpus) {
        bail!(
            "--receiver-cpus {} and --generator-cpus {} overlap: give the generator cores of its own",
            plan.receiver_cpus,
            plan.generator_cpus
        );
    }
    Ok(())
}

/// Runs the plan and returns the results (also written to `plan.out` by the caller).
pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    for bin in ["didit-receiver", "didit-loadgen"] {
        let p = plan.bin_dir.join(bin);
        if !p.is_file() {
            bail!(
                "{} not found: build the release binaries first (`cargo build --release --workspace --bins`) or pass --bin-dir",
                p.display()
            );
        }
    }
    if command("taskset").arg("-V").output().is_err() {
        bail!("`taskset` (util-linux) is needed to pin the receiver and the generator to cores");
    }
    check_cpus(plan, machine_cores())?;
    let mut scenarios = Vec::new();
    let mut scenario_errors = Vec::new();
    for p in &plan.scenarios {
        match scenario_meta(plan, p) {
            Ok(m) => scenarios.push(m),
            Err(e) => scenario_errors.push((p.display().to_string(), e)),
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let id = format!("{}-{host}", crate::harness::today_utc());
    let mut info = run_info(plan, id);

    let mut outcomes: Vec<VariantOutcome> = Vec::new();
    let mut variants: Vec<Variant> = Vec::new();
    for v in crate::matrix::expand(&plan.receivers) {
        match v {
            Ok(v) => variants.push(v),
            Err((name, e)) => outcomes.push(VariantOutcome {
                variant: name,
                status: "failed".into(),
                reason: Some(e),
                ..VariantOutcome::default()
            }),
        }
    }
    variants.extend(plan.externals.iter().cloned());
    if variants.is_empty() {
        bail!("no valid receiver variant to run");
    }
    if scenarios.is_empty() {
        bail!(
            "no scenario could be used: {}",
            scenario_errors
                .iter()
                .map(|(p, e)| format!("{p}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let steps = (variants.len() * (2 + plan.repeat * scenarios.len())) as u64;
    let bar = if plan.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(steps);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps, ~{eta} left  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let note = |bar: &ProgressBar, msg: String| {
        if bar.is_hidden() && !plan.quiet {
            eprintln!("  {msg}");
        }
        bar.set_message(msg);
    };
    for (path, e) in &scenario_errors {
        eprintln!("webhook-bench: scenario {path} skipped: {e}");
    }

    let harness = plan.harness();
    // 1. Verify, 2. calibrate, per variant.
    // Each measurable variant with its null-endpoint rate (none for a receiver without one).
    let mut measurable: Vec<(Variant, Option<f64>)> = Vec::new();
    let calib_secs = if plan.quick { "1500ms" } else { "4s" };
    for v in &variants {
        note(
            &bar,
            format!("{}: report card and conformance probe", v.name),
        );
        let mut outcome = VariantOutcome {
            variant: v.name.clone(),
            status: "measured".into(),
            slowed_us: v.slow_us,
            external: v.external.as_ref().map(|e| e.cmd.clone()),
            runtime: v.external.as_ref().and_then(|e| e.runtime.clone()),
            ..VariantOutcome::default()
        };
        match harness.start(v) {
            Err(e) => {
                outcome.status = "failed".into();
                outcome.reason = Some(e);
                bar.inc(2);
            }
            Ok(mut rx) => {
                let probe_ok = probe(plan, v, &rx, &mut outcome);
                bar.inc(1);
                if let Err(e) = probe_ok {
                    outcome.status = "refused".into();
                    outcome.reason = Some(e);
                    bar.inc(1);
                } else {
                    match null_path(v) {
                        // No null endpoint: no "÷ own null"; the generator's ceiling is still
                        // judged by its own report on every run.
                        None => measurable.push((v.clone(), None)),
                        Some(path) => {
                            note(&bar, format!("{}: calibrating on {path}", v.name));
                            let max = scenario_path(&plan.scenarios, "max-throughput");
                            let calib = loadgen(
                                plan,
                                &rx,
                                &[
                                    "--scenario".into(),
                                    max.display().to_string(),
                                    "--path".into(),
                                    path,
                                    "--calibrate".into(),
                                    "--max".into(),
                                    "--duration".into(),
                                    calib_secs.into(),
                                    "--warmup".into(),
                                    "500ms".into(),
                                    // The null endpoint does not de-duplicate, so a pool signed
                                    // before the run serves: signing each request made the
                                    // generator the limit (may's calibration was
                                    // generator-limited at ~77k of its ~130k).
                                    "--pool".into(),
                                    "1000".into(),
                                ],
                                plan.threads(32),
                                "calibrate",
                            );
                            match calib {
                                Ok(r) => {
                                    let n = r.load.achieved_rate;
                                    outcome.null_rps = Some(n);
                                    outcome.null_generator_limited = Some(r.generator_limited);
                                    measurable.push((v.clone(), Some(n)));
                                }
                                Err(e) => {
                                    outcome.status = "failed".into();
                                    outcome.reason = Some(format!("calibration: {e}"));
                                }
                            }
                        }
                    }
                    bar.inc(1);
                    if let Err(e) = rx.alive() {
                        outcome.status = "failed".into();
                        outcome.reason = Some(e);
                        measurable.retain(|(m, _)| m != v);
                    }
                }
                rx.stop();
            }
        }
        if outcome.status != "measured" {
            bar.inc((plan.repeat * scenarios.len()) as u64);
            eprintln!(
                "webhook-bench: {} not measured ({}): {}",
                v.name,
                outcome.status,
                outcome.reason.as_deref().unwrap_or("")
            );
        }
        outcomes.push(outcome);
    }

    // 3. Measure, interleaved: round by round, each scenario, each variant.
    let mut cells: Vec<Vec<Cell>> = scenarios
        .iter()
        .map(|_| measurable.iter().map(|(v, _)| Cell::new(&v.name)).collect())
        .collect();
    // Per scenario, per variant: (throughput, percentile points) of the kept repeat.
    type Kept = (f64, Vec<(f64, u64)>);
    let mut curves: Vec<Vec<Kept>> = scenarios
        .iter()
        .map(|_| vec![(0.0, Vec::new()); measurable.len()])
        .collect();
    let timing = timing_args(plan);
    for round in 1..=plan.repeat {
        for (si, sc) in scenarios.iter().enumerate() {
            for (vi, (v, null_rps)) in measurable.iter().enumerate() {
                note(
                    &bar,
                    format!("round {round}/{}: {} on {}", plan.repeat, sc.name, v.name),
                );
                let rep = match harness.start(v) {
                    Err(e) => failed_repeat(round, e),
                    Ok(mut rx) => {
                        let mut args = vec!["--scenario".to_owned(), sc.path.display().to_string()];
                        args.extend(timing.iter().cloned());
                        let r = loadgen(plan, &rx, &args, sc.threads, "measure");
                        // The machine's floor at this rate: the same receiver's null endpoint,
                        // same schedule, right after (paced scenarios only; a maximum has none).
                        let floor = match (&r, null_path(v)) {
                            (Ok(_), Some(path)) if sc.shape != "max" && null_rps.is_some() => {
                                let mut a = args.clone();
                                a.extend([
                                    "--path".into(),
                                    path,
                                    "--calibrate".into(),
                                    "--pool".into(),
                                    "1000".into(),
                                ]);
                                loadgen(plan, &rx, &a, sc.threads, "floor").ok()
                            }
                            _ => None,
                        };
                        let rss = rx.peak_rss_kib();
                        let alive = rx.alive();
                        rx.stop();
                        match (r, alive) {
                            (_, Err(e)) => failed_repeat(round, e),
                            (Err(e), _) => failed_repeat(round, e),
                            (Ok(report), Ok(())) => {
                                let mut rep = repeat_from(&report, round, rss);
                                if let Some(f) = &floor {
                                    rep.floor_p99_us = Some(f.latency_us.corrected.p99);
                                    rep.floor_p999_us = Some(f.latency_us.corrected.p999);
                                }
                                // Keep the curve of the repeat nearest the running median.
                                let slot = &mut curves[si][vi];
                                if slot.1.is_empty() || round == plan.repeat.div_ceil(2) {
                                    *slot = (rep.rps, curve_points(&report));
                                }
                                rep
                            }
                        }
                    }
                };
                if let Some(e) = &rep.error {
                    eprintln!(
                        "webhook-bench: {} on {} round {round}: {e}",
                        sc.name, v.name
                    );
                }
                cells[si][vi].repeats.push(rep);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();

    // 4. Summaries and in-run ratios.
    let naive_present = measurable.iter().any(|(v, _)| v.name == NAIVE);
    info.reference_naive = naive_present.then(|| NAIVE.to_owned());
    let mut results_scenarios = Vec::new();
    for (si, sc) in scenarios.iter().enumerate() {
        let mut sc_cells = std::mem::take(&mut cells[si]);
        for (vi, cell) in sc_cells.iter_mut().enumerate() {
            let null = measurable[vi].1;
            cell.summarise(null, null);
            if cell.repeats.iter().all(|r| r.error.is_some()) {
                cell.failed = cell.repeats.first().and_then(|r| r.error.clone());
            }
        }
        if let Some(naive_median) = sc_cells
            .iter()
            .find(|c| c.variant == NAIVE)
            .and_then(|c| c.rps)
            .map(|s| s.median)
            .filter(|m| *m > 0.0)
        {
            for cell in &mut sc_cells {
                let rps: Vec<f64> = cell
                    .repeats
                    .iter()
                    .filter(|r| r.error.is_none())
                    .map(|r| r.rps / naive_median)
                    .collect();
                cell.ratio_to_naive = crate::results::Spread::of(&rps);
            }
        }
        results_scenarios.push(ScenarioResult {
            scenario: sc.name.clone(),
            description: sc.description.clone(),
            engine: sc.engine.clone(),
            shape: sc.shape.clone(),
            cells: sc_cells,
            curves: measurable
                .iter()
                .zip(&curves[si])
                .filter(|(_, c)| !c.1.is_empty())
                .map(|((v, _), c)| Curve {
                    variant: v.name.clone(),
                    points: c.1.clone(),
                })
                .collect(),
        });
    }
    Ok(Results {
        schema: RESULTS_SCHEMA.into(),
        run: info,
        variants: outcomes,
        scenarios: results_scenarios,
        skipped_scenarios: scenario_errors
            .into_iter()
            .map(|(path, reason)| crate::results::SkippedScenario { path, reason })
            .collect(),
        scaling: None,
        thresholds: Vec::new(),
        threshold_breaches: Vec::new(),
    })
}

/// A variant's null endpoint: ours always have one, an external one when declared.
fn null_path(v: &Variant) -> Option<String> {
    match &v.external {
        None => Some("/webhooks/null".to_owned()),
        Some(ext) => ext.null_path.clone(),
    }
}

/// Verifies a started receiver before it is measured. Every variant gets the report card of
/// `webhook-bench verify` (recorded in the results); a receiver written elsewhere is refused when
/// the card fails a required case (unless `--allow-failing`), ours when the generator's smoke
/// probe gets a wrong answer, as before the card existed.
fn probe(
    plan: &Plan,
    v: &Variant,
    rx: &Receiver,
    outcome: &mut VariantOutcome,
) -> Result<(), String> {
    let card = crate::verify::Target::parse(&format!("http://{}/webhooks/didit", rx.addr))
        .map_err(|e| e.to_string())
        .and_then(|target| {
            crate::verify::verify(
                &crate::verify::Options {
                    target,
                    secret: SECRET.into(),
                    max_body: 1 << 20,
                    tolerance: Duration::from_secs(300),
                    accept_simple: false,
                    strict_http: false,
                    strict: plan.strict,
                    framing: true,
                    server: None,
                },
                |_| {},
            )
            .map_err(|e| e.to_string())
        });
    let card = match card {
        Ok(c) => c,
        Err(e) => return Err(format!("report card: {e}")),
    };
    outcome.card = Some(card.summary());
    outcome.card_failed = card.failed_required();
    if v.external.is_some() {
        return match (card.passed, plan.allow_failing.allows(&v.name)) {
            (true, _) => Ok(()),
            (false, true) => {
                outcome.failing_card = true;
                Ok(())
            }
            (false, false) => Err(format!(
                "its report card failed {} (measure it anyway with --allow-failing)",
                card.failed_required().join(", ")
            )),
        };
    }
    let smoke = scenario_path(&plan.scenarios, "smoke");
    let probe = loadgen(
        plan,
        rx,
        &[
            "--scenario".into(),
            smoke.display().to_string(),
            "--duration".into(),
            "1s".into(),
            "--warmup".into(),
            "0s".into(),
            "--rate".into(),
            "300".into(),
            "--connections".into(),
            "4".into(),
        ],
        plan.threads(4),
        "probe",
    );
    match &probe {
        Ok(r) if r.requests.mismatches == 0 && r.requests.transport_errors == 0 => Ok(()),
        Ok(r) => Err(format!(
            "answered {} of {} conformance probes wrongly ({} transport errors); e.g. {}",
            r.requests.mismatches,
            r.requests.total,
            r.requests.transport_errors,
            first_mismatch(r)
        )),
        Err(e) => Err(e.clone()),
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

/// A scenario by name from the plan's list, else from `scenarios/`.
fn scenario_path(list: &[PathBuf], name: &str) -> PathBuf {
    list.iter()
        .find(|p| p.file_stem().is_some_and(|s| s == name))
        .cloned()
        .unwrap_or_else(|| PathBuf::from(format!("scenarios/{name}.toml")))
}

/// Writes the run folder: results.json, raw.csv, README.md and the charts.
pub fn write_run(results: &Results, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(results)?,
    )?;
    std::fs::write(out.join("raw.csv"), crate::results::raw_csv(results))?;
    let charts = crate::charts::write_all(results, out)?;
    std::fs::write(
        out.join("README.md"),
        crate::publish::run_readme(results, &charts),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_failing_names_none_all_or_some() {
        let none = AllowFailing::from_arg(None);
        let all = AllowFailing::from_arg(Some(Vec::new()));
        let some = AllowFailing::from_arg(Some(vec!["node".into(), "bun".into()]));
        assert!(!none.allows("node"));
        assert!(all.allows("node") && all.allows("go"));
        assert!(some.allows("bun") && !some.allows("go"));
    }

    #[test]
    fn the_strict_and_optional_classes_do_not_fail_a_run() {
        assert!(counted_class("bad_signature") && counted_class("stale"));
        assert!(!counted_class("reformatted") && !counted_class("timestamp_mismatch"));
    }
}

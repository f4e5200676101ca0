//! `webhook-bench run`: for every variant, verify and calibrate ([`admit`]), then measure every
//! scenario `--repeat` times, interleaving variants so drift hits all of them alike
//! ([`measure`]), then summarise with in-run ratios ([`summary`]).
//!
//! Receivers and the generator are subprocesses (the release binaries beside this one), each
//! pinned to its own core with `taskset`; receivers listen on port 0 of 127.0.0.1 and every
//! generator run is bounded, so nothing here can load anything but loopback.

mod admit;
mod measure;
mod summary;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::harness::{CpuSet, Generator, Harness, command, machine_cores};
use crate::matrix::{NAIVE, Variant};
use crate::results::{RESULTS_SCHEMA, Results, RunInfo, SkippedScenario, Status, VariantOutcome};
use measure::ScenarioMeta;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenarios: Vec<PathBuf>,
    pub receivers: String,
    pub repeat: usize,
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
            receiver_args: self.receiver_args.clone(),
            ..Harness::pinned(
                self.bin_dir.clone(),
                &self.receiver_cpus,
                &self.generator_cpus,
            )
        }
    }

    /// The load generator, on the plan's generator cores.
    pub(crate) fn generator(&self) -> Generator {
        Generator {
            bin_dir: self.bin_dir.clone(),
            cpus: self.generator_cpus.clone(),
            http: self.http.clone(),
        }
    }

    /// Open-loop engine threads for a scenario of `connections` connections: one per generator
    /// core, never more than the connections.
    pub(crate) fn threads(&self, connections: usize) -> usize {
        self.generator_cpus.len().min(connections.max(1))
    }

    /// The run's record of itself: the plan's settings on the machine's and the binaries'.
    fn run_info(&self) -> RunInfo {
        RunInfo {
            command: self.command.clone(),
            repeat: self.repeat,
            quick: self.quick,
            receiver_cpus: self.receiver_cpus.to_string(),
            generator_cpus: self.generator_cpus.to_string(),
            // The cores the harness gives the brokers: their own, or (`None`) the receiver's.
            broker_cpus: self.harness().broker_cpus,
            http_client: self.http.clone(),
            ..RunInfo::now(&self.bin_dir)
        }
    }
}

/// Runs the plan and returns the results (written to a folder by the caller).
pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    check_ready(plan)?;
    // Where, when and what: taken now, so `started` is the run's start.
    let info = plan.run_info();
    let (scenarios, skipped) = scenarios(plan)?;
    let (variants, mut outcomes) = variants(plan)?;
    let steps = variants.len() * (2 + plan.repeat * scenarios.len());
    let progress = Progress::new(plan.quiet, steps);
    for sk in &skipped {
        eprintln!("webhook-bench: scenario {} skipped: {}", sk.path, sk.reason);
    }
    let harness = plan.harness();

    // 1. Each variant's report card, conformance probe and null-endpoint calibration.
    let mut admitted = Vec::new();
    for v in &variants {
        let (outcome, ok) = admit::admit(plan, &harness, v, &progress);
        progress.inc(2);
        match ok {
            Some(a) => admitted.push(a),
            None => {
                progress.inc(plan.repeat * scenarios.len());
                eprintln!(
                    "webhook-bench: {} not measured ({}): {}",
                    v.name,
                    outcome.status,
                    outcome.reason.as_deref().unwrap_or("")
                );
            }
        }
        outcomes.push(outcome);
    }

    // 2. Interleaved rounds: round by round, each scenario, each admitted variant.
    let mut grid = measure::Grid::new(scenarios.len(), &admitted);
    for round in 1..=plan.repeat {
        measure::round(
            plan, &harness, &scenarios, &admitted, round, &mut grid, &progress,
        );
    }
    progress.finish();

    // 3. Medians, ranges and in-run ratios.
    let naive_present = admitted.iter().any(|a| a.variant.name == NAIVE);
    Ok(Results {
        schema: RESULTS_SCHEMA.into(),
        run: RunInfo {
            reference_naive: naive_present.then(|| NAIVE.to_owned()),
            ..info
        },
        variants: outcomes,
        scenarios: summary::summarise(&scenarios, &admitted, grid),
        skipped_scenarios: skipped,
        scaling: None,
        thresholds: Vec::new(),
        threshold_breaches: Vec::new(),
    })
}

/// The binaries, `taskset` and core sets the plan needs, or what to do about them.
fn check_ready(plan: &Plan) -> anyhow::Result<()> {
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
    check_cpus(plan, machine_cores())
}

/// The scenarios the generator can load, and those it cannot (skipped, with why); at least one.
fn scenarios(plan: &Plan) -> anyhow::Result<(Vec<ScenarioMeta>, Vec<SkippedScenario>)> {
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    for p in &plan.scenarios {
        match ScenarioMeta::load(plan, p) {
            Ok(m) => ok.push(m),
            Err(reason) => skipped.push(SkippedScenario {
                path: p.display().to_string(),
                reason,
            }),
        }
    }
    if ok.is_empty() {
        bail!(
            "no scenario could be used: {}",
            skipped
                .iter()
                .map(|s| format!("{}: {}", s.path, s.reason))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok((ok, skipped))
}

/// The matrix's variants and the plan's external receivers; a name that is no variant is
/// recorded as failed. At least one.
fn variants(plan: &Plan) -> anyhow::Result<(Vec<Variant>, Vec<VariantOutcome>)> {
    let have = crate::harness::receiver::backends(&plan.bin_dir).map_err(anyhow::Error::msg)?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for v in crate::matrix::expand(&plan.receivers, &have) {
        match v {
            Ok(v) => ok.push(v),
            Err((name, e)) => failed.push(VariantOutcome {
                variant: name,
                status: Status::Failed,
                reason: Some(e),
                ..VariantOutcome::default()
            }),
        }
    }
    ok.extend(plan.externals.iter().cloned());
    if ok.is_empty() {
        bail!("no valid receiver variant to run");
    }
    Ok((ok, failed))
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

/// A progress bar on a terminal; a line per step on stderr when there is none (CI logs);
/// nothing with `--quiet`.
struct Progress {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool, steps: usize) -> Progress {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::new(steps as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps, ~{eta} left  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        };
        Progress { bar, quiet }
    }

    fn note(&self, msg: String) {
        if self.bar.is_hidden() && !self.quiet {
            eprintln!("  {msg}");
        }
        self.bar.set_message(msg);
    }

    fn inc(&self, steps: usize) {
        self.bar.inc(steps as u64);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
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
        if v.status == Status::Refused {
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

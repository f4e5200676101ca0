//! The `webhook-bench` command line: the commands, their shared flags and the dispatch. Each
//! command's flags, body and printing live in a module of its own (`cli/<command>.rs`), as
//! cargo's `commands/` and rust-analyzer's `cli/` keep theirs.

mod capacity;
mod compare;
mod cost;
mod merge;
mod publish;
mod run;
mod soak;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

pub use capacity::CapacityArgs;
pub use compare::CompareArgs;
pub use cost::CostArgs;
pub use merge::MergeArgs;
pub use publish::{PublishArgs, publish};
pub use run::RunArgs;
pub use soak::SoakArgs;
pub use verify::VerifyArgs;

use crate::harness::CpuSet;

/// Fair benchmark runs of the Didit webhook receivers, published results, regression gating.
#[derive(Debug, Parser)]
#[command(name = "webhook-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Verify, calibrate and measure every variant under every scenario; write a results folder.
    Run(RunArgs),
    /// Regenerate results/README.md, and the run's charts and README, from a run's results.json
    /// (default: the newest under results/runs/).
    Publish(PublishArgs),
    /// Soak one receiver at a share of its measured maximum for minutes (scenarios/soak.toml:
    /// noisy traffic); judge mismatches, RSS growth after the warm-up and p99 drift. Exit 0 if
    /// it passed, 1 if not.
    Soak(SoakArgs),
    /// The load generator's own ceiling against wrk's, side by side in one run: every generator
    /// on one core sends 4 KB POSTs to a receiver's /webhooks/null on another, with its CPU time
    /// per request. Needs wrk and /usr/bin/time (Debian packages `wrk` and `time`).
    Capacity(CapacityArgs),
    /// Where a request's time goes: each variant measured as a stack of receivers that differ
    /// by one layer (null endpoint, + HMAC, + parse, + processing, + each store), in interleaved
    /// rounds on fresh 4 KB deliveries at saturation; receiver (and broker) CPU µs per request,
    /// each layer's increment, and the floor from the core's own timing of HMAC and parse.
    Cost(CostArgs),
    /// Combine the JSON reports (`didit-loadgen --report`) of generators that ran side by side
    /// against one receiver, from several processes or hosts, into one: histograms added
    /// exactly, percentiles recomputed, counts and rates summed. Refuses reports of different
    /// scenarios. Writes the merged report to --out (or stdout) and a summary to stderr.
    Merge(MergeArgs),
    /// Send the conformance suite to any receiver, in any language, over HTTP, and print its
    /// report card: one line per case, grouped security / correctness / http / framing /
    /// optional. Exit 0 if every required case passed, 1 if any failed, 2 if it could not run.
    Verify(VerifyArgs),
    /// Compare two runs like for like; exit 0 (no regression), 1 (regression), 99 (a
    /// --threshold failed in the current run), 2 (cannot compare).
    Compare(CompareArgs),
}

/// Where the binaries are, how they are pinned, which HTTP client: shared by `run` and `soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct HarnessArgs {
    /// Where didit-receiver and didit-loadgen are (default: beside this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Cores the receiver is pinned to, as `taskset -c` lists them (0, 0-7, 0,2,4): our
    /// receivers get one worker per core, a `--receiver` command's `{workers}` the same count.
    /// Brokers get the cores neither set uses, or share the receiver's when none are left.
    #[arg(long, alias = "receiver-cpu", default_value = "0", value_parser = parse_cpus)]
    pub receiver_cpus: CpuSet,
    /// Cores the generator is pinned to: one open-loop engine thread per core.
    #[arg(long, alias = "generator-cpu", default_value = "1", value_parser = parse_cpus)]
    pub generator_cpus: CpuSet,
    /// The open-loop engine's HTTP client (raw reaches higher ceilings; see didit-loadgen).
    #[arg(long, default_value = "raw")]
    pub http: String,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Default for HarnessArgs {
    fn default() -> Self {
        HarnessArgs {
            bin_dir: None,
            receiver_cpus: CpuSet::range(0, 1),
            generator_cpus: CpuSet::range(1, 1),
            http: "raw".into(),
            quiet: false,
        }
    }
}

pub(crate) fn parse_cpus(s: &str) -> Result<CpuSet, String> {
    s.parse()
        .map_err(|e: crate::harness::cpus::CpuSetError| e.to_string())
}

pub(crate) fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%');
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage like 10%"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("`{s}` must be between 0% and 100%"));
    }
    Ok(v / 100.0)
}

/// Runs the command; the exit code is the command's verdict. No command: the main job, the
/// default matrix published.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or_else(|| Cmd::Run(RunArgs::main_job())) {
        Cmd::Run(a) => run::run_cmd(a),
        Cmd::Verify(a) => verify::verify_cmd(a),
        Cmd::Soak(a) => soak::soak_cmd(a),
        Cmd::Capacity(a) => capacity::capacity_cmd(a),
        Cmd::Cost(a) => cost::cost_cmd(a),
        Cmd::Merge(a) => merge::merge_cmd(a),
        Cmd::Publish(a) => publish::publish_cmd(a),
        Cmd::Compare(a) => compare::compare_cmd(a),
    }
}

/// The folder holding `didit-receiver` and `didit-loadgen`: `--bin-dir`, else this binary's own
/// folder (a build's target folder, or Cargo's bin folder after `cargo install`), else the first
/// folder on `PATH` that has both.
pub(crate) fn bin_dir_of(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.clone());
    }
    let has_both = |d: &Path| {
        ["didit-receiver", "didit-loadgen"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let beside = std::env::current_exe()?.parent().map(Path::to_path_buf);
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|d| has_both(d))
        .context(
            "didit-receiver and didit-loadgen are neither beside webhook-bench nor on PATH: \
             install them (cargo install --locked --path crates/didit-receiver, and the same for \
             crates/didit-loadgen) or pass --bin-dir",
        )
}

/// The command as typed, for the record a run keeps of how it was made.
pub(crate) fn command_line() -> String {
    std::iter::once("webhook-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

//! `webhook-bench merge`: the reports of generators that ran side by side, as one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// Combine the JSON reports (`didit-loadgen --report`) of generators that ran side by side
/// against one receiver, from several processes or hosts, into one: histograms added exactly,
/// percentiles recomputed, counts and rates summed. Refuses reports of different scenarios.
/// Writes the merged report to --out (or stdout) and a summary to stderr.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Two or more report files.
    #[arg(required = true, num_args = 2..)]
    pub reports: Vec<PathBuf>,
    /// Write the merged report here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub(super) fn merge_cmd(a: MergeArgs) -> anyhow::Result<ExitCode> {
    let (paths, out): (&[PathBuf], Option<&Path>) = (&a.reports, a.out.as_deref());
    let mut reports = Vec::with_capacity(paths.len());
    for p in paths {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        reports.push(
            didit_loadgen::Report::from_json(&bytes).with_context(|| p.display().to_string())?,
        );
    }
    let merged = didit_loadgen::Report::merge(reports)?;
    eprint!("{}", merged.summary());
    let json = serde_json::to_vec_pretty(&merged)?;
    match out {
        Some(path) => std::fs::write(path, json)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{}", String::from_utf8_lossy(&json)),
    }
    Ok(ExitCode::SUCCESS)
}

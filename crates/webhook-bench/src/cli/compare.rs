//! `webhook-bench compare`: two runs, like for like, as a CI gate.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::compare::{Verdict, compare, render};
use crate::results::load;

use super::parse_percent;

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    #[arg(long)]
    pub baseline: PathBuf,
    #[arg(long)]
    pub current: PathBuf,
    /// How far the whole min–max range must move to count, e.g. 10%.
    #[arg(long, default_value = "10%", value_parser = parse_percent)]
    pub threshold: f64,
    /// The in-run reference a variant without a null endpoint (a receiver written elsewhere)
    /// is compared by: a variant's full name (default: the naive peer).
    #[arg(long)]
    pub reference: Option<String>,
    /// Thresholds held against the current run, as for `run --threshold`.
    #[arg(long = "threshold-expr", value_name = "EXPR")]
    pub thresholds: Vec<crate::thresholds::Threshold>,
    /// Also write the current run in the Bencher Metric Format to PATH.
    #[arg(long, value_name = "PATH")]
    pub bmf: Option<PathBuf>,
}

/// Exit 0 (no regression), 1 (regression), 99 (a threshold failed), 2 (cannot compare).
pub(super) fn compare_cmd(a: CompareArgs) -> anyhow::Result<ExitCode> {
    let CompareArgs {
        baseline,
        current,
        threshold,
        reference,
        thresholds,
        bmf,
    } = a;
    let (b, c) = match (load(&baseline), load(&current)) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("webhook-bench compare: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    for d in crate::compare::environment_differences(&b, &c) {
        println!("warning: the runs differ in {d}; ratios cancel machine speed, not this");
    }
    if let Some(path) = &bmf {
        crate::bmf::write(&c, path)?;
    }
    let breaches = match crate::thresholds::evaluate(&c, &thresholds) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("webhook-bench compare: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    match compare(&b, &c, threshold, reference.as_deref()) {
        Err(e) => {
            eprintln!("webhook-bench compare: cannot compare: {e}");
            Ok(ExitCode::from(2))
        }
        Ok(rows) => {
            print!("{}", render(&rows, threshold));
            for br in &breaches {
                println!("{br}");
            }
            if rows.iter().any(|r| r.verdict == Verdict::Regression) {
                println!("regression: at least one variant slowed beyond the threshold");
                Ok(ExitCode::from(1))
            } else if !breaches.is_empty() {
                Ok(ExitCode::from(99))
            } else {
                println!("no regression");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

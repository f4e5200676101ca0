//! `webhook-bench compare`: like-for-like regression check between two results files.
//!
//! Each (scenario, variant) is compared on its throughput ratio to its own `/webhooks/null`
//! endpoint measured in the same run, so machine speed cancels out. The repeats decide noise
//! from change: a regression only when the current run's whole min–max range of that ratio lies
//! below the baseline's minimum by more than the threshold (and an improvement, symmetrically).

use std::fmt::Write as _;

use crate::results::{Results, Spread};

/// One compared cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub variant: String,
    pub baseline: Spread,
    pub current: Spread,
    pub verdict: Verdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Regression,
    Improvement,
    /// The ranges are within the threshold of each other.
    Unchanged,
}

/// Why two results cannot be compared (exit status 2).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CompareError {
    #[error(
        "the current run has no scenario `{0}` (the baseline has it): compare runs of the same scenarios"
    )]
    MissingScenario(String),
    #[error("the current run did not measure `{variant}` in `{scenario}` (the baseline did){why}")]
    MissingVariant {
        scenario: String,
        variant: String,
        why: String,
    },
    #[error(
        "`{variant}` in `{scenario}` has no ratio to its null endpoint in the {which} run (its calibration failed)"
    )]
    NoRatio {
        scenario: String,
        variant: String,
        which: &'static str,
    },
    #[error("nothing to compare: the baseline has no measured cells")]
    Empty,
}

/// Compares every baseline cell with the current run's.
pub fn compare(base: &Results, cur: &Results, threshold: f64) -> Result<Vec<Row>, CompareError> {
    let mut rows = Vec::new();
    for bs in &base.scenarios {
        let cs = cur
            .scenarios
            .iter()
            .find(|s| s.scenario == bs.scenario)
            .ok_or_else(|| CompareError::MissingScenario(bs.scenario.clone()))?;
        for bc in bs.cells.iter().filter(|c| c.failed.is_none()) {
            let cc = cs
                .cells
                .iter()
                .find(|c| c.variant == bc.variant && c.failed.is_none())
                .ok_or_else(|| CompareError::MissingVariant {
                    scenario: bs.scenario.clone(),
                    variant: bc.variant.clone(),
                    why: cur
                        .variants
                        .iter()
                        .find(|v| v.variant == bc.variant)
                        .and_then(|v| v.reason.clone())
                        .map_or(String::new(), |r| format!(": {r}")),
                })?;
            let no_ratio = |which| CompareError::NoRatio {
                scenario: bs.scenario.clone(),
                variant: bc.variant.clone(),
                which,
            };
            let b = bc.ratio_to_null.ok_or_else(|| no_ratio("baseline"))?;
            let c = cc.ratio_to_null.ok_or_else(|| no_ratio("current"))?;
            let verdict = if c.max < b.min * (1.0 - threshold) {
                Verdict::Regression
            } else if c.min > b.max * (1.0 + threshold) {
                Verdict::Improvement
            } else {
                Verdict::Unchanged
            };
            rows.push(Row {
                scenario: bs.scenario.clone(),
                variant: bc.variant.clone(),
                baseline: b,
                current: c,
                verdict,
            });
        }
    }
    if rows.is_empty() {
        return Err(CompareError::Empty);
    }
    Ok(rows)
}

/// The table printed by `compare`.
pub fn render(rows: &[Row], threshold: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "throughput ÷ own null endpoint (in-run ratio), median (min–max); threshold {:.0} %",
        threshold * 100.0
    );
    let _ = writeln!(
        s,
        "{:<16} {:<24} {:>22} {:>22} {:>8}  verdict",
        "scenario", "variant", "baseline", "current", "change"
    );
    for r in rows {
        let f = |x: Spread| format!("{:.3} ({:.3}–{:.3})", x.median, x.min, x.max);
        let _ = writeln!(
            s,
            "{:<16} {:<24} {:>22} {:>22} {:>+7.1}%  {}",
            r.scenario,
            r.variant,
            f(r.baseline),
            f(r.current),
            (r.current.median / r.baseline.median - 1.0) * 100.0,
            match r.verdict {
                Verdict::Regression => "REGRESSION",
                Verdict::Improvement => "improvement",
                Verdict::Unchanged => "unchanged (within threshold or noise)",
            }
        );
    }
    s
}

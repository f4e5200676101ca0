//! `webhook-bench compare`: like-for-like regression check between two results files.
//!
//! Each (scenario, variant) is compared on an in-run ratio, so machine speed cancels out: its
//! throughput ÷ its own `/webhooks/null` endpoint when both runs have one, else ÷ an in-run
//! reference variant (the naive peer by default, or `--reference NAME`): a receiver written
//! elsewhere has no null route. The repeats decide noise from change: a regression only when the
//! current run's whole min–max range of that ratio lies below the baseline's minimum by more
//! than the threshold (and an improvement, symmetrically).

use std::fmt::Write as _;

use crate::results::{Cell, Results, Spread};

/// One compared cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub variant: String,
    /// What the ratio is taken against: `own null`, `naive` or a reference variant's name.
    pub against: String,
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
        "`{variant}` in `{scenario}` has no ratio to its null endpoint nor to {reference} in the {which} run (its calibration failed, and {reference} was not measured there)"
    )]
    NoRatio {
        scenario: String,
        variant: String,
        reference: String,
        which: &'static str,
    },
    #[error("nothing to compare: the baseline has no measured cells")]
    Empty,
}

/// The naive peer's variant name: the default reference.
const NAIVE: &str = "axum-naive:ring:serde";

/// `cell`'s throughput ÷ `reference`'s median throughput in the same scenario of the same run:
/// the naive peer's recorded ratio, or one computed from the reference's cell.
fn ratio_to(cell: &Cell, cells: &[Cell], reference: Option<&str>) -> Option<Spread> {
    match reference {
        None => cell.ratio_to_naive,
        Some(name) => {
            let base = cells
                .iter()
                .find(|c| c.variant == name && c.failed.is_none())?
                .rps?
                .median;
            let rps = cell.rps?;
            (base > 0.0).then(|| Spread {
                median: rps.median / base,
                min: rps.min / base,
                max: rps.max / base,
            })
        }
    }
}

/// Compares every baseline cell with the current run's: on the ratio to its own null endpoint
/// when both runs have one, else on the ratio to `reference` (`None`: the naive peer).
pub fn compare(
    base: &Results,
    cur: &Results,
    threshold: f64,
    reference: Option<&str>,
) -> Result<Vec<Row>, CompareError> {
    let mut rows = Vec::new();
    let ref_name = reference.unwrap_or("naive").to_owned();
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
                reference: ref_name.clone(),
                which,
            };
            let is_reference =
                bc.variant == reference.unwrap_or(NAIVE) && bc.ratio_to_null.is_none();
            let (against, b, c) = match (bc.ratio_to_null, cc.ratio_to_null) {
                (Some(b), Some(c)) => ("own null".to_owned(), b, c),
                // The reference itself, without a null route: nothing to hold it against.
                _ if is_reference => continue,
                _ => (
                    ref_name.clone(),
                    ratio_to(bc, &bs.cells, reference).ok_or_else(|| no_ratio("baseline"))?,
                    ratio_to(cc, &cs.cells, reference).ok_or_else(|| no_ratio("current"))?,
                ),
            };
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
                against,
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

/// What differs between the machines or builds of two runs, as CodSpeed warns: another CPU,
/// other core sets, another compiler or other crate versions. Ratios cancel machine speed, not
/// a different machine's shape; empty when they match.
pub fn environment_differences(base: &Results, cur: &Results) -> Vec<String> {
    let (b, c) = (&base.run, &cur.run);
    let mut out = Vec::new();
    let mut differ = |what: &str, x: &str, y: &str| {
        if x != y {
            out.push(format!("{what}: {x} (baseline) vs {y} (current)"));
        }
    };
    differ("CPU", &b.cpu_model, &c.cpu_model);
    differ("cores", &b.cores.to_string(), &c.cores.to_string());
    differ("receiver cores", &b.receiver_cpus, &c.receiver_cpus);
    differ("generator cores", &b.generator_cpus, &c.generator_cpus);
    differ("compiler", &b.rustc, &c.rustc);
    // Only the crates that differ: the lists are long.
    let only = |x: &[String], y: &[String]| -> String {
        let v: Vec<&str> = x
            .iter()
            .filter(|k| !y.contains(k))
            .map(String::as_str)
            .collect();
        if v.is_empty() {
            "–".into()
        } else {
            v.join(", ")
        }
    };
    if b.crates != c.crates {
        out.push(format!(
            "crates: {} (baseline) vs {} (current)",
            only(&b.crates, &c.crates),
            only(&c.crates, &b.crates)
        ));
    }
    out
}

/// The table printed by `compare`.
pub fn render(rows: &[Row], threshold: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "throughput ÷ an in-run reference (own null endpoint, else the reference), median (min–max); threshold {:.0} %",
        threshold * 100.0
    );
    let _ = writeln!(
        s,
        "{:<16} {:<24} {:<10} {:>22} {:>22} {:>8}  verdict",
        "scenario", "variant", "÷", "baseline", "current", "change"
    );
    for r in rows {
        let f = |x: Spread| format!("{:.3} ({:.3}–{:.3})", x.median, x.min, x.max);
        let _ = writeln!(
            s,
            "{:<16} {:<24} {:<10} {:>22} {:>22} {:>+7.1}%  {}",
            r.scenario,
            r.variant,
            r.against,
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

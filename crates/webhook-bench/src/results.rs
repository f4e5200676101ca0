//! The results of a run: what `results.json` holds (schema `results/schema.json`), the long-format
//! `raw.csv`, and the summaries (median with min–max, ratios to in-run references).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// `results.json`'s format name and version; `compare` and `publish` refuse any other.
pub const RESULTS_SCHEMA: &str = "webhook-bench-results/1";

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema: String,
    pub run: RunInfo,
    pub variants: Vec<VariantOutcome>,
    pub scenarios: Vec<ScenarioResult>,
    /// Scenario files that could not be used, and why.
    #[serde(default)]
    pub skipped_scenarios: Vec<SkippedScenario>,
    /// `run --scaling`: each variant's req/s on 1, 2, 4, … receiver cores (the rest of the
    /// results are the 1-core point's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
    /// The `--threshold` expressions the run was held to, and those it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threshold_breaches: Vec<Breach>,
}

/// A scaling run: req/s against receiver cores, on the first scenario.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Scaling {
    pub scenario: String,
    pub points: Vec<ScalingPoint>,
    /// Why there are no more points (the machine's cores ran out).
    pub stopped: String,
}

/// One point: the core sets and every variant's figures on them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScalingPoint {
    pub receiver_cores: usize,
    pub receiver_cpus: String,
    pub generator_cpus: String,
    /// `None`: the brokers shared the receiver's cores.
    pub broker_cpus: Option<String>,
    pub cells: Vec<ScalingCell>,
}

/// A variant at one point.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScalingCell {
    pub variant: String,
    pub rps: Option<Spread>,
    /// req/s ÷ (cores × req/s on one core): 1.0 is linear scaling.
    pub efficiency: Option<f64>,
}

/// A scenario file the run could not use.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SkippedScenario {
    pub path: String,
    pub reason: String,
}

/// Where, when and how the run was made.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    pub id: String,
    pub command: String,
    pub started: String,
    pub git_commit: String,
    pub rustc: String,
    pub crates: Vec<String>,
    /// The receiver's and the generator's own builds (`--version`), as they reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_build: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_build: Option<String>,
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub repeat: usize,
    pub quick: bool,
    /// The receiver's cores, as `taskset -c` lists them (`0`, `0-7`).
    #[serde(alias = "receiver_cpu", deserialize_with = "cpu_list")]
    pub receiver_cpus: String,
    /// The generator's cores (one engine thread per core).
    #[serde(alias = "generator_cpu", deserialize_with = "cpu_list")]
    pub generator_cpus: String,
    /// The brokers' own cores; absent when they shared the receiver's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_cpus: Option<String>,
    pub http_client: String,
    /// The in-run references every ratio is taken against.
    pub reference_naive: Option<String>,
}

/// A core list, or a single core number as runs before core lists recorded it.
fn cpu_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Cpus {
        One(u64),
        List(String),
    }
    Ok(match Cpus::deserialize(d)? {
        Cpus::One(n) => n.to_string(),
        Cpus::List(s) => s,
    })
}

/// What became of a variant before it was measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed its card (and, for ours, the conformance probe) and was calibrated.
    #[default]
    Measured,
    /// Its report card failed a required case, or it answered a probe wrongly.
    Refused,
    /// Unknown, did not start, or died.
    Failed,
}

impl Status {
    pub fn measured(self) -> bool {
        self == Status::Measured
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Measured => "measured",
            Status::Refused => "refused",
            Status::Failed => "failed",
        })
    }
}

/// What became of one variant before measuring: conformant, refused, or failed to start.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct VariantOutcome {
    pub variant: String,
    pub status: Status,
    pub reason: Option<String>,
    /// The receiver's `/webhooks/null` throughput with the same generator (calibration).
    pub null_rps: Option<f64>,
    /// Whether that calibration was itself limited by the generator.
    pub null_generator_limited: Option<bool>,
    /// Extra work per delivery added on purpose (`:slowN`), to test the regression gate; 0 in
    /// real runs.
    #[serde(default)]
    pub slowed_us: u64,
    /// The command of a receiver written elsewhere (`run --receiver`); absent for ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
    /// Its runtime and version as the run was told (`--receiver-runtime NAME=TEXT`), e.g.
    /// `Node.js v20.20.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The report card's summary (`webhook-bench verify`), e.g. `60/60 required, 41/41
    /// framing, 10/10 optional`, and the required cases it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub card_failed: Vec<String>,
    /// Measured although its card failed a required case (`--allow-failing`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failing_card: bool,
}

/// One repeat of one scenario on one variant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Repeat {
    pub round: usize,
    pub rps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub uncorrected_p99_us: u64,
    pub requests: u64,
    pub mismatches: u64,
    pub transport_errors: u64,
    pub shed: u64,
    /// Receiver CPU milliseconds per 1,000 requests (warm-up included on both sides).
    pub cpu_ms_per_1k: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    pub generator_limited: bool,
    pub error: Option<String>,
    /// The generator's own lag behind its schedule, p99 (paced scenarios).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99_us: Option<u64>,
    /// The machine's floor: the same receiver's `/webhooks/null` at the same rate, right after
    /// this repeat (paced scenarios, receivers with a null endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_p99_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_p999_us: Option<u64>,
    /// Mismatches in the classes the report card requires (all but the re-encoded sample and
    /// the header/body timestamp disagreement, which the card holds optional and strict): what
    /// fails a run. Absent in runs recorded before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_mismatches: Option<u64>,
}

/// Median and range over repeats.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// A scenario × variant cell.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub variant: String,
    pub repeats: Vec<Repeat>,
    pub rps: Option<Spread>,
    pub p99_us: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999_us: Option<Spread>,
    /// The latency floor beside this variant's: its null endpoint at the same rate (p99,
    /// p99.9), and the generator's schedule lag p99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_p99_us: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_p999_us: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99_us: Option<Spread>,
    pub cpu_ms_per_1k: Option<Spread>,
    /// Throughput ÷ the same receiver's `/webhooks/null` throughput (same run).
    pub ratio_to_null: Option<Spread>,
    /// Throughput ÷ the naive peer's median throughput in this scenario (same run).
    pub ratio_to_naive: Option<Spread>,
    /// Some repeat reached over 90 % of the generator's ceiling, or the generator said so.
    pub generator_limited: bool,
    pub failed: Option<String>,
}

/// One scenario's cells.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScenarioResult {
    pub scenario: String,
    pub description: String,
    pub engine: String,
    pub shape: didit_loadgen::ShapeKind,
    pub cells: Vec<Cell>,
    /// Latency percentile curves (µs at each percentile) of each variant's median repeat.
    pub curves: Vec<Curve>,
}

/// A latency percentile curve, HdrHistogram style.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Curve {
    pub variant: String,
    /// (percentile, microseconds), e.g. (99.9, 812).
    pub points: Vec<(f64, u64)>,
}

impl Cell {
    /// A cell with no repeats yet.
    pub fn new(variant: &str) -> Cell {
        Cell {
            variant: variant.to_owned(),
            repeats: Vec::new(),
            rps: None,
            p99_us: None,
            p999_us: None,
            floor_p99_us: None,
            floor_p999_us: None,
            lag_p99_us: None,
            cpu_ms_per_1k: None,
            ratio_to_null: None,
            ratio_to_naive: None,
            generator_limited: false,
            failed: None,
        }
    }

    /// Fills the summaries from the repeats; `null_rps` is the variant's calibration.
    pub fn summarise(&mut self, null_rps: Option<f64>, generator_ceiling: Option<f64>) {
        let ok: Vec<&Repeat> = self.repeats.iter().filter(|r| r.error.is_none()).collect();
        let rps: Vec<f64> = ok.iter().map(|r| r.rps).collect();
        self.rps = Spread::of(&rps);
        self.p99_us = Spread::of(&ok.iter().map(|r| r.p99_us as f64).collect::<Vec<_>>());
        self.p999_us = Spread::of(&ok.iter().map(|r| r.p999_us as f64).collect::<Vec<_>>());
        let of = |f: fn(&Repeat) -> Option<u64>| {
            Spread::of(
                &ok.iter()
                    .filter_map(|r| f(r))
                    .map(|v| v as f64)
                    .collect::<Vec<_>>(),
            )
        };
        self.floor_p99_us = of(|r| r.floor_p99_us);
        self.floor_p999_us = of(|r| r.floor_p999_us);
        self.lag_p99_us = of(|r| r.lag_p99_us);
        self.cpu_ms_per_1k = Spread::of(
            &ok.iter()
                .filter_map(|r| r.cpu_ms_per_1k)
                .collect::<Vec<_>>(),
        );
        self.ratio_to_null = null_rps
            .filter(|n| *n > 0.0)
            .and_then(|n| Spread::of(&rps.iter().map(|r| r / n).collect::<Vec<_>>()));
        self.generator_limited = ok.iter().any(|r| r.generator_limited)
            || generator_ceiling.is_some_and(|c| rps.iter().any(|r| *r > 0.9 * c));
    }
}

/// Writes `raw.csv`: one row per measured value (long format).
pub fn raw_csv(results: &Results) -> String {
    let mut s = String::from("scenario,variant,round,metric,value\n");
    for sc in &results.scenarios {
        for cell in &sc.cells {
            for r in &cell.repeats {
                let mut row = |metric: &str, value: String| {
                    let _ = writeln!(
                        s,
                        "{},{},{},{metric},{value}",
                        sc.scenario, cell.variant, r.round
                    );
                };
                if let Some(e) = &r.error {
                    row("error", format!("\"{}\"", e.replace('"', "'")));
                    continue;
                }
                row("rps", format!("{:.1}", r.rps));
                row("p50_us", r.p50_us.to_string());
                row("p90_us", r.p90_us.to_string());
                row("p99_us", r.p99_us.to_string());
                row("p999_us", r.p999_us.to_string());
                row("max_us", r.max_us.to_string());
                row("uncorrected_p99_us", r.uncorrected_p99_us.to_string());
                row("requests", r.requests.to_string());
                row("mismatches", r.mismatches.to_string());
                row("transport_errors", r.transport_errors.to_string());
                row("shed", r.shed.to_string());
                if let Some(c) = r.cpu_ms_per_1k {
                    row("cpu_ms_per_1k", format!("{c:.3}"));
                }
                for (metric, v) in [
                    ("lag_p99_us", r.lag_p99_us),
                    ("floor_p99_us", r.floor_p99_us),
                    ("floor_p999_us", r.floor_p999_us),
                ] {
                    if let Some(v) = v {
                        row(metric, v.to_string());
                    }
                }
                if let Some(k) = r.peak_rss_kib {
                    row("peak_rss_kib", k.to_string());
                }
                row("generator_limited", r.generator_limited.to_string());
            }
        }
    }
    for v in &results.variants {
        if let Some(n) = v.null_rps {
            let _ = writeln!(s, "calibration,{},0,null_rps,{n:.1}", v.variant);
        }
    }
    s
}

/// Why a results file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} is not a results file: {1}")]
    Parse(String, serde_json::Error),
    #[error(
        "{path} has schema {found:?}; this webhook-bench reads {expected:?} (re-run the benchmark with this version)"
    )]
    Schema {
        path: String,
        found: String,
        expected: &'static str,
    },
}

/// Reads a `results.json`, refusing other schema versions with a clear message.
pub fn load(path: &Path) -> Result<Results, ResultsError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| ResultsError::Read(shown.clone(), e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| ResultsError::Parse(shown.clone(), e))?;
    let found = value
        .get("schema")
        .and_then(|s| s.as_str())
        .unwrap_or("(none)")
        .to_owned();
    if found != RESULTS_SCHEMA {
        return Err(ResultsError::Schema {
            path: shown,
            found,
            expected: RESULTS_SCHEMA,
        });
    }
    serde_json::from_value(value).map_err(|e| ResultsError::Parse(shown, e))
}

/// A `--threshold` a variant did not meet: the expression, where, and the median it was held to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    pub threshold: String,
    pub variant: String,
    pub scenario: String,
    /// The median it was held to, in the metric's unit (µs for latency).
    pub measured: f64,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "threshold `{}` failed: {} in {} measured {}",
            self.threshold,
            self.variant,
            self.scenario,
            round3(self.measured)
        )
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_median_and_range() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]).expect("values");
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        assert_eq!(Spread::of(&[5.0]).map(|s| s.median), Some(5.0));
        assert!(Spread::of(&[]).is_none());
    }
}

//! A run's figures in the Bencher Metric Format, for teams that keep benchmark history in Bencher
//! or a service that reads the same JSON: one benchmark per `SCENARIO/VARIANT`, its measures the
//! median with the min–max over the rounds as bounds
//! (`{"name": {"measure": {"value", "lower_value", "upper_value"}}}`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::results::{Results, Spread};

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Measure {
    pub value: f64,
    pub lower_value: f64,
    pub upper_value: f64,
}

impl From<Spread> for Measure {
    fn from(s: Spread) -> Self {
        Measure {
            value: s.median,
            lower_value: s.min,
            upper_value: s.max,
        }
    }
}

/// `SCENARIO/VARIANT` → measure name → measure. Throughput is `throughput` (requests per
/// second); latency is `latency-p99` and `latency-p999` in nanoseconds, Bencher's latency unit;
/// `cpu-ms-per-1k` is the receiver's CPU time per thousand requests.
pub fn of(results: &Results) -> BTreeMap<String, BTreeMap<&'static str, Measure>> {
    let mut out = BTreeMap::new();
    for sc in &results.scenarios {
        for cell in sc.cells.iter().filter(|c| c.failed.is_none()) {
            let mut m = BTreeMap::new();
            let ns = |s: Spread| Spread {
                median: s.median * 1000.0,
                min: s.min * 1000.0,
                max: s.max * 1000.0,
            };
            if let Some(s) = cell.rps {
                m.insert("throughput", s.into());
            }
            if let Some(s) = cell.p99_us {
                m.insert("latency-p99", ns(s).into());
            }
            if let Some(s) = cell.p999_us {
                m.insert("latency-p999", ns(s).into());
            }
            if let Some(s) = cell.cpu_ms_per_1k {
                m.insert("cpu-ms-per-1k", s.into());
            }
            if !m.is_empty() {
                out.insert(format!("{}/{}", sc.scenario, cell.variant), m);
            }
        }
    }
    out
}

/// Writes [`of`] as JSON to `path`.
pub fn write(results: &Results, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let json = serde_json::to_string_pretty(&of(results))?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

//! Pass/fail criteria on a run's figures, k6's way: `--threshold 'p99<5ms'` fails the run with
//! exit status 99 when a measured variant's median is on the wrong side.
//!
//! An expression is `[VARIANT@][SCENARIO/]METRIC<VALUE` (or `>`). METRIC is `p50`, `p99` or
//! `p999` (a duration: `800us`, `5ms`), `req_s`, `cpu_ms_per_1k`, or `div_REF`: the ratio of the
//! variant's throughput to an in-run reference (`naive` is the naive peer, any other REF a
//! variant's full name). Without `VARIANT@` it applies to every measured variant but the in-run
//! reference; without `SCENARIO/`, latency applies to constant-rate scenarios and `req_s` and
//! `div_` to maximum-rate ones (p99 at saturation measures the queue, not the receiver). The
//! value compared is the median over the rounds, the figure the tables publish.

use crate::results::{Cell, Results, ScenarioResult};

/// What is measured.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    /// A latency percentile (50, 99, 99.9), compared in microseconds.
    Latency(&'static str),
    ReqPerSec,
    CpuMsPer1k,
    /// Throughput ÷ the reference's median throughput (`naive` or a variant's name).
    Ratio(String),
}

/// One parsed `--threshold`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As given, for messages.
    pub text: String,
    pub variant: Option<String>,
    pub scenario: Option<String>,
    pub metric: Metric,
    /// `true` for `<`: the value must stay below.
    pub below: bool,
    /// In the metric's unit (µs for latency).
    pub value: f64,
}

/// A threshold a variant did not meet (the results model's, so that `results.json` records it).
pub use crate::results::Breach;

/// `800us`, `5ms`, `1s` or plain microseconds, in µs.
fn parse_micros(v: &str) -> Result<f64, String> {
    let v = v.trim();
    if let Ok(n) = v.parse::<f64>() {
        return Ok(n);
    }
    humantime::parse_duration(v)
        .map(|d| d.as_secs_f64() * 1e6)
        .map_err(|e| format!("`{v}` is not a duration like 800us or 5ms: {e}"))
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "`{text}` is not a threshold: [VARIANT@][SCENARIO/]METRIC<VALUE or >VALUE, METRIC one of p50, p99, p999, req_s, cpu_ms_per_1k, div_REF (e.g. p99<5ms, div_naive>1.8)"
            )
        };
        let (lhs, rhs, below) = match (text.find('<'), text.find('>')) {
            (Some(i), None) => (&text[..i], &text[i + 1..], true),
            (None, Some(i)) => (&text[..i], &text[i + 1..], false),
            _ => return Err(usage()),
        };
        let (variant, rest) = match lhs.split_once('@') {
            Some((v, r)) if !v.is_empty() => (Some(v.to_owned()), r),
            Some(_) => return Err(usage()),
            None => (None, lhs),
        };
        let (scenario, metric) = match rest.rsplit_once('/') {
            Some((s, m)) if !s.is_empty() => (Some(s.to_owned()), m),
            Some(_) => return Err(usage()),
            None => (None, rest),
        };
        let metric = match metric.trim() {
            "p50" => Metric::Latency("p50"),
            "p99" => Metric::Latency("p99"),
            "p999" => Metric::Latency("p999"),
            "req_s" => Metric::ReqPerSec,
            "cpu_ms_per_1k" => Metric::CpuMsPer1k,
            m => match m.strip_prefix("div_") {
                Some(r) if !r.is_empty() => Metric::Ratio(r.to_owned()),
                _ => return Err(usage()),
            },
        };
        let value = match metric {
            Metric::Latency(_) => parse_micros(rhs)?,
            _ => rhs
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{rhs}` in `{text}` is not a number"))?,
        };
        Ok(Threshold {
            text: text.to_owned(),
            variant,
            scenario,
            metric,
            below,
            value,
        })
    }
}

/// The median of `f` over a cell's good rounds.
fn median_of(cell: &Cell, f: impl Fn(&crate::results::Repeat) -> f64) -> Option<f64> {
    let v: Vec<f64> = cell
        .repeats
        .iter()
        .filter(|r| r.error.is_none())
        .map(f)
        .collect();
    crate::results::Spread::of(&v).map(|s| s.median)
}

impl Threshold {
    /// Whether it applies to `scenario` when it names none.
    fn applies_to(&self, sc: &ScenarioResult) -> bool {
        match &self.scenario {
            Some(s) => *s == sc.scenario,
            None => match self.metric {
                Metric::Latency(_) => !sc.shape.is_max(),
                Metric::ReqPerSec | Metric::Ratio(_) => sc.shape.is_max(),
                Metric::CpuMsPer1k => true,
            },
        }
    }

    fn measure(&self, cell: &Cell, sc: &ScenarioResult, naive: &str) -> Option<f64> {
        match &self.metric {
            Metric::Latency("p50") => median_of(cell, |r| r.p50_us as f64),
            Metric::Latency("p999") => cell.p999_us.map(|s| s.median),
            Metric::Latency(_) => cell.p99_us.map(|s| s.median),
            Metric::ReqPerSec => cell.rps.map(|s| s.median),
            Metric::CpuMsPer1k => cell.cpu_ms_per_1k.map(|s| s.median),
            Metric::Ratio(r) => {
                let name = if r == "naive" { naive } else { r.as_str() };
                let reference = sc
                    .cells
                    .iter()
                    .find(|c| c.variant == name && c.failed.is_none())?
                    .rps?
                    .median;
                let rps = cell.rps?.median;
                (reference > 0.0).then(|| rps / reference)
            }
        }
    }
}

/// Every threshold against every measured cell it applies to; the breaches, in order. A
/// threshold that names a variant or scenario the run does not have is an error (exit 2): a
/// gate that checks nothing must not pass.
pub fn evaluate(results: &Results, thresholds: &[Threshold]) -> Result<Vec<Breach>, String> {
    let naive = results
        .run
        .reference_naive
        .clone()
        .unwrap_or_else(|| crate::matrix::NAIVE.to_owned());
    let mut breaches = Vec::new();
    for t in thresholds {
        let mut checked = 0;
        for sc in results.scenarios.iter().filter(|s| t.applies_to(s)) {
            for cell in sc.cells.iter().filter(|c| c.failed.is_none()) {
                let named = t.variant.as_deref() == Some(cell.variant.as_str());
                if t.variant.is_some() && !named {
                    continue;
                }
                // The in-run reference is measured as the reference, not gated, unless named.
                if !named && cell.variant == naive {
                    continue;
                }
                let Some(measured) = t.measure(cell, sc, &naive) else {
                    continue;
                };
                checked += 1;
                let ok = if t.below {
                    measured < t.value
                } else {
                    measured > t.value
                };
                if !ok {
                    breaches.push(Breach {
                        threshold: t.text.clone(),
                        variant: cell.variant.clone(),
                        scenario: sc.scenario.clone(),
                        measured,
                    });
                }
            }
        }
        if checked == 0 {
            return Err(format!(
                "threshold `{}` matched no measured variant and scenario of this run (latency thresholds apply to constant-rate scenarios, req_s and div_ to maximum-rate ones unless SCENARIO/ names one)",
                t.text
            ));
        }
    }
    Ok(breaches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_k6_style() {
        let t: Threshold = "hyper:ring:serde@typical-mix/p99<5ms"
            .parse()
            .expect("valid");
        assert_eq!(t.variant.as_deref(), Some("hyper:ring:serde"));
        assert_eq!(t.scenario.as_deref(), Some("typical-mix"));
        assert_eq!(
            (t.metric.clone(), t.below, t.value),
            (Metric::Latency("p99"), true, 5000.0)
        );
        let t: Threshold = "div_naive>1.8".parse().expect("valid");
        assert_eq!(
            (t.metric, t.below, t.value),
            (Metric::Ratio("naive".into()), false, 1.8)
        );
        let t: Threshold = "p999<800us".parse().expect("valid");
        assert_eq!(t.value, 800.0);
        for bad in [
            "p99=5ms",
            "p98<5ms",
            "@p99<1ms",
            "p99<fast",
            "req_s>many",
            "div_<2",
            "p99<1<2",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
    }
}

//! Counters, latency histograms and the JSON report a run writes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::model::{Label, Verdict};

/// The report format's name and version; bump on incompatible change.
pub const REPORT_SCHEMA: &str = "didit-loadgen-report/1";

/// Everything one engine run counted. Engines fill it; [`Report`] summarises it.
#[derive(Debug)]
pub struct Stats {
    /// Latency from the intended send time (coordinated-omission corrected), microseconds.
    pub corrected: Histogram<u64>,
    /// Latency from the actual send time, microseconds.
    pub uncorrected: Histogram<u64>,
    /// How late the generator released each request against its schedule, microseconds.
    pub schedule_lag: Histogram<u64>,
    /// Answered requests in the measured period.
    pub measured: u64,
    /// Requests whose schedule slot passed while no connection was free, never sent.
    pub unsent: u64,
    /// Requests sent more than 1 ms after their intended time.
    pub late: u64,
    pub transport_errors: u64,
    pub reconnects: u64,
    pub by_label: BTreeMap<LabelKey, LabelCount>,
    pub mismatch_examples: Vec<MismatchExample>,
    pub transport_examples: Vec<String>,
}

/// Requests of one label.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LabelCount {
    pub count: u64,
    pub correct: u64,
    pub shed: u64,
    pub mismatches: u64,
    pub transport_errors: u64,
    /// Answers by HTTP status.
    #[serde(deserialize_with = "status_keys")]
    pub statuses: BTreeMap<u16, u64>,
}

/// JSON object keys are strings; under `#[serde(flatten)]` serde no longer turns them back into
/// numbers by itself, so the status codes are parsed here.
fn status_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, u64>, D::Error> {
    let raw = BTreeMap::<String, u64>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            k.parse()
                .map(|k| (k, v))
                .map_err(|_| serde::de::Error::custom(format!("`{k}` is not an HTTP status")))
        })
        .collect()
}

/// Label identity in the counts (class, kind, expected status and word).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelKey {
    pub class: &'static str,
    pub kind: &'static str,
    pub expected_status: u16,
    pub expected: &'static str,
}

impl From<&Label> for LabelKey {
    fn from(l: &Label) -> Self {
        LabelKey {
            class: l.class.key(),
            kind: l.kind.key(),
            expected_status: l.expect.status(),
            expected: l.expect.word(),
        }
    }
}

/// One wrong answer, for the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MismatchExample {
    pub class: Cow<'static, str>,
    pub kind: Cow<'static, str>,
    pub expected_status: u16,
    pub expected: Cow<'static, str>,
    pub got_status: u16,
    pub got_body: String,
}

const EXAMPLES_KEPT: usize = 20;

fn histogram() -> Histogram<u64> {
    // 1 µs to 100 s at 3 significant digits; values beyond are clamped by `record`.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant, valid bounds")
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            corrected: histogram(),
            uncorrected: histogram(),
            schedule_lag: histogram(),
            measured: 0,
            unsent: 0,
            late: 0,
            transport_errors: 0,
            reconnects: 0,
            by_label: BTreeMap::new(),
            mismatch_examples: Vec::new(),
            transport_examples: Vec::new(),
        }
    }
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 100_000_000)
}

impl Stats {
    /// Records an answer. `measured` is false during warm-up: correctness still counts, latency not.
    pub fn answer(
        &mut self,
        label: &Label,
        status: u16,
        body: &[u8],
        verdict: Verdict,
        latency: Option<(Duration, Duration)>,
    ) {
        let c = self.by_label.entry(label.into()).or_default();
        c.count += 1;
        *c.statuses.entry(status).or_default() += 1;
        match verdict {
            Verdict::Correct => c.correct += 1,
            Verdict::Shed => c.shed += 1,
            Verdict::Mismatch => {
                c.mismatches += 1;
                if self.mismatch_examples.len() < EXAMPLES_KEPT {
                    self.mismatch_examples.push(MismatchExample {
                        class: label.class.key().into(),
                        kind: label.kind.key().into(),
                        expected_status: label.expect.status(),
                        expected: label.expect.word().into(),
                        got_status: status,
                        got_body: String::from_utf8_lossy(&body[..body.len().min(200)])
                            .into_owned(),
                    });
                }
            }
        }
        if let Some((corrected, uncorrected)) = latency {
            self.measured += 1;
            let _ = self.corrected.record(us(corrected));
            let _ = self.uncorrected.record(us(uncorrected));
        }
    }

    /// Records a request that got no HTTP answer. An oversize delivery cut off by the receiver
    /// closing the connection mid-upload was refused, which is a correct outcome (HTTP lets a
    /// server close instead of reading a body it will not take): it counts as correct, under
    /// status 0, not as a transport error.
    pub fn transport_error(&mut self, label: &Label, error: &str) {
        if label.class == crate::model::Class::Oversize {
            let c = self.by_label.entry(label.into()).or_default();
            c.count += 1;
            c.correct += 1;
            *c.statuses.entry(0).or_default() += 1;
            return;
        }
        self.transport_errors += 1;
        let c = self.by_label.entry(label.into()).or_default();
        c.count += 1;
        c.transport_errors += 1;
        if self.transport_examples.len() < EXAMPLES_KEPT {
            self.transport_examples.push(format!(
                "{} ({}): {error}",
                label.class.key(),
                label.kind.key()
            ));
        }
    }

    pub fn record_lag(&mut self, lag: Duration) {
        let _ = self.schedule_lag.record(us(lag));
        if lag > Duration::from_millis(1) {
            self.late += 1;
        }
    }

    pub fn mismatches(&self) -> u64 {
        self.by_label.values().map(|c| c.mismatches).sum()
    }

    pub fn total(&self) -> u64 {
        self.by_label.values().map(|c| c.count).sum()
    }
}

/// Latency percentiles, microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The rate figures of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Load {
    pub shape: Cow<'static, str>,
    /// Mean intended rate; `null` for closed-loop maximum runs.
    pub target_rate: Option<f64>,
    pub achieved_rate: f64,
    pub connections: usize,
}

/// Request totals.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Requests {
    /// All requests, warm-up included.
    pub total: u64,
    /// Answered in the measured period.
    pub measured: u64,
    pub correct: u64,
    /// 503 answers to deliveries that expected 200 (load shedding; Didit retries them).
    pub shed: u64,
    /// Answers that differ from their label: correctness failures.
    pub mismatches: u64,
    pub transport_errors: u64,
    /// Scheduled but never sent: no connection was free before the run ended.
    pub unsent: u64,
    /// Sent more than 1 ms after their intended time.
    pub late: u64,
    pub reconnects: u64,
}

/// One label's line in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelLine {
    pub class: Cow<'static, str>,
    pub kind: Cow<'static, str>,
    pub expected_status: u16,
    pub expected: Cow<'static, str>,
    #[serde(flatten)]
    pub counts: LabelCount,
}

/// Latency section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Latency {
    /// `microseconds` for open-loop runs, `milliseconds` (goose's resolution) converted to µs.
    pub resolution: Cow<'static, str>,
    /// From the intended send time (coordinated-omission corrected).
    pub corrected: Percentiles,
    /// From the actual send time.
    pub uncorrected: Percentiles,
    /// The generator's own lag behind its schedule.
    pub schedule_lag: Percentiles,
}

/// CPU use of a process over the measured period.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cpu {
    pub cpu_seconds: f64,
    /// CPU seconds per wall second (1.0 = one core busy).
    pub utilisation: f64,
}

/// The JSON report (`--report`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: Cow<'static, str>,
    pub scenario: String,
    pub engine: Cow<'static, str>,
    pub target: String,
    /// Answers were checked against `/webhooks/null`'s 200 `ok`, not the labels' statuses.
    pub calibration: bool,
    /// Deliveries were cycled from a pool of this many, built before the run (calibration).
    pub pool: Option<usize>,
    /// The HTTP client that sent the requests.
    pub http_client: Cow<'static, str>,
    /// How answers were judged: `status-and-body` or `status`.
    pub judge: Cow<'static, str>,
    pub started_unix: i64,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub load: Load,
    pub requests: Requests,
    pub by_label: Vec<LabelLine>,
    pub latency_us: Latency,
    pub generator: Cpu,
    pub receiver: Option<Cpu>,
    /// The generator, not the receiver, limited the result (see `generator_limited_reasons`).
    pub generator_limited: bool,
    pub generator_limited_reasons: Vec<String>,
    pub mismatch_examples: Vec<MismatchExample>,
    pub transport_error_examples: Vec<String>,
    /// Files goose wrote (`--report-file`), for the goose engine.
    pub goose_reports: Vec<String>,
}

/// Why a report file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not a didit-loadgen report: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "report schema `{found}`, expected `{REPORT_SCHEMA}`: use the didit-loadgen built with this tool"
    )]
    Schema { found: String },
}

impl Report {
    /// Reads a report the generator wrote (`--report`): the typed contract between the generator
    /// and the tools that run it. A report of another schema version is refused, not half-read.
    pub fn from_json(bytes: &[u8]) -> Result<Report, ReportError> {
        #[derive(Deserialize)]
        struct Head {
            schema: String,
        }
        let head: Head = serde_json::from_slice(bytes)?;
        if head.schema != REPORT_SCHEMA {
            return Err(ReportError::Schema { found: head.schema });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn lines(stats: &Stats) -> Vec<LabelLine> {
        stats
            .by_label
            .iter()
            .map(|(k, c)| LabelLine {
                class: k.class.into(),
                kind: k.kind.into(),
                expected_status: k.expected_status,
                expected: k.expected.into(),
                counts: c.clone(),
            })
            .collect()
    }

    /// A table for people, printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let r = &self.requests;
        let _ = writeln!(
            s,
            "{} via {} against {}: {:.1} s measured, {} connections",
            self.scenario, self.engine, self.target, self.duration_secs, self.load.connections
        );
        let target = self
            .load
            .target_rate
            .map_or("max (closed loop)".to_owned(), |t| format!("{t:.0} req/s"));
        let _ = writeln!(
            s,
            "  rate      achieved {:.0} req/s, target {target} ({})",
            self.load.achieved_rate, self.load.shape
        );
        let _ = writeln!(
            s,
            "  requests  {} total, {} measured, {} correct, {} shed (503), {} MISMATCHES, {} transport errors, {} unsent, {} late",
            r.total,
            r.measured,
            r.correct,
            r.shed,
            r.mismatches,
            r.transport_errors,
            r.unsent,
            r.late
        );
        let l = &self.latency_us;
        let row = |s: &mut String, name: &str, p: &Percentiles| {
            let _ = writeln!(
                s,
                "  {name:<11} p50 {:>7}  p90 {:>7}  p99 {:>7}  p99.9 {:>7}  max {:>8}  (µs, {} samples)",
                p.p50, p.p90, p.p99, p.p999, p.max, p.count
            );
        };
        row(&mut s, "corrected", &l.corrected);
        row(&mut s, "uncorrected", &l.uncorrected);
        if l.schedule_lag.count > 0 {
            row(&mut s, "sched. lag", &l.schedule_lag);
        }
        let _ = writeln!(
            s,
            "  cpu       generator {:.2} core{}",
            self.generator.utilisation,
            self.receiver.as_ref().map_or(String::new(), |c| format!(
                ", receiver {:.2} core",
                c.utilisation
            ))
        );
        // People read one line per class; the JSON keeps class × payload kind.
        let mut by_class: BTreeMap<(&str, u16, &str), LabelCount> = BTreeMap::new();
        for line in &self.by_label {
            let c = by_class
                .entry((&line.class, line.expected_status, &line.expected))
                .or_default();
            c.count += line.counts.count;
            c.correct += line.counts.correct;
            c.shed += line.counts.shed;
            c.mismatches += line.counts.mismatches;
            c.transport_errors += line.counts.transport_errors;
            for (st, n) in &line.counts.statuses {
                *c.statuses.entry(*st).or_default() += n;
            }
        }
        let _ = writeln!(
            s,
            "  {:<19} {:<27} {:>8} {:>8} {:>6} {:>10} {:>7}  answers",
            "class", "expected", "count", "correct", "shed", "mismatches", "errors"
        );
        for ((class, status, word), c) in &by_class {
            let statuses: Vec<String> = c
                .statuses
                .iter()
                .map(|(st, n)| format!("{st}×{n}"))
                .collect();
            let _ = writeln!(
                s,
                "  {:<19} {:<27} {:>8} {:>8} {:>6} {:>10} {:>7}  {}",
                class,
                format!("{status} {word}"),
                c.count,
                c.correct,
                c.shed,
                c.mismatches,
                c.transport_errors,
                statuses.join(" ")
            );
        }
        for m in &self.mismatch_examples {
            let _ = writeln!(
                s,
                "  mismatch: {} {} expected {} {}, got {} {}",
                m.class, m.kind, m.expected_status, m.expected, m.got_status, m.got_body
            );
        }
        for e in &self.transport_error_examples {
            let _ = writeln!(s, "  transport error: {e}");
        }
        if self.generator_limited {
            let _ = writeln!(
                s,
                "  GENERATOR-LIMITED: {}",
                self.generator_limited_reasons.join("; ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Class, Expect, PayloadKind};

    #[test]
    fn percentiles_and_counts() {
        let mut st = Stats::default();
        let label = Label {
            class: Class::Valid,
            kind: PayloadKind::Approved,
            expect: Expect::Accepted,
        };
        for i in 1..=100u64 {
            st.answer(
                &label,
                200,
                br#"{"status":"accepted"}"#,
                Verdict::Correct,
                Some((Duration::from_micros(i * 10), Duration::from_micros(i))),
            );
        }
        st.answer(&label, 401, b"{}", Verdict::Mismatch, None);
        let p = Percentiles::of(&st.corrected);
        assert_eq!(p.count, 100);
        assert_eq!(p.p50, 500);
        assert_eq!(p.max, 1000);
        assert_eq!(st.mismatches(), 1);
        assert_eq!(st.total(), 101);
        assert_eq!(st.mismatch_examples[0].got_status, 401);
    }

    #[test]
    fn a_reset_refuses_oversize_but_fails_anything_else() {
        let mut st = Stats::default();
        let oversize = Label {
            class: Class::Oversize,
            kind: PayloadKind::Approved,
            expect: Expect::Rejected(didit_webhook::Rejection::PayloadTooLarge),
        };
        st.transport_error(&oversize, "Broken pipe");
        assert_eq!(st.transport_errors, 0);
        let c = st.by_label.values().next().expect("counted");
        assert_eq!((c.correct, c.statuses.get(&0)), (1, Some(&1)));
        let valid = Label {
            class: Class::Valid,
            kind: PayloadKind::Approved,
            expect: Expect::Accepted,
        };
        st.transport_error(&valid, "Broken pipe");
        assert_eq!(st.transport_errors, 1);
    }

    fn sample_report() -> Report {
        let mut st = Stats::default();
        let label = Label {
            class: Class::Valid,
            kind: PayloadKind::Approved,
            expect: Expect::Accepted,
        };
        st.answer(&label, 200, b"ok", Verdict::Correct, None);
        st.answer(&label, 401, b"no", Verdict::Mismatch, None);
        let p = Percentiles {
            count: 2,
            mean: 1.5,
            p50: 1,
            p90: 2,
            p99: 2,
            p999: 2,
            max: 2,
        };
        Report {
            schema: REPORT_SCHEMA.into(),
            scenario: "s".into(),
            engine: "open-loop".into(),
            target: "http://127.0.0.1:1".into(),
            calibration: false,
            pool: Some(10),
            http_client: "raw".into(),
            judge: "status".into(),
            started_unix: 1,
            duration_secs: 1.0,
            warmup_secs: 0.0,
            load: Load {
                shape: "max".into(),
                target_rate: None,
                achieved_rate: 2.0,
                connections: 1,
            },
            requests: Requests {
                total: 2,
                measured: 2,
                correct: 1,
                shed: 0,
                mismatches: 1,
                transport_errors: 0,
                unsent: 0,
                late: 0,
                reconnects: 0,
            },
            by_label: Report::lines(&st),
            latency_us: Latency {
                resolution: "microseconds".into(),
                corrected: p.clone(),
                uncorrected: p.clone(),
                schedule_lag: p,
            },
            generator: Cpu {
                cpu_seconds: 0.5,
                utilisation: 0.5,
            },
            receiver: None,
            generator_limited: false,
            generator_limited_reasons: Vec::new(),
            mismatch_examples: st.mismatch_examples.clone(),
            transport_error_examples: Vec::new(),
            goose_reports: Vec::new(),
        }
    }

    #[test]
    fn a_written_report_reads_back_typed() {
        let r = sample_report();
        let json = serde_json::to_vec(&r).expect("serialises");
        let back = Report::from_json(&json).expect("reads back");
        assert_eq!(back.requests.mismatches, 1);
        assert_eq!(back.latency_us.corrected, r.latency_us.corrected);
        assert_eq!(back.by_label[0].counts.statuses.get(&401), Some(&1));
        assert_eq!(back.by_label[0].counts.statuses.get(&200), Some(&1));
        assert_eq!(back.mismatch_examples[0].got_status, 401);
        assert_eq!(back.judge, "status");
    }

    #[test]
    fn a_report_of_another_schema_is_refused() {
        let mut v = serde_json::to_value(sample_report()).expect("serialises");
        v["schema"] = "didit-loadgen-report/0".into();
        let err = Report::from_json(&serde_json::to_vec(&v).expect("json")).expect_err("refused");
        assert!(err.to_string().contains("didit-loadgen-report/0"), "{err}");
        v["schema"] = REPORT_SCHEMA.into();
        v["by_label"][0]["statuses"] = serde_json::json!({"two hundred": 1});
        let err = Report::from_json(&serde_json::to_vec(&v).expect("json")).expect_err("refused");
        assert!(err.to_string().contains("not an HTTP status"), "{err}");
    }
}

//! Counters, latency histograms and the JSON report a run writes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::labels::{Label, Verdict};

/// The report format's name and version; bump on incompatible change.
pub const REPORT_SCHEMA: &str = "didit-loadgen-report/2";

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

impl LabelCount {
    /// Adds another run's (or another kind's) counts of the same label.
    pub fn add(&mut self, other: &LabelCount) {
        self.count += other.count;
        self.correct += other.correct;
        self.shed += other.shed;
        self.mismatches += other.mismatches;
        self.transport_errors += other.transport_errors;
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
    }
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
        if label.class == crate::labels::Class::Oversize {
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

    /// Adds another engine's counts (one thread of a multi-threaded run): histograms exactly,
    /// counters summed, examples kept up to the usual number.
    pub fn merge(&mut self, other: Stats) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.corrected.add(&other.corrected);
        let _ = self.uncorrected.add(&other.uncorrected);
        let _ = self.schedule_lag.add(&other.schedule_lag);
        self.measured += other.measured;
        self.unsent += other.unsent;
        self.late += other.late;
        self.transport_errors += other.transport_errors;
        self.reconnects += other.reconnects;
        for (k, c) in other.by_label {
            self.by_label.entry(k).or_default().add(&c);
        }
        let room = EXAMPLES_KEPT.saturating_sub(self.mismatch_examples.len());
        self.mismatch_examples
            .extend(other.mismatch_examples.into_iter().take(room));
        let room = EXAMPLES_KEPT.saturating_sub(self.transport_examples.len());
        self.transport_examples
            .extend(other.transport_examples.into_iter().take(room));
    }

    pub fn mismatches(&self) -> u64 {
        self.by_label.values().map(|c| c.mismatches).sum()
    }

    pub fn total(&self) -> u64 {
        self.by_label.values().map(|c| c.count).sum()
    }
}

/// A run's latency histograms, each in HdrHistogram's compressed V2 encoding, base64: what
/// HdrHistogram's own tools (`HistogramLogReader`, `hdrh` in Python) read, and what
/// `webhook-bench merge` adds exactly across generator processes and hosts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Histograms {
    pub corrected: String,
    pub uncorrected: String,
    pub schedule_lag: String,
}

/// A histogram that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("{what}: not an HdrHistogram V2 base64 encoding: {why}")]
pub struct HistogramError {
    what: &'static str,
    why: String,
}

/// Encodes `h` as compressed V2, base64.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    let mut bytes = Vec::new();
    // Writing into a Vec fails only for a histogram the serialiser cannot represent, which the
    // bounds this crate uses rule out; an empty string then reads back as an error, not as data.
    if hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2DeflateSerializer::new(),
        h,
        &mut bytes,
    )
    .is_err()
    {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes what [`encode_histogram`] wrote.
pub fn decode_histogram(what: &'static str, text: &str) -> Result<Histogram<u64>, HistogramError> {
    use base64::Engine as _;
    let err = |why: String| HistogramError { what, why };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| err(e.to_string()))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| err(format!("{e:?}")))
}

impl Histograms {
    pub fn of(st: &Stats) -> Histograms {
        Histograms {
            corrected: encode_histogram(&st.corrected),
            uncorrected: encode_histogram(&st.uncorrected),
            schedule_lag: encode_histogram(&st.schedule_lag),
        }
    }

    /// The three histograms, decoded: (corrected, uncorrected, schedule lag).
    pub fn decode(&self) -> Result<[Histogram<u64>; 3], HistogramError> {
        Ok([
            decode_histogram("corrected", &self.corrected)?,
            decode_histogram("uncorrected", &self.uncorrected)?,
            decode_histogram("schedule_lag", &self.schedule_lag)?,
        ])
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
    pub shape: crate::scenario::ShapeKind,
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
    /// The latency histograms themselves, for exact merging (`webhook-bench merge`).
    pub histograms: Histograms,
    /// Open-loop engine threads (`--threads`), each on its own core.
    pub threads: usize,
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

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no reports to merge")]
    Empty,
    #[error("the reports are of different runs: {what} `{a}` and `{b}`")]
    Different {
        what: &'static str,
        a: String,
        b: String,
    },
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    #[error("histograms of different bounds: {0}")]
    Bounds(String),
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

    /// Combines the reports of generators that ran side by side against one receiver (several
    /// processes, or several hosts): the histograms are added exactly and the percentiles
    /// recomputed from the sum, counts and rates are summed, the run lasted as long as the
    /// longest. Reports of different scenarios, engines or judging modes are refused, as are
    /// reports without histograms. The receiver's CPU, observed by each generator over the same
    /// period, is the largest of their observations.
    pub fn merge(reports: Vec<Report>) -> Result<Report, MergeError> {
        let mut it = reports.into_iter();
        let mut m = it.next().ok_or(MergeError::Empty)?;
        let [mut corrected, mut uncorrected, mut lag] = m.histograms.decode()?;
        for r in it {
            for (what, a, b) in [
                ("scenario", &m.scenario, &r.scenario),
                ("engine", &m.engine.to_string(), &r.engine.to_string()),
                ("judge", &m.judge.to_string(), &r.judge.to_string()),
            ] {
                if a != b {
                    return Err(MergeError::Different {
                        what,
                        a: a.clone(),
                        b: b.clone(),
                    });
                }
            }
            if m.calibration != r.calibration {
                return Err(MergeError::Different {
                    what: "calibration",
                    a: m.calibration.to_string(),
                    b: r.calibration.to_string(),
                });
            }
            let [c, u, l] = r.histograms.decode()?;
            corrected
                .add(&c)
                .map_err(|e| MergeError::Bounds(format!("{e:?}")))?;
            uncorrected
                .add(&u)
                .map_err(|e| MergeError::Bounds(format!("{e:?}")))?;
            lag.add(&l)
                .map_err(|e| MergeError::Bounds(format!("{e:?}")))?;
            if m.target != r.target && !m.target.split(", ").any(|t| t == r.target) {
                m.target = format!("{}, {}", m.target, r.target);
            }
            m.started_unix = m.started_unix.min(r.started_unix);
            m.duration_secs = m.duration_secs.max(r.duration_secs);
            m.warmup_secs = m.warmup_secs.max(r.warmup_secs);
            m.pool = match (m.pool, r.pool) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            m.threads += r.threads;
            m.load.target_rate = match (m.load.target_rate, r.load.target_rate) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            m.load.achieved_rate =
                ((m.load.achieved_rate + r.load.achieved_rate) * 10.0).round() / 10.0;
            m.load.connections += r.load.connections;
            let q = &mut m.requests;
            let o = &r.requests;
            q.total += o.total;
            q.measured += o.measured;
            q.correct += o.correct;
            q.shed += o.shed;
            q.mismatches += o.mismatches;
            q.transport_errors += o.transport_errors;
            q.unsent += o.unsent;
            q.late += o.late;
            q.reconnects += o.reconnects;
            for line in r.by_label {
                match m.by_label.iter_mut().find(|l| {
                    (&l.class, &l.kind, l.expected_status, &l.expected)
                        == (
                            &line.class,
                            &line.kind,
                            line.expected_status,
                            &line.expected,
                        )
                }) {
                    Some(mine) => mine.counts.add(&line.counts),
                    None => m.by_label.push(line),
                }
            }
            m.generator.cpu_seconds += r.generator.cpu_seconds;
            m.generator.utilisation += r.generator.utilisation;
            m.receiver = match (m.receiver.take(), r.receiver) {
                (Some(a), Some(b)) if b.cpu_seconds > a.cpu_seconds => Some(b),
                (a, b) => a.or(b),
            };
            m.generator_limited |= r.generator_limited;
            m.generator_limited_reasons
                .extend(r.generator_limited_reasons);
            let room = EXAMPLES_KEPT.saturating_sub(m.mismatch_examples.len());
            m.mismatch_examples
                .extend(r.mismatch_examples.into_iter().take(room));
            let room = EXAMPLES_KEPT.saturating_sub(m.transport_error_examples.len());
            m.transport_error_examples
                .extend(r.transport_error_examples.into_iter().take(room));
            m.goose_reports.extend(r.goose_reports);
        }
        m.by_label.sort_by(|a, b| {
            (&a.class, &a.kind, a.expected_status, &a.expected).cmp(&(
                &b.class,
                &b.kind,
                b.expected_status,
                &b.expected,
            ))
        });
        m.latency_us.corrected = Percentiles::of(&corrected);
        m.latency_us.uncorrected = Percentiles::of(&uncorrected);
        m.latency_us.schedule_lag = Percentiles::of(&lag);
        m.histograms = Histograms {
            corrected: encode_histogram(&corrected),
            uncorrected: encode_histogram(&uncorrected),
            schedule_lag: encode_histogram(&lag),
        };
        Ok(m)
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
            by_class
                .entry((&line.class, line.expected_status, &line.expected))
                .or_default()
                .add(&line.counts);
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
    use crate::labels::{Class, Expect, PayloadKind};

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
        let lat = Some((Duration::from_micros(100), Duration::from_micros(50)));
        st.answer(&label, 200, b"ok", Verdict::Correct, lat);
        st.answer(&label, 401, b"no", Verdict::Mismatch, lat);
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
                shape: crate::scenario::ShapeKind::Max,
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
            histograms: Histograms::of(&st),
            threads: 1,
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

    #[test]
    fn merged_reports_add_counts_and_histograms_and_refuse_other_scenarios() {
        let a = sample_report();
        let mut b = sample_report();
        b.target = "http://127.0.0.1:2".into();
        let m = Report::merge(vec![a.clone(), b.clone()]).expect("merges");
        assert_eq!(m.requests.total, 4);
        assert_eq!(m.requests.mismatches, 2);
        assert_eq!(m.load.achieved_rate, 4.0);
        assert_eq!(m.threads, 2);
        assert_eq!(m.target, "http://127.0.0.1:1, http://127.0.0.1:2");
        let line = m
            .by_label
            .iter()
            .find(|l| l.kind == "approved")
            .expect("the approved line");
        assert_eq!(line.counts.statuses.get(&401), Some(&2));
        let [c, _, _] = m.histograms.decode().expect("decodes");
        let [ca, _, _] = a.histograms.decode().expect("decodes");
        assert_eq!((ca.len(), c.len()), (2, 4));
        assert_eq!(m.latency_us.corrected, Percentiles::of(&c));
        b.scenario = "other".into();
        let err = Report::merge(vec![a, b]).expect_err("refused");
        assert!(
            err.to_string().contains("scenario `s` and `other`"),
            "{err}"
        );
        assert!(matches!(Report::merge(Vec::new()), Err(MergeError::Empty)));
    }

    #[test]
    fn histograms_survive_the_v2_base64_round_trip_and_add_exactly() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        let label = Label {
            class: Class::Valid,
            kind: PayloadKind::Approved,
            expect: Expect::Accepted,
        };
        for i in 1..=1000u64 {
            let st = if i % 3 == 0 { &mut b } else { &mut a };
            st.answer(
                &label,
                200,
                b"ok",
                Verdict::Correct,
                Some((Duration::from_micros(i * 7), Duration::from_micros(i))),
            );
        }
        let [ca, _, _] = Histograms::of(&a).decode().expect("decodes");
        assert_eq!(ca, a.corrected);
        let [cb, _, _] = Histograms::of(&b).decode().expect("decodes");
        let mut sum = ca;
        sum.add(&cb).expect("same bounds");
        a.merge(b);
        assert_eq!(sum, a.corrected);
        assert_eq!(a.corrected.len(), 1000);
        assert_eq!(a.total(), 1000);
        assert!(decode_histogram("x", "not base64!").is_err());
        assert!(decode_histogram("x", "aGVsbG8=").is_err());
    }
}

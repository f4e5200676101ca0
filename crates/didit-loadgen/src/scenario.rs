//! Scenario files (`scenarios/*.toml`): payload mix, bad-traffic shares, load shape, engine.
//!
//! Every key is checked: an unknown key, a negative or zero rate, weights that sum to zero or
//! shares above 1 are errors that name the file and the key, before any load is sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::labels::{Class, PayloadKind};

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    // `error`, not `source`: the cause is in the message once, not repeated as a source.
    #[error("cannot read scenario {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "no scenario {path}: no such file, and no scenario of that name ships with the generator (it ships {})",
        SHIPPED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    )]
    Missing { path: PathBuf },
    #[error("scenario {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("scenario {name}: {message}")]
    Invalid { name: String, message: String },
}

/// Which engine sends the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// Open loop: constant-arrival-rate schedule, microsecond HdrHistogram, coordinated-omission
    /// corrected. For ceilings and tail latency.
    #[default]
    OpenLoop,
    /// goose: closed-loop users, goose's own reports and baselines; latency in whole milliseconds.
    Goose,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::OpenLoop => "open-loop",
            EngineKind::Goose => "goose",
        }
    }
}

/// How the offered load varies over the measured period.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(tag = "shape", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LoadShape {
    /// A constant arrival rate (requests per second).
    Constant { rate: f64 },
    /// From `from` to `to` requests per second, linearly over the measured period.
    Ramp { from: f64, to: f64 },
    /// `rate`, with `peak` for `length` at the start of every `every`.
    Burst {
        rate: f64,
        peak: f64,
        #[serde(with = "humantime_serde_compat")]
        every: Duration,
        #[serde(with = "humantime_serde_compat")]
        length: Duration,
    },
    /// Closed loop: every connection sends its next request as soon as the previous one is
    /// answered. Finds the ceiling; latency is then not corrected (there is no schedule).
    Max,
}

impl LoadShape {
    /// The intended arrival rate at `t` into the measured period (`None` for `Max`).
    pub fn rate_at(&self, t: Duration, total: Duration) -> Option<f64> {
        match *self {
            LoadShape::Constant { rate } => Some(rate),
            LoadShape::Ramp { from, to } => {
                let f = if total.is_zero() {
                    1.0
                } else {
                    (t.as_secs_f64() / total.as_secs_f64()).min(1.0)
                };
                Some(from + (to - from) * f)
            }
            LoadShape::Burst {
                rate,
                peak,
                every,
                length,
            } => {
                let phase = t.as_secs_f64() % every.as_secs_f64().max(1e-9);
                Some(if phase < length.as_secs_f64() {
                    peak
                } else {
                    rate
                })
            }
            LoadShape::Max => None,
        }
    }

    /// The same shape at `f` times the rate (one thread's share of a run split over threads).
    pub fn scaled(&self, f: f64) -> LoadShape {
        match *self {
            LoadShape::Constant { rate } => LoadShape::Constant { rate: rate * f },
            LoadShape::Ramp { from, to } => LoadShape::Ramp {
                from: from * f,
                to: to * f,
            },
            LoadShape::Burst {
                rate,
                peak,
                every,
                length,
            } => LoadShape::Burst {
                rate: rate * f,
                peak: peak * f,
                every,
                length,
            },
            LoadShape::Max => LoadShape::Max,
        }
    }

    /// The mean rate over the measured period, for reports (`None` for `Max`).
    pub fn mean_rate(&self) -> Option<f64> {
        match *self {
            LoadShape::Constant { rate } => Some(rate),
            LoadShape::Ramp { from, to } => Some((from + to) / 2.0),
            LoadShape::Burst {
                rate,
                peak,
                every,
                length,
            } => {
                let f = (length.as_secs_f64() / every.as_secs_f64()).min(1.0);
                Some(peak * f + rate * (1.0 - f))
            }
            LoadShape::Max => None,
        }
    }

    /// Which shape this is, without its rates: what reports and results record.
    pub fn kind(&self) -> ShapeKind {
        match self {
            LoadShape::Constant { .. } => ShapeKind::Constant,
            LoadShape::Ramp { .. } => ShapeKind::Ramp,
            LoadShape::Burst { .. } => ShapeKind::Burst,
            LoadShape::Max => ShapeKind::Max,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// A [`LoadShape`] without its rates, as reports and results name it (`"max"`, `"constant"`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShapeKind {
    Constant,
    Ramp,
    Burst,
    Max,
}

impl ShapeKind {
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Constant => "constant",
            ShapeKind::Ramp => "ramp",
            ShapeKind::Burst => "burst",
            ShapeKind::Max => "max",
        }
    }

    /// Closed loop, at the ceiling: throughput and its ratios mean something, and latency has no
    /// schedule to be measured against.
    pub fn is_max(self) -> bool {
        self == ShapeKind::Max
    }
}

impl std::fmt::Display for ShapeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// serde glue for "20s"-style durations (humantime), kept local to avoid another crate.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("`{s}` is not a duration like \"20s\" ({e})"))
        })
    }

    pub mod option {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// The core's size grammar (`1MiB`, `64kB`, `65536`), as every tool's `--max-body` reads it.
pub use didit_webhook::body::parse_size;

fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let s = String::deserialize(d)?;
    parse_size(&s).map_err(serde::de::Error::custom)
}

fn default_max_body() -> usize {
    1024 * 1024
}
fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}
fn default_connections() -> usize {
    32
}
fn default_duration() -> Duration {
    Duration::from_secs(20)
}
fn default_warmup() -> Duration {
    Duration::from_secs(2)
}

/// What the receiver under test was started with, so that labels predict its answers.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverProfile {
    /// The receiver runs with `--accept-simple` (Simple-only deliveries are then accepted).
    #[serde(default)]
    pub accept_simple: bool,
    /// The receiver's `--max-body`; oversize deliveries are one byte larger.
    #[serde(default = "default_max_body", deserialize_with = "de_size")]
    pub max_body: usize,
    /// The receiver's `--tolerance`; stale and future deliveries are a minute outside it.
    #[serde(default = "default_tolerance", with = "humantime_serde_compat")]
    pub tolerance: Duration,
}

impl Default for ReceiverProfile {
    fn default() -> Self {
        ReceiverProfile {
            accept_simple: false,
            max_body: default_max_body(),
            tolerance: default_tolerance(),
        }
    }
}

/// One scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub engine: EngineKind,
    /// The measured period.
    #[serde(default = "default_duration", with = "humantime_serde_compat")]
    pub duration: Duration,
    /// Sent before the measured period, at the shape's starting rate; not recorded.
    #[serde(default = "default_warmup", with = "humantime_serde_compat")]
    pub warmup: Duration,
    /// Persistent HTTP/1.1 connections (goose: users).
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// The path deliveries are posted to.
    #[serde(default = "default_path")]
    pub path: String,
    pub load: LoadShape,
    /// Relative weights of the payload kinds among the good traffic.
    pub payloads: Weights,
    /// Shares (0–1) of all requests that are bad traffic of each class.
    #[serde(default)]
    pub bad: BadShares,
    #[serde(default)]
    pub receiver: ReceiverProfile,
    /// Optional cap on the number of requests in the measured period.
    #[serde(default)]
    pub max_requests: Option<u64>,
    /// For `Max` runs: how long a request may take before it counts as a timeout.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub request_timeout: Option<Duration>,
}

impl Scenario {
    /// Thread `i`'s share of this scenario run over `n` threads: the rate divided by `n`, the
    /// connections and the request cap split as evenly as they go (the first threads take the
    /// remainder), so that the threads together send what the scenario asks.
    pub fn share(&self, i: usize, n: usize) -> Scenario {
        let n = n.max(1);
        let split = |total: u64| total / n as u64 + u64::from((i as u64) < total % n as u64);
        let mut s = self.clone();
        s.load = self.load.scaled(1.0 / n as f64);
        s.connections = split(self.connections as u64) as usize;
        s.max_requests = self.max_requests.map(split);
        s
    }
}

fn default_path() -> String {
    "/webhooks/didit".into()
}

/// Payload weights, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    #[serde(default)]
    pub not_started: f64,
    #[serde(default)]
    pub in_progress: f64,
    #[serde(default)]
    pub approved: f64,
    #[serde(default)]
    pub declined: f64,
    #[serde(default)]
    pub in_review: f64,
    #[serde(default)]
    pub abandoned: f64,
    #[serde(default)]
    pub resubmitted: f64,
    #[serde(default)]
    pub data_updated: f64,
    #[serde(default)]
    pub user_event: f64,
    #[serde(default)]
    pub business_event: f64,
    #[serde(default)]
    pub transaction_event: f64,
    #[serde(default)]
    pub full_sample: f64,
    #[serde(default)]
    pub aml_heavy: f64,
}

impl Weights {
    pub fn get(&self, kind: PayloadKind) -> f64 {
        match kind {
            PayloadKind::NotStarted => self.not_started,
            PayloadKind::InProgress => self.in_progress,
            PayloadKind::Approved => self.approved,
            PayloadKind::Declined => self.declined,
            PayloadKind::InReview => self.in_review,
            PayloadKind::Abandoned => self.abandoned,
            PayloadKind::Resubmitted => self.resubmitted,
            PayloadKind::DataUpdated => self.data_updated,
            PayloadKind::UserEvent => self.user_event,
            PayloadKind::BusinessEvent => self.business_event,
            PayloadKind::TransactionEvent => self.transaction_event,
            PayloadKind::FullSample => self.full_sample,
            PayloadKind::AmlHeavy => self.aml_heavy,
        }
    }
}

/// Shares of bad traffic, by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadShares {
    #[serde(default)]
    pub bad_signature: f64,
    #[serde(default)]
    pub stale: f64,
    #[serde(default)]
    pub future: f64,
    #[serde(default)]
    pub timestamp_mismatch: f64,
    #[serde(default)]
    pub replay: f64,
    #[serde(default)]
    pub reformatted: f64,
    #[serde(default)]
    pub simple_only: f64,
    #[serde(default)]
    pub malformed_json: f64,
    #[serde(default)]
    pub oversize: f64,
    #[serde(default)]
    pub retry: f64,
}

impl BadShares {
    pub fn get(&self, class: Class) -> f64 {
        match class {
            Class::Valid => 0.0,
            Class::BadSignature => self.bad_signature,
            Class::Stale => self.stale,
            Class::Future => self.future,
            Class::TimestampMismatch => self.timestamp_mismatch,
            Class::Replay => self.replay,
            Class::Reformatted => self.reformatted,
            Class::SimpleOnly => self.simple_only,
            Class::MalformedJson => self.malformed_json,
            Class::Oversize => self.oversize,
            Class::Retry => self.retry,
        }
    }

    pub fn total(&self) -> f64 {
        Class::ALL.iter().map(|c| self.get(*c)).sum()
    }
}

/// The scenarios that ship with the generator, compiled in from `scenarios/` (the repository's
/// top-level `scenarios/` is the same folder), so that a binary installed anywhere has them.
pub const SHIPPED: &[(&str, &str)] = &[
    ("smoke", include_str!("../scenarios/smoke.toml")),
    ("typical-mix", include_str!("../scenarios/typical-mix.toml")),
    (
        "typical-mix-max",
        include_str!("../scenarios/typical-mix-max.toml"),
    ),
    (
        "max-throughput",
        include_str!("../scenarios/max-throughput.toml"),
    ),
    ("noisy", include_str!("../scenarios/noisy.toml")),
    (
        "large-payloads",
        include_str!("../scenarios/large-payloads.toml"),
    ),
    ("retry-storm", include_str!("../scenarios/retry-storm.toml")),
    ("soak", include_str!("../scenarios/soak.toml")),
];

/// The shipped scenario `path` stands for when no such file exists: a bare name
/// (`typical-mix`) or a path into a `scenarios/` folder (`scenarios/typical-mix.toml`), as the
/// runner's defaults and the docs write them. Any other missing path is an error, not a guess.
fn shipped(path: &Path) -> Option<&'static str> {
    let in_scenarios = match path.parent() {
        None => true,
        Some(p) => p.as_os_str().is_empty() || p.file_name().is_some_and(|n| n == "scenarios"),
    };
    let name = path.file_name()?.to_str()?;
    let name = name.strip_suffix(".toml").unwrap_or(name);
    in_scenarios
        .then(|| {
            SHIPPED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| *text)
        })
        .flatten()
}

impl Scenario {
    /// Reads and validates a scenario file, or a shipped scenario by name (`typical-mix`).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Scenario::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match shipped(path) {
                Some(text) => Scenario::parse(text, path),
                None => Err(ScenarioError::Missing {
                    path: path.to_owned(),
                }),
            },
            Err(error) => Err(ScenarioError::Read {
                path: path.to_owned(),
                error,
            }),
        }
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks values that the types cannot.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |message: String| ScenarioError::Invalid {
            name: self.name.clone(),
            message,
        };
        let rate_ok = |what: &str, r: f64| {
            if r.is_finite() && r > 0.0 {
                Ok(())
            } else {
                Err(bad(format!(
                    "load.{what} = {r} must be a positive number of requests per second"
                )))
            }
        };
        match self.load {
            LoadShape::Constant { rate } => rate_ok("rate", rate)?,
            LoadShape::Ramp { from, to } => {
                rate_ok("from", from)?;
                rate_ok("to", to)?;
            }
            LoadShape::Burst {
                rate,
                peak,
                every,
                length,
            } => {
                rate_ok("rate", rate)?;
                rate_ok("peak", peak)?;
                if every.is_zero() || length > every {
                    return Err(bad(format!(
                        "load.length ({length:?}) must be shorter than a non-zero load.every ({every:?})"
                    )));
                }
            }
            LoadShape::Max => {}
        }
        if self.connections == 0 || self.connections > 10_000 {
            return Err(bad(format!(
                "connections = {} must be between 1 and 10000",
                self.connections
            )));
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(6 * 3600) {
            return Err(bad(format!(
                "duration = {:?} must be more than zero and at most 6h (every run is bounded)",
                self.duration
            )));
        }
        if !self.path.starts_with('/') {
            return Err(bad(format!("path = {:?} must start with '/'", self.path)));
        }
        let mut total = 0.0;
        for kind in PayloadKind::ALL {
            let w = self.payloads.get(kind);
            if !w.is_finite() || w < 0.0 {
                return Err(bad(format!(
                    "payloads.{} = {w} must be zero or positive",
                    kind.key()
                )));
            }
            total += w;
        }
        if total <= 0.0 {
            return Err(bad(
                "the payload weights sum to zero: give at least one kind in [payloads] a positive weight"
                    .into(),
            ));
        }
        for class in Class::ALL {
            let s = self.bad.get(class);
            if !s.is_finite() || !(0.0..=1.0).contains(&s) {
                return Err(bad(format!(
                    "bad.{} = {s} must be a share between 0 and 1",
                    class.key()
                )));
            }
        }
        if self.bad.total() > 1.0 + 1e-9 {
            return Err(bad(format!(
                "the bad-traffic shares sum to {:.3}, more than 1",
                self.bad.total()
            )));
        }
        if self.receiver.max_body < 1024 {
            return Err(bad("receiver.max_body must be at least 1KiB".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("test.toml"))
    }

    const MIN: &str =
        "name = \"t\"\n[load]\nshape = \"constant\"\nrate = 100\n[payloads]\napproved = 1\n";

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = parse(MIN).expect("valid");
        assert_eq!(s.connections, 32);
        assert_eq!(s.engine, EngineKind::OpenLoop);
        assert_eq!(s.receiver.max_body, 1024 * 1024);
        assert_eq!(s.load.rate_at(Duration::ZERO, s.duration), Some(100.0));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse(&format!("{MIN}\n[bad]\nbad_sig = 0.1\n")).expect_err("unknown key");
        assert!(e.to_string().contains("bad_sig"), "{e}");
        let e = parse(&format!("colour = 1\n{MIN}")).expect_err("unknown top-level key");
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn negative_rate_and_zero_weights_are_refused() {
        let e = parse(&MIN.replace("rate = 100", "rate = -5")).expect_err("negative");
        assert!(e.to_string().contains("load.rate"), "{e}");
        let e = parse(&MIN.replace("approved = 1", "approved = 0")).expect_err("zero");
        assert!(e.to_string().contains("sum to zero"), "{e}");
        let e = parse(&format!("{MIN}\n[bad]\nstale = 0.7\nfuture = 0.7\n")).expect_err("shares");
        assert!(e.to_string().contains("sum to"), "{e}");
    }

    #[test]
    fn shipped_scenarios_load_by_name_and_a_missing_path_says_what_ships() {
        for (name, _) in SHIPPED {
            let by_name = Scenario::load(Path::new(name)).expect("a shipped scenario");
            assert_eq!(&by_name.name, name, "{name}: its own name inside");
            let as_path = format!("/no/such/dir/scenarios/{name}.toml");
            assert!(Scenario::load(Path::new(&as_path)).is_ok(), "{as_path}");
        }
        for missing in ["typical-mixx", "elsewhere/smoke.toml"] {
            let e = Scenario::load(Path::new(missing))
                .expect_err(missing)
                .to_string();
            assert!(e.contains("it ships smoke, typical-mix"), "{e}");
            // The cause is said once, not once more as an error source.
            assert_eq!(e.matches("no such file").count(), 1, "{e}");
        }
    }

    #[test]
    fn shapes_give_rates() {
        let total = Duration::from_secs(10);
        let ramp = LoadShape::Ramp {
            from: 100.0,
            to: 300.0,
        };
        assert_eq!(ramp.rate_at(Duration::from_secs(5), total), Some(200.0));
        let burst = LoadShape::Burst {
            rate: 10.0,
            peak: 1000.0,
            every: Duration::from_secs(5),
            length: Duration::from_secs(1),
        };
        assert_eq!(
            burst.rate_at(Duration::from_millis(500), total),
            Some(1000.0)
        );
        assert_eq!(
            burst.rate_at(Duration::from_millis(2500), total),
            Some(10.0)
        );
        assert!((burst.mean_rate().unwrap_or_default() - 208.0).abs() < 1e-9);
        assert_eq!(LoadShape::Max.rate_at(Duration::ZERO, total), None);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("64 KiB"), Ok(65536));
        assert!(parse_size("lots").is_err());
    }
}

//! `webhook-bench run`: for every variant, verify, calibrate, then measure every scenario
//! `--repeat` times, interleaving variants so drift hits all of them alike.
//!
//! Receivers and the generator are subprocesses (the release binaries beside this one), each
//! pinned to its own core with `taskset`; receivers listen on port 0 of 127.0.0.1 and every
//! generator run is bounded, so nothing here can load anything but loopback.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::matrix::{NAIVE, StoreKind, Variant};
use crate::results::{
    Cell, Curve, RESULTS_SCHEMA, Repeat, Results, RunInfo, ScenarioResult, VariantOutcome,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenarios: Vec<PathBuf>,
    pub receivers: String,
    pub repeat: usize,
    pub out: PathBuf,
    pub quick: bool,
    pub bin_dir: PathBuf,
    pub receiver_cpu: usize,
    pub generator_cpu: usize,
    pub http: String,
    pub command: String,
    /// Measured seconds per run (scenario's own when `None`).
    pub duration: Option<Duration>,
    pub warmup: Option<Duration>,
    pub quiet: bool,
    /// More receiver flags, after the variant's own (the soak passes `--tolerance`).
    pub receiver_args: Vec<String>,
    /// Receivers written elsewhere (`--receiver NAME=CMD`), measured beside ours.
    pub externals: Vec<Variant>,
    /// Measure a receiver whose report card fails a required case anyway, marked as such.
    pub allow_failing: bool,
}

const SECRET: &str = "webhook-bench-secret-not-a-real-key";

/// The broker a receiver publishes to, started for it.
enum Broker {
    Nats(crate::broker::Nats),
    Rabbit(crate::broker::RabbitMq),
    Kafka(crate::broker::Kafka),
}

impl Broker {
    fn stop(self) {
        // Dropping any of them kills it (and RabbitMQ's port mapper).
        match self {
            Broker::Nats(n) => drop(n),
            Broker::Rabbit(mq) => drop(mq),
            Broker::Kafka(k) => drop(k),
        }
    }
}

/// A started receiver, with the broker it publishes to when its store is one.
pub(crate) struct Receiver {
    child: Child,
    /// A receiver written elsewhere runs in a process group of its own, measured and stopped
    /// as a whole.
    group: bool,
    pub(crate) addr: String,
    broker: Option<Broker>,
    /// Store files and folders to remove after the run.
    scratch: Option<PathBuf>,
}

/// Fresh store state for every receiver start: a new SQLite file, or a new `nats-server`, RabbitMQ
/// node or `tansu` Kafka broker (pinned with the receiver: the durable system gets the same one core) with empty
/// storage, so no run inherits another's backlog.
fn prepare_store(
    plan: &Plan,
    v: &Variant,
) -> Result<(String, Option<Broker>, Option<PathBuf>), String> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("webhook-bench-{}-{n}", std::process::id()));
    match v.store {
        StoreKind::Memory => Ok(("memory".into(), None, None)),
        StoreKind::Sqlite | StoreKind::SqliteEnqueue => {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok((
                format!("sqlite:{}", dir.join("store.db").display()),
                None,
                Some(dir),
            ))
        }
        StoreKind::Nats => {
            let nats = crate::broker::Nats::start(&dir, None, Some(plan.receiver_cpu))?;
            Ok((nats.url(), Some(Broker::Nats(nats)), Some(dir)))
        }
        StoreKind::Rabbitmq => {
            let mq = crate::broker::RabbitMq::start(&dir, Some(plan.receiver_cpu)).inspect_err(
                |_| {
                    let _ = std::fs::remove_dir_all(&dir);
                },
            )?;
            Ok((mq.url(), Some(Broker::Rabbit(mq)), Some(dir)))
        }
        StoreKind::Kafka => {
            let k =
                crate::broker::Kafka::start(&dir, Some(plan.receiver_cpu)).inspect_err(|_| {
                    let _ = std::fs::remove_dir_all(&dir);
                })?;
            Ok((k.url("didit.webhooks"), Some(Broker::Kafka(k)), Some(dir)))
        }
    }
}

/// Starts a receiver written elsewhere: `sh -c CMD` with `{port}` replaced by a free loopback port
/// and the secret in `DIDIT_WEBHOOK_SECRET`, pinned (with every process it starts) to the
/// receiver's core, in a process group of its own; ready when the port accepts connections.
fn start_external(plan: &Plan, v: &Variant, cmd: &str) -> Result<Receiver, String> {
    use std::os::unix::process::CommandExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let cmd = cmd.replace("{port}", &port.to_string());
    let log = std::env::temp_dir().join(format!(
        "webhook-bench-{}-{}.log",
        std::process::id(),
        v.name
    ));
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new("taskset")
        .arg("-c")
        .arg(plan.receiver_cpu.to_string())
        .args(["sh", "-c", &cmd])
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{}: cannot run `{cmd}`: {e}", v.name))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Receiver {
                child,
                group: true,
                addr: format!("127.0.0.1:{port}"),
                broker: None,
                scratch: None,
            });
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "`{cmd}` {} without accepting connections on port {port}: {}",
                match exited {
                    Some(s) => format!("exited ({s})"),
                    None => "ran 30 s".into(),
                },
                last_lines(&err, 3)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `sig` (`TERM`, `KILL`) to every process of group `pgid`.
fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

impl Receiver {
    pub(crate) fn start(plan: &Plan, v: &Variant) -> Result<Receiver, String> {
        if let Some(ext) = &v.external {
            return start_external(plan, v, &ext.cmd);
        }
        let bin = plan.bin_dir.join("didit-receiver");
        let (store, mut broker, scratch) = prepare_store(plan, v)?;
        let stop_store = |broker: &mut Option<Broker>| {
            if let Some(b) = broker.take() {
                b.stop();
            }
            if let Some(d) = &scratch {
                let _ = std::fs::remove_dir_all(d);
            }
        };
        let spawned = Command::new("taskset")
            .arg("-c")
            .arg(plan.receiver_cpu.to_string())
            .arg(&bin)
            .args(v.args(&store))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "1",
                "--enable-null-endpoint",
                "--queue-capacity",
                "1048576",
            ])
            .args(&plan.receiver_args)
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", "warn,may_minihttp=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                stop_store(&mut broker);
                return Err(format!("cannot start {} under taskset: {e}", bin.display()));
            }
        };
        let stdout = child.stdout.take().ok_or("no stdout")?;
        match crate::harness::announced_addr(stdout, Duration::from_secs(20)) {
            Ok(addr) => Ok(Receiver {
                child,
                group: false,
                addr,
                broker,
                scratch,
            }),
            Err(_) => {
                stop_store(&mut broker);
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let _ = child.wait();
                Err(format!(
                    "receiver {} did not start: {}",
                    v.name,
                    last_lines(&err, 3)
                ))
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        // The pid of `taskset`, which execs the receiver: the same process.
        self.child.id()
    }

    /// How the generator is told whose CPU to account: the process, or its whole group.
    pub(crate) fn cpu_args(&self) -> [String; 2] {
        if self.group {
            ["--receiver-pgid".into(), self.pid().to_string()]
        } else {
            ["--receiver-pid".into(), self.pid().to_string()]
        }
    }

    /// `Err` if the receiver is no longer running.
    pub(crate) fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("the receiver exited during the run ({status})")),
            _ => Ok(()),
        }
    }

    /// Peak RSS in KiB: of the process, or summed over its group's processes.
    fn peak_rss_kib(&self) -> Option<u64> {
        if self.group {
            let pids = didit_loadgen::cpu::group_pids(self.pid());
            return pids
                .into_iter()
                .filter_map(|p| didit_loadgen::cpu::peak_rss_kib(Some(p)))
                .reduce(|a, b| a + b);
        }
        didit_loadgen::cpu::peak_rss_kib(Some(self.pid()))
    }

    pub(crate) fn stop(mut self) {
        if self.group {
            signal_group(self.pid(), "TERM");
        } else {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.group {
            // The shell may have exited while what it started still runs.
            signal_group(self.pid(), "KILL");
            let _ = self.child.wait();
        } else if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(b) = self.broker.take() {
            b.stop();
        }
        if let Some(d) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub(crate) fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// One generator run: its JSON report, or why there is none.
pub(crate) fn loadgen(
    plan: &Plan,
    rx: &Receiver,
    args: &[String],
    tag: &str,
) -> Result<Value, String> {
    let report =
        std::env::temp_dir().join(format!("webhook-bench-{}-{tag}.json", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let out = Command::new("taskset")
        .arg("-c")
        .arg(plan.generator_cpu.to_string())
        .arg(plan.bin_dir.join("didit-loadgen"))
        .args(args)
        .args(["--target", &format!("http://{}", rx.addr)])
        .args(rx.cpu_args())
        // A receiver written elsewhere answers with bodies of its own: judged by status.
        .args([
            "--judge",
            if rx.group {
                "status"
            } else {
                "status-and-body"
            },
        ])
        .args(["--http", &plan.http, "--quiet", "--report"])
        .arg(&report)
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .output()
        .map_err(|e| format!("cannot run didit-loadgen: {e}"))?;
    // Exit 1 (mismatches) still writes a report; 2 is a setup error.
    let text = std::fs::read(&report).map_err(|_| {
        format!(
            "didit-loadgen wrote no report ({}): {}",
            out.status,
            last_lines(&String::from_utf8_lossy(&out.stderr), 3)
        )
    })?;
    let _ = std::fs::remove_file(&report);
    serde_json::from_slice(&text).map_err(|e| format!("unreadable loadgen report: {e}"))
}

pub(crate) fn u(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64().unwrap_or(0)
}

pub(crate) fn f(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().unwrap_or(0.0)
}

fn repeat_from(report: &Value, round: usize, rss: Option<u64>) -> Repeat {
    let total = u(report, &["requests", "total"]);
    let cpu = report["receiver"]["cpu_seconds"].as_f64();
    let lat = &report["latency_us"];
    Repeat {
        round,
        rps: f(report, &["load", "achieved_rate"]),
        p50_us: u(lat, &["corrected", "p50"]),
        p90_us: u(lat, &["corrected", "p90"]),
        p99_us: u(lat, &["corrected", "p99"]),
        p999_us: u(lat, &["corrected", "p999"]),
        max_us: u(lat, &["corrected", "max"]),
        uncorrected_p99_us: u(lat, &["uncorrected", "p99"]),
        requests: total,
        mismatches: u(report, &["requests", "mismatches"]),
        transport_errors: u(report, &["requests", "transport_errors"]),
        shed: u(report, &["requests", "shed"]),
        cpu_ms_per_1k: cpu
            .filter(|_| total > 0)
            .map(|c| (c * 1000.0 / total as f64 * 1000.0 * 1000.0).round() / 1000.0),
        peak_rss_kib: rss,
        generator_limited: report["generator_limited"].as_bool().unwrap_or(false),
        error: None,
    }
}

fn failed_repeat(round: usize, error: String) -> Repeat {
    Repeat {
        round,
        rps: 0.0,
        p50_us: 0,
        p90_us: 0,
        p99_us: 0,
        p999_us: 0,
        max_us: 0,
        uncorrected_p99_us: 0,
        requests: 0,
        mismatches: 0,
        transport_errors: 0,
        shed: 0,
        cpu_ms_per_1k: None,
        peak_rss_kib: None,
        generator_limited: false,
        error: Some(error),
    }
}

/// The scenario's metadata, read through the generator's own parser.
struct ScenarioMeta {
    path: PathBuf,
    name: String,
    description: String,
    engine: String,
    shape: String,
}

fn scenario_meta(path: &Path) -> Result<ScenarioMeta, String> {
    let s = didit_loadgen::Scenario::load(path).map_err(|e| e.to_string())?;
    Ok(ScenarioMeta {
        path: path.to_owned(),
        name: s.name.clone(),
        description: s.description.clone(),
        engine: s.engine.name().to_owned(),
        shape: s.load.name().to_owned(),
    })
}

fn timing_args(plan: &Plan) -> Vec<String> {
    let mut a = Vec::new();
    let (d, w) = if plan.quick {
        (
            Some(plan.duration.unwrap_or(Duration::from_secs(2))),
            Some(plan.warmup.unwrap_or(Duration::from_millis(500))),
        )
    } else {
        (plan.duration, plan.warmup)
    };
    if let Some(d) = d {
        a.push("--duration".into());
        a.push(format!("{}ms", d.as_millis()));
    }
    if let Some(w) = w {
        a.push("--warmup".into());
        a.push(format!("{}ms", w.as_millis()));
    }
    a
}

pub(crate) fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Versions of the crates being compared, from `Cargo.lock` in the working directory.
fn crate_versions() -> Vec<String> {
    let wanted = [
        "hyper",
        "axum",
        "may_minihttp",
        "actix-web",
        "tokio",
        "ring",
        "aws-lc-rs",
        "hmac",
        "sha2",
        "serde_json",
        "simd-json",
        "sonic-rs",
        "goose",
        "rusqlite",
        "async-nats",
        "lapin",
        "rdkafka",
        "rdkafka-sys",
    ];
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take())
            && wanted.contains(&n.as_str())
        {
            out.push(format!("{n} {}", v.trim_matches('"')));
        }
    }
    out.sort();
    out
}

fn run_info(plan: &Plan, id: String) -> RunInfo {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    RunInfo {
        id,
        command: plan.command.clone(),
        started: sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        git_commit: sh("git", &["rev-parse", "HEAD"]),
        rustc: sh("rustc", &["--version"]),
        crates: crate_versions(),
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into()),
        repeat: plan.repeat,
        quick: plan.quick,
        receiver_cpu: plan.receiver_cpu,
        generator_cpu: plan.generator_cpu,
        http_client: plan.http.clone(),
        reference_naive: None,
    }
}

/// Runs the plan and returns the results (also written to `plan.out` by the caller).
pub fn run(plan: &Plan) -> anyhow::Result<Results> {
    for bin in ["didit-receiver", "didit-loadgen"] {
        let p = plan.bin_dir.join(bin);
        if !p.is_file() {
            bail!(
                "{} not found: build the release binaries first (`cargo build --release --bins`) or pass --bin-dir",
                p.display()
            );
        }
    }
    if Command::new("taskset").arg("-V").output().is_err() {
        bail!("`taskset` (util-linux) is needed to pin the receiver and the generator to cores");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if plan.receiver_cpu >= cores || plan.generator_cpu >= cores {
        bail!(
            "--receiver-cpu {} / --generator-cpu {} must be below this machine's {cores} cores",
            plan.receiver_cpu,
            plan.generator_cpu
        );
    }
    let mut scenarios = Vec::new();
    let mut scenario_errors = Vec::new();
    for p in &plan.scenarios {
        match scenario_meta(p) {
            Ok(m) => scenarios.push(m),
            Err(e) => scenario_errors.push((p.display().to_string(), e)),
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let id = format!("{}-{host}", sh("date", &["-u", "+%Y-%m-%d"]));
    let mut info = run_info(plan, id);

    let mut outcomes: Vec<VariantOutcome> = Vec::new();
    let mut variants: Vec<Variant> = Vec::new();
    for v in crate::matrix::expand(&plan.receivers) {
        match v {
            Ok(v) => variants.push(v),
            Err((name, e)) => outcomes.push(VariantOutcome {
                variant: name,
                status: "failed".into(),
                reason: Some(e),
                ..VariantOutcome::default()
            }),
        }
    }
    variants.extend(plan.externals.iter().cloned());
    if variants.is_empty() {
        bail!("no valid receiver variant to run");
    }
    if scenarios.is_empty() {
        bail!(
            "no scenario could be used: {}",
            scenario_errors
                .iter()
                .map(|(p, e)| format!("{p}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let steps = (variants.len() * (2 + plan.repeat * scenarios.len())) as u64;
    let bar = if plan.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(steps);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps, ~{eta} left  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let note = |bar: &ProgressBar, msg: String| {
        if bar.is_hidden() && !plan.quiet {
            eprintln!("  {msg}");
        }
        bar.set_message(msg);
    };
    for (path, e) in &scenario_errors {
        eprintln!("webhook-bench: scenario {path} skipped: {e}");
    }

    // 1. Verify, 2. calibrate, per variant.
    // Each measurable variant with its null-endpoint rate (none for a receiver without one).
    let mut measurable: Vec<(Variant, Option<f64>)> = Vec::new();
    let calib_secs = if plan.quick { "1500ms" } else { "4s" };
    for v in &variants {
        note(
            &bar,
            format!("{}: report card and conformance probe", v.name),
        );
        let mut outcome = VariantOutcome {
            variant: v.name.clone(),
            status: "measured".into(),
            slowed_us: v.slow_us,
            external: v.external.as_ref().map(|e| e.cmd.clone()),
            ..VariantOutcome::default()
        };
        match Receiver::start(plan, v) {
            Err(e) => {
                outcome.status = "failed".into();
                outcome.reason = Some(e);
                bar.inc(2);
            }
            Ok(mut rx) => {
                let probe_ok = probe(plan, v, &rx, &mut outcome);
                bar.inc(1);
                if let Err(e) = probe_ok {
                    outcome.status = "refused".into();
                    outcome.reason = Some(e);
                    bar.inc(1);
                } else {
                    let null_path = match &v.external {
                        None => Some("/webhooks/null".to_owned()),
                        Some(ext) => ext.null_path.clone(),
                    };
                    match null_path {
                        // No null endpoint: no "÷ own null"; the generator's ceiling is still
                        // judged by its own report on every run.
                        None => measurable.push((v.clone(), None)),
                        Some(path) => {
                            note(&bar, format!("{}: calibrating on {path}", v.name));
                            let max = scenario_path(&plan.scenarios, "max-throughput");
                            let calib = loadgen(
                                plan,
                                &rx,
                                &[
                                    "--scenario".into(),
                                    max.display().to_string(),
                                    "--path".into(),
                                    path,
                                    "--calibrate".into(),
                                    "--max".into(),
                                    "--duration".into(),
                                    calib_secs.into(),
                                    "--warmup".into(),
                                    "500ms".into(),
                                    // The null endpoint does not de-duplicate, so a pool signed
                                    // before the run serves: signing each request made the
                                    // generator the limit (may's calibration was
                                    // generator-limited at ~77k of its ~130k).
                                    "--pool".into(),
                                    "1000".into(),
                                ],
                                "calibrate",
                            );
                            match calib {
                                Ok(r) => {
                                    let n = f(&r, &["load", "achieved_rate"]);
                                    outcome.null_rps = Some(n);
                                    outcome.null_generator_limited =
                                        r["generator_limited"].as_bool();
                                    measurable.push((v.clone(), Some(n)));
                                }
                                Err(e) => {
                                    outcome.status = "failed".into();
                                    outcome.reason = Some(format!("calibration: {e}"));
                                }
                            }
                        }
                    }
                    bar.inc(1);
                    if let Err(e) = rx.alive() {
                        outcome.status = "failed".into();
                        outcome.reason = Some(e);
                        measurable.retain(|(m, _)| m != v);
                    }
                }
                rx.stop();
            }
        }
        if outcome.status != "measured" {
            bar.inc((plan.repeat * scenarios.len()) as u64);
            eprintln!(
                "webhook-bench: {} not measured ({}): {}",
                v.name,
                outcome.status,
                outcome.reason.as_deref().unwrap_or("")
            );
        }
        outcomes.push(outcome);
    }

    // 3. Measure, interleaved: round by round, each scenario, each variant.
    let mut cells: Vec<Vec<Cell>> = scenarios
        .iter()
        .map(|_| measurable.iter().map(|(v, _)| Cell::new(&v.name)).collect())
        .collect();
    // Per scenario, per variant: (throughput, percentile points) of the kept repeat.
    type Kept = (f64, Vec<(f64, u64)>);
    let mut curves: Vec<Vec<Kept>> = scenarios
        .iter()
        .map(|_| vec![(0.0, Vec::new()); measurable.len()])
        .collect();
    let timing = timing_args(plan);
    for round in 1..=plan.repeat {
        for (si, sc) in scenarios.iter().enumerate() {
            for (vi, (v, _)) in measurable.iter().enumerate() {
                note(
                    &bar,
                    format!("round {round}/{}: {} on {}", plan.repeat, sc.name, v.name),
                );
                let rep = match Receiver::start(plan, v) {
                    Err(e) => failed_repeat(round, e),
                    Ok(mut rx) => {
                        let mut args = vec!["--scenario".to_owned(), sc.path.display().to_string()];
                        args.extend(timing.iter().cloned());
                        let r = loadgen(plan, &rx, &args, "measure");
                        let rss = rx.peak_rss_kib();
                        let alive = rx.alive();
                        rx.stop();
                        match (r, alive) {
                            (_, Err(e)) => failed_repeat(round, e),
                            (Err(e), _) => failed_repeat(round, e),
                            (Ok(report), Ok(())) => {
                                let rep = repeat_from(&report, round, rss);
                                // Keep the curve of the repeat nearest the running median.
                                let slot = &mut curves[si][vi];
                                if slot.1.is_empty() || round == plan.repeat.div_ceil(2) {
                                    *slot = (rep.rps, curve_points(&report));
                                }
                                rep
                            }
                        }
                    }
                };
                if let Some(e) = &rep.error {
                    eprintln!(
                        "webhook-bench: {} on {} round {round}: {e}",
                        sc.name, v.name
                    );
                }
                cells[si][vi].repeats.push(rep);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();

    // 4. Summaries and in-run ratios.
    let naive_present = measurable.iter().any(|(v, _)| v.name == NAIVE);
    info.reference_naive = naive_present.then(|| NAIVE.to_owned());
    let mut results_scenarios = Vec::new();
    for (si, sc) in scenarios.iter().enumerate() {
        let mut sc_cells = std::mem::take(&mut cells[si]);
        for (vi, cell) in sc_cells.iter_mut().enumerate() {
            let null = measurable[vi].1;
            cell.summarise(null, null);
            if cell.repeats.iter().all(|r| r.error.is_some()) {
                cell.failed = cell.repeats.first().and_then(|r| r.error.clone());
            }
        }
        if let Some(naive_median) = sc_cells
            .iter()
            .find(|c| c.variant == NAIVE)
            .and_then(|c| c.rps)
            .map(|s| s.median)
            .filter(|m| *m > 0.0)
        {
            for cell in &mut sc_cells {
                let rps: Vec<f64> = cell
                    .repeats
                    .iter()
                    .filter(|r| r.error.is_none())
                    .map(|r| r.rps / naive_median)
                    .collect();
                cell.ratio_to_naive = crate::results::Spread::of(&rps);
            }
        }
        results_scenarios.push(ScenarioResult {
            scenario: sc.name.clone(),
            description: sc.description.clone(),
            engine: sc.engine.clone(),
            shape: sc.shape.clone(),
            cells: sc_cells,
            curves: measurable
                .iter()
                .zip(&curves[si])
                .filter(|(_, c)| !c.1.is_empty())
                .map(|((v, _), c)| Curve {
                    variant: v.name.clone(),
                    points: c.1.clone(),
                })
                .collect(),
        });
    }
    Ok(Results {
        schema: RESULTS_SCHEMA.into(),
        run: info,
        variants: outcomes,
        scenarios: results_scenarios,
        skipped_scenarios: scenario_errors
            .into_iter()
            .map(|(path, reason)| crate::results::SkippedScenario { path, reason })
            .collect(),
    })
}

/// Verifies a started receiver before it is measured. Every variant gets the report card of
/// `webhook-bench verify` (recorded in the results); a receiver written elsewhere is refused when
/// the card fails a required case (unless `--allow-failing`), ours when the generator's smoke
/// probe gets a wrong answer, as before the card existed.
fn probe(
    plan: &Plan,
    v: &Variant,
    rx: &Receiver,
    outcome: &mut VariantOutcome,
) -> Result<(), String> {
    let card = crate::verify::Target::parse(&format!("http://{}/webhooks/didit", rx.addr))
        .map_err(|e| e.to_string())
        .and_then(|target| {
            crate::verify::verify(
                &crate::verify::Options {
                    target,
                    secret: SECRET.into(),
                    max_body: 1 << 20,
                    tolerance: Duration::from_secs(300),
                    accept_simple: false,
                    strict_http: false,
                    framing: true,
                    server: None,
                },
                |_| {},
            )
            .map_err(|e| e.to_string())
        });
    let card = match card {
        Ok(c) => c,
        Err(e) => return Err(format!("report card: {e}")),
    };
    outcome.card = Some(card.summary());
    outcome.card_failed = card.failed_required();
    if v.external.is_some() {
        return match (card.required_passed, plan.allow_failing) {
            (true, _) => Ok(()),
            (false, true) => {
                outcome.failing_card = true;
                Ok(())
            }
            (false, false) => Err(format!(
                "its report card failed {} (measure it anyway with --allow-failing)",
                card.failed_required().join(", ")
            )),
        };
    }
    let smoke = scenario_path(&plan.scenarios, "smoke");
    let probe = loadgen(
        plan,
        rx,
        &[
            "--scenario".into(),
            smoke.display().to_string(),
            "--duration".into(),
            "1s".into(),
            "--warmup".into(),
            "0s".into(),
            "--rate".into(),
            "300".into(),
            "--connections".into(),
            "4".into(),
        ],
        "probe",
    );
    match &probe {
        Ok(r)
            if u(r, &["requests", "mismatches"]) == 0
                && u(r, &["requests", "transport_errors"]) == 0 =>
        {
            Ok(())
        }
        Ok(r) => Err(format!(
            "answered {} of {} conformance probes wrongly ({} transport errors); e.g. {}",
            u(r, &["requests", "mismatches"]),
            u(r, &["requests", "total"]),
            u(r, &["requests", "transport_errors"]),
            r["mismatch_examples"][0]
        )),
        Err(e) => Err(e.clone()),
    }
}

/// Percentile points from a loadgen report (the report keeps p50…max).
fn curve_points(report: &Value) -> Vec<(f64, u64)> {
    let c = &report["latency_us"]["corrected"];
    [
        (50.0, "p50"),
        (90.0, "p90"),
        (99.0, "p99"),
        (99.9, "p999"),
        (100.0, "max"),
    ]
    .iter()
    .filter_map(|(p, k)| c[*k].as_u64().map(|v| (*p, v)))
    .collect()
}

/// A scenario by name from the plan's list, else from `scenarios/`.
fn scenario_path(list: &[PathBuf], name: &str) -> PathBuf {
    list.iter()
        .find(|p| p.file_stem().is_some_and(|s| s == name))
        .cloned()
        .unwrap_or_else(|| PathBuf::from(format!("scenarios/{name}.toml")))
}

/// Writes the run folder: results.json, raw.csv, README.md and the charts.
pub fn write_run(results: &Results, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(results)?,
    )?;
    std::fs::write(out.join("raw.csv"), crate::results::raw_csv(results))?;
    let charts = crate::charts::write_all(results, out)?;
    std::fs::write(
        out.join("README.md"),
        crate::publish::run_readme(results, &charts),
    )?;
    Ok(())
}

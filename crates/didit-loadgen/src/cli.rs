//! The `didit-loadgen` command line and its `run`.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use didit_webhook::Secret;

use crate::catalogue::Templates;
use crate::cpu::CpuWatch;
use crate::generator::{Acked, Generator};
use crate::open_loop::{EngineConfig, EngineOutput};
use crate::progress::Live;
use crate::report::{Cpu, Histograms, Latency, Load, Percentiles, REPORT_SCHEMA, Report, Requests};
use crate::scenario::{EngineKind, LoadShape, Scenario};
use crate::target::Target;
use crate::tls::Trust;

/// Sends validly signed Didit v3 webhook traffic, good and bad, and checks every answer.
#[derive(Debug, Parser)]
#[command(
    name = "didit-loadgen",
    version,
    after_help = "The secret comes from DIDIT_WEBHOOK_SECRET (or --secret-file) and must be the \
receiver's. Goose options go after `--`, e.g. `-- --report-file run.html`.\n\
Exit status: 0 when every answer matched its label, 1 on any correctness mismatch, 2 on a usage \
or setup error."
)]
pub struct Options {
    /// A shipped scenario by name (smoke, typical-mix, typical-mix-max, max-throughput, noisy,
    /// large-payloads, retry-storm, soak) or a scenario file (TOML), e.g. my-mix.toml.
    #[arg(long, short = 's')]
    pub scenario: PathBuf,
    /// The receiver's base URL, e.g. http://127.0.0.1:8080 or https://staging.example.com
    /// (its certificate checked against the system's roots).
    #[arg(long, short = 't')]
    pub target: String,
    /// With an https:// target, accept any certificate, e.g. a self-signed staging one.
    /// Warning: this turns off the check that the server is the one named, so anyone in the
    /// network path can read and answer the traffic; use it only on a network you trust.
    #[arg(long)]
    pub insecure: bool,
    /// Engine; overrides the scenario's.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// Constant arrival rate in requests/s; overrides the scenario's load shape.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed-loop maximum instead of the scenario's shape (find the ceiling).
    #[arg(long, conflicts_with = "rate")]
    pub max: bool,
    /// Measured period, e.g. 20s; overrides the scenario's.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up before the measured period, e.g. 2s; overrides the scenario's.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Persistent connections (goose: users); overrides the scenario's.
    #[arg(long, short = 'c')]
    pub connections: Option<usize>,
    /// Path to post deliveries to (e.g. /webhooks/null to calibrate); overrides the scenario's.
    #[arg(long)]
    pub path: Option<String>,
    /// Calibration: expect 200 {"status":"ok"} for everything, as the receiver's /webhooks/null
    /// endpoint answers (on by default when --path ends in /webhooks/null).
    #[arg(long)]
    pub calibrate: bool,
    /// Cycle through N deliveries built before the run (as wrk's Lua pool does) instead of
    /// building and signing one per request, which takes signing out of the generator's cost.
    /// A real endpoint answers a delivery sent twice as `duplicate`: there, make N larger than
    /// the run's requests (warm-up included); the run fails if the pool runs out.
    #[arg(long)]
    pub pool: Option<usize>,
    /// The open-loop engine's HTTP/1.1 client: hyper (default) or raw (a minimal writer and
    /// httparse reader, for ceilings).
    #[arg(long, value_enum, default_value = "hyper")]
    pub http: crate::open_loop::HttpClient,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the event_id of every delivery answered 200 here, one per line.
    #[arg(long)]
    pub acked_log: Option<PathBuf>,
    /// The receiver's process id, to report its CPU use and judge who was the limit.
    #[arg(long)]
    pub receiver_pid: Option<u32>,
    /// The receiver's process group, to report the CPU use of all its processes (instead of
    /// --receiver-pid).
    #[arg(long, conflicts_with = "receiver_pid")]
    pub receiver_pgid: Option<u32>,
    /// How answers are judged: by status and the JSON body's `status`/`error` word (this
    /// project's receivers), or by status only (a receiver whose bodies are its own).
    #[arg(long, value_enum, default_value = "status-and-body")]
    pub judge: crate::labels::Judge,
    /// Read the secret from this file instead of DIDIT_WEBHOOK_SECRET.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Open-loop engine threads, each pinned to its own core of those this process may use
    /// (`taskset -c 2-5 didit-loadgen --threads 4`), with 1/N of the rate and of the
    /// connections and its own traffic model; the histograms are merged exactly.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub threads: u8,
    /// Seed for the traffic model's random choices (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Options passed to goose (after `--`).
    #[arg(last = true)]
    pub goose_args: Vec<String>,
}

/// Applies the command line's overrides to the scenario and validates the result.
pub fn effective_scenario(opts: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::load(&opts.scenario)?;
    if let Some(e) = opts.engine {
        s.engine = e;
    }
    if let Some(rate) = opts.rate {
        s.load = LoadShape::Constant { rate };
    }
    if opts.max {
        s.load = LoadShape::Max;
    }
    if let Some(d) = opts.duration {
        s.duration = d;
    }
    if let Some(w) = opts.warmup {
        s.warmup = w;
    }
    if let Some(c) = opts.connections {
        s.connections = c;
    }
    if let Some(p) = &opts.path {
        s.path = p.clone();
    }
    s.validate()
        .context("after applying the command-line overrides")?;
    Ok(s)
}

/// Runs one load test as the options say; the exit code reflects correctness.
pub fn run(opts: Options) -> anyhow::Result<ExitCode> {
    let scenario = effective_scenario(&opts)?;
    if !opts.goose_args.is_empty() && scenario.engine != EngineKind::Goose {
        bail!("options after `--` are goose's; add --engine goose or drop them");
    }
    let secret = Secret::load(
        opts.secret_file.as_deref(),
        |p| std::fs::read_to_string(p),
        |v| std::env::var(v).ok(),
    )?;
    let trust = if opts.insecure {
        Trust::AnyCertificate
    } else {
        Trust::SystemRoots
    };
    let target = Target::parse_with(&opts.target, &scenario.path, trust)?;
    target.preflight(Duration::from_secs(3))?;
    let templates = Arc::new(Templates::load().context("building the payload templates")?);
    let seed = opts.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let calibrate = opts.calibrate || scenario.path.ends_with("/webhooks/null");
    if opts.pool.is_some() && scenario.engine == EngineKind::Goose {
        bail!("--pool is an open-loop engine option");
    }
    let threads = usize::from(opts.threads);
    if threads > 1 && scenario.engine == EngineKind::Goose {
        bail!("--threads is an open-loop engine option (goose runs its users on its own runtime)");
    }
    if threads > scenario.connections {
        bail!(
            "--threads {threads} needs at least as many connections (the scenario has {}; pass --connections)",
            scenario.connections
        );
    }
    // One traffic model per thread: its own seed, its own id stream, one store of acknowledged
    // deliveries for the replays.
    let acked = Acked::shared();
    let mut generators: Vec<Generator> = (0..threads)
        .map(|i| {
            let g = Generator::new(
                templates.clone(),
                &scenario,
                &secret,
                acked.clone(),
                seed.wrapping_add(i as u64),
            )
            .calibrate(calibrate);
            if threads > 1 { g.stream(i as u8) } else { g }
        })
        .collect();
    let pool = match (opts.pool.filter(|n| *n > 0), generators.first_mut()) {
        (Some(n), Some(g)) => crate::open_loop::Pool::build(g, n, opts.http, &target),
        _ => crate::open_loop::Pool::default(),
    };
    let acked_log = opts
        .acked_log
        .as_ref()
        .map(|p| File::create(p).with_context(|| format!("cannot create {}", p.display())))
        .transpose()?;
    let live = Arc::new(Live::default());
    let cfg = EngineConfig {
        scenario: &scenario,
        target: &target,
        acked_log,
        quiet: opts.quiet,
        pool,
        client: opts.http,
        judge: opts.judge,
    };
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let gen_cpu = CpuWatch::start(None);
    let rx_cpu = match (opts.receiver_pid, opts.receiver_pgid) {
        (Some(p), _) => Some(CpuWatch::start(Some(p))),
        (None, Some(g)) => Some(CpuWatch::start_group(g)),
        (None, None) => None,
    };
    let out = match scenario.engine {
        EngineKind::OpenLoop => crate::open_loop::run(cfg, generators, &[], live)?,
        EngineKind::Goose => {
            let generator = generators.into_iter().next().context("no traffic model")?;
            crate::goose_engine::run(cfg, generator, live, &opts.goose_args)?
        }
    };
    let mut report = build_report(
        &scenario,
        &target,
        started_unix,
        out,
        gen_cpu,
        rx_cpu,
        threads,
    );
    report.calibration = calibrate;
    report.pool = opts.pool;
    report.judge = opts.judge.name().into();
    report.http_client = match scenario.engine {
        EngineKind::OpenLoop => opts.http.name(),
        EngineKind::Goose => "reqwest (goose)",
    }
    .into();
    println!("{}", report.summary());
    if let Some(path) = &opts.report {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // On a real endpoint a repeated delivery is a duplicate, not the fresh one it is labelled as.
    let pool_ran_out = !calibrate
        && scenario.engine == EngineKind::OpenLoop
        && opts
            .pool
            .is_some_and(|n| n > 0 && report.requests.total > n as u64);
    if pool_ran_out {
        eprintln!(
            "error: the pool of {} deliveries ran out ({} requests were sent, warm-up included), so \
             the receiver saw repeats and answered them as duplicates; rerun with --pool above {}",
            opts.pool.unwrap_or(0),
            report.requests.total,
            report.requests.total
        );
    }
    Ok(if report.requests.mismatches > 0 || pool_ran_out {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn cpu_of(w: &CpuWatch) -> Option<Cpu> {
    w.read().map(|(cpu, wall)| Cpu {
        cpu_seconds: (cpu * 100.0).round() / 100.0,
        utilisation: (cpu / wall.as_secs_f64().max(1e-9) * 100.0).round() / 100.0,
    })
}

/// Summarises an engine's output; decides whether the generator was the limit.
pub fn build_report(
    scenario: &Scenario,
    target: &Target,
    started_unix: i64,
    out: EngineOutput,
    gen_cpu: CpuWatch,
    rx_cpu: Option<CpuWatch>,
    threads: usize,
) -> Report {
    let st = &out.stats;
    let secs = out.measured.as_secs_f64();
    let achieved = st.measured as f64 / secs;
    let generator = cpu_of(&gen_cpu).unwrap_or(Cpu {
        cpu_seconds: 0.0,
        utilisation: 0.0,
    });
    let receiver = rx_cpu.as_ref().and_then(cpu_of);
    let lag = Percentiles::of(&st.schedule_lag);
    let mut reasons = Vec::new();
    let open_loop = scenario.engine == EngineKind::OpenLoop;
    if open_loop && scenario.load != LoadShape::Max && lag.p99 > 1_000 {
        reasons.push(format!(
            "the generator released requests late: p99 schedule lag {} µs (> 1 ms)",
            lag.p99
        ));
    }
    // A paced open-loop run spins between requests, so its CPU share says nothing there.
    let cpu_meaningful = !open_loop || scenario.load == LoadShape::Max;
    // Every thread's core counts: the generator is saturated when all of them are.
    let cores = if open_loop {
        threads as f64
    } else {
        num_cpus_hint()
    };
    if cpu_meaningful && generator.utilisation >= 0.95 * cores {
        match &receiver {
            Some(r) if r.utilisation >= 0.90 => {}
            Some(r) => reasons.push(format!(
                "the generator's CPU was saturated ({:.2} core) while the receiver's was not ({:.2} core)",
                generator.utilisation, r.utilisation
            )),
            None => reasons.push(format!(
                "the generator's CPU was saturated ({:.2} core); pass --receiver-pid to compare with the receiver's",
                generator.utilisation
            )),
        }
    }
    let target_rate = scenario.load.mean_rate();
    if let (Some(t), false) = (target_rate, open_loop)
        && achieved < 0.9 * t
    {
        reasons.push(format!(
            "goose reached {achieved:.0} of the {t:.0} req/s asked (closed-loop users cannot keep a schedule)"
        ));
    }
    if !open_loop && !matches!(scenario.load, LoadShape::Constant { .. } | LoadShape::Max) {
        reasons.push(format!(
            "goose cannot vary its arrival rate: the {} shape ran at its mean rate",
            scenario.load.name()
        ));
    }
    Report {
        schema: REPORT_SCHEMA.into(),
        scenario: scenario.name.clone(),
        engine: scenario.engine.name().into(),
        target: target.url.clone(),
        calibration: false,
        pool: None,
        http_client: "hyper".into(),
        judge: "status-and-body".into(),
        started_unix,
        duration_secs: (secs * 1000.0).round() / 1000.0,
        warmup_secs: scenario.warmup.as_secs_f64(),
        load: Load {
            shape: scenario.load.kind(),
            target_rate,
            achieved_rate: (achieved * 10.0).round() / 10.0,
            connections: scenario.connections,
        },
        requests: Requests {
            total: st.total(),
            measured: st.measured,
            correct: st.by_label.values().map(|c| c.correct).sum(),
            shed: st.by_label.values().map(|c| c.shed).sum(),
            mismatches: st.mismatches(),
            transport_errors: st.transport_errors,
            unsent: st.unsent,
            late: st.late,
            reconnects: st.reconnects,
        },
        by_label: Report::lines(st),
        histograms: Histograms::of(st),
        threads,
        latency_us: Latency {
            resolution: if open_loop {
                "microseconds".into()
            } else {
                "microseconds, goose time to first byte, closed loop (corrected = uncorrected)"
                    .into()
            },
            corrected: Percentiles::of(&st.corrected),
            uncorrected: Percentiles::of(&st.uncorrected),
            schedule_lag: lag,
        },
        generator,
        receiver,
        generator_limited: !reasons.is_empty(),
        generator_limited_reasons: reasons,
        mismatch_examples: st.mismatch_examples.clone(),
        transport_error_examples: st.transport_examples.clone(),
        goose_reports: out.goose_reports,
    }
}

fn num_cpus_hint() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

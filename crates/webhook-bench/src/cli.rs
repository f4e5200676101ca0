//! The `webhook-bench` command line: `run`, `publish`, `compare`, `soak`, `verify`, `capacity`,
//! `merge`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::compare::{Verdict, compare, render};
use crate::harness::CpuSet;
use crate::results::load;
use crate::runner::{Plan, write_run};

/// Fair benchmark runs of the Didit webhook receivers, published results, regression gating.
#[derive(Debug, Parser)]
#[command(name = "webhook-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Verify, calibrate and measure every variant under every scenario; write a results folder.
    Run(RunArgs),
    /// Regenerate results/README.md, and the run's charts and README, from a run's results.json
    /// (default: the newest under results/runs/).
    Publish {
        /// A run folder holding results.json.
        #[arg(long)]
        run: Option<PathBuf>,
        /// The results folder to write README.md into.
        #[arg(long, default_value = "results")]
        results: PathBuf,
    },
    /// Soak one receiver at a share of its measured maximum for minutes (scenarios/soak.toml:
    /// noisy traffic); judge mismatches, RSS growth after the warm-up and p99 drift. Exit 0 if
    /// it passed, 1 if not.
    Soak(SoakArgs),
    /// The load generator's own ceiling against wrk's, side by side in one run: every generator
    /// on one core sends 4 KB POSTs to a receiver's /webhooks/null on another, with its CPU time
    /// per request. Needs wrk and /usr/bin/time (Debian packages `wrk` and `time`).
    Capacity(CapacityArgs),
    /// Where a request's time goes: each variant measured as a stack of receivers that differ
    /// by one layer (null endpoint, + HMAC, + parse, + processing, + each store), in interleaved
    /// rounds on fresh 4 KB deliveries at saturation; receiver (and broker) CPU µs per request,
    /// each layer's increment, and the floor from the core's own timing of HMAC and parse.
    Cost(CostArgs),
    /// Combine the JSON reports (`didit-loadgen --report`) of generators that ran side by side
    /// against one receiver, from several processes or hosts, into one: histograms added
    /// exactly, percentiles recomputed, counts and rates summed. Refuses reports of different
    /// scenarios. Writes the merged report to --out (or stdout) and a summary to stderr.
    Merge {
        /// Two or more report files.
        #[arg(required = true, num_args = 2..)]
        reports: Vec<PathBuf>,
        /// Write the merged report here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Send the conformance suite to any receiver, in any language, over HTTP, and print its
    /// report card: one line per case, grouped security / correctness / http / framing /
    /// optional. Exit 0 if every required case passed, 1 if any failed, 2 if it could not run.
    Verify(VerifyArgs),
    /// Compare two runs like for like; exit 0 (no regression), 1 (regression), 99 (a
    /// --threshold failed in the current run), 2 (cannot compare).
    Compare {
        #[arg(long)]
        baseline: PathBuf,
        #[arg(long)]
        current: PathBuf,
        /// How far the whole min–max range must move to count, e.g. 10%.
        #[arg(long, default_value = "10%", value_parser = parse_percent)]
        threshold: f64,
        /// The in-run reference a variant without a null endpoint (a receiver written elsewhere)
        /// is compared by: a variant's full name (default: the naive peer).
        #[arg(long)]
        reference: Option<String>,
        /// Thresholds held against the current run, as for `run --threshold`.
        #[arg(long = "threshold-expr", value_name = "EXPR")]
        thresholds: Vec<crate::thresholds::Threshold>,
        /// Also write the current run in the Bencher Metric Format to PATH.
        #[arg(long, value_name = "PATH")]
        bmf: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files (repeatable); default: scenarios/max-throughput.toml,
    /// scenarios/typical-mix.toml and scenarios/typical-mix-max.toml.
    #[arg(long = "scenario")]
    pub scenarios: Vec<PathBuf>,
    /// `default`, `all`, or a comma-separated list of server:hmac:json[:store][:slowN]
    /// (store: sqlite, sqlite-enqueue, nats, rabbitmq or kafka; in memory when left out).
    #[arg(long, default_value = "default")]
    pub receivers: String,
    /// Interleaved rounds per scenario and variant.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Output folder (default: results/runs/<date>-<host>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds, not minutes: 2 s measured after 0.5 s warm-up per run (for CI).
    #[arg(long)]
    pub quick: bool,
    /// Measured time per run (default: 5s; the scenario's own with --scenario-durations).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up per run (default: 1s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Use each scenario file's own duration and warm-up.
    #[arg(long)]
    pub scenario_durations: bool,
    #[command(flatten)]
    pub harness: HarnessArgs,
    /// Also regenerate results/README.md from this run.
    #[arg(long)]
    pub publish: bool,
    /// A receiver written elsewhere, measured beside ours (repeatable): NAME=CMD. CMD runs with
    /// `sh -c`, `{port}` replaced by a free loopback port and the secret in
    /// DIDIT_WEBHOOK_SECRET, pinned with its children to the receiver's core; it is ready when
    /// the port accepts connections, and must pass its report card (`webhook-bench verify`).
    #[arg(long = "receiver", value_name = "NAME=CMD")]
    pub external: Vec<String>,
    /// The null endpoint of a `--receiver`'s own HTTP stack (NAME=PATH), for its "÷ own null"
    /// calibration; without one that column says n/a.
    #[arg(long = "receiver-null", value_name = "NAME=PATH")]
    pub external_null: Vec<String>,
    /// The runtime and version of a `--receiver` (NAME=TEXT, e.g. `go=Go 1.19.8`), recorded in
    /// results.json and shown in every table.
    #[arg(long = "receiver-runtime", value_name = "NAME=TEXT")]
    pub external_runtime: Vec<String>,
    /// Measure a `--receiver` whose report card fails a required case anyway (marked in every
    /// table), and do not fail the run for it: every receiver, or those named
    /// (`--allow-failing node,python`).
    #[arg(long, num_args = 0.., value_delimiter = ',', value_name = "NAMES")]
    pub allow_failing: Option<Vec<String>>,
    /// Count the strict group of each card (`verify --strict`), and wrong answers to every class
    /// under load, the strict and optional ones too.
    #[arg(long)]
    pub strict: bool,
    /// Fail the run (exit 99, as k6 does) when a measured variant's median is on the wrong side:
    /// `[VARIANT@][SCENARIO/]METRIC<VALUE` or `>VALUE`, METRIC one of p50, p99, p999 (durations:
    /// 800us, 5ms), req_s, cpu_ms_per_1k, div_REF (ratio to `naive` or a variant's full name).
    /// Repeatable. Without SCENARIO/, latency applies to constant-rate scenarios and req_s and
    /// div_ to maximum-rate ones; without VARIANT@, to every variant but the naive reference.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<crate::thresholds::Threshold>,
    /// Also write the run's medians and min–max in the Bencher Metric Format to PATH.
    #[arg(long, value_name = "PATH")]
    pub bmf: Option<PathBuf>,
    /// Also write the verdicts and each scenario's table as Markdown to PATH (a CI step
    /// summary: `--markdown "$GITHUB_STEP_SUMMARY"`).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Measure each variant on 1, 2, 4, … receiver cores (as many generator cores each, the
    /// brokers on the rest) up to what the machine has, and publish req/s and efficiency per
    /// core against cores. Default scenario: scenarios/max-throughput.toml. The core sets come
    /// from the machine; --receiver-cpus and --generator-cpus are ignored.
    #[arg(long)]
    pub scaling: bool,
    /// Print what would run (core sets, variants, scenarios, rounds) and exit without running.
    #[arg(long)]
    pub plan: bool,
    /// With --plan: the core count to plan for instead of this machine's (e.g. 16).
    #[arg(long, requires = "plan")]
    pub cores: Option<usize>,
}

/// `dir/id`, or `dir/id-2`, `dir/id-3`, … when that folder exists.
fn unique_run_dir(dir: &std::path::Path, id: &str) -> PathBuf {
    let mut path = dir.join(id);
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{id}-{n}"));
        n += 1;
    }
    path
}

/// What `run --plan` prints.
fn plan_text(plan: &Plan, scaling: bool, cores: usize) -> String {
    let mut variants: Vec<String> = crate::matrix::expand(&plan.receivers)
        .into_iter()
        .map(|v| match v {
            Ok(v) => v.name,
            Err((name, e)) => format!("{name} (invalid: {e})"),
        })
        .collect();
    variants.extend(plan.externals.iter().map(|v| v.name.clone()));
    let scenarios: Vec<String> = plan
        .scenarios
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if scaling {
        let t = crate::scaling::topology(cores);
        return crate::scaling::describe(&t, &variants, &scenarios, plan.repeat);
    }
    let broker = CpuSet::spare(cores, &[&plan.receiver_cpus, &plan.generator_cpus]);
    format!(
        "plan for {cores} cores: receiver on {}, generator on {} ({} engine threads), brokers on {}
{} variants ({}) x {} scenarios ({}) x {} interleaved rounds
",
        plan.receiver_cpus,
        plan.generator_cpus,
        plan.generator_cpus.len(),
        broker.map_or("the receiver's cores".to_owned(), |b| b.to_string()),
        variants.len(),
        variants.join(", "),
        scenarios.len(),
        scenarios.join(", "),
        plan.repeat
    )
}

/// `run --scaling`: the plan at every point of the machine's topology; the results are the
/// 1-core point's, with the scaling table added.
fn scaling_run(plan: &Plan, cores: usize) -> anyhow::Result<crate::results::Results> {
    let t = crate::scaling::topology(cores);
    if t.points.is_empty() {
        bail!("no scaling point fits: {}", t.stopped);
    }
    if !plan.quiet {
        eprint!("{}", crate::scaling::describe(&t, &[], &[], plan.repeat));
    }
    let mut first = None;
    let mut points = Vec::new();
    for p in &t.points {
        let mut at = plan.clone();
        at.receiver_cpus = p.receiver.clone();
        at.generator_cpus = p.generator.clone();
        if !plan.quiet {
            eprintln!(
                "webhook-bench: scaling point: {} receiver cores ({}), generator on {}",
                p.receiver.len(),
                p.receiver,
                p.generator
            );
        }
        let r = crate::runner::run(&at)?;
        points.push(crate::scaling::point_of(p, &r));
        first.get_or_insert(r);
    }
    crate::scaling::fill_efficiency(&mut points);
    let mut r = first.context("no scaling point ran")?;
    eprintln!("webhook-bench: scaling stopped: {}", t.stopped);
    r.scaling = Some(crate::results::Scaling {
        scenario: r
            .scenarios
            .first()
            .map(|s| s.scenario.clone())
            .unwrap_or_default(),
        points,
        stopped: t.stopped,
    });
    Ok(r)
}

/// `--receiver NAME=CMD` and `--receiver-null NAME=PATH` as variants.
fn externals(
    specs: &[String],
    nulls: &[String],
    runtimes: &[String],
) -> anyhow::Result<Vec<crate::matrix::Variant>> {
    let split = |s: &String, what: &str| -> anyhow::Result<(String, String)> {
        s.split_once('=')
            .map(|(n, c)| (n.trim().to_owned(), c.trim().to_owned()))
            .ok_or_else(|| anyhow::anyhow!("`{s}` is not {what}"))
    };
    let nulls = nulls
        .iter()
        .map(|n| split(n, "NAME=PATH"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for s in specs {
        let (name, cmd) = split(s, "NAME=CMD, e.g. node=node server.js --port {port}")?;
        let null = nulls
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.clone());
        out.push(crate::matrix::Variant::external(&name, &cmd, null).map_err(anyhow::Error::msg)?);
    }
    if let Some((n, _)) = nulls
        .iter()
        .find(|(n, _)| !out.iter().any(|v| v.name == *n))
    {
        bail!("--receiver-null {n}=…: no --receiver named {n}");
    }
    for r in runtimes {
        let (name, text) = split(r, "NAME=TEXT, e.g. node=Node.js v20.20.2")?;
        let Some(ext) = out
            .iter_mut()
            .find(|v| v.name == name)
            .and_then(|v| v.external.as_mut())
        else {
            bail!("--receiver-runtime {name}=…: no --receiver named {name}");
        };
        ext.runtime = Some(text);
    }
    Ok(out)
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["target", "receiver", "variant"])))]
pub struct VerifyArgs {
    /// A running receiver: http://HOST:PORT[/path] or https://HOST[:PORT][/path] (path default:
    /// /webhooks/didit; an https certificate is checked against the system's roots).
    #[arg(long)]
    pub target: Option<String>,
    /// With an https:// target, accept any certificate, e.g. a self-signed staging one.
    /// Warning: this turns off the check that the server is the one named, so anyone in the
    /// network path can read and answer the traffic; use it only on a network you trust.
    #[arg(long, requires = "target")]
    pub insecure: bool,
    /// Start this receiver and verify it, as `run --receiver` does: run with `sh -c`, `{port}`
    /// replaced by a free loopback port, the secret in DIDIT_WEBHOOK_SECRET; stopped after.
    #[arg(long, value_name = "CMD")]
    pub receiver: Option<String>,
    /// Start one of this workspace's variants, server:hmac:json[:store] as for `run`
    /// (e.g. may:ring:serde:sqlite), and verify it.
    #[arg(long, value_name = "SPEC")]
    pub variant: Option<String>,
    /// With --receiver or --variant: the path deliveries go to.
    #[arg(long, default_value = "/webhooks/didit")]
    pub path: String,
    /// With --variant: where didit-receiver is (default: beside this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// A file holding the shared secret (default: the DIDIT_WEBHOOK_SECRET variable). A
    /// receiver started by --receiver or --variant is given the harness's own secret.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// The receiver's body limit; the oversize cases are one byte over it.
    #[arg(long, default_value = "1MiB", value_parser = didit_loadgen::scenario::parse_size)]
    pub max_body: usize,
    /// The receiver's freshness tolerance; stale and future cases are a minute outside it.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub tolerance: Duration,
    /// The receiver accepts deliveries signed with X-Signature-Simple only (deprecated by Didit).
    #[arg(long)]
    pub accept_simple: bool,
    /// Framing failures (the raw-TCP malformed corpus) fail the card too.
    #[arg(long, conflicts_with = "no_framing")]
    pub strict_http: bool,
    /// Skip the raw-TCP malformed corpus (for a receiver behind a proxy that owns the framing;
    /// an https:// target skips it anyway).
    #[arg(long)]
    pub no_framing: bool,
    /// Also write the card as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the card as JUnit XML (one testsuite per group, one testcase per line), for
    /// CI systems that show which case failed.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write the card as Markdown, failures first: fit for a CI step summary
    /// (`--markdown "$GITHUB_STEP_SUMMARY"`).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Count the strict group: stricter than security needs (uppercase hex of a correct MAC, a
    /// header/body timestamp disagreement within the window, a malformed X-Timestamp beside a
    /// fresh signed body, a numeric-string timestamp). Reported either way.
    #[arg(long)]
    pub strict: bool,
    /// Judge the framing corpus by one of this project's servers' recorded answers (hyper,
    /// axum, axum-naive, actix, may) instead of the common ones.
    #[arg(long)]
    pub server: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    /// The server whose /webhooks/null takes the load (the fastest null endpoint: may).
    #[arg(long, default_value = "may")]
    pub server: String,
    /// Measured length of each generator run.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Interleaved rounds; the table shows medians with min–max.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub harness: HarnessArgs,
}

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// In-memory variants (server:hmac:json), each taken apart layer by layer.
    #[arg(long, default_value = crate::cost::DEFAULT_VARIANTS)]
    pub variants: String,
    /// Stores measured on top of the first variant's layers (sqlite, sqlite-enqueue, nats,
    /// rabbitmq, kafka), or `none`.
    #[arg(long, default_value = "sqlite,nats,rabbitmq,kafka")]
    pub stores: String,
    /// Only these layers (null, hmac, parse, process, store:sqlite, …), e.g. to compare two
    /// builds on one of them; an increment is then over the layer below that ran.
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<String>,
    /// The traffic: closed loop, fresh Approved deliveries (about 5 KB).
    #[arg(long, default_value = "scenarios/max-throughput.toml")]
    pub scenario: PathBuf,
    /// Measured length of each run.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Interleaved rounds; tables show medians with min–max.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Write cost.json, README.md and the chart into this folder (e.g. results/runs/<id>-cost).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Measure nothing: redraw --out's README and charts from this cost.json.
    #[arg(long, requires = "out")]
    pub from: Option<PathBuf>,
    /// Also count instructions per request: each layer's receiver once more under Callgrind
    /// (needs valgrind; about half a minute per layer).
    #[arg(long)]
    pub callgrind: bool,
    /// Requests counted per layer under Callgrind, after 200 of warm-up.
    #[arg(long, default_value_t = 2000, requires = "callgrind")]
    pub callgrind_requests: usize,
    #[command(flatten)]
    pub harness: HarnessArgs,
}

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// The variant, server:hmac:json[:store] as for `run`.
    #[arg(long, default_value = "hyper:ring:serde")]
    pub receiver: String,
    /// The traffic (mix, bad shares, connections) and the receiver's tolerance.
    #[arg(long, default_value = "scenarios/soak.toml")]
    pub scenario: PathBuf,
    /// One minute instead of ten, 5 s segments (for CI); written under target/soak/.
    #[arg(long)]
    pub quick: bool,
    /// Measured soak after the warm-up (default 10m; 1m with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up under the same load (default: twice the scenario's receiver tolerance plus 10 s,
    /// the time the replay window takes to fill).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Length of one generator run; p99 is reported per segment (default 30s; 5s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub segment: Option<Duration>,
    /// Share of the calibrated maximum to offer.
    #[arg(long, default_value = "80%", value_parser = parse_percent)]
    pub load: f64,
    /// Output folder (default: results/soak/<date>-<host>-<variant>/, or target/soak/... with
    /// --quick).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub harness: HarnessArgs,
}

/// Where the binaries are, how they are pinned, which HTTP client: shared by `run` and `soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct HarnessArgs {
    /// Where didit-receiver and didit-loadgen are (default: beside this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Cores the receiver is pinned to, as `taskset -c` lists them (0, 0-7, 0,2,4): our
    /// receivers get one worker per core, a `--receiver` command's `{workers}` the same count.
    /// Brokers get the cores neither set uses, or share the receiver's when none are left.
    #[arg(long, alias = "receiver-cpu", default_value = "0", value_parser = parse_cpus)]
    pub receiver_cpus: CpuSet,
    /// Cores the generator is pinned to: one open-loop engine thread per core.
    #[arg(long, alias = "generator-cpu", default_value = "1", value_parser = parse_cpus)]
    pub generator_cpus: CpuSet,
    /// The open-loop engine's HTTP client (raw reaches higher ceilings; see didit-loadgen).
    #[arg(long, default_value = "raw")]
    pub http: String,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl Default for HarnessArgs {
    fn default() -> Self {
        HarnessArgs {
            bin_dir: None,
            receiver_cpus: CpuSet::range(0, 1),
            generator_cpus: CpuSet::range(1, 1),
            http: "raw".into(),
            quiet: false,
        }
    }
}

fn parse_cpus(s: &str) -> Result<CpuSet, String> {
    s.parse()
        .map_err(|e: crate::harness::cpus::CpuSetError| e.to_string())
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%');
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage like 10%"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("`{s}` must be between 0% and 100%"));
    }
    Ok(v / 100.0)
}

/// Runs the command; the exit code is the command's verdict.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cmd = cli.command.unwrap_or(Cmd::Run(RunArgs {
        scenarios: Vec::new(),
        receivers: "default".into(),
        repeat: 3,
        out: None,
        quick: false,
        duration: None,
        warmup: None,
        scenario_durations: false,
        harness: HarnessArgs::default(),
        publish: true,
        external: Vec::new(),
        external_null: Vec::new(),
        external_runtime: Vec::new(),
        allow_failing: None,
        strict: false,
        thresholds: Vec::new(),
        bmf: None,
        markdown: None,
        scaling: false,
        plan: false,
        cores: None,
    }));
    match cmd {
        Cmd::Run(a) => run_cmd(a),
        Cmd::Verify(a) => verify_cmd(a),
        Cmd::Soak(a) => soak_cmd(a),
        Cmd::Capacity(a) => capacity_cmd(a),
        Cmd::Cost(a) => cost_cmd(a),
        Cmd::Merge { reports, out } => merge_cmd(&reports, out.as_deref()),
        Cmd::Publish { run, results } => {
            let dir = match run {
                Some(d) => d,
                None => newest_run(&results.join("runs"))?,
            };
            publish(&dir, &results)?;
            println!("wrote {}", results.join("README.md").display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare {
            baseline,
            current,
            threshold,
            reference,
            thresholds,
            bmf,
        } => {
            let (b, c) = match (load(&baseline), load(&current)) {
                (Ok(b), Ok(c)) => (b, c),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("webhook-bench compare: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            for d in crate::compare::environment_differences(&b, &c) {
                println!("warning: the runs differ in {d}; ratios cancel machine speed, not this");
            }
            if let Some(path) = &bmf {
                crate::bmf::write(&c, path)?;
            }
            let breaches = match crate::thresholds::evaluate(&c, &thresholds) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("webhook-bench compare: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            match compare(&b, &c, threshold, reference.as_deref()) {
                Err(e) => {
                    eprintln!("webhook-bench compare: cannot compare: {e}");
                    Ok(ExitCode::from(2))
                }
                Ok(rows) => {
                    print!("{}", render(&rows, threshold));
                    for br in &breaches {
                        println!("{br}");
                    }
                    if rows.iter().any(|r| r.verdict == Verdict::Regression) {
                        println!("regression: at least one variant slowed beyond the threshold");
                        Ok(ExitCode::from(1))
                    } else if !breaches.is_empty() {
                        Ok(ExitCode::from(99))
                    } else {
                        println!("no regression");
                        Ok(ExitCode::SUCCESS)
                    }
                }
            }
        }
    }
}

fn newest_run(runs: &Path) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .with_context(|| {
            format!(
                "no runs in {}: run `webhook-bench run` first",
                runs.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("results.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .with_context(|| format!("no run with a results.json under {}", runs.display()))
}

/// Writes `results/README.md` from the run in `dir`.
pub fn publish(dir: &Path, results_dir: &Path) -> anyhow::Result<()> {
    let mut r = load(&dir.join("results.json"))?;
    // A run is named by its folder (older runs recorded the date and host only, which repeat).
    if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
        r.run.id = name.to_owned();
    }
    // Charts and the run's README are re-rendered from results.json, so a newer renderer
    // refreshes an old run without re-measuring it.
    let charts = crate::charts::write_all(&r, dir)?;
    std::fs::write(
        dir.join("README.md"),
        crate::publish::run_readme(&r, &charts),
    )?;
    let rel = dir
        .strip_prefix(results_dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| dir.display().to_string());
    let mut charts: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    charts.sort();
    let mut readme = crate::publish::results_readme(&r, &rel, &charts);
    if let Some((soak_dir, soak)) = crate::soak::newest(results_dir) {
        let rel = soak_dir
            .strip_prefix(results_dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| soak_dir.display().to_string());
        readme.push('\n');
        readme.push_str(&crate::soak::markdown(&soak, "##"));
        readme.push_str(&format!(
            "\nFull data: [`{rel}/soak.json`]({rel}/soak.json).\n"
        ));
    }
    if let Some(fuzz) = crate::publish::fuzz_section(results_dir) {
        readme.push('\n');
        readme.push_str(&fuzz);
    }
    std::fs::write(results_dir.join("README.md"), readme)?;
    Ok(())
}

/// The folder holding `didit-receiver` and `didit-loadgen`: `--bin-dir`, else this binary's own
/// folder (a build's target folder, or Cargo's bin folder after `cargo install`), else the first
/// folder on `PATH` that has both.
fn bin_dir_of(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.clone());
    }
    let has_both = |d: &Path| {
        ["didit-receiver", "didit-loadgen"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let beside = std::env::current_exe()?.parent().map(Path::to_path_buf);
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|d| has_both(d))
        .context(
            "didit-receiver and didit-loadgen are neither beside webhook-bench nor on PATH: \
             install them (cargo install --locked --path crates/didit-receiver, and the same for \
             crates/didit-loadgen) or pass --bin-dir",
        )
}

fn merge_cmd(paths: &[PathBuf], out: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::with_capacity(paths.len());
    for p in paths {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        reports.push(
            didit_loadgen::Report::from_json(&bytes).with_context(|| p.display().to_string())?,
        );
    }
    let merged = didit_loadgen::Report::merge(reports)?;
    eprint!("{}", merged.summary());
    let json = serde_json::to_vec_pretty(&merged)?;
    match out {
        Some(path) => std::fs::write(path, json)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{}", String::from_utf8_lossy(&json)),
    }
    Ok(ExitCode::SUCCESS)
}

fn capacity_cmd(a: CapacityArgs) -> anyhow::Result<ExitCode> {
    if a.repeat == 0 || a.duration < Duration::from_secs(1) {
        bail!("--repeat must be at least 1 and --duration at least 1s");
    }
    let plan = crate::capacity::CapacityPlan {
        bin_dir: bin_dir_of(&a.harness.bin_dir)?,
        server: a.server,
        receiver_cpus: a.harness.receiver_cpus.clone(),
        generator_cpus: a.harness.generator_cpus.clone(),
        duration: a.duration,
        repeat: a.repeat,
        connections: a.connections,
        command: command_line(),
        quiet: a.harness.quiet,
    };
    let r = crate::capacity::run(&plan)?;
    print!("{}", crate::capacity::markdown(&r));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cost_cmd(a: CostArgs) -> anyhow::Result<ExitCode> {
    if let (Some(from), Some(dir)) = (&a.from, &a.out) {
        let r = crate::cost::load(from)?;
        crate::cost::write(&r, dir)?;
        println!("wrote {}", dir.join("README.md").display());
        return Ok(ExitCode::SUCCESS);
    }
    if a.repeat == 0 || a.duration < Duration::from_secs(1) {
        bail!("--repeat must be at least 1 and --duration at least 1s");
    }
    let mut variants = Vec::new();
    for v in crate::matrix::expand(&a.variants) {
        match v {
            Ok(v) if v.external.is_none() && v.store == crate::matrix::StoreKind::Memory => {
                if v.server == "axum-naive" {
                    bail!("--variants: the naive peer has no layers to take apart; leave it out");
                }
                variants.push(v)
            }
            Ok(v) => bail!(
                "--variants {}: give in-memory variants (server:hmac:json); stores go in --stores",
                v.name
            ),
            Err((name, e)) => bail!("--variants {name}: {e}"),
        }
    }
    let mut stores = Vec::new();
    if a.stores != "none" {
        for s in a.stores.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match crate::matrix::StoreKind::ALL.iter().find(|(_, t)| *t == s) {
                Some((k, _))
                    if !matches!(
                        k,
                        crate::matrix::StoreKind::Memory | crate::matrix::StoreKind::Null
                    ) =>
                {
                    stores.push(*k)
                }
                _ => bail!(
                    "--stores {s}: use sqlite, sqlite-enqueue, nats, rabbitmq or kafka (or none)"
                ),
            }
        }
    }
    for l in &a.layers {
        let known = ["null", "hmac", "parse", "process"].contains(&l.as_str())
            || l.strip_prefix("store:")
                .is_some_and(|s| stores.iter().any(|k| k.token() == s));
        if !known {
            bail!(
                "--layers {l}: use null, hmac, parse, process or store:NAME for a store in --stores"
            );
        }
    }
    if !a.scenario.is_file() {
        bail!(
            "{} not found: run from the project root or pass --scenario",
            a.scenario.display()
        );
    }
    let plan = crate::cost::CostPlan {
        bin_dir: bin_dir_of(&a.harness.bin_dir)?,
        variants,
        stores,
        only: a.layers.clone(),
        receiver_cpus: a.harness.receiver_cpus.clone(),
        generator_cpus: a.harness.generator_cpus.clone(),
        http: a.harness.http.clone(),
        duration: a.duration,
        warmup: a.warmup,
        repeat: a.repeat,
        scenario: a.scenario.clone(),
        command: command_line(),
        quiet: a.harness.quiet,
        callgrind: a.callgrind.then_some(a.callgrind_requests.max(1)),
    };
    let r = crate::cost::run(&plan)?;
    print!("{}", crate::cost::markdown(&r));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &a.out {
        crate::cost::write(&r, dir)?;
        println!("wrote {}", dir.join("README.md").display());
    }
    let failed = r
        .breakdowns
        .iter()
        .flat_map(|b| &b.layers)
        .any(|l| !l.errors.is_empty());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn soak_cmd(a: SoakArgs) -> anyhow::Result<ExitCode> {
    let scenario = didit_loadgen::Scenario::load(&a.scenario)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.scenario.display()))?;
    let variant = match crate::matrix::expand(&a.receiver).into_iter().next() {
        Some(Ok(v)) => v,
        Some(Err((name, e))) => bail!("--receiver {name}: {e}"),
        None => bail!("--receiver names no variant"),
    };
    if a.receiver.contains(',') {
        bail!("--receiver takes one variant; soak them one at a time");
    }
    let profile = scenario.receiver;
    let mut receiver_args = vec![
        "--tolerance".to_owned(),
        format!("{}s", profile.tolerance.as_secs()),
        "--max-body".to_owned(),
        profile.max_body.to_string(),
    ];
    if profile.accept_simple {
        receiver_args.push("--accept-simple".into());
    }
    let duration = a.duration.unwrap_or(if a.quick {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(600)
    });
    let segment = a.segment.unwrap_or(if a.quick {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(30)
    });
    let warmup = a
        .warmup
        .unwrap_or(profile.tolerance * 2 + Duration::from_secs(10));
    let plan = crate::soak::SoakPlan {
        base: Plan {
            scenarios: vec![a.scenario.clone()],
            receivers: a.receiver.clone(),
            repeat: 1,
            out: PathBuf::new(),
            quick: a.quick,
            bin_dir: bin_dir_of(&a.harness.bin_dir)?,
            receiver_cpus: a.harness.receiver_cpus.clone(),
            generator_cpus: a.harness.generator_cpus.clone(),
            http: a.harness.http.clone(),
            command: command_line(),
            duration: None,
            warmup: None,
            quiet: a.harness.quiet,
            receiver_args,
            externals: Vec::new(),
            allow_failing: crate::runner::AllowFailing::None,
            strict: false,
        },
        variant,
        scenario: a.scenario.clone(),
        duration,
        segment,
        warmup,
        calibration: if a.quick {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(8)
        },
        load_factor: a.load,
    };
    let result = crate::soak::run(&plan)?;
    let out = match a.out {
        Some(o) => o,
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "host".into());
            let id = format!(
                "{}-{host}-{}",
                crate::harness::today_utc(),
                result.variant.replace(':', "-")
            );
            PathBuf::from(if a.quick {
                "target/soak"
            } else {
                "results/soak"
            })
            .join(id)
        }
    };
    crate::soak::write(&result, &out)?;
    print!("{}", crate::soak::markdown(&result, "#"));
    println!("\nwrote {}", out.display());
    if out.starts_with("results")
        && let Ok(run) = newest_run(Path::new("results/runs"))
    {
        publish(&run, Path::new("results"))?;
        println!("updated results/README.md");
    }
    Ok(if result.verdict.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    let scenarios = if a.scenarios.is_empty() && a.scaling {
        vec![PathBuf::from("scenarios/max-throughput.toml")]
    } else if a.scenarios.is_empty() {
        vec![
            PathBuf::from("scenarios/max-throughput.toml"),
            PathBuf::from("scenarios/typical-mix.toml"),
            PathBuf::from("scenarios/typical-mix-max.toml"),
        ]
    } else {
        a.scenarios.clone()
    };
    if a.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let bin_dir = bin_dir_of(&a.harness.bin_dir)?;
    let (duration, warmup) = if a.scenario_durations {
        (None, None)
    } else if a.quick {
        (a.duration, a.warmup)
    } else {
        (
            Some(a.duration.unwrap_or(Duration::from_secs(5))),
            Some(a.warmup.unwrap_or(Duration::from_secs(1))),
        )
    };
    let plan = Plan {
        scenarios,
        receivers: a.receivers.clone(),
        repeat: a.repeat,
        out: PathBuf::new(),
        quick: a.quick,
        bin_dir,
        receiver_cpus: a.harness.receiver_cpus.clone(),
        generator_cpus: a.harness.generator_cpus.clone(),
        http: a.harness.http.clone(),
        command: command_line(),
        duration,
        warmup,
        quiet: a.harness.quiet,
        receiver_args: Vec::new(),
        externals: externals(&a.external, &a.external_null, &a.external_runtime)?,
        allow_failing: crate::runner::AllowFailing::from_arg(a.allow_failing.clone()),
        strict: a.strict,
    };
    let cores = a.cores.unwrap_or_else(crate::runner::machine_cores);
    if a.plan {
        print!("{}", plan_text(&plan, a.scaling, cores));
        return Ok(ExitCode::SUCCESS);
    }
    let started = std::time::Instant::now();
    let results = if a.scaling {
        scaling_run(&plan, cores)?
    } else {
        crate::runner::run(&plan)?
    };
    let default_out = a.out.is_none();
    let mut results = results;
    // Held before the results are written, so that results.json records them.
    results.thresholds = a.thresholds.iter().map(|t| t.text.clone()).collect();
    results.threshold_breaches = match crate::thresholds::evaluate(&results, &a.thresholds) {
        Ok(b) => b,
        Err(e) => bail!("{e}"),
    };
    // The run's id is its folder's name, and never that of an earlier run's folder.
    let out = match a.out {
        Some(o) => o,
        None => unique_run_dir(&PathBuf::from("results/runs"), &results.run.id),
    };
    if let Some(name) = out.file_name().and_then(|n| n.to_str()) {
        results.run.id = name.to_owned();
    }
    write_run(&results, &out)?;
    println!(
        "wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    for sc in &results.scenarios {
        println!("\n{} ({}):", sc.scenario, sc.shape);
        let med = |x: Option<crate::results::Spread>, digits: usize| {
            x.map_or("–".into(), |s| format!("{:.*}", digits, s.median))
        };
        for c in &sc.cells {
            let limited = if c.generator_limited {
                "  (generator-limited)"
            } else {
                ""
            };
            if sc.shape == "max" {
                println!(
                    "  {:<24} {:>9} req/s  ÷null {:>5}  ÷naive {:>5}  p99 {:>7} µs{limited}",
                    c.variant,
                    med(c.rps, 0),
                    med(c.ratio_to_null, 2),
                    med(c.ratio_to_naive, 2),
                    med(c.p99_us, 0),
                );
            } else {
                // At a paced rate every variant "achieves" the rate: read latency against the
                // machine's floor at that rate instead of throughput ratios.
                println!(
                    "  {:<24} {:>9} req/s  p99 {:>7} µs  p99.9 {:>7} µs  floor p99 {:>7} µs  lag p99 {:>6} µs{limited}",
                    c.variant,
                    med(c.rps, 0),
                    med(c.p99_us, 0),
                    med(c.p999_us, 0),
                    med(c.floor_p99_us, 0),
                    med(c.lag_p99_us, 0),
                );
            }
        }
    }
    if let Some(scaling) = crate::publish::scaling_section(&results) {
        println!("\n{scaling}");
    }
    for v in results.variants.iter().filter(|v| v.status != "measured") {
        println!(
            "  {} not measured ({}): {}",
            v.variant,
            v.status,
            v.reason.as_deref().unwrap_or("")
        );
    }
    if a.publish || (default_out && !a.quick) {
        let results_dir = PathBuf::from("results");
        if out.starts_with(&results_dir) {
            publish(&out, &results_dir)?;
            println!("\nupdated results/README.md");
        }
    }
    if let Some(path) = &a.bmf {
        crate::bmf::write(&results, path)?;
    }
    // 2 (could not run) is an error above; then 1 (a receiver failed) wins over 99 (a threshold).
    let failures = crate::runner::receiver_failures(
        &results,
        &crate::runner::AllowFailing::from_arg(a.allow_failing.clone()),
        a.strict,
    );
    for f in &failures {
        println!("FAILED: {f}");
    }
    for b in &results.threshold_breaches {
        println!("{b}");
    }
    if let Some(path) = &a.markdown {
        std::fs::write(path, crate::publish::summary_markdown(&results, &failures))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if !failures.is_empty() {
        ExitCode::from(1)
    } else if !results.threshold_breaches.is_empty() {
        ExitCode::from(99)
    } else {
        ExitCode::SUCCESS
    })
}

/// `verify`: exit 0 (every required case passed), 1 (one failed), 2 (could not run).
fn verify_cmd(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    use crate::verify::{Options, Target, verify};
    let cannot = |msg: String| {
        eprintln!("webhook-bench verify: {msg}");
        Ok(ExitCode::from(2))
    };
    // A receiver the harness starts (and stops when `_started` drops), or the one at --target.
    // Only a --variant needs this workspace's binaries.
    let bin_dir = match (&a.variant, &a.receiver) {
        (Some(_), None) => bin_dir_of(&a.bin_dir)?,
        _ => a.bin_dir.clone().unwrap_or_default(),
    };
    let harness = crate::harness::Harness::new(bin_dir);
    let started = match (&a.receiver, &a.variant) {
        (Some(cmd), _) => {
            if !cmd.contains("{port}") {
                return cannot(format!(
                    "--receiver `{cmd}` must take its port from `{{port}}`, e.g. `node server.js --port {{port}}`"
                ));
            }
            eprintln!("verify: starting `{cmd}`");
            Some(harness.start_external("receiver", cmd))
        }
        (None, Some(spec)) => match crate::matrix::Variant::parse(spec) {
            Err(e) => return cannot(e),
            Ok(v) => {
                eprintln!("verify: starting {}", v.name);
                Some(harness.start(&v))
            }
        },
        (None, None) => None,
    };
    let (url, secret, _started) = match started {
        Some(Err(e)) => return cannot(e),
        Some(Ok(rx)) => (
            format!("http://{}{}", rx.addr, a.path),
            crate::harness::SECRET.to_owned(),
            Some(rx),
        ),
        None => {
            let secret = match &a.secret_file {
                Some(f) => match std::fs::read_to_string(f) {
                    // A trailing newline is the file's, not the secret's.
                    Ok(s) => s.trim_end_matches(['\r', '\n']).to_owned(),
                    Err(e) => {
                        return cannot(format!("cannot read the secret file {}: {e}", f.display()));
                    }
                },
                None => match std::env::var("DIDIT_WEBHOOK_SECRET") {
                    Ok(s) if !s.is_empty() => s,
                    _ => {
                        return cannot(
                            "no secret: set DIDIT_WEBHOOK_SECRET or pass --secret-file FILE".into(),
                        );
                    }
                },
            };
            (a.target.clone().unwrap_or_default(), secret, None)
        }
    };
    let trust = if a.insecure {
        didit_loadgen::Trust::AnyCertificate
    } else {
        didit_loadgen::Trust::SystemRoots
    };
    let target = match Target::parse_with(&url, trust) {
        Ok(t) => t,
        Err(e) => return cannot(e.to_string()),
    };
    if a.strict_http && target.tls.is_some() {
        return cannot(
            "--strict-http judges the raw framing corpus, which runs against http:// targets only"
                .into(),
        );
    }
    let o = Options {
        target,
        secret,
        max_body: a.max_body,
        tolerance: a.tolerance,
        accept_simple: a.accept_simple,
        strict_http: a.strict_http,
        strict: a.strict,
        framing: !a.no_framing,
        server: a.server,
    };
    let card = match verify(&o, |step| eprintln!("verify: {step}")) {
        Ok(c) => c,
        Err(e) => return cannot(e.to_string()),
    };
    print!("{}", card.render());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&card)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.junit {
        std::fs::write(path, crate::verify::report::junit(&card)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.markdown {
        std::fs::write(path, crate::verify::report::markdown(&card))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if card.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The command as typed, for the record a run keeps of how it was made.
fn command_line() -> String {
    std::iter::once("webhook-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

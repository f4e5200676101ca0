//! `webhook-bench run`: the matrix, measured and written to a run folder; exit 1 when a
//! receiver failed, 99 when a threshold did.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::publish::publish;
use super::{HarnessArgs, bin_dir_of, command_line};
use crate::harness::CpuSet;
use crate::runner::{AllowFailing, Plan, write_run};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files (repeatable); default: scenarios/max-throughput.toml,
    /// scenarios/typical-mix.toml and scenarios/typical-mix-max.toml.
    #[arg(long = "scenario")]
    pub scenarios: Vec<PathBuf>,
    /// `default`, `all`, or a comma-separated list of server:hmac:json[:store][:slowN]
    /// (store: sqlite, sqlite-enqueue, nats, rabbitmq, kafka or kafka-memory, the last on
    /// tansu's in-memory engine; in memory when left out).
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

impl RunArgs {
    /// `webhook-bench` with no command: the default matrix, published.
    pub fn main_job() -> RunArgs {
        let mut a = <RunArgs as clap::FromArgMatches>::from_arg_matches(
            &<RunArgs as clap::Args>::augment_args(clap::Command::new("run"))
                .get_matches_from(["run"]),
        )
        .expect("the defaults parse");
        a.publish = true;
        a
    }

    /// The plan these flags describe.
    fn plan(&self) -> anyhow::Result<Plan> {
        let scenarios = if !self.scenarios.is_empty() {
            self.scenarios.clone()
        } else if self.scaling {
            vec![PathBuf::from("scenarios/max-throughput.toml")]
        } else {
            ["max-throughput", "typical-mix", "typical-mix-max"]
                .iter()
                .map(|n| PathBuf::from(format!("scenarios/{n}.toml")))
                .collect()
        };
        if self.repeat == 0 {
            bail!("--repeat must be at least 1");
        }
        let (duration, warmup) = if self.scenario_durations {
            (None, None)
        } else if self.quick {
            (self.duration, self.warmup)
        } else {
            (
                Some(self.duration.unwrap_or(Duration::from_secs(5))),
                Some(self.warmup.unwrap_or(Duration::from_secs(1))),
            )
        };
        Ok(Plan {
            scenarios,
            receivers: self.receivers.clone(),
            repeat: self.repeat,
            quick: self.quick,
            bin_dir: bin_dir_of(&self.harness.bin_dir)?,
            receiver_cpus: self.harness.receiver_cpus.clone(),
            generator_cpus: self.harness.generator_cpus.clone(),
            http: self.harness.http.clone(),
            command: command_line(),
            duration,
            warmup,
            quiet: self.harness.quiet,
            receiver_args: Vec::new(),
            externals: externals(&self.external, &self.external_null, &self.external_runtime)?,
            allow_failing: AllowFailing::from_arg(self.allow_failing.clone()),
            strict: self.strict,
        })
    }
}

pub(super) fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    let plan = a.plan()?;
    let cores = a.cores.unwrap_or_else(crate::harness::machine_cores);
    if a.plan {
        print!("{}", plan_text(&plan, a.scaling, cores)?);
        return Ok(ExitCode::SUCCESS);
    }
    let started = std::time::Instant::now();
    let mut results = if a.scaling {
        scaling_run(&plan, cores)?
    } else {
        crate::runner::run(&plan)?
    };
    // Held before the results are written, so that results.json records them.
    results.thresholds = a.thresholds.iter().map(|t| t.text.clone()).collect();
    results.threshold_breaches =
        crate::thresholds::evaluate(&results, &a.thresholds).map_err(anyhow::Error::msg)?;
    // The run's id is its folder's name, and never that of an earlier run's folder.
    let out = match &a.out {
        Some(o) => o.clone(),
        None => unique_run_dir(&PathBuf::from("results/runs"), &results.run.id),
    };
    if let Some(name) = out.file_name().and_then(|n| n.to_str()) {
        results.run.id = name.to_owned();
    }
    write_run(&results, &out)?;
    println!(
        "wrote {} in {:.0} s\n",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    let failures = crate::runner::receiver_failures(&results, &plan.allow_failing, a.strict);
    // The console gets the tables the run's README and a CI summary get: one renderer.
    let summary = crate::publish::summary_markdown(&results, &failures);
    print!("{summary}");
    if let Some(scaling) = crate::publish::scaling_section(&results) {
        println!("\n{scaling}");
    }
    for v in results.variants.iter().filter(|v| !v.status.measured()) {
        println!(
            "  {} not measured ({}): {}",
            v.variant,
            v.status,
            v.reason.as_deref().unwrap_or("")
        );
    }
    if a.publish || (a.out.is_none() && !a.quick) {
        let results_dir = PathBuf::from("results");
        if out.starts_with(&results_dir) {
            publish(&out, &results_dir)?;
            println!("\nupdated results/README.md");
        }
    }
    if let Some(path) = &a.bmf {
        crate::bmf::write(&results, path)?;
    }
    if let Some(path) = &a.markdown {
        std::fs::write(path, summary).with_context(|| format!("writing {}", path.display()))?;
    }
    // 2 (could not run) is an error above; then 1 (a receiver failed) wins over 99 (a threshold).
    for f in &failures {
        println!("FAILED: {f}");
    }
    for b in &results.threshold_breaches {
        println!("{b}");
    }
    Ok(if !failures.is_empty() {
        ExitCode::from(1)
    } else if !results.threshold_breaches.is_empty() {
        ExitCode::from(99)
    } else {
        ExitCode::SUCCESS
    })
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
fn plan_text(plan: &Plan, scaling: bool, cores: usize) -> anyhow::Result<String> {
    let have = crate::harness::receiver::backends(&plan.bin_dir).map_err(anyhow::Error::msg)?;
    let mut variants: Vec<String> = crate::matrix::expand(&plan.receivers, &have)
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
        return Ok(crate::scaling::describe(
            &t,
            &variants,
            &scenarios,
            plan.repeat,
        ));
    }
    let broker = CpuSet::spare(cores, &[&plan.receiver_cpus, &plan.generator_cpus]);
    Ok(format!(
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
    ))
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

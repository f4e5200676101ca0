//! `webhook-bench soak`: one receiver at a share of its maximum for minutes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::publish::{newest_run, publish};
use super::{HarnessArgs, bin_dir_of, command_line, parse_percent};
use crate::runner::Plan;

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

pub(super) fn soak_cmd(a: SoakArgs) -> anyhow::Result<ExitCode> {
    let scenario = didit_loadgen::Scenario::load(&a.scenario)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.scenario.display()))?;
    let bin_dir = bin_dir_of(&a.harness.bin_dir)?;
    let have = crate::harness::receiver::backends(&bin_dir).map_err(anyhow::Error::msg)?;
    let variant = match crate::matrix::expand(&a.receiver, &have).into_iter().next() {
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
            quick: a.quick,
            bin_dir,
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
            let id = format!(
                "{}-{}-{}",
                crate::harness::today_utc(),
                crate::harness::hostname(),
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

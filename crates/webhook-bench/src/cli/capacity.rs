//! `webhook-bench capacity`: the load generator's own ceiling beside wrk's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{HarnessArgs, bin_dir_of, command_line};

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

pub(super) fn capacity_cmd(a: CapacityArgs) -> anyhow::Result<ExitCode> {
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

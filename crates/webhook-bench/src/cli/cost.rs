//! `webhook-bench cost`: where a request's time goes, layer by layer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{HarnessArgs, bin_dir_of, command_line};

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// In-memory variants (server:hmac:json), each taken apart layer by layer.
    #[arg(long, default_value = crate::cost::DEFAULT_VARIANTS)]
    pub variants: String,
    /// Stores measured on top of the first variant's layers (sqlite, sqlite-enqueue, nats,
    /// rabbitmq, kafka, kafka-memory), or `none`.
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

pub(super) fn cost_cmd(a: CostArgs) -> anyhow::Result<ExitCode> {
    if let (Some(from), Some(dir)) = (&a.from, &a.out) {
        let r = crate::cost::load(from)?;
        crate::cost::write(&r, dir)?;
        println!("wrote {}", dir.join("README.md").display());
        return Ok(ExitCode::SUCCESS);
    }
    if a.repeat == 0 || a.duration < Duration::from_secs(1) {
        bail!("--repeat must be at least 1 and --duration at least 1s");
    }
    let bin_dir = bin_dir_of(&a.harness.bin_dir)?;
    let have = crate::harness::receiver::backends(&bin_dir).map_err(anyhow::Error::msg)?;
    let mut variants = Vec::new();
    for v in crate::matrix::expand(&a.variants, &have) {
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
    use crate::matrix::StoreKind;
    // The stores a layer can add: every store but the in-memory reference and the null layer.
    let layered: Vec<(StoreKind, &str)> = StoreKind::ALL
        .into_iter()
        .filter(|(k, _)| !matches!(k, StoreKind::Memory | StoreKind::Null))
        .collect();
    let mut stores = Vec::new();
    if a.stores != "none" {
        for s in a.stores.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match layered.iter().find(|(_, t)| *t == s) {
                Some((k, _)) => stores.push(*k),
                None => bail!(
                    "--stores {s}: use {} (or none)",
                    layered
                        .iter()
                        .map(|(_, t)| *t)
                        .collect::<Vec<_>>()
                        .join(", ")
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
        bin_dir,
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

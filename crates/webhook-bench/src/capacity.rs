//! `webhook-bench capacity`: the generator's own ceiling, against wrk's, side by side in one run.
//!
//! Every generator sends 4 KB POSTs to one receiver's `/webhooks/null` endpoint (which answers
//! without verifying, so the receiver is as cheap as it gets) over 32 persistent connections,
//! the generator pinned to its cores (one wrk thread or one engine thread per core) and the
//! receiver to others. wrk runs twice: one static
//! request (its fastest mode), and through `scripts/wrk_pool.py`'s Lua pool of 1,000 pre-signed
//! deliveries; `didit-loadgen` runs four ways (a pool of 1,000 deliveries built before the run,
//! like for like with the Lua pool, or a fresh signed delivery per request; hyper's client or the
//! raw one). Rounds interleave the generators so drift hits all of them alike.
//!
//! Beside each rate, the generator's own CPU time per request (user + system from
//! `/usr/bin/time`, the whole process: didit-loadgen's start-up and pool building included, so
//! an upper bound) says which side was the limit: a generator with CPU to spare was held back by
//! the receiver.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::harness::{CpuSet, Harness, SECRET, command, last_lines};
use crate::matrix::Variant;
use crate::results::Spread;

/// The results format's name and version.
pub const CAPACITY_SCHEMA: &str = "webhook-bench-capacity/1";

/// What to run.
#[derive(Clone, Debug)]
pub struct CapacityPlan {
    pub bin_dir: PathBuf,
    /// The receiver whose null endpoint takes the load.
    pub server: String,
    pub receiver_cpus: CpuSet,
    pub generator_cpus: CpuSet,
    pub duration: Duration,
    pub repeat: usize,
    pub connections: usize,
    pub command: String,
    pub quiet: bool,
}

/// One generator's figures over the rounds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub generator: String,
    pub description: String,
    /// Requests per second, one per round.
    pub rps: Vec<f64>,
    /// Generator CPU per request in µs (user + system, whole process), one per round.
    pub cpu_us_per_request: Vec<f64>,
    pub rps_spread: Option<Spread>,
    pub cpu_spread: Option<Spread>,
    /// Median rate over wrk's Lua pool's (like for like: 1,000 pre-signed deliveries).
    pub to_wrk_pool: Option<f64>,
}

/// What `capacity --json` writes.
#[derive(Clone, Debug, Serialize)]
pub struct CapacityResult {
    pub schema: String,
    pub command: String,
    pub started: String,
    pub git_commit: String,
    pub cpu_model: String,
    pub receiver: String,
    pub receiver_cpus: String,
    pub generator_cpus: String,
    pub duration_secs: f64,
    pub repeat: usize,
    pub connections: usize,
    pub rows: Vec<Row>,
}

/// The generators, in the order they run in each round.
const GENERATORS: [(&str, &str); 6] = [
    ("wrk", "wrk, one static request"),
    ("wrk-pool", "wrk, Lua pool of 1,000 signed deliveries"),
    ("loadgen-pool", "didit-loadgen --pool 1000 (hyper client)"),
    (
        "loadgen-fresh",
        "didit-loadgen, fresh signed delivery per request (hyper client)",
    ),
    ("loadgen-raw-pool", "didit-loadgen --pool 1000 --http raw"),
    (
        "loadgen-raw-fresh",
        "didit-loadgen --http raw, fresh signed delivery per request",
    ),
];

/// Runs the plan.
pub fn run(plan: &CapacityPlan) -> anyhow::Result<CapacityResult> {
    for tool in [
        ("wrk", "wrk"),
        ("/usr/bin/time", "time"),
        ("taskset", "util-linux"),
    ] {
        if !on_path(tool.0) {
            bail!(
                "`{}` is needed: install it with `bash scripts/apt-install.sh {}{}`",
                tool.0,
                tool.1,
                if tool.0.starts_with('/') {
                    format!(":{}", tool.0)
                } else {
                    String::new()
                }
            );
        }
    }
    let loadgen = plan.bin_dir.join("didit-loadgen");
    if !loadgen.is_file() {
        bail!(
            "{} not found: build the release binaries first (`cargo build --release --bins`) or pass --bin-dir",
            loadgen.display()
        );
    }
    let harness = Harness {
        cpus: Some(plan.receiver_cpus.to_string()),
        workers: plan.receiver_cpus.len(),
        ..Harness::new(plan.bin_dir.clone())
    };
    let variant = harness
        .backends()
        .and_then(|have| Variant::parse(&format!("{}:ring:serde", plan.server), &have))
        .map_err(anyhow::Error::msg)?;
    let rx = harness.start(&variant).map_err(anyhow::Error::msg)?;
    let work = std::env::temp_dir().join(format!("webhook-bench-capacity-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let result = measure(plan, &rx.addr, &work);
    rx.stop();
    let _ = std::fs::remove_dir_all(&work);
    let rows = result?;
    Ok(CapacityResult {
        schema: CAPACITY_SCHEMA.into(),
        command: plan.command.clone(),
        started: crate::harness::now_utc(),
        git_commit: crate::harness::Provenance::of(&plan.bin_dir).commit,
        cpu_model: crate::harness::cpu_model(),
        receiver: variant.name,
        receiver_cpus: plan.receiver_cpus.to_string(),
        generator_cpus: plan.generator_cpus.to_string(),
        duration_secs: plan.duration.as_secs_f64(),
        repeat: plan.repeat,
        connections: plan.connections,
        rows,
    })
}

fn on_path(cmd: &str) -> bool {
    if cmd.starts_with('/') {
        return Path::new(cmd).is_file();
    }
    command("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn measure(plan: &CapacityPlan, addr: &str, work: &Path) -> anyhow::Result<Vec<Row>> {
    let url = format!("http://{addr}/webhooks/null");
    let static_lua = work.join("static.lua");
    // wrk's fastest mode: one static request with a 4 KB body, no per-request Lua.
    let body = format!("{{\"padding\":\"{}\"}}", "x".repeat(4096 - 14));
    std::fs::write(
        &static_lua,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )?;
    let mut rows: Vec<Row> = GENERATORS
        .iter()
        .map(|(g, d)| Row {
            generator: (*g).into(),
            description: (*d).into(),
            rps: Vec::new(),
            cpu_us_per_request: Vec::new(),
            rps_spread: None,
            cpu_spread: None,
            to_wrk_pool: None,
        })
        .collect();
    for round in 1..=plan.repeat {
        for (i, (g, _)) in GENERATORS.iter().enumerate() {
            if !plan.quiet {
                eprintln!("webhook-bench capacity: round {round}/{}: {g}", plan.repeat);
            }
            let (rps, requests, cpu) = match *g {
                "wrk" => wrk(plan, &static_lua, &url, work)?,
                "wrk-pool" => {
                    // Signed afresh each round: the deliveries' timestamps must stay fresh.
                    let pool = work.join("pool.lua");
                    let out = command("python3")
                        .arg("scripts/wrk_pool.py")
                        .arg(&pool)
                        .args(["--count", "1000", "--path", "/webhooks/null"])
                        .env("DIDIT_WEBHOOK_SECRET", SECRET)
                        .output()
                        .context(
                            "cannot run python3 scripts/wrk_pool.py (run from the project root)",
                        )?;
                    if !out.status.success() {
                        bail!(
                            "scripts/wrk_pool.py failed: {}",
                            last_lines(&String::from_utf8_lossy(&out.stderr), 3)
                        );
                    }
                    wrk(plan, &pool, &format!("http://{addr}"), work)?
                }
                mode => loadgen(plan, mode, &url, work)?,
            };
            rows[i].rps.push(rps);
            rows[i]
                .cpu_us_per_request
                .push(cpu / requests.max(1) as f64 * 1e6);
        }
    }
    for r in &mut rows {
        r.rps_spread = Spread::of(&r.rps);
        r.cpu_spread = Spread::of(&r.cpu_us_per_request);
    }
    let pool = rows
        .iter()
        .find(|r| r.generator == "wrk-pool")
        .and_then(|r| r.rps_spread)
        .map(|s| s.median);
    for r in &mut rows {
        r.to_wrk_pool = match (r.rps_spread, pool) {
            (Some(s), Some(p)) if p > 0.0 => Some((s.median / p * 100.0).round() / 100.0),
            _ => None,
        };
    }
    Ok(rows)
}

/// Runs `cmd` pinned to the generator's core under `/usr/bin/time`; its stdout and its user +
/// system CPU seconds.
fn timed(
    plan: &CapacityPlan,
    work: &Path,
    program: &Path,
    args: &[String],
) -> anyhow::Result<(String, f64)> {
    let time_file = work.join("time");
    let out = command("/usr/bin/time")
        .args(["-f", "%U %S", "-o"])
        .arg(&time_file)
        .args(["taskset", "-c", &plan.generator_cpus.to_string()])
        .arg(program)
        .args(args)
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            program.display(),
            out.status,
            last_lines(&String::from_utf8_lossy(&out.stderr), 3)
        );
    }
    let t = std::fs::read_to_string(&time_file)?;
    let cpu = t
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse::<f64>().ok())
        .sum();
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), cpu))
}

/// One measured wrk run after a one-second warm-up: (req/s, requests, CPU seconds).
fn wrk(
    plan: &CapacityPlan,
    script: &Path,
    url: &str,
    work: &Path,
) -> anyhow::Result<(f64, u64, f64)> {
    let args = |secs: String| {
        vec![
            format!("-t{}", plan.generator_cpus.len()),
            format!("-c{}", plan.connections),
            format!("-d{secs}"),
            "-s".into(),
            script.display().to_string(),
            url.to_owned(),
        ]
    };
    let wrk = Path::new("wrk");
    timed(plan, work, wrk, &args("1s".into()))?;
    let (out, cpu) = timed(
        plan,
        work,
        wrk,
        &args(format!("{}s", plan.duration.as_secs().max(1))),
    )?;
    if out.contains("Non-2xx") {
        bail!("wrk got non-2xx answers from /webhooks/null: measurement invalid: {out}");
    }
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {out}"))?;
    let requests = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no request count in wrk's output: {out}"))?;
    Ok((rps, requests, cpu))
}

/// One didit-loadgen run in `mode`: (req/s, requests, CPU seconds).
fn loadgen(
    plan: &CapacityPlan,
    mode: &str,
    url: &str,
    work: &Path,
) -> anyhow::Result<(f64, u64, f64)> {
    let report = work.join("loadgen.json");
    let mut args: Vec<String> = [
        "--scenario",
        "scenarios/max-throughput.toml",
        "--target",
        url,
        "--path",
        "/webhooks/null",
        "--max",
        "--warmup",
        "1s",
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend([
        "--connections".into(),
        plan.connections.to_string(),
        "--duration".into(),
        format!("{}ms", plan.duration.as_millis()),
        "--report".into(),
        report.display().to_string(),
    ]);
    if mode.contains("pool") {
        args.extend(["--pool".into(), "1000".into()]);
    }
    args.extend([
        "--http".into(),
        if mode.contains("raw") { "raw" } else { "hyper" }.into(),
        "--threads".into(),
        plan.generator_cpus.len().to_string(),
    ]);
    let (_, cpu) = timed(plan, work, &plan.bin_dir.join("didit-loadgen"), &args)?;
    let r = didit_loadgen::Report::from_json(&std::fs::read(&report)?)
        .with_context(|| format!("{}", report.display()))?;
    Ok((r.load.achieved_rate, r.requests.total, cpu))
}

/// The table for people.
pub fn markdown(r: &CapacityResult) -> String {
    let mut s = String::new();
    s.push_str("| generator (one core) | /webhooks/null req/s, median (min–max) | generator CPU per request, µs, median (min–max) | ÷ wrk Lua pool |\n|---|---|---|---|\n");
    for row in &r.rows {
        let rps = row.rps_spread.map_or("–".into(), |x| {
            format!(
                "{} ({}–{})",
                thousands(x.median),
                thousands(x.min),
                thousands(x.max)
            )
        });
        let cpu = row.cpu_spread.map_or("–".into(), |x| {
            format!("{:.1} ({:.1}–{:.1})", x.median, x.min, x.max)
        });
        let ratio = row.to_wrk_pool.map_or("–".into(), |x| format!("{x:.2}"));
        s.push_str(&format!(
            "| {} | {rps} | {cpu} | {ratio} |\n",
            row.description
        ));
    }
    s.push_str(&format!(
        "\n{} interleaved rounds of {} s, {} connections; receiver {} on cores {}, generator on cores {}; `{}`.\n",
        r.repeat, r.duration_secs, r.connections, r.receiver, r.receiver_cpus, r.generator_cpus, r.command
    ));
    s
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}

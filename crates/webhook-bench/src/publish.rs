//! Markdown for people: a run's `README.md`, and `results/README.md` (`webhook-bench publish`).

use std::fmt::Write as _;

use crate::charts::Chart;
use crate::results::{Cell, Results, ScenarioResult, Spread};

fn rps(s: Option<Spread>) -> String {
    s.map_or("–".into(), |s| {
        format!("{:.0} ({:.0}–{:.0})", s.median, s.min, s.max)
    })
}

fn ratio(s: Option<Spread>) -> String {
    s.map_or("–".into(), |s| {
        format!("{:.2} ({:.2}–{:.2})", s.median, s.min, s.max)
    })
}

fn plain(s: Option<Spread>, digits: usize) -> String {
    s.map_or("–".into(), |s| format!("{:.*}", digits, s.median))
}

/// The receivers written elsewhere that were measured in `sc` (the peers teams run today), each
/// with its median: every table gets a "÷ NAME" column for each.
fn peer_medians<'a>(r: &'a Results, sc: &ScenarioResult) -> Vec<(&'a str, f64)> {
    r.variants
        .iter()
        .filter(|v| v.external.is_some())
        .filter_map(|v| {
            let m = sc
                .cells
                .iter()
                .find(|c| c.variant == v.variant)?
                .rps?
                .median;
            (m > 0.0).then_some((v.variant.as_str(), m))
        })
        .collect()
}

fn table(r: &Results, sc: &ScenarioResult, out: &mut String) {
    // At a fixed arrival rate every variant "achieves" the rate: ratios of it say nothing.
    let ratios = sc.shape.is_max();
    let peers = if ratios {
        peer_medians(r, sc)
    } else {
        Vec::new()
    };
    let peer_heads: String = peers.iter().map(|(n, _)| format!(" ÷ {n} |")).collect();
    // At a paced rate, latency is read beside the machine's own floor at that rate.
    let floor = !ratios
        && sc
            .cells
            .iter()
            .any(|c| c.floor_p99_us.is_some() || c.lag_p99_us.is_some());
    let floor_heads = if floor {
        " p99.9 µs | floor p99 / p99.9 µs (null, same rate) | generator lag p99 µs |"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "| variant | req/s, median (min–max) | ÷ own null endpoint | ÷ naive peer |{peer_heads} p99 µs |{floor_heads} CPU ms / 1k req | notes |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|{}---|{}---|---|",
        "---|".repeat(peers.len()),
        if floor { "---|---|---|" } else { "" }
    );
    let mut cells: Vec<&Cell> = sc.cells.iter().collect();
    cells.sort_by(|a, b| {
        let m = |c: &Cell| c.rps.map_or(0.0, |s| s.median);
        m(b).total_cmp(&m(a))
    });
    for c in cells {
        let mut notes = Vec::new();
        if let Some(v) = r.variants.iter().find(|v| v.variant == c.variant) {
            if v.external.is_some() {
                notes.push("written elsewhere, judged by status".to_owned());
            }
            if let Some(rt) = &v.runtime {
                notes.push(rt.clone());
            }
            if v.failing_card {
                notes.push(format!(
                    "**report card failed** ({}), measured with --allow-failing",
                    v.card_failed.join(", ")
                ));
            }
        }
        if let Some((label, _)) = crate::matrix::broker_label(&c.variant) {
            notes.push(label.to_owned());
        }
        if c.generator_limited {
            notes.push("generator-limited".to_owned());
        }
        if let Some(f) = &c.failed {
            notes.push(format!("failed: {f}"));
        }
        let mism: u64 = c.repeats.iter().map(|r| r.mismatches).sum();
        if mism > 0 {
            notes.push(format!("{mism} wrong answers"));
        }
        let errs = c.repeats.iter().filter(|r| r.error.is_some()).count();
        if errs > 0 && c.failed.is_none() {
            notes.push(format!("{errs} repeat(s) failed"));
        }
        let median = c.rps.map_or(0.0, |s| s.median);
        let peer_cells: String = peers
            .iter()
            .map(|(_, m)| format!(" {:.2} |", median / m))
            .collect();
        let floor_cells = if floor {
            format!(
                " {} | {} / {} | {} |",
                plain(c.p999_us, 0),
                plain(c.floor_p99_us, 0),
                plain(c.floor_p999_us, 0),
                plain(c.lag_p99_us, 0)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |{peer_cells} {} |{floor_cells} {} | {} |",
            c.variant,
            rps(c.rps),
            match (ratios, c.ratio_to_null) {
                (true, Some(x)) => ratio(Some(x)),
                (true, None) if c.failed.is_none() => "n/a (no null endpoint)".into(),
                _ => "–".into(),
            },
            if ratios {
                ratio(c.ratio_to_naive)
            } else {
                "–".into()
            },
            plain(c.p99_us, 0),
            plain(c.cpu_ms_per_1k, 3),
            notes.join("; ")
        );
    }
}

/// The `README.md` of one run folder.
pub fn run_readme(r: &Results, charts: &[Chart]) -> String {
    let mut s = String::new();
    let i = &r.run;
    let _ = writeln!(s, "# Benchmark run {}\n", i.id);
    let _ = writeln!(s, "Command: `{}`\n", i.command);
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| started (UTC) | {} |", i.started);
    let _ = writeln!(s, "| git commit | `{}` |", i.git_commit);
    let _ = writeln!(s, "| rustc | {} |", i.rustc);
    let _ = writeln!(s, "| CPU | {} ({} cores) |", i.cpu_model, i.cores);
    let _ = writeln!(s, "| kernel | {} |", i.kernel);
    let _ = writeln!(
        s,
        "| pinning | receiver on cores {}, generator on cores {}, brokers {} |",
        i.receiver_cpus,
        i.generator_cpus,
        i.broker_cpus
            .as_deref()
            .map_or("on the receiver's cores".to_owned(), |b| format!(
                "on cores {b}"
            ))
    );
    let _ = writeln!(
        s,
        "| repeats | {} interleaved rounds{} |",
        i.repeat,
        if i.quick { " (quick mode)" } else { "" }
    );
    let _ = writeln!(s, "| generator HTTP client | {} |", i.http_client);
    let _ = writeln!(s, "| crates | {} |\n", i.crates.join(", "));
    let _ = writeln!(s, "## Variants\n");
    let _ = writeln!(
        s,
        "| variant | status | report card | null endpoint req/s (calibration) | reason |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for v in &r.variants {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            match &v.external {
                Some(cmd) => format!("{} (`{cmd}`)", v.variant),
                None => v.variant.clone(),
            },
            v.status,
            card_cell(v),
            v.null_rps.map_or("–".into(), |n| format!(
                "{n:.0}{}",
                if v.null_generator_limited == Some(true) {
                    " (generator-limited)"
                } else {
                    ""
                }
            )),
            if v.slowed_us > 0 {
                format!(
                    "deliberately slowed by {} µs per delivery (gate test) {}",
                    v.slowed_us,
                    v.reason.as_deref().unwrap_or("")
                )
            } else {
                v.reason.clone().unwrap_or_default()
            }
        );
    }
    for sk in &r.skipped_scenarios {
        let _ = writeln!(s, "\nScenario `{}` skipped: {}.", sk.path, sk.reason);
    }
    for sc in &r.scenarios {
        let _ = writeln!(
            s,
            "\n## {} ({}, {} engine)\n\n{}\n",
            sc.scenario, sc.shape, sc.engine, sc.description
        );
        table(r, sc, &mut s);
    }
    if let Some(sc) = scaling_section(r) {
        let _ = writeln!(s, "\n{sc}");
    }
    if !charts.is_empty() {
        let _ = writeln!(s, "\n## Charts\n");
        for c in charts {
            let _ = writeln!(s, "![{}]({})\n", c.title, c.file);
        }
    }
    let _ = writeln!(
        s,
        "Files: `results.json` (schema `results/schema.json`), `raw.csv` (one row per measured value)."
    );
    s
}

/// The scaling table of a `run --scaling`: req/s per variant against receiver cores, and the
/// efficiency per core relative to one core.
/// The run for a CI step summary (`run --markdown`): the verdicts first (receivers that failed,
/// thresholds that failed), then each scenario's table as the run's README has it.
pub fn summary_markdown(r: &Results, failures: &[String]) -> String {
    let mut out = format!("## webhook-bench run `{}`\n\n", r.run.id);
    if failures.is_empty() && r.threshold_breaches.is_empty() {
        out.push_str("Every receiver passed its card and answered correctly under load");
        if !r.thresholds.is_empty() {
            out.push_str(&format!(
                "; every threshold held ({})",
                r.thresholds
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push_str(".\n\n");
    } else {
        for f in failures {
            out.push_str(&format!("- ❌ {f}\n"));
        }
        for b in &r.threshold_breaches {
            out.push_str(&format!("- ❌ {b}\n"));
        }
        out.push('\n');
    }
    for sc in &r.scenarios {
        out.push_str(&format!("### {} ({})\n\n", sc.scenario, sc.shape));
        table(r, sc, &mut out);
        out.push('\n');
    }
    out
}

pub fn scaling_section(r: &Results) -> Option<String> {
    let sc = r.scaling.as_ref()?;
    let mut s = format!(
        "## Scaling\n\n`{}`, each variant on 1, 2, 4, … receiver cores with as many generator cores (one engine thread each). Cells: req/s median (efficiency per core = req/s ÷ (cores × req/s on 1 core); 1.00 is linear).\n\n| variant |",
        sc.scenario
    );
    for p in &sc.points {
        let _ = write!(
            s,
            " {} core{} (receiver {}, generator {}) |",
            p.receiver_cores,
            if p.receiver_cores == 1 { "" } else { "s" },
            p.receiver_cpus,
            p.generator_cpus
        );
    }
    let _ = writeln!(s, "\n|---|{}", "---|".repeat(sc.points.len()));
    let variants: Vec<&str> = sc
        .points
        .first()
        .map(|p| p.cells.iter().map(|c| c.variant.as_str()).collect())
        .unwrap_or_default();
    for v in variants {
        let _ = write!(s, "| `{v}` |");
        for p in &sc.points {
            let cell = p.cells.iter().find(|c| c.variant == v);
            let _ = write!(
                s,
                " {} |",
                match cell.and_then(|c| c.rps.map(|r| (r, c.efficiency))) {
                    Some((r, Some(e))) => format!("{:.0} ({e:.2})", r.median),
                    Some((r, None)) => format!("{:.0}", r.median),
                    None => "–".into(),
                }
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\nThe run stopped there: {}.", sc.stopped);
    Some(s)
}

/// A variant's report-card summary and the required cases it failed.
fn card_cell(v: &crate::results::VariantOutcome) -> String {
    match (&v.card, v.card_failed.is_empty()) {
        (None, _) => "–".into(),
        (Some(c), true) => c.clone(),
        (Some(c), false) => format!("{c}; **failed: {}**", v.card_failed.join(", ")),
    }
}

/// The report cards of a run: every variant's `webhook-bench verify` summary, and what it
/// failed.
fn cards_section(r: &Results) -> Option<String> {
    let rows: Vec<String> = r
        .variants
        .iter()
        .filter(|v| v.card.is_some())
        .map(|v| format!("| {} | {} |", v.variant, card_cell(v)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(format!(
        "## Report cards

Every variant gets the report card of `webhook-bench verify` before it is measured (status codes only; framing is judged against RFC 9112's answers and only reported). A receiver written elsewhere must pass every required case to be measured. A failed required case means the receiver refused a valid Didit delivery or took one it should have refused.

| variant | card |
|---|---|
{}
",
        rows.join("\n")
    ))
}

/// The headline scenario: the throughput one if present.
fn headline(r: &Results) -> Option<&ScenarioResult> {
    r.scenarios
        .iter()
        .find(|s| s.shape.is_max())
        .or(r.scenarios.first())
}

fn overlaps(a: Spread, b: Spread) -> bool {
    a.min <= b.max && b.min <= a.max
}

/// "How to choose", derived from the numbers.
fn how_to_choose(r: &Results) -> String {
    let mut s = String::new();
    let Some(sc) = headline(r) else {
        return "No scenario was measured.".into();
    };
    let mut ranked: Vec<&Cell> = sc.cells.iter().filter(|c| c.rps.is_some()).collect();
    ranked.sort_by(|a, b| {
        let m = |c: &Cell| c.rps.map_or(0.0, |s| s.median);
        m(b).total_cmp(&m(a))
    });
    let (Some(best), second) = (ranked.first(), ranked.get(1)) else {
        return "No variant was measured.".into();
    };
    let b = best.rps.map_or(
        Spread {
            median: 0.0,
            min: 0.0,
            max: 0.0,
        },
        |x| x,
    );
    let _ = write!(
        s,
        "For raw throughput on one core, **{}** led the `{}` scenario at {:.0} req/s",
        best.variant, sc.scenario, b.median
    );
    if let Some(n) = best.ratio_to_null {
        let _ = write!(
            s,
            ", {:.0} % of what its HTTP stack does with no verification at all",
            n.median * 100.0
        );
    }
    let _ = write!(s, ". ");
    if let Some(second) = second
        && let Some(sr) = second.rps
    {
        if overlaps(b, sr) {
            let _ = write!(
                s,
                "{} ({:.0} req/s) overlaps it across repeats, so on this machine the two are not told apart: choose between them on your stack, not on this number. ",
                second.variant, sr.median
            );
        } else {
            let _ = write!(
                s,
                "The next, {} at {:.0} req/s, is clearly behind (their min–max ranges do not overlap). ",
                second.variant, sr.median
            );
        }
    }
    // The two reusable extractors: what a team on that framework should expect.
    for (prefix, framework) in [("axum:", "axum"), ("actix:", "actix-web")] {
        if let Some(cell) = sc.cells.iter().find(|c| c.variant.starts_with(prefix))
            && let Some(a) = cell.rps
        {
            let _ = write!(
                s,
                "The reusable {framework} extractor ({}) delivers {:.0} % of the leader's rate: what a team adopting these results in an {framework} app should expect. ",
                cell.variant,
                a.median / b.median.max(1.0) * 100.0
            );
        }
    }
    if let Some(naive) = sc
        .cells
        .iter()
        .find(|c| c.variant.starts_with("axum-naive"))
        && let Some(nv) = naive.rps
    {
        // What its report card says, not an assumption that it answers like ours.
        let card = r.variants.iter().find(|v| v.variant == naive.variant);
        let answers = match card {
            Some(v) if !v.card_failed.is_empty() => format!(
                "but not with the same answers: its report card fails {} required case(s) ({}), a valid Didit delivery refused or a bad one taken",
                v.card_failed.len(),
                v.card_failed.join(", ")
            ),
            Some(v) if v.card.is_some() => {
                "with a report card that passes every required case".into()
            }
            _ => "with the same answers to the conformance probes".into(),
        };
        let _ = write!(
            s,
            "The tutorial-style peer reaches {:.0} req/s, {:.1} × slower than the leader, {answers}; parsing before verifying, allocating the hex digest and locking shared maps is where the time goes. ",
            nv.median,
            b.median / nv.median.max(1.0)
        );
    }
    // The stacks teams run today: how much faster the leader is than each.
    let peers = peer_medians(r, sc);
    if !peers.is_empty() {
        let parts: Vec<String> = peers
            .iter()
            .map(|(n, m)| format!("{:.1} × `{n}` ({m:.0} req/s)", b.median / m))
            .collect();
        let _ = write!(
            s,
            "Against the peers written as teams write them today, on the same core and in the same rounds, the leader is {}. ",
            parts.join(", ")
        );
    }
    if let Some(lat) = r.scenarios.iter().find(|x| !x.shape.is_max())
        && let Some(low) = lat
            .cells
            .iter()
            .filter(|c| c.p99_us.is_some())
            .min_by(|a, b| {
                let p = |c: &Cell| c.p99_us.map_or(f64::MAX, |s| s.median);
                p(a).total_cmp(&p(b))
            })
    {
        let p99 = |c: &Cell| c.p99_us.map_or(f64::MAX, |s| s.median);
        let _ = write!(
            s,
            "Under a steady `{}` load the lowest p99 latency was {}'s ({:.0} µs). ",
            lat.scenario,
            low.variant,
            p99(low)
        );
        // Differences inside the machine's own floor at that rate are the machine's, not the
        // receivers': those variants are not ranked against each other.
        if let Some(floor) = low.floor_p99_us.map(|f| f.median) {
            let mut tied: Vec<&str> = lat
                .cells
                .iter()
                .filter(|c| c.variant != low.variant && p99(c) - p99(low) <= floor)
                .map(|c| c.variant.as_str())
                .collect();
            tied.sort_unstable();
            let lag = low.lag_p99_us.map_or(String::new(), |l| {
                format!(", the generator's own schedule lag p99 {:.0} µs", l.median)
            });
            let _ = write!(
                s,
                "The machine's floor at that rate (the same receiver's null endpoint, p99) was {floor:.0} µs{lag}; {}. ",
                if tied.is_empty() {
                    "every other variant's p99 is more than that above it".to_owned()
                } else {
                    format!(
                        "{} {} within that floor of it, so on this machine {} not told apart on latency",
                        tied.join(", "),
                        if tied.len() == 1 { "is" } else { "are" },
                        if tied.len() == 1 {
                            "the two are"
                        } else {
                            "they are"
                        }
                    )
                }
            );
        }
    }
    if let Some(cheap) = sc
        .cells
        .iter()
        .filter(|c| c.cpu_ms_per_1k.is_some())
        .min_by(|a, b| {
            let c = |x: &Cell| x.cpu_ms_per_1k.map_or(f64::MAX, |s| s.median);
            c(a).total_cmp(&c(b))
        })
    {
        let _ = write!(
            s,
            "Per request, {} used the least CPU ({:.3} ms per 1,000 requests), which is what matters when the endpoint shares a machine.",
            cheap.variant,
            cheap.cpu_ms_per_1k.map_or(0.0, |c| c.median)
        );
    }
    s
}

/// What durability costs: each durable variant against its in-memory sibling (same server and
/// backends) in every scenario measured at the maximum rate, as same-run ratios.
pub fn durability_cost(r: &Results) -> Option<String> {
    const STORES: [(&str, &str); 5] = [
        (
            ":sqlite-enqueue",
            "SQLite, 200 once queued (lost if the process dies before the commit)",
        ),
        (":sqlite", "SQLite, 200 after the synced commit"),
        (
            ":nats",
            "NATS JetStream, 200 after the stream's acknowledgement (nats-server on the receiver's core)",
        ),
        (
            ":rabbitmq",
            "RabbitMQ, 200 after the publisher confirm of a persistent message (the node on the receiver's core)",
        ),
        (
            ":kafka",
            "Kafka, 200 after the idempotent producer's delivery report with acks=all (tansu on the receiver's core)",
        ),
    ];
    let mut rows = Vec::new();
    for sc in r.scenarios.iter().filter(|x| x.shape.is_max()) {
        for c in &sc.cells {
            let Some((suffix, what)) = STORES.iter().find(|(sfx, _)| c.variant.ends_with(sfx))
            else {
                continue;
            };
            let base = &c.variant[..c.variant.len() - suffix.len()];
            let Some(mem) = sc.cells.iter().find(|m| m.variant == base) else {
                continue;
            };
            if let (Some(d), Some(m)) = (c.rps, mem.rps) {
                rows.push(format!(
                    "| `{}` | {} | {what} | {:.0} | {:.0} | {:.2} |",
                    sc.scenario,
                    c.variant,
                    d.median,
                    m.median,
                    d.median / m.median.max(1.0)
                ));
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    let mut s = String::from(
        "| scenario | variant | acknowledgement | req/s | in memory | ratio |\n|---|---|---|---:|---:|---:|\n",
    );
    for row in rows {
        s.push_str(&row);
        s.push('\n');
    }
    Some(s)
}

/// `results/README.md` for the run `r`, whose folder is `run_dir` relative to `results/`.
pub fn results_readme(r: &Results, run_dir: &str, charts: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Published results\n");
    let _ = writeln!(
        s,
        "Generated by `webhook-bench publish` from [`{run_dir}/results.json`]({run_dir}/results.json): run `{}` of commit `{}` on {} ({} cores, Linux {}), {} interleaved rounds, receiver pinned to cores {} and generator to cores {}. The exact command and crate versions are in [the run's README]({run_dir}/README.md).\n",
        r.run.id,
        &r.run.git_commit.chars().take(12).collect::<String>(),
        r.run.cpu_model,
        r.run.cores,
        r.run.kernel,
        r.run.repeat,
        r.run.receiver_cpus,
        r.run.generator_cpus
    );
    if let Some(sc) = headline(r) {
        let _ = writeln!(
            s,
            "## Headline: `{}` ({})\n\n{}\n",
            sc.scenario, sc.shape, sc.description
        );
        table(r, sc, &mut s);
        let _ = writeln!(
            s,
            "\nRatios are taken against references measured in the same run (each receiver's own `/webhooks/null` endpoint; the naive peer), because absolute numbers drift between runs on shared machines. Medians with min–max over the repeats; a variant marked generator-limited came within 10 % of what the generator could send, so its figure is a floor."
        );
    }
    for sc in r.scenarios.iter().filter(|x| Some(*x) != headline(r)) {
        let _ = writeln!(
            s,
            "\n## `{}` ({})\n\n{}\n",
            sc.scenario, sc.shape, sc.description
        );
        table(r, sc, &mut s);
    }
    let refused: Vec<String> = r
        .variants
        .iter()
        .filter(|v| !v.status.measured())
        .map(|v| {
            format!(
                "{} ({}: {})",
                v.variant,
                v.status,
                v.reason.as_deref().unwrap_or("")
            )
        })
        .collect();
    if !refused.is_empty() {
        let _ = writeln!(s, "\nNot measured: {}.", refused.join("; "));
    }
    for sk in &r.skipped_scenarios {
        let _ = writeln!(s, "\nScenario `{}` skipped: {}.", sk.path, sk.reason);
    }
    let _ = writeln!(s, "\n## How to choose\n\n{}\n", how_to_choose(r));
    if let Some(c) = cards_section(r) {
        let _ = writeln!(s, "{c}");
    }
    if let Some(sc) = scaling_section(r) {
        let _ = writeln!(s, "{sc}");
    }
    if let Some(d) = durability_cost(r) {
        let _ = writeln!(
            s,
            "## What durability costs\n\nThe same receiver with each store, medians of the same run (ratio = durable ÷ in memory). Only `after-commit` variants keep every acknowledged event through a crash; see the README's *Durability* section for each mode's guarantee.\n\n{d}"
        );
    }
    let _ = writeln!(
        s,
        "A single benchmark is never enough: these are two cores of a shared machine, loopback only, one payload mix per scenario. Rerun `webhook-bench run` on hardware like yours with your traffic before deciding, and compare ratios, not absolute numbers.\n"
    );
    if !charts.is_empty() {
        let _ = writeln!(s, "## Charts\n");
        for c in charts {
            let _ = writeln!(s, "![{c}]({run_dir}/{c})\n");
        }
    }
    s
}

/// One fuzz target's run, as `scripts/fuzz.sh` summarises it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct FuzzRun {
    pub target: String,
    pub seconds: f64,
    pub executions: u64,
    pub result: String,
    pub toolchain: String,
    /// Context a person added (earlier runs, what a crash was).
    #[serde(default)]
    pub note: String,
}

/// The fuzzing section of `results/README.md`, from the newest `results/fuzz/*.json` (the
/// summaries of `scripts/fuzz.sh`, one array of runs per file).
pub fn fuzz_section(results_dir: &std::path::Path) -> Option<String> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(results_dir.join("fuzz"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let file = files.pop()?;
    let runs: Vec<FuzzRun> = serde_json::from_str(&std::fs::read_to_string(&file).ok()?).ok()?;
    let name = file.file_name()?.to_string_lossy().into_owned();
    let mut s = String::from(
        "## Fuzzing\n\n`bash scripts/fuzz.sh`, one core per target; what each target asserts is in the project README (*Hostile traffic*).\n\n| target | seconds | executions | result | note |\n|---|---|---|---|---|\n",
    );
    for r in &runs {
        let _ = writeln!(
            s,
            "| `{}` | {:.0} | {} | {} | {} |",
            r.target, r.seconds, r.executions, r.result, r.note
        );
    }
    if let Some(t) = runs.first().map(|r| r.toolchain.as_str()) {
        let _ = writeln!(s, "\nToolchain: {t}. Data: [`fuzz/{name}`](fuzz/{name}).");
    }
    Some(s)
}

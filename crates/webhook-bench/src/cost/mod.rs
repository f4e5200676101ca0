//! `webhook-bench cost`: where a request's time goes, layer by layer, and how far the verified
//! path is from its floor.
//!
//! Each variant is measured as a stack of receivers that differ by one thing each, in
//! interleaved rounds, on fresh Approved deliveries of about 5 KB (`scenarios/max-throughput.toml`:
//! closed loop, the receiver on its cores at saturation, the generator on others):
//!
//! | layer | receiver | adds |
//! |---|---|---|
//! | `null` | `POST /webhooks/null` | HTTP: accept, read the body, answer |
//! | `hmac` | `--json null --store null` | the signature headers and the HMAC |
//! | `parse` | `--store null` | the validating parse of the whole body |
//! | `process` | `--store memory` | de-duplication, the queue, the worker, the session table |
//! | `store:X` | `--store X` | the store, and the broker's own CPU beside it |
//!
//! The layers that keep nothing (`null`, `hmac`, `parse`) are sent a pool of 1,000 deliveries
//! signed before the run, so that the generator is not the limit; from `process` up every
//! delivery is fresh. The figure is receiver CPU per request (user + system over the run, from
//! `/proc`, divided by the requests answered), so a layer's cost is its difference to the one
//! below, and the
//! ratio of the verified path (`process`) to the `null` layer is the "× own null" the published
//! tables show as a throughput ratio. The floor is what the same path would cost at the core's
//! micro-benchmark speed: the `null` layer, plus HMAC and parse of one of the generator's Approved
//! deliveries (its body and headers) timed in this process on the receiver's core
//! (`Verifier::verify`, null JSON backend against the real one), plus 1 µs of bookkeeping.
//!
//! With `--callgrind`, each layer's receiver is also run once under Callgrind ([`callgrind`]):
//! instructions per request, which do not move with the machine's noise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::harness::{CpuSet, SECRET};
use crate::matrix::{StoreKind, Variant};
use crate::results::Spread;

pub mod callgrind;

/// The results format's name and version.
pub const COST_SCHEMA: &str = "webhook-bench-cost/1";

/// Bookkeeping the floor allows for beyond HMAC and parse: routing, the reply, metrics.
pub const BOOKKEEPING_US: f64 = 1.0;

/// The in-memory variants measured by default: the default matrix's, the naive peer aside (it
/// has no layers to take apart).
pub const DEFAULT_VARIANTS: &str =
    "may:ring:serde,hyper:ring:serde,hyper:aws-lc:serde,axum:ring:serde,actix:ring:serde";

/// What to run.
#[derive(Clone, Debug)]
pub struct CostPlan {
    pub bin_dir: PathBuf,
    /// In-memory variants (`server:hmac:json`), each taken apart layer by layer.
    pub variants: Vec<Variant>,
    /// Stores measured on `variants[0]` on top of its layers.
    pub stores: Vec<StoreKind>,
    /// Only these layers (`null`, `hmac`, `parse`, `process`, `store:X`), for an A/B of one of
    /// them; empty: all. An increment is then over the layer below that ran.
    pub only: Vec<String>,
    pub receiver_cpus: CpuSet,
    pub generator_cpus: CpuSet,
    pub http: String,
    pub duration: Duration,
    pub warmup: Duration,
    pub repeat: usize,
    pub scenario: PathBuf,
    pub command: String,
    pub quiet: bool,
    /// Also count instructions per request under Callgrind, over this many requests per layer.
    pub callgrind: Option<usize>,
}

/// One layer of one variant over the rounds.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Layer {
    /// `null`, `hmac`, `parse`, `process` or `store:<kind>`.
    pub layer: String,
    /// The receiver it ran (`server:hmac:json:store`, and the path for `null`).
    pub receiver: String,
    /// Receiver CPU µs per request, one per round.
    pub us_per_request: Vec<f64>,
    /// The broker's CPU µs per request beside it (brokered stores only), one per round.
    pub broker_us_per_request: Vec<f64>,
    /// Requests per second, one per round.
    pub rps: Vec<f64>,
    pub us: Option<Spread>,
    pub broker_us: Option<Spread>,
    pub rps_spread: Option<Spread>,
    /// Median µs over the layer below it (for a store: over `process`).
    pub adds_us: Option<f64>,
    /// Rounds in which the generator, not the receiver, was the limit (its CPU per request
    /// is then read below saturation, where batching is thinner).
    pub generator_limited: usize,
    /// Instructions per request under Callgrind (`--callgrind`), one run.
    #[serde(default)]
    pub instructions: Option<f64>,
    /// Instructions over the layer below it (for a store: over `process`).
    #[serde(default)]
    pub adds_instructions: Option<f64>,
    /// Why a round failed, if one did.
    pub errors: Vec<String>,
}

/// One variant's breakdown.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Breakdown {
    pub variant: String,
    pub layers: Vec<Layer>,
    /// HMAC of the body alone, µs (the core, timed in process).
    pub micro_hmac_us: f64,
    /// The validating parse of the body alone, µs (the core, timed in process).
    pub micro_parse_us: f64,
    /// `null` + HMAC + parse + bookkeeping, µs.
    pub floor_us: Option<f64>,
    /// The verified in-memory path (`process`) over `null`.
    pub verified_to_null: Option<f64>,
    /// The floor over `null`.
    pub floor_to_null: Option<f64>,
}

/// What `cost --json` writes.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CostResult {
    pub schema: String,
    pub command: String,
    pub started: String,
    pub git_commit: String,
    pub cpu_model: String,
    pub receiver_cpus: String,
    pub generator_cpus: String,
    pub duration_secs: f64,
    pub repeat: usize,
    pub body_bytes: usize,
    /// Requests counted per layer under Callgrind, if instructions were counted.
    #[serde(default)]
    pub callgrind_requests: Option<usize>,
    pub breakdowns: Vec<Breakdown>,
}

/// One layer's receiver: the layer's name, the variant that runs it, the path it is sent to.
type LayerRun = (String, Variant, &'static str);

/// The receivers of one variant's layers, bottom up.
fn layers_of(v: &Variant, stores: &[StoreKind]) -> Vec<LayerRun> {
    let with = |json: &str, store: StoreKind| Variant {
        name: format!("{}:{}:{json}:{}", v.server, v.hmac, store.token()),
        json: json.into(),
        store,
        ..v.clone()
    };
    let mut l = vec![
        (
            "null".into(),
            with(&v.json, StoreKind::Null),
            "/webhooks/null",
        ),
        (
            "hmac".into(),
            with("null", StoreKind::Null),
            "/webhooks/didit",
        ),
        (
            "parse".into(),
            with(&v.json, StoreKind::Null),
            "/webhooks/didit",
        ),
        (
            "process".into(),
            with(&v.json, StoreKind::Memory),
            "/webhooks/didit",
        ),
    ];
    for s in stores {
        l.push((
            format!("store:{}", s.token()),
            with(&v.json, *s),
            "/webhooks/didit",
        ));
    }
    l
}

/// Runs the plan: the micro floor first (nothing else running), then the rounds.
pub fn run(plan: &CostPlan) -> anyhow::Result<CostResult> {
    if plan.variants.is_empty() {
        bail!("--variants names no variant");
    }
    let started = crate::harness::now_utc();
    // The traffic model, loaded once for the floor's delivery and the Callgrind runs' traffic.
    let traffic = didit_loadgen::Scenario::load(&plan.scenario)
        .with_context(|| format!("loading {}", plan.scenario.display()))?;
    let templates =
        std::sync::Arc::new(didit_loadgen::Templates::load().context("the payload templates")?);
    let (body, micro) = micro_floor(plan, &traffic, &templates)?;
    let harness = crate::harness::Harness::pinned(
        plan.bin_dir.clone(),
        &plan.receiver_cpus,
        &plan.generator_cpus,
    );
    let generator = crate::harness::Generator {
        bin_dir: plan.bin_dir.clone(),
        cpus: plan.generator_cpus.clone(),
        http: plan.http.clone(),
    };
    let mut breakdowns: Vec<(Breakdown, Vec<LayerRun>)> = plan
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let stores = if i == 0 { &plan.stores[..] } else { &[] };
            let mut layers = layers_of(v, stores);
            if !plan.only.is_empty() {
                layers.retain(|(name, _, _)| plan.only.contains(name));
            }
            let (hmac, parse) = micro[i];
            let b = Breakdown {
                variant: v.name.clone(),
                layers: layers
                    .iter()
                    .map(|(name, lv, path)| Layer {
                        layer: name.clone(),
                        receiver: if *path == "/webhooks/null" {
                            format!("{} {path}", lv.name)
                        } else {
                            lv.name.clone()
                        },
                        us_per_request: Vec::new(),
                        broker_us_per_request: Vec::new(),
                        rps: Vec::new(),
                        us: None,
                        broker_us: None,
                        rps_spread: None,
                        adds_us: None,
                        generator_limited: 0,
                        instructions: None,
                        adds_instructions: None,
                        errors: Vec::new(),
                    })
                    .collect(),
                micro_hmac_us: hmac,
                micro_parse_us: parse,
                floor_us: None,
                verified_to_null: None,
                floor_to_null: None,
            };
            (b, layers)
        })
        .collect();
    let total: usize = breakdowns.iter().map(|(_, l)| l.len()).sum::<usize>() * plan.repeat;
    let mut done = 0;
    let scenario = plan.scenario.to_string_lossy().into_owned();
    for round in 1..=plan.repeat {
        for (b, layers) in &mut breakdowns {
            for (i, (name, v, path)) in layers.iter().enumerate() {
                done += 1;
                if !plan.quiet {
                    eprintln!(
                        "webhook-bench cost: [{done}/{total}] round {round}/{}: {} {name}",
                        plan.repeat, b.variant
                    );
                }
                let layer = &mut b.layers[i];
                let rx = match harness.start(v) {
                    Ok(rx) => rx,
                    Err(e) => {
                        layer.errors.push(format!("round {round}: {e}"));
                        continue;
                    }
                };
                let broker_before = broker_cpu(&rx);
                let mut args = vec![
                    "--scenario".to_owned(),
                    scenario.clone(),
                    "--duration".into(),
                    format!("{}ms", plan.duration.as_millis()),
                    "--warmup".into(),
                    format!("{}ms", plan.warmup.as_millis()),
                    "--path".into(),
                    (*path).into(),
                ];
                // Layers that keep nothing take a pool signed before the run, as the runner's
                // calibration does: signing each request makes the generator the limit before
                // the receiver (may's null endpoint: ~80k fresh against ~130k pooled). From
                // `process` up every delivery must be fresh, or it is a duplicate.
                if v.store == StoreKind::Null {
                    args.extend(["--pool".into(), "1000".into()]);
                }
                let report = generator.run(&rx, &args, plan.generator_cpus.len(), "cost");
                let broker_after = broker_cpu(&rx);
                rx.stop();
                match report {
                    Ok(r) if r.requests.mismatches > 0 => layer.errors.push(format!(
                        "round {round}: {} wrong answers ({})",
                        r.requests.mismatches,
                        crate::harness::first_mismatch(&r)
                    )),
                    Ok(r) => {
                        layer.generator_limited += usize::from(r.generator_limited);
                        let n = r.requests.total.max(1) as f64;
                        match r.receiver.as_ref() {
                            Some(c) => layer.us_per_request.push(c.cpu_seconds * 1e6 / n),
                            None => layer
                                .errors
                                .push(format!("round {round}: no receiver CPU in the report")),
                        }
                        if let (Some(a), Some(b)) = (broker_before, broker_after) {
                            layer.broker_us_per_request.push((b - a) * 1e6 / n);
                        }
                        layer.rps.push(r.load.achieved_rate);
                    }
                    Err(e) => layer.errors.push(format!("round {round}: {e}")),
                }
            }
        }
    }
    if let Some(requests) = plan.callgrind {
        let counter = callgrind::Counter::new(&harness, traffic, templates, requests)
            .map_err(anyhow::Error::msg)?;
        count_instructions(plan, &counter, &mut breakdowns);
    }
    let breakdowns = breakdowns
        .into_iter()
        .map(|(mut b, _)| {
            summarise(&mut b);
            b
        })
        .collect();
    Ok(CostResult {
        schema: COST_SCHEMA.into(),
        command: plan.command.clone(),
        started,
        git_commit: crate::harness::Provenance::of(&plan.bin_dir).commit,
        cpu_model: crate::harness::cpu_model(),
        receiver_cpus: plan.receiver_cpus.to_string(),
        generator_cpus: plan.generator_cpus.to_string(),
        duration_secs: plan.duration.as_secs_f64(),
        repeat: plan.repeat,
        body_bytes: body,
        callgrind_requests: plan.callgrind,
        breakdowns,
    })
}

/// Every layer once more, under Callgrind, after the timed rounds (valgrind's slowdown is no
/// one's business there). A layer that cannot be counted says why in its errors.
fn count_instructions(
    plan: &CostPlan,
    counter: &callgrind::Counter,
    breakdowns: &mut [(Breakdown, Vec<LayerRun>)],
) {
    let requests = counter.requests();
    let total: usize = breakdowns.iter().map(|(_, l)| l.len()).sum();
    let mut done = 0;
    for (b, layers) in breakdowns {
        for (i, (name, v, path)) in layers.iter().enumerate() {
            done += 1;
            if !plan.quiet {
                eprintln!(
                    "webhook-bench cost: [{done}/{total}] callgrind, {requests} requests: {} {name}",
                    b.variant
                );
            }
            match counter.count(v, path) {
                Ok(ir) => b.layers[i].instructions = Some(ir),
                Err(e) => b.layers[i].errors.push(format!("callgrind: {e}")),
            }
        }
    }
}

/// CPU seconds of the broker beside a receiver, if it has one.
fn broker_cpu(rx: &crate::harness::Receiver) -> Option<f64> {
    let pids = rx.broker_pids();
    if pids.is_empty() {
        return None;
    }
    pids.into_iter()
        .map(|p| didit_loadgen::cpu::cpu_seconds(Some(p)))
        .sum()
}

/// Spreads, each layer's increment over the one below, the floor and the ratios.
fn summarise(b: &mut Breakdown) {
    for l in &mut b.layers {
        l.us = Spread::of(&l.us_per_request);
        l.broker_us = Spread::of(&l.broker_us_per_request);
        l.rps_spread = Spread::of(&l.rps);
    }
    let median = |l: &Layer| l.us.map(|s| s.median);
    let at = |name: &str| b.layers.iter().position(|l| l.layer == name);
    let (null, process) = (at("null"), at("process"));
    // Each layer's increment is over the layer it stands on: a store's over `process`, the
    // others' over the layer before them.
    let mut below = None;
    for i in 0..b.layers.len() {
        let store = b.layers[i].layer.starts_with("store:");
        let base = if store { process } else { below };
        let (l, base) = (&b.layers[i], base.map(|j| &b.layers[j]));
        let adds_us = median(l).zip(base.and_then(median)).map(|(m, b)| m - b);
        let adds_instructions = l
            .instructions
            .zip(base.and_then(|b| b.instructions))
            .map(|(m, b)| m - b);
        b.layers[i].adds_us = adds_us;
        b.layers[i].adds_instructions = adds_instructions;
        if !store {
            below = Some(i);
        }
    }
    let (null, process) = (
        null.and_then(|i| median(&b.layers[i])),
        process.and_then(|i| median(&b.layers[i])),
    );
    b.floor_us = null.map(|n| n + b.micro_hmac_us + b.micro_parse_us + BOOKKEEPING_US);
    b.verified_to_null = process.zip(null).map(|(p, n)| p / n);
    b.floor_to_null = b.floor_us.zip(null).map(|(f, n)| f / n);
}

/// HMAC and parse of one fresh Approved delivery from the generator the load uses (its body and
/// its headers, as the receiver is sent them), each variant's backends, timed in this process on
/// the receiver's first core: `(body bytes, [(hmac µs, parse µs)])`.
fn micro_floor(
    plan: &CostPlan,
    scenario: &didit_loadgen::Scenario,
    templates: &std::sync::Arc<didit_loadgen::Templates>,
) -> anyhow::Result<(usize, Vec<(f64, f64)>)> {
    use didit_loadgen::{Acked, Class, Generator, PayloadKind};
    let secret = didit_webhook::Secret::new(SECRET).expect("a non-empty secret");
    let ts = 1_780_000_000;
    let d = Generator::new(templates.clone(), scenario, &secret, Acked::shared(), 1).make_kind(
        Class::Valid,
        PayloadKind::Approved,
        ts,
    );
    if let Some(core) = plan.receiver_cpus.cores().first() {
        didit_loadgen::cpu::pin_current_thread(*core);
    }
    let mut out = Vec::new();
    for v in &plan.variants {
        out.push(micro_of(&v.hmac, &v.json, &secret, &d, ts)?);
    }
    Ok((d.body.len(), out))
}

/// (HMAC µs, parse µs) per call for the pair `hmac` × `json` names, through the core's one
/// dispatch from names to types.
fn micro_of(
    hmac: &str,
    json: &str,
    secret: &didit_webhook::Secret,
    d: &didit_loadgen::Delivery,
    ts: i64,
) -> anyhow::Result<(f64, f64)> {
    let mac: didit_webhook::MacKind = hmac.parse()?;
    let json: didit_webhook::JsonKind = json.parse()?;
    didit_webhook::with_backends(mac, json, Micro { secret, d, ts })
}

struct Micro<'a> {
    secret: &'a didit_webhook::Secret,
    d: &'a didit_loadgen::Delivery,
    ts: i64,
}

impl didit_webhook::WithBackends for Micro<'_> {
    type Output = anyhow::Result<(f64, f64)>;

    fn run<M: didit_webhook::Mac, J: didit_webhook::JsonBackend + Default>(
        self,
    ) -> anyhow::Result<(f64, f64)> {
        let hmac = time_verify::<M, didit_webhook::NullJson>(self.secret, self.d, self.ts)?;
        let full = time_verify::<M, J>(self.secret, self.d, self.ts)?;
        Ok((hmac, (full - hmac).max(0.0)))
    }
}

/// Median over 7 rounds of 5,000 `Verifier::verify` calls on the same delivery, µs per call.
fn time_verify<M: didit_webhook::Mac, J: didit_webhook::JsonBackend + Default>(
    secret: &didit_webhook::Secret,
    d: &didit_loadgen::Delivery,
    ts: i64,
) -> anyhow::Result<f64> {
    use didit_webhook::{FixedClock, Scratch, SignatureHeaders, Verifier, VerifyConfig};
    let v = Verifier::with_parts(
        M::new(secret),
        J::default(),
        FixedClock(ts),
        VerifyConfig::default(),
    );
    let h = SignatureHeaders::from_lookup(|name| d.header(name).map(str::as_bytes));
    let mut scratch = Scratch::new();
    v.verify(&h, &d.body, &mut scratch)
        .map_err(|r| anyhow::anyhow!("the micro-benchmark body is refused: {}", r.reason()))?;
    const CALLS: u32 = 5_000;
    let mut rounds = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..CALLS {
            let ok = v.verify(&h, std::hint::black_box(&d.body), &mut scratch);
            std::hint::black_box(ok.is_ok());
        }
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
    }
    Ok(Spread::of(&rounds).map_or(0.0, |s| s.median))
}

/// The breakdown as Markdown: one table per variant, then the floor and the ratios.
pub fn markdown(r: &CostResult) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let f = |x: Option<f64>| x.map_or("–".to_owned(), |v| format!("{v:.1}"));
    let spread = |x: &Option<Spread>| {
        x.map_or("–".to_owned(), |s| {
            format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max)
        })
    };
    let ir = r.callgrind_requests.is_some();
    // Thousands of instructions, signed for an increment.
    let k = |x: Option<f64>, signed: bool| {
        x.map_or("–".to_owned(), |v| {
            if signed {
                format!("{:+.1} k", v / 1e3)
            } else {
                format!("{:.1} k", v / 1e3)
            }
        })
    };
    for b in &r.breakdowns {
        let _ = writeln!(s, "### {}\n", b.variant);
        let _ = writeln!(
            s,
            "| layer | receiver | µs / request (median, min–max) | adds µs | broker µs / request | req/s |{}",
            if ir {
                " instructions / request | adds instructions |"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|{}",
            if ir { "---|---|" } else { "" }
        );
        for l in &b.layers {
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} | {} |{}{}",
                l.layer,
                l.receiver,
                spread(&l.us),
                if l.layer == "null" {
                    "–".into()
                } else {
                    f(l.adds_us)
                },
                l.broker_us
                    .map_or("–".to_owned(), |s| format!("{:.1}", s.median)),
                l.rps_spread
                    .map_or("–".to_owned(), |s| format!("{:.0}", s.median)),
                if ir {
                    format!(
                        " {} | {} |",
                        k(l.instructions, false),
                        if l.layer == "null" {
                            "–".into()
                        } else {
                            k(l.adds_instructions, true)
                        }
                    )
                } else {
                    String::new()
                },
                match (l.generator_limited, l.errors.is_empty()) {
                    (0, true) => String::new(),
                    (g, e) => format!(
                        " {}{}",
                        if g > 0 {
                            format!("generator-limited in {g} round(s). ")
                        } else {
                            String::new()
                        },
                        if e {
                            String::new()
                        } else {
                            l.errors.join("; ")
                        }
                    ),
                }
            );
        }
        let _ = writeln!(
            s,
            "\nFloor: null + HMAC {:.1} µs + parse {:.1} µs (the core on one of the generator's {} B Approved deliveries, in process) + {BOOKKEEPING_US:.0} µs = {} µs, {} × null. Verified in-memory path: {} × null.\n",
            b.micro_hmac_us,
            b.micro_parse_us,
            r.body_bytes,
            f(b.floor_us),
            b.floor_to_null.map_or("–".into(), |x| format!("{x:.2}")),
            b.verified_to_null.map_or("–".into(), |x| format!("{x:.2}")),
        );
    }
    s
}

/// The charts' rows: each variant in memory, and each store on top of its variant.
fn chart_rows(r: &CostResult) -> (Vec<crate::charts::CostRow>, Vec<crate::charts::CostRow>) {
    let (mut rows, mut stores) = (Vec::new(), Vec::new());
    for b in &r.breakdowns {
        let adds = |name: &str| {
            b.layers.iter().find(|l| l.layer == name).and_then(|l| {
                if name == "null" {
                    l.us.map(|s| s.median)
                } else {
                    l.adds_us
                }
            })
        };
        let path: Vec<(String, f64)> = ["null", "hmac", "parse", "process"]
            .iter()
            .filter_map(|l| adds(l).map(|v| ((*l).to_owned(), v)))
            .collect();
        rows.push(crate::charts::CostRow {
            name: format!("{} (memory)", b.variant),
            segments: path.clone(),
            floor: b.floor_us,
        });
        for l in b.layers.iter().filter(|l| l.layer.starts_with("store:")) {
            let mut segments = path.clone();
            if let Some(a) = l.adds_us {
                segments.push(("store".into(), a));
            }
            if let Some(br) = l.broker_us {
                segments.push(("broker".into(), br.median));
            }
            stores.push(crate::charts::CostRow {
                name: format!("{} + {}", b.variant, &l.layer["store:".len()..]),
                segments,
                floor: None,
            });
        }
    }
    (rows, stores)
}

/// Reads a `cost.json` back (to redraw its folder with `cost --from`).
pub fn load(path: &std::path::Path) -> anyhow::Result<CostResult> {
    let r: CostResult = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a cost.json", path.display()))?;
    if r.schema != COST_SCHEMA {
        bail!(
            "{}: schema {}, this build reads {COST_SCHEMA}",
            path.display(),
            r.schema
        );
    }
    Ok(r)
}

/// What a person wrote into a run's README below the generated part: everything from its first
/// `## ` heading on (the generated part has none), kept when the README is written again.
pub fn kept_notes(readme: &str) -> Option<&str> {
    let at = if readme.starts_with("## ") {
        0
    } else {
        readme.find("\n## ")? + 1
    };
    Some(&readme[at..])
}

/// Writes `cost.json`, the chart and a README into `dir`, keeping the README's notes
/// ([`kept_notes`]).
pub fn write(r: &CostResult, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("cost.json"), serde_json::to_vec_pretty(r)?)?;
    let chart = "where-the-time-goes.svg";
    let durable = "what-durability-costs.svg";
    let (rows, stores) = chart_rows(r);
    crate::charts::cost(
        &dir.join(chart),
        "Where the time goes: receiver CPU per request, by layer",
        &rows,
    )
    .map_err(|e| anyhow::anyhow!("chart {chart}: {e}"))?;
    let durable_chart = if stores.is_empty() {
        String::new()
    } else {
        crate::charts::cost(
            &dir.join(durable),
            "What durability costs: CPU per request, with the store and its broker",
            &stores,
        )
        .map_err(|e| anyhow::anyhow!("chart {durable}: {e}"))?;
        format!("![what durability costs]({durable})\n\n")
    };
    let readme = format!(
        "# Where the time goes\n\n\
         Command: `{cmd}` (commit {commit}, {started}, {cpu}; receiver on core {rc}, generator on {gc}; \
         {rounds} interleaved rounds of {d} s per layer).\n\n\
         Each variant is measured as a stack of receivers that differ by one layer, on fresh Approved deliveries of about {body} B \
         at saturation (a pool of 1,000 signed before the run for the layers that \
         keep nothing, fresh ones from `memory` up): the null endpoint (HTTP only), `--json null --store null` \
         (+ the signature headers and HMAC), `--store null` (+ the validating parse), `--store memory` \
         (+ de-duplication, the queue, the worker and the session table), then each store. A layer's \
         cost is its receiver CPU per request minus the layer's below it; a store's is over `memory`, \
         and a broker's own CPU is shown beside it. The floor (black tick) is the null layer plus HMAC \
         and parse of one of the generator's Approved deliveries timed in process with the core's `Verifier`, plus \
         {bk:.0} µs of bookkeeping. CPU per request comes from `/proc` over the whole run, divided by \
         the requests answered; the ratio of two layers of one variant, measured in the same rounds, \
         is what to compare across machines, not the microseconds.{callgrind}\n\n\
         ![where the time goes]({chart})\n\n{durable_chart}{table}",
        callgrind = r.callgrind_requests.map_or(String::new(), |n| format!(
            "\n\nInstructions per request: each layer's receiver once more under Callgrind \
             (`valgrind --tool=callgrind`), sent {w} fresh deliveries one at a time on one \
             connection, then its counters zeroed (`callgrind_control -z`) and dumped after {n} \
             more. They do not move with the machine's noise, so they settle what the CPU times \
             leave open; but they count what valgrind's virtual CPU runs (ring and the parsers \
             choose their code by the CPU features it reports), one request per wake-up, and \
             nothing of the kernel or of cache misses.",
            w = callgrind::WARMUP_REQUESTS
        )),
        cmd = r.command,
        commit = r.git_commit.get(..12).unwrap_or(&r.git_commit),
        started = r.started,
        cpu = r.cpu_model,
        rc = r.receiver_cpus,
        gc = r.generator_cpus,
        rounds = r.repeat,
        d = r.duration_secs,
        body = r.body_bytes,
        bk = BOOKKEEPING_US,
        table = markdown(r),
    );
    let path = dir.join("README.md");
    let notes = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| kept_notes(&old).map(str::to_owned));
    let readme = match notes {
        Some(n) => format!("{readme}\n{n}"),
        None => readme,
    };
    std::fs::write(&path, readme)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::kept_notes;

    #[test]
    fn keeps_what_follows_the_generated_part() {
        let readme = "# Where the time goes\n\n### may\n\n| a |\n\n## What this run says\n\n- x\n";
        assert_eq!(kept_notes(readme), Some("## What this run says\n\n- x\n"));
        assert_eq!(kept_notes("# Where the time goes\n\n### may\n"), None);
        assert_eq!(kept_notes("## Notes\n"), Some("## Notes\n"));
    }
}

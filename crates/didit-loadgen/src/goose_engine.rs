//! The goose engine: the same traffic model driven by goose (0.19) users, with goose's own
//! reports (`--report-file x.html|json|md`), baselines and thresholds passed through.
//!
//! goose weights *scenarios* per user, not per request, so a class with a 0.5 % share could get
//! no user at all. Each traffic class is therefore a weighted *transaction* of one scenario, with
//! its requests named after the class: goose's reports break the run down by class, and the mix
//! holds per request. goose is closed-loop: latency is goose's own time to first byte, taken after
//! its throttle released the request (so corrected = uncorrected), and every answer is checked
//! against its label.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use goose::config::GooseConfiguration;
use goose::prelude::*;
use hyper::http::HeaderMap;

use crate::generator::Generator;
use crate::labels::{Class, Expect, Judge, Verdict, check_with};
use crate::open_loop::{EngineConfig, EngineError, EngineOutput};
use crate::progress::{Live, Progress};
use crate::report::Stats;
use crate::scenario::LoadShape;

/// goose's own command line, parsed from what follows `--` on ours.
#[derive(Parser)]
#[command(name = "goose", no_binary_name = true)]
struct GooseArgs {
    #[command(flatten)]
    config: GooseConfiguration,
}

/// Parses goose options (e.g. `--report-file run.html --baseline-file base.json`).
pub fn parse_goose_args(args: &[String]) -> Result<GooseConfiguration, EngineError> {
    GooseArgs::try_parse_from(args)
        .map(|a| a.config)
        .map_err(|e| EngineError::Goose(format!("invalid goose options after `--`: {e}")))
}

struct Shared {
    judge: Judge,
    generator: Mutex<Generator>,
    stats: Mutex<Stats>,
    acked_log: Mutex<Option<BufWriter<File>>>,
    live: Arc<Live>,
    path: String,
    measure_start: Instant,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs the scenario with goose. `goose_args` are goose's own options.
pub fn run(
    cfg: EngineConfig<'_>,
    generator: Generator,
    live: Arc<Live>,
    goose_args: &[String],
) -> Result<EngineOutput, EngineError> {
    let s = cfg.scenario;
    let mut config = parse_goose_args(goose_args)?;
    let total = s.warmup + s.duration;
    config.host = Some(cfg.target.url.clone());
    // goose's reqwest speaks https with rustls and the system's roots; --insecure is its
    // --accept-invalid-certs.
    config.accept_invalid_certs |= cfg.target.insecure();
    config.users = Some(s.connections);
    // All users within the first tenth of the warm-up (or at once).
    config.increase_rate = Some(format!(
        "{}",
        (s.connections as f64 / (s.warmup.as_secs_f64() / 10.0).max(0.01)).ceil()
    ));
    config.run_time = Some(format!("{}", total.as_secs().max(1)));
    // The mean rate for constant, ramp and burst shapes: goose's throttle is a fixed rate.
    config.throttle_requests = match s.load {
        LoadShape::Max => None,
        shape => shape.mean_rate().map(|r| r.ceil().max(1.0) as usize),
    };
    // No control ports: a load test must not open listeners the user did not ask for.
    config.no_telnet = true;
    config.no_print_metrics = true;
    if config.quiet == 0 {
        config.quiet = 1;
    }
    let goose_reports = config.report_file.clone();

    let start = Instant::now();
    let shared = Arc::new(Shared {
        judge: cfg.judge,
        generator: Mutex::new(generator),
        stats: Mutex::new(Stats::default()),
        acked_log: Mutex::new(cfg.acked_log.map(BufWriter::new)),
        live: live.clone(),
        path: cfg.target.path_uri.to_string(),
        measure_start: start + s.warmup,
    });
    let mut scenario = scenario!("didit-v3");
    for class in Class::ALL {
        let share = if class == Class::Valid {
            1.0 - s.bad.total().min(1.0)
        } else {
            s.bad.get(class)
        };
        // Weights in tenths of a per mille: shares down to 0.01 % keep their proportion.
        let weight = (share * 10_000.0).round() as usize;
        if weight == 0 {
            continue;
        }
        let sh = shared.clone();
        let f: TransactionFunction = Arc::new(move |user| {
            let sh = sh.clone();
            Box::pin(async move { exchange(&sh, user, class).await })
        });
        let t = Transaction::new(f)
            .set_name(class.key())
            .set_weight(weight)
            .map_err(|e| EngineError::Goose(e.to_string()))?;
        scenario = scenario.register_transaction(t);
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(EngineError::Runtime)?;
    let progress_live = live;
    let quiet = cfg.quiet;
    let name = s.name.clone();
    let result = rt.block_on(async move {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = done.clone();
        let ticker = tokio::spawn(async move {
            let mut p = Progress::new(&format!("{name} (goose)"), total, progress_live, quiet);
            while !d2.load(Relaxed) {
                p.tick();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            p.finish();
        });
        let attack = GooseAttack::initialize_with_config(config)
            .map_err(|e| EngineError::Goose(e.to_string()))?
            .register_scenario(scenario)
            .execute()
            .await
            .map_err(|e| EngineError::Goose(e.to_string()));
        done.store(true, Relaxed);
        let _ = ticker.await;
        attack
    });
    result?;
    let measured = Instant::now()
        .saturating_duration_since(shared.measure_start)
        .min(s.duration)
        .max(Duration::from_millis(1));
    if let Some(mut w) = shared.acked_log.lock().ok().and_then(|mut l| l.take()) {
        w.flush().map_err(EngineError::AckedLog)?;
    }
    let stats = shared
        .stats
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    Ok(EngineOutput {
        stats,
        measured,
        goose_reports,
    })
}

async fn exchange(sh: &Shared, user: &mut GooseUser, class: Class) -> TransactionResult {
    let delivery = match sh.generator.lock() {
        Ok(mut g) => g.make(class, unix_now()),
        Err(_) => return Ok(()),
    };
    let mut headers = HeaderMap::with_capacity(delivery.headers.len());
    for (n, v) in &delivery.headers {
        headers.insert(n.clone(), v.clone());
    }
    let rb = user
        .get_request_builder(&GooseMethod::Post, &sh.path)?
        .headers(headers)
        .body(delivery.body.clone());
    let req = GooseRequest::builder()
        .name(delivery.label.class.key())
        .set_request_builder(rb)
        .expect_status_code(delivery.label.expect.status())
        .build();
    let t0 = Instant::now();
    let mut goose = user.request(req).await?;
    let measured = t0 >= sh.measure_start;
    match goose.response {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            // goose's own time to first byte, taken after its throttle let the request go.
            let took = Duration::from_micros(goose.request.response_time_micros());
            let verdict = check_with(sh.judge, delivery.label.expect, status, &body);
            if let Ok(mut st) = sh.stats.lock() {
                let lat = measured.then_some((took, took));
                st.answer(&delivery.label, status, &body, verdict, lat);
            }
            sh.live.answered.fetch_add(1, Relaxed);
            if status == 200 {
                if let (Ok(mut log), Some(id)) = (sh.acked_log.lock(), delivery.event_id())
                    && let Some(w) = log.as_mut()
                {
                    let _ = writeln!(w, "{id}");
                }
                if verdict == Verdict::Correct
                    && delivery.label.expect == Expect::Accepted
                    && let Ok(g) = sh.generator.lock()
                {
                    g.remember(&delivery);
                }
            }
            if verdict == Verdict::Mismatch {
                sh.live.mismatches.fetch_add(1, Relaxed);
                let text = String::from_utf8_lossy(&body).into_owned();
                return user.set_failure(
                    &format!(
                        "label mismatch: expected {} {}, got {status}",
                        delivery.label.expect.status(),
                        delivery.label.expect.word()
                    ),
                    &mut goose.request,
                    None,
                    Some(&text),
                );
            }
        }
        Err(e) => {
            if let Ok(mut st) = sh.stats.lock() {
                st.transport_error(&delivery.label, &e.to_string());
            }
            if delivery.label.class != Class::Oversize {
                sh.live.errors.fetch_add(1, Relaxed);
            }
        }
    }
    Ok(())
}

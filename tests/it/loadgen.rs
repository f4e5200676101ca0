//! The load generator against real receivers: every traffic class gets its labelled answer from
//! every server; both engines run the smoke scenario; bad scenarios and dead targets fail before
//! any load is sent; a wrong answer makes the run fail. All load is on loopback, to receivers
//! these tests start, for a few seconds.

use crate::support;

use std::path::PathBuf;
use std::process::Output;

use support::{Receiver, SECRET, send};
use webhook_bench::harness::command;

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loadgen-tests");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(format!("{}-{name}", std::process::id()))
}

fn scenario(name: &str) -> String {
    format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

fn loadgen(args: &[&str], secret: &str) -> Output {
    command(crate::support::bin("didit-loadgen"))
        .args(args)
        .env("DIDIT_WEBHOOK_SECRET", secret)
        .output()
        .expect("didit-loadgen runs")
}

fn report(path: &PathBuf) -> serde_json::Value {
    let text = std::fs::read(path).expect("the report was written");
    serde_json::from_slice(&text).expect("the report is JSON")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The smoke scenario (every payload kind, every bad class) against one server, with the open-loop
/// engine's `http` client.
fn every_class_against(server: &str, http: &str) {
    let rx = Receiver::start(server, "ring", "serde", &["--max-body", "1MiB"]);
    let target = format!("http://{}", rx.addr);
    let rep = tmp(&format!("{server}.json"));
    let acked = tmp(&format!("{server}-acked.txt"));
    let out = loadgen(
        &[
            "--scenario",
            &scenario("smoke"),
            "--target",
            &target,
            "--duration",
            "2s",
            "--warmup",
            "1s",
            "--rate",
            "150",
            "--quiet",
            "--report",
            rep.to_str().expect("utf-8 path"),
            "--acked-log",
            acked.to_str().expect("utf-8 path"),
            "--http",
            http,
        ],
        SECRET,
    );
    rx.stop();
    assert!(out.status.success(), "{server}: {}", text(&out));
    let r = report(&rep);
    assert_eq!(r["schema"], didit_loadgen::report::REPORT_SCHEMA);
    assert_eq!(r["http_client"], http);
    assert_eq!(r["requests"]["mismatches"], 0, "{server}: {}", text(&out));
    assert_eq!(
        r["requests"]["transport_errors"],
        0,
        "{server}: {}",
        text(&out)
    );
    let lines = r["by_label"].as_array().expect("by_label");
    let mut classes = std::collections::BTreeSet::new();
    let mut ok_200 = 0;
    for l in lines {
        assert_eq!(l["correct"], l["count"], "{server}: {l}");
        classes.insert(l["class"].as_str().expect("class").to_owned());
        ok_200 += l["statuses"]["200"].as_u64().unwrap_or(0);
    }
    // 450 requests at these shares: every class appears (the rarest, oversize, is 1 %).
    for class in [
        "valid",
        "bad_signature",
        "stale",
        "future",
        "timestamp_mismatch",
        "replay",
        "reformatted",
        "simple_only",
        "malformed_json",
        "retry",
    ] {
        assert!(
            classes.contains(class),
            "{server}: no {class} in {classes:?}"
        );
    }
    let log = std::fs::read_to_string(&acked).expect("acked log");
    assert_eq!(log.lines().count() as u64, ok_200, "one acked line per 200");
    assert!(log.lines().all(|l| l.len() == 36), "event ids are UUIDs");
}

#[test]
fn every_class_gets_its_label_from_hyper() {
    every_class_against("hyper", "hyper");
}

// Both HTTP clients of the open-loop engine meet every server type between them.
#[test]
fn every_class_gets_its_label_from_may() {
    every_class_against("may", "raw");
}

#[test]
fn every_class_gets_its_label_from_axum() {
    every_class_against("axum", "hyper");
}

#[test]
fn every_class_gets_its_label_from_actix() {
    every_class_against("actix", "raw");
}

#[test]
fn every_class_gets_its_label_from_axum_naive() {
    every_class_against("axum-naive", "raw");
}

/// `--pool` with the raw client writes each pooled request from bytes built before the run: the
/// receiver must take every one of them, again and again, as a well-formed request.
#[test]
fn raw_client_cycles_its_prebuilt_pool() {
    let rx = Receiver::start("may", "ring", "serde", &["--enable-null-endpoint"]);
    let target = format!("http://{}", rx.addr);
    let rep = tmp("raw-pool.json");
    let out = loadgen(
        &[
            "--scenario",
            &scenario("max-throughput"),
            "--target",
            &target,
            "--path",
            "/webhooks/null",
            "--max",
            "--connections",
            "4",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--pool",
            "20",
            "--http",
            "raw",
            "--quiet",
            "--report",
            rep.to_str().expect("utf-8 path"),
        ],
        SECRET,
    );
    rx.stop();
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&rep);
    assert_eq!(r["http_client"], "raw");
    assert_eq!(r["pool"], 20);
    let requests = &r["requests"];
    assert!(
        requests["total"].as_u64().expect("total") > 40,
        "the pool was not cycled: {requests}"
    );
    assert_eq!(requests["correct"], requests["total"], "{}", text(&out));
    assert_eq!(requests["transport_errors"], 0, "{}", text(&out));
    assert_eq!(requests["reconnects"], 0, "{}", text(&out));
}

/// On a real endpoint a pool delivers fresh, validly signed events, each once; a pool smaller
/// than the run repeats them, the receiver rightly answers `duplicate`, and the run fails saying
/// how large the pool must be.
#[test]
fn a_pool_on_the_real_endpoint_sends_each_delivery_once_or_fails() {
    let rx = Receiver::start("hyper", "ring", "serde", &[]);
    let target = format!("http://{}", rx.addr);
    let run = |pool: &str, name: &str| {
        let rep = tmp(name);
        let out = loadgen(
            &[
                "--scenario",
                &scenario("max-throughput"),
                "--target",
                &target,
                "--rate",
                "200",
                "--duration",
                "1s",
                "--warmup",
                "0s",
                "--pool",
                pool,
                "--http",
                "raw",
                "--quiet",
                "--report",
                rep.to_str().expect("utf-8 path"),
            ],
            SECRET,
        );
        (out, rep)
    };
    let (out, rep) = run("1000", "pool-fresh.json");
    assert!(out.status.success(), "{}", text(&out));
    let requests = report(&rep)["requests"].clone();
    assert!(
        requests["total"].as_u64().expect("total") >= 100,
        "{requests}"
    );
    assert_eq!(requests["correct"], requests["total"], "{}", text(&out));

    let (out, _) = run("20", "pool-wraps.json");
    rx.stop();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pool of 20 deliveries ran out"),
        "{}",
        text(&out)
    );
}

#[test]
fn goose_engine_runs_the_smoke_scenario_and_writes_its_reports() {
    let rx = Receiver::start("hyper", "ring", "serde", &["--max-body", "1MiB"]);
    let target = format!("http://{}", rx.addr);
    let rep = tmp("goose.json");
    let html = tmp("goose.html");
    let out = loadgen(
        &[
            "--scenario",
            &scenario("smoke"),
            "--target",
            &target,
            "--engine",
            "goose",
            "--duration",
            "2s",
            "--warmup",
            "1s",
            "--quiet",
            "--report",
            rep.to_str().expect("utf-8 path"),
            "--",
            "--report-file",
            html.to_str().expect("utf-8 path"),
        ],
        SECRET,
    );
    rx.stop();
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&rep);
    assert_eq!(r["engine"], "goose");
    assert_eq!(r["requests"]["mismatches"], 0, "{}", text(&out));
    assert!(r["requests"]["measured"].as_u64().unwrap_or(0) > 50, "{r}");
    let page = std::fs::read_to_string(&html).expect("goose wrote its HTML report");
    assert!(page.contains("valid"), "goose's report names the classes");
}

#[test]
fn wrong_answers_fail_the_run() {
    // The receiver has another secret: valid deliveries get 401, which the labels call wrong.
    let rx = Receiver::start("hyper", "ring", "serde", &[]);
    let target = format!("http://{}", rx.addr);
    let rep = tmp("wrong.json");
    let out = loadgen(
        &[
            "--scenario",
            &scenario("smoke"),
            "--target",
            &target,
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--rate",
            "50",
            "--quiet",
            "--report",
            rep.to_str().expect("utf-8 path"),
        ],
        "not-the-receivers-secret",
    );
    rx.stop();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = report(&rep);
    assert!(
        r["requests"]["mismatches"].as_u64().unwrap_or(0) > 10,
        "{r}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("mismatch: valid"),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_scenarios_and_dead_targets_fail_before_any_load() {
    let rx = Receiver::start("hyper", "ring", "serde", &[]);
    let target = format!("http://{}", rx.addr);
    let base = std::fs::read_to_string(scenario("smoke")).expect("smoke scenario");
    let cases = [
        ("unknown key", format!("colour = \"red\"\n{base}"), "colour"),
        (
            "negative rate",
            base.replace("rate = 200", "rate = -3"),
            "load.rate",
        ),
        (
            "zero weights",
            base.replace("approved = 4", "approved = 0")
                .lines()
                .map(|l| {
                    // Zero every payload weight.
                    match l.split_once(" = ") {
                        Some((k, _))
                            if [
                                "not_started",
                                "in_progress",
                                "declined",
                                "in_review",
                                "abandoned",
                                "resubmitted",
                                "data_updated",
                                "user_event",
                                "business_event",
                                "transaction_event",
                                "full_sample",
                                "aml_heavy",
                            ]
                            .contains(&k) =>
                        {
                            format!("{k} = 0")
                        }
                        _ => l.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            "sum to zero",
        ),
    ];
    for (what, body, needle) in cases {
        let file = tmp(&format!("{}.toml", what.replace(' ', "-")));
        std::fs::write(&file, body).expect("write scenario");
        let out = loadgen(
            &[
                "--scenario",
                file.to_str().expect("utf-8"),
                "--target",
                &target,
            ],
            SECRET,
        );
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{what}: {err}");
    }
    // Nothing reached the webhook endpoint.
    let m = send(rx.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("metrics");
    let metrics = String::from_utf8_lossy(&m.body);
    let webhooks: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("didit_webhooks_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(webhooks.is_empty(), "load was sent: {webhooks:?}");
    rx.stop();

    // A target nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let out = loadgen(
        &[
            "--scenario",
            &scenario("smoke"),
            "--target",
            &format!("http://127.0.0.1:{port}"),
        ],
        SECRET,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not answer"),
        "{}",
        text(&out)
    );
    // No secret: a clear error.
    let out = command(crate::support::bin("didit-loadgen"))
        .args([
            "--scenario",
            &scenario("smoke"),
            "--target",
            "http://127.0.0.1:1",
        ])
        .env_remove("DIDIT_WEBHOOK_SECRET")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DIDIT_WEBHOOK_SECRET"));
}

#[test]
fn every_shipped_scenario_parses() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            didit_loadgen::Scenario::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 6, "the six named scenarios ship");
}

/// The receiver's count of one outcome, from its `/metrics`.
fn outcome_count(rx: &Receiver, outcome: &str) -> u64 {
    let m = send(rx.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("metrics");
    let needle = format!("didit_webhooks_total{{outcome=\"{outcome}\"}} ");
    String::from_utf8_lossy(&m.body)
        .lines()
        .find_map(|l| l.strip_prefix(&needle).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// The receiver's count of every webhook outcome together.
fn outcome_total(rx: &Receiver) -> u64 {
    let m = send(rx.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("metrics");
    String::from_utf8_lossy(&m.body)
        .lines()
        .filter(|l| l.starts_with("didit_webhooks_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// `--threads 2`: two engines, each on its own core with half the rate and half the connections,
/// against a null endpoint. Every request either thread sent is in the merged report exactly
/// once: the report's total equals what the receiver counted, and the merged histogram holds
/// every measured answer.
#[test]
fn two_generator_threads_send_what_the_receiver_counts() {
    let rx = Receiver::start("hyper", "ring", "serde", &[]);
    let rep = tmp("threads.json");
    let out = loadgen(
        &[
            "--scenario",
            &scenario("max-throughput"),
            "--target",
            &format!("http://{}", rx.addr),
            "--path",
            "/webhooks/null",
            "--rate",
            "400",
            "--connections",
            "4",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--threads",
            "2",
            "--quiet",
            "--report",
            rep.to_str().expect("utf-8 path"),
        ],
        SECRET,
    );
    assert!(out.status.success(), "{}", text(&out));
    let r = didit_loadgen::Report::from_json(&std::fs::read(&rep).expect("report"))
        .expect("a typed report");
    assert_eq!(r.threads, 2);
    assert_eq!(r.requests.mismatches, 0, "{}", text(&out));
    assert_eq!(r.requests.transport_errors, 0, "{}", text(&out));
    assert_eq!(
        r.requests.total,
        outcome_count(&rx, "null"),
        "{}",
        text(&out)
    );
    let [corrected, _, lag] = r.histograms.decode().expect("histograms");
    assert_eq!(corrected.len(), r.requests.measured);
    assert_eq!(corrected.len(), r.latency_us.corrected.count);
    assert!(!lag.is_empty(), "both pacers recorded their lag");
    // Both threads paced: 400 req/s in all over 2 s measured, within the schedule's slack.
    assert!(
        (600..=1000).contains(&r.requests.measured),
        "{} measured",
        r.requests.measured
    );
    rx.stop();
}

/// Two generator processes against one receiver, their reports combined by
/// `webhook-bench merge`: counts add up to what the receiver counted, the histograms add
/// exactly, and reports of different scenarios are refused.
#[test]
fn merged_reports_of_two_generator_processes_count_what_the_receiver_counted() {
    let rx = Receiver::start("hyper", "ring", "serde", &[]);
    let target = format!("http://{}", rx.addr);
    let reports: Vec<PathBuf> = (0..2).map(|i| tmp(&format!("merge-{i}.json"))).collect();
    let children: Vec<std::process::Child> = reports
        .iter()
        .enumerate()
        .map(|(i, rep)| {
            command(crate::support::bin("didit-loadgen"))
                .args(["--scenario", &scenario("typical-mix"), "--target", &target])
                .args(["--rate", "150", "--connections", "4", "--duration", "2s"])
                .args([
                    "--warmup",
                    "500ms",
                    "--quiet",
                    "--seed",
                    &format!("{}", 7 + i),
                ])
                .arg("--report")
                .arg(rep)
                .env("DIDIT_WEBHOOK_SECRET", SECRET)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("didit-loadgen runs")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("waits").success(), "a generator failed");
    }
    let parts: Vec<didit_loadgen::Report> = reports
        .iter()
        .map(|p| {
            didit_loadgen::Report::from_json(&std::fs::read(p).expect("report")).expect("typed")
        })
        .collect();
    let merged = tmp("merged.json");
    let out = command(crate::support::bin("webhook-bench"))
        .arg("merge")
        .args(&reports)
        .arg("--out")
        .arg(&merged)
        .output()
        .expect("webhook-bench merge runs");
    assert!(out.status.success(), "{}", text(&out));
    let m =
        didit_loadgen::Report::from_json(&std::fs::read(&merged).expect("merged")).expect("typed");
    assert_eq!(
        m.requests.total,
        parts[0].requests.total + parts[1].requests.total
    );
    // Every delivery of the mix reaches the webhook endpoint (no wrong paths or methods in it),
    // so the receiver's outcomes, summed, count every request either generator sent.
    let counted = outcome_total(&rx);
    assert_eq!(m.requests.mismatches, 0, "{}", text(&out));
    assert_eq!(
        m.requests.total, counted,
        "merged total against the receiver's /metrics"
    );
    let [c, _, _] = m.histograms.decode().expect("merged histograms");
    let [a, _, _] = parts[0].histograms.decode().expect("histogram");
    let [b, _, _] = parts[1].histograms.decode().expect("histogram");
    assert_eq!(c.len(), a.len() + b.len());
    assert_eq!(m.latency_us.corrected.max, a.max().max(b.max()));
    // Another scenario's report is refused, with a clear reason.
    let other = tmp("merge-other.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&reports[1]).expect("report")).expect("json");
    v["scenario"] = "retry-storm".into();
    std::fs::write(&other, serde_json::to_vec(&v).expect("json")).expect("write");
    let out = command(crate::support::bin("webhook-bench"))
        .arg("merge")
        .arg(&reports[0])
        .arg(&other)
        .output()
        .expect("webhook-bench merge runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("different runs"),
        "{}",
        text(&out)
    );
    rx.stop();
}

//! `webhook-bench run` end to end on the debug binaries, in quick mode: a conformant variant is
//! verified, calibrated and measured; an unknown variant and an unreadable scenario are recorded
//! with their reasons while the rest still runs; the folder holds everything it should. Loopback
//! only, receivers on port 0, a few seconds.

use std::path::PathBuf;
use webhook_bench::harness::command;
use webhook_bench::results::Status;

/// The debug binaries' folder, a fresh output folder, and the project root.
fn setup(tag: &str) -> (PathBuf, PathBuf, &'static str) {
    let bin_dir = crate::support::bin("didit-receiver")
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    (bin_dir, out, env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn quick_run_records_what_ran_and_what_failed() {
    let (bin_dir, out, root) = setup("run");
    let missing = format!("{root}/scenarios/no-such-scenario.toml");
    let launched = std::time::SystemTime::now();
    let run = command(crate::support::bin("webhook-bench"))
        .current_dir(root)
        .args([
            "run", "--quick", "--quiet", "--repeat", "1", "--http", "hyper",
        ])
        .args(["--receivers", "hyper:ring:serde,nginx:ring:serde"])
        .args([
            "--scenario",
            "scenarios/max-throughput.toml",
            "--scenario",
            &missing,
        ])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("webhook-bench runs");
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    for f in [
        "results.json",
        "raw.csv",
        "README.md",
        "throughput-max-throughput.svg",
        "latency-max-throughput.svg",
        "cpu-max-throughput.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let r = webhook_bench::results::load(&out.join("results.json")).expect("valid results");
    // `started` is when the run began (to the second), not when it was written: the 2.5 s of
    // measuring lie between the two.
    let started = humantime::parse_rfc3339(&r.run.started).expect("started is RFC 3339");
    let written = std::fs::metadata(out.join("results.json"))
        .and_then(|m| m.modified())
        .expect("results.json's time");
    assert!(
        started + std::time::Duration::from_secs(1) >= launched,
        "started {} is before the run was launched",
        r.run.started
    );
    assert!(
        written
            .duration_since(started)
            .is_ok_and(|d| d >= std::time::Duration::from_secs(2)),
        "started {} is not the run's start",
        r.run.started
    );
    let by = |name: &str| r.variants.iter().find(|v| v.variant == name).expect(name);
    assert_eq!(by("hyper:ring:serde").status, Status::Measured);
    assert!(by("hyper:ring:serde").null_rps.is_some_and(|n| n > 0.0));
    let bad = by("nginx:ring:serde");
    assert_eq!(bad.status, Status::Failed);
    assert!(
        bad.reason
            .as_deref()
            .is_some_and(|r| r.contains("unknown server"))
    );
    assert_eq!(r.skipped_scenarios.len(), 1);
    assert!(r.skipped_scenarios[0].path.contains("no-such-scenario"));
    let cell = &r.scenarios[0].cells[0];
    assert_eq!(cell.variant, "hyper:ring:serde");
    assert_eq!(cell.repeats.len(), 1);
    let rep = &cell.repeats[0];
    assert_eq!(rep.error, None);
    assert!(
        rep.rps > 0.0 && rep.requests > 0 && rep.mismatches == 0,
        "{rep:?}"
    );
    assert!(
        rep.cpu_ms_per_1k.is_some() && rep.peak_rss_kib.is_some(),
        "{rep:?}"
    );
    let csv = std::fs::read_to_string(out.join("raw.csv")).expect("raw.csv");
    assert!(csv.starts_with("scenario,variant,round,metric,value\n"));
    assert!(csv.contains("max-throughput,hyper:ring:serde,1,rps,"));
    let readme = std::fs::read_to_string(out.join("README.md")).expect("README");
    assert!(readme.contains("git commit") && readme.contains("no-such-scenario"));
}

/// `webhook-bench soak` end to end, shortened: calibration, warm-up and measured segments run,
/// `soak.json` and `README.md` are written, and the verdict holds its evidence. Whether a debug
/// build passes the gates on a shared machine is not asserted; that the gates were judged is.
#[test]
fn a_short_soak_writes_its_verdict() {
    let (bin_dir, out, root) = setup("soak");
    let run = command(crate::support::bin("webhook-bench"))
        .current_dir(root)
        .args(["soak", "--quiet", "--http", "hyper", "--load", "50%"])
        .args(["--duration", "4s", "--segment", "2s", "--warmup", "2s"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("webhook-bench runs");
    let code = run.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "exit {code:?}\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(out.join("soak.json")).expect("soak.json");
    let r: webhook_bench::soak::SoakResult = serde_json::from_str(&text).expect("valid soak.json");
    assert_eq!(r.schema, webhook_bench::soak::SOAK_SCHEMA);
    assert!(r.calibrated_max_rps > 0.0);
    assert!((r.rate - r.calibrated_max_rps * 0.5).abs() <= 1.0, "{r:?}");
    assert_eq!(r.segments.len(), 3, "one warm-up and two measured segments");
    assert!(r.segments[0].warmup && !r.segments[2].warmup);
    assert!(
        r.segments.iter().all(|s| s.requests > 0),
        "{:?}",
        r.segments
    );
    assert_eq!(r.verdict.mismatches, 0, "{:?}", r.verdict);
    assert!(r.rss_timeline.len() >= 4, "{:?}", r.rss_timeline);
    assert_eq!(code == Some(0), r.verdict.passed);
    let readme = std::fs::read_to_string(out.join("README.md")).expect("README");
    assert!(readme.contains("Soak") && readme.contains("| segment |"));
}

/// A receiver written elsewhere (`--receiver NAME=CMD`: here the standard-library Python one of
/// `tests/verify/faulty.py`) is verified by its report card, measured in the same rounds as a
/// built-in variant and published with a "÷ NAME" column; one whose card fails is refused with
/// the failed case named, and measured, marked, with `--allow-failing`.
#[test]
fn quick_run_measures_an_external_receiver_beside_a_built_in_one() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify/faulty.py");
    for (allow, tag) in [(false, "ext"), (true, "ext-allow")] {
        let (bin_dir, out, root) = setup(tag);
        let mut cmd = command(crate::support::bin("webhook-bench"));
        cmd.current_dir(root)
            .args([
                "run", "--quick", "--quiet", "--repeat", "1", "--http", "hyper",
            ])
            .args(["--receivers", "hyper:ring:serde"])
            .args(["--scenario", "scenarios/max-throughput.toml"])
            .arg("--receiver")
            .arg(format!("pystd=python3 {script} {{port}} none"))
            .arg("--receiver")
            .arg(format!("stale-ok=python3 {script} {{port}} no-freshness"))
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--out")
            .arg(&out);
        if allow {
            cmd.arg("--allow-failing");
        }
        let run = cmd.output().expect("webhook-bench runs");
        // A receiver its card refused fails the run, unless --allow-failing.
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(
            run.status.code(),
            Some(if allow { 0 } else { 1 }),
            "{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            stdout.contains("FAILED: stale-ok was refused by its report card"),
            !allow,
            "{stdout}"
        );
        let r = webhook_bench::results::load(&out.join("results.json")).expect("valid results");
        let by = |name: &str| r.variants.iter().find(|v| v.variant == name).expect(name);
        let py = by("pystd");
        assert_eq!(py.status, Status::Measured, "{py:?}");
        assert!(
            py.external
                .as_deref()
                .is_some_and(|c| c.contains("faulty.py"))
        );
        assert!(
            py.card.as_deref().is_some_and(|c| c.contains("required")),
            "{py:?}"
        );
        assert!(
            py.null_rps.is_none(),
            "no null endpoint, no calibration: {py:?}"
        );
        let builtin = by("hyper:ring:serde");
        assert!(builtin.card.is_some(), "{builtin:?}");
        let bad = by("stale-ok");
        assert!(
            bad.card_failed
                .iter()
                .any(|c| c == "stale timestamp (6 min)"),
            "{bad:?}"
        );
        let cells = &r.scenarios[0].cells;
        let cell = |name: &str| cells.iter().find(|c| c.variant == name);
        let py_cell = cell("pystd").expect("the external receiver was measured");
        assert!(
            py_cell.repeats[0].rps > 0.0 && py_cell.repeats[0].mismatches == 0,
            "{py_cell:?}"
        );
        assert!(py_cell.repeats[0].cpu_ms_per_1k.is_some(), "{py_cell:?}");
        let readme = std::fs::read_to_string(out.join("README.md")).expect("README");
        assert!(readme.contains("÷ pystd"), "{readme}");
        if allow {
            assert_eq!(bad.status, Status::Measured);
            assert!(bad.failing_card);
            assert!(cell("stale-ok").is_some());
            assert!(readme.contains("report card failed"), "{readme}");
        } else {
            assert_eq!(bad.status, Status::Refused, "{bad:?}");
            assert!(
                bad.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("stale timestamp (6 min)")),
                "{bad:?}"
            );
            assert!(cell("stale-ok").is_none());
        }
    }
}

/// Thresholds, k6's way: one no receiver can meet fails the run with exit 99 and names the
/// variant, scenario, threshold and measured value, in the output and in results.json; easy ones
/// pass, and `--bmf` writes the run in the Bencher Metric Format.
#[test]
fn thresholds_fail_a_run_with_99_and_easy_ones_pass() {
    for (tag, thresholds, want) in [
        ("thr-hard", &["max-throughput/p99<1us"][..], 99),
        (
            "thr-easy",
            &["req_s>1", "max-throughput/p99<60s", "cpu_ms_per_1k<100000"][..],
            0,
        ),
    ] {
        let (bin_dir, out, root) = setup(tag);
        let bmf = out.with_extension("bmf.json");
        let mut cmd = command(crate::support::bin("webhook-bench"));
        cmd.current_dir(root)
            .args([
                "run", "--quick", "--quiet", "--repeat", "1", "--http", "hyper",
            ])
            .args(["--receivers", "hyper:ring:serde"])
            .args(["--scenario", "max-throughput"])
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--out")
            .arg(&out)
            .arg("--bmf")
            .arg(&bmf)
            .arg("--markdown")
            .arg(out.with_extension("md"));
        for t in thresholds {
            cmd.args(["--threshold", t]);
        }
        let run = cmd.output().expect("webhook-bench runs");
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(
            run.status.code(),
            Some(want),
            "{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let r = webhook_bench::results::load(&out.join("results.json")).expect("valid results");
        assert_eq!(r.thresholds.len(), thresholds.len());
        if want == 99 {
            assert!(
                stdout.contains("threshold `max-throughput/p99<1us` failed: hyper:ring:serde in max-throughput measured"),
                "{stdout}"
            );
            assert_eq!(r.threshold_breaches.len(), 1, "{:?}", r.threshold_breaches);
            let md = std::fs::read_to_string(out.with_extension("md")).expect("Markdown written");
            assert!(
                md.contains("- ❌ threshold `max-throughput/p99<1us` failed"),
                "{md}"
            );
            assert!(md.contains("### max-throughput (max)"), "{md}");
            assert!(r.threshold_breaches[0].measured >= 1.0);
        } else {
            assert!(
                r.threshold_breaches.is_empty(),
                "{:?}",
                r.threshold_breaches
            );
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&bmf).expect("BMF written")).expect("JSON");
            let m = &json["max-throughput/hyper:ring:serde"];
            assert!(
                m["throughput"]["value"].as_f64().is_some_and(|v| v > 0.0),
                "{json}"
            );
            assert!(m["latency-p99"]["lower_value"].as_f64().is_some(), "{json}");
        }
    }
}

/// `webhook-bench capacity` end to end, one short round: every generator (wrk twice, the
/// generator four ways) is measured against the same null endpoint, and the JSON holds a rate
/// and a CPU cost for each. Needs wrk and /usr/bin/time (`scripts/test.sh` installs them).
#[test]
fn capacity_measures_every_generator_side_by_side() {
    let (bin_dir, out, root) = setup("capacity");
    std::fs::create_dir_all(&out).expect("out dir");
    let json = out.join("capacity.json");
    let run = command(crate::support::bin("webhook-bench"))
        .current_dir(root)
        .args(["capacity", "--quiet", "--repeat", "1", "--duration", "1s"])
        .args(["--connections", "8"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("webhook-bench runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("capacity.json")).expect("JSON");
    assert_eq!(r["schema"], webhook_bench::capacity::CAPACITY_SCHEMA);
    let rows = r["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 6, "{r}");
    for row in rows {
        let rps = row["rps"][0].as_f64().unwrap_or(0.0);
        let cpu = row["cpu_us_per_request"][0].as_f64().unwrap_or(0.0);
        assert!(rps > 0.0 && cpu > 0.0, "{row}");
        assert!(
            stdout.contains(row["description"].as_str().unwrap_or("?")),
            "{stdout}"
        );
    }
    assert_eq!(rows[1]["to_wrk_pool"], 1.0, "the reference's own ratio");
}

/// `run --scaling --plan`: what a scaling run would measure on a machine of a given size,
/// without running anything. A simulated 16-core machine gets 1, 2, 4 and 8 receiver cores with
/// as many generator cores and the brokers on the rest; this machine's own plan stops where its
/// cores run out and says why. Core sets that overlap or do not exist are refused.
#[test]
fn the_scaling_plan_follows_the_topology() {
    let (_, _, root) = setup("plan");
    let plan = |args: &[&str]| {
        command(crate::support::bin("webhook-bench"))
            .current_dir(root)
            .arg("run")
            .args(args)
            .output()
            .expect("webhook-bench runs")
    };
    let out = plan(&[
        "--scaling",
        "--plan",
        "--cores",
        "16",
        "--receivers",
        "hyper:ring:serde,may:ring:serde:nats",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "scaling plan for 16 cores: 4 points",
        "1 receiver core: receiver on 0, generator on 1 (1 engine thread), brokers on 2-15",
        "2 receiver cores: receiver on 0-1, generator on 2-3 (2 engine threads), brokers on 4-15",
        "4 receiver cores: receiver on 0-3, generator on 4-7 (4 engine threads), brokers on 8-15",
        "8 receiver cores: receiver on 0-7, generator on 8-15 (8 engine threads), brokers on the receiver's cores",
        "stops there: 16 receiver cores and the generator's 16 need 32 cores; this machine has 16",
        "2 variants (hyper:ring:serde, may:ring:serde:nats) x 1 scenario (scenarios/max-throughput.toml)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let out = plan(&[
        "--plan",
        "--receiver-cpus",
        "0-3",
        "--generator-cpus",
        "4-5",
        "--cores",
        "8",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("receiver on 0-3, generator on 4-5 (2 engine threads), brokers on 6-7"),
        "{text}"
    );
    let out = plan(&["--quick", "--receiver-cpus", "0", "--generator-cpus", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("overlap"));
    let out = plan(&["--quick", "--receiver-cpus", "0-1023"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("this machine has"));
}

/// `cost` takes one variant apart and measures a store on top; every layer ran, each increment
/// is the difference of its median to the one below (a store's to `process`), and the folder
/// holds the figures, the chart and the README. A variant it cannot take apart is refused.
#[test]
fn cost_takes_a_variant_apart_layer_by_layer() {
    let (bin_dir, out, root) = setup("cost");
    let run = command(crate::support::bin("webhook-bench"))
        .current_dir(root)
        .args(["cost", "--quiet", "--repeat", "1", "--duration", "1s"])
        .args(["--warmup", "500ms", "--variants", "hyper:ring:serde"])
        .args(["--stores", "sqlite"])
        .args(["--callgrind", "--callgrind-requests", "50"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("webhook-bench runs");
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    for f in ["cost.json", "README.md", "where-the-time-goes.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cost.json")).expect("read")).expect("json");
    assert_eq!(v["schema"], "webhook-bench-cost/1");
    let b = &v["breakdowns"][0];
    let layers = b["layers"].as_array().expect("layers");
    let names: Vec<&str> = layers.iter().filter_map(|l| l["layer"].as_str()).collect();
    assert_eq!(names, ["null", "hmac", "parse", "process", "store:sqlite"]);
    let median = |i: usize| layers[i]["us"]["median"].as_f64().expect("a median");
    let ir = |i: usize| layers[i]["instructions"].as_f64().expect("instructions");
    for (i, l) in layers.iter().enumerate() {
        assert!(l["errors"].as_array().is_some_and(Vec::is_empty), "{l}");
        assert!(median(i) > 0.0, "{l}");
        assert!(
            ir(i) > 1_000.0,
            "an HTTP exchange is thousands of instructions: {l}"
        );
        if i > 0 {
            let below = if i == 4 { 3 } else { i - 1 };
            let adds = l["adds_us"].as_f64().expect("adds");
            assert!((adds - (median(i) - median(below))).abs() < 1e-6, "{l}");
            let adds = l["adds_instructions"].as_f64().expect("adds instructions");
            assert!((adds - (ir(i) - ir(below))).abs() < 1e-6, "{l}");
        }
    }
    // Under Callgrind the layers rank without noise: HMAC over 5 KB, then the parse of it,
    // then SQLite's write, each adds instructions over the layer below.
    for (i, what) in [(1, "hmac"), (2, "parse"), (4, "store:sqlite")] {
        assert!(
            layers[i]["adds_instructions"]
                .as_f64()
                .is_some_and(|x| x > 5_000.0),
            "{what} adds no instructions: {}",
            layers[i]
        );
    }
    assert_eq!(v["callgrind_requests"], 50);
    assert!(b["micro_hmac_us"].as_f64().is_some_and(|x| x > 0.0), "{b}");
    let floor = b["floor_us"].as_f64().expect("floor");
    let expected = median(0)
        + b["micro_hmac_us"].as_f64().unwrap_or(0.0)
        + b["micro_parse_us"].as_f64().unwrap_or(0.0)
        + 1.0;
    assert!((floor - expected).abs() < 1e-6);
    let readme = std::fs::read_to_string(out.join("README.md")).expect("readme");
    assert!(readme.contains("webhook-bench cost") && readme.contains("| store:sqlite |"));
    assert!(readme.contains("instructions / request"), "{readme}");
    // Notes written below the generated part survive a redraw from cost.json.
    std::fs::write(
        out.join("README.md"),
        format!("{readme}\n## What this run says\n\n- a person's note\n"),
    )
    .expect("write notes");
    let redraw = command(crate::support::bin("webhook-bench"))
        .current_dir(root)
        .arg("cost")
        .arg("--from")
        .arg(out.join("cost.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("webhook-bench runs");
    assert!(
        redraw.status.success(),
        "{}",
        String::from_utf8_lossy(&redraw.stderr)
    );
    let redrawn = std::fs::read_to_string(out.join("README.md")).expect("readme");
    assert_eq!(redrawn.matches("- a person's note").count(), 1, "{redrawn}");
    assert!(redrawn.contains("| store:sqlite |"), "{redrawn}");

    let naive = command(crate::support::bin("webhook-bench"))
        .current_dir(root)
        .args(["cost", "--variants", "axum-naive:ring:serde"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .output()
        .expect("webhook-bench runs");
    assert_eq!(naive.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&naive.stderr).contains("no layers to take apart"));
}

/// `scripts/profile-groups.py` charges each symbol of a perf report to one component, so that
/// the groups add up to the report's total; a symbol of ours is not mistaken for a library's.
#[test]
fn profile_groups_charge_each_symbol_once() {
    let (_, out, root) = setup("profile-groups");
    std::fs::create_dir_all(&out).expect("mkdir");
    let report = out.join("report.txt");
    std::fs::write(
        &report,
        "# Samples: 1K of event 'cpu-clock'\n#\n\
         \x20   30.00%  [k] _raw_spin_unlock_irqrestore\n\
         \x20   20.00%  [.] ring_core_0_17_14__sha256_block_data_order_hw\n\
         \x20   15.00%  [.] serde_json::read::SliceRead::skip_to_escape\n\
         \x20   10.00%  [.] didit_receiver::process::RecentSet::insert\n\
         \x20    8.00%  [.] hyper::proto::h1::conn::Conn<I,B,T>::poll_read_head\n\
         \x20    7.00%  [.] __memmove_avx512_unaligned_erms\n\
         \x20   10.00%  [.] core::str::converts::from_utf8\n",
    )
    .expect("write report");
    let groups = || {
        command("python3")
            .current_dir(root)
            .arg("scripts/profile-groups.py")
            .arg(&report)
            .output()
            .expect("python3 runs")
    };
    let run = groups();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = String::from_utf8_lossy(&run.stdout);
    for (group, pct) in [
        ("kernel (syscalls, TCP, wake-ups)", "30.0"),
        ("HMAC (ring, aws-lc, RustCrypto)", "20.0"),
        ("JSON parse (serde, simd-json, sonic-rs)", "15.0"),
        ("this project (didit_*)", "10.0"),
        ("HTTP server and runtime", "8.0"),
        ("allocator and libc", "7.0"),
        ("other", "10.0"),
    ] {
        assert!(
            text.contains(&format!("| {group} | {pct} |")),
            "{group}:\n{text}"
        );
    }
    std::fs::write(&report, "# no samples\n").expect("write");
    assert_eq!(groups().status.code(), Some(1));
}

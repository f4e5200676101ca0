//! The results format against its committed JSON Schema, `compare`'s verdicts and refusals, and
//! the published Markdown, on synthetic runs (deterministic) and on the committed real run.

use std::path::{Path, PathBuf};

use webhook_bench::compare::{CompareError, Verdict, compare};
use webhook_bench::results::{
    Cell, Curve, RESULTS_SCHEMA, Repeat, Results, ResultsError, RunInfo, ScenarioResult,
    VariantOutcome, load,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn repeat(round: usize, rps: f64) -> Repeat {
    Repeat {
        round,
        rps,
        p50_us: 300,
        p90_us: 500,
        p99_us: 900,
        p999_us: 1500,
        max_us: 4000,
        uncorrected_p99_us: 800,
        requests: (rps * 5.0) as u64,
        mismatches: 0,
        transport_errors: 0,
        shed: 0,
        cpu_ms_per_1k: Some(20.0),
        peak_rss_kib: Some(12_000),
        generator_limited: false,
        error: None,
        lag_p99_us: None,
        floor_p99_us: None,
        floor_p999_us: None,
        required_mismatches: Some(0),
    }
}

/// A run where each variant's rounds are `rps` and its null endpoint does `null`.
fn run(cells: &[(&str, [f64; 3], f64)]) -> Results {
    let mut out = Vec::new();
    let mut variants = Vec::new();
    for (name, rps, null) in cells {
        let mut c = Cell::new(name);
        c.repeats = rps
            .iter()
            .enumerate()
            .map(|(i, r)| repeat(i + 1, *r))
            .collect();
        c.summarise(Some(*null), Some(*null));
        out.push(c);
        variants.push(VariantOutcome {
            variant: (*name).to_owned(),
            status: webhook_bench::results::Status::Measured,
            reason: None,
            null_rps: Some(*null),
            null_generator_limited: Some(false),
            slowed_us: 0,
            card: Some("60/60 required, 41/41 framing, 10/10 optional".into()),
            // One receiver written elsewhere, so the schema check covers its fields.
            external: (variants.is_empty()).then(|| "node server.js --port {port}".into()),
            runtime: (variants.is_empty()).then(|| "Node.js v20.20.2".into()),
            card_failed: Vec::new(),
            failing_card: false,
        });
    }
    Results {
        schema: RESULTS_SCHEMA.into(),
        run: RunInfo {
            id: "2026-11-28-test".into(),
            command: "webhook-bench run".into(),
            started: "2026-11-28T00:00:00Z".into(),
            git_commit: "0".repeat(40),
            rustc: "rustc 1.95.0".into(),
            crates: vec!["hyper 1.12.0".into()],
            receiver_build: Some("didit-receiver 0.1.0 (0000, rustc 1.95.0, release)".into()),
            generator_build: Some("didit-loadgen 0.1.0 (0000, rustc 1.95.0, release)".into()),
            cpu_model: "test cpu".into(),
            cores: 2,
            kernel: "6.18".into(),
            repeat: 3,
            quick: false,
            receiver_cpus: "0".into(),
            generator_cpus: "1".into(),
            broker_cpus: None,
            http_client: "raw".into(),
            reference_naive: Some("axum-naive:ring:serde".into()),
        },
        variants,
        scenarios: vec![ScenarioResult {
            scenario: "max-throughput".into(),
            description: "Closed-loop maximum.".into(),
            engine: "open-loop".into(),
            shape: didit_loadgen::ShapeKind::Max,
            cells: out,
            curves: vec![Curve {
                variant: cells[0].0.into(),
                points: vec![(50.0, 300), (99.0, 900), (100.0, 4000)],
            }],
        }],
        skipped_scenarios: Vec::new(),
        scaling: None,
        thresholds: vec!["p99<5ms".into()],
        threshold_breaches: vec![webhook_bench::thresholds::Breach {
            threshold: "p99<5ms".into(),
            variant: "hyper:ring:serde".into(),
            scenario: "typical-mix".into(),
            measured: 6100.0,
        }],
    }
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("results/schema.json")).expect("results/schema.json"),
    )
    .expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

#[test]
fn written_results_match_the_committed_schema() {
    let v = validator();
    let r = run(&[
        (
            "hyper:ring:serde",
            [50_000.0, 52_000.0, 49_000.0],
            100_000.0,
        ),
        (
            "axum-naive:ring:serde",
            [20_000.0, 21_000.0, 19_000.0],
            90_000.0,
        ),
    ]);
    let json = serde_json::to_value(&r).expect("serialises");
    let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The schema can fail: a wrong version and a missing field are refused.
    let mut bad = json.clone();
    bad["schema"] = "webhook-bench-results/0".into();
    assert!(!v.is_valid(&bad));
    let mut bad = json;
    bad["run"]
        .as_object_mut()
        .expect("object")
        .remove("git_commit");
    assert!(!v.is_valid(&bad));
}

#[test]
fn committed_runs_match_the_schema() {
    let v = validator();
    let runs = root().join("results/runs");
    let mut n = 0;
    for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
        let file = entry.path().join("results.json");
        if !file.is_file() {
            continue;
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
        let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        load(&file).expect("loads");
        n += 1;
    }
    let baseline = root().join("results/baseline.json");
    if baseline.is_file() {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&baseline).expect("read")).expect("JSON");
        assert!(v.is_valid(&json), "results/baseline.json");
        n += 1;
    }
    assert!(n > 0, "a real run is committed under results/");
}

#[test]
fn compare_tells_noise_from_change() {
    let base = run(&[(
        "hyper:ring:serde",
        [50_000.0, 52_000.0, 47_000.0],
        100_000.0,
    )]);
    // Noise: a different machine speed, same ratios within the range.
    let same = run(&[(
        "hyper:ring:serde",
        [60_000.0, 58_000.0, 63_000.0],
        120_000.0,
    )]);
    let rows = compare(&base, &same, 0.10, None).expect("comparable");
    assert_eq!(rows[0].verdict, Verdict::Unchanged);
    // Slower relative to its own null endpoint, beyond the whole range: a regression.
    let slow = run(&[(
        "hyper:ring:serde",
        [30_000.0, 31_000.0, 29_000.0],
        100_000.0,
    )]);
    assert_eq!(
        compare(&base, &slow, 0.10, None).expect("comparable")[0].verdict,
        Verdict::Regression
    );
    // Overlapping ranges are not a regression even when the median moved.
    let wobbly = run(&[(
        "hyper:ring:serde",
        [44_000.0, 49_000.0, 30_000.0],
        100_000.0,
    )]);
    assert_eq!(
        compare(&base, &wobbly, 0.10, None).expect("comparable")[0].verdict,
        Verdict::Unchanged
    );
    let fast = run(&[(
        "hyper:ring:serde",
        [70_000.0, 72_000.0, 71_000.0],
        100_000.0,
    )]);
    assert_eq!(
        compare(&base, &fast, 0.10, None).expect("comparable")[0].verdict,
        Verdict::Improvement
    );
}

/// A run of the naive peer and a receiver written elsewhere (no null route: no ratio to it).
fn external_run(naive: [f64; 3], mine: [f64; 3]) -> Results {
    let mut r = run(&[
        ("axum-naive:ring:serde", naive, 90_000.0),
        ("mine", mine, 90_000.0),
    ]);
    let naive_median = {
        let mut v = naive;
        v.sort_by(f64::total_cmp);
        v[1]
    };
    for c in &mut r.scenarios[0].cells {
        if c.variant == "mine" {
            c.ratio_to_null = None;
        }
        let per_round: Vec<f64> = c.repeats.iter().map(|x| x.rps / naive_median).collect();
        c.ratio_to_naive = webhook_bench::results::Spread::of(&per_round);
    }
    r
}

#[test]
fn a_receiver_without_a_null_route_is_compared_against_the_in_run_reference() {
    let base = external_run(
        [20_000.0, 21_000.0, 19_000.0],
        [40_000.0, 41_000.0, 39_000.0],
    );
    let rows = compare(&base, &base, 0.10, None).expect("comparable with itself");
    assert!(rows.iter().all(|r| r.verdict == Verdict::Unchanged));
    let mine = rows
        .iter()
        .find(|r| r.variant == "mine")
        .expect("mine compared");
    assert_eq!(mine.against, "naive");
    // Slowed to half its speed while the reference kept its own: caught.
    let slow = external_run(
        [20_000.0, 21_000.0, 19_000.0],
        [20_000.0, 21_000.0, 19_500.0],
    );
    let rows = compare(&base, &slow, 0.10, None).expect("comparable");
    let mine = rows
        .iter()
        .find(|r| r.variant == "mine")
        .expect("mine compared");
    assert_eq!(mine.verdict, Verdict::Regression);
    // The reference twice as fast in the current run, and mine with it: mine did not regress.
    let faster = external_run(
        [40_000.0, 42_000.0, 38_000.0],
        [80_000.0, 82_000.0, 78_000.0],
    );
    let rows = compare(&base, &faster, 0.10, None).expect("comparable");
    let mine = rows
        .iter()
        .find(|r| r.variant == "mine")
        .expect("mine compared");
    assert_eq!(mine.verdict, Verdict::Unchanged, "{rows:?}");
    // Another reference, named.
    let rows = compare(&base, &slow, 0.10, Some("axum-naive:ring:serde")).expect("comparable");
    let mine = rows
        .iter()
        .find(|r| r.variant == "mine")
        .expect("mine compared");
    assert_eq!(
        (mine.verdict, mine.against.as_str()),
        (Verdict::Regression, "axum-naive:ring:serde")
    );
}

#[test]
fn the_published_run_compared_with_itself_finds_nothing() {
    let run =
        load(&root().join("results/runs/2026-12-01-vm-2/results.json")).expect("published run");
    let rows = compare(&run, &run, 0.10, None).expect("a run compares with itself");
    assert!(
        rows.iter()
            .any(|r| r.variant == "node" && r.against == "naive")
    );
    assert!(rows.iter().all(|r| r.verdict == Verdict::Unchanged));
    assert!(webhook_bench::compare::environment_differences(&run, &run).is_empty());
}

#[test]
fn compare_refuses_what_is_not_like_for_like() {
    let base = run(&[
        (
            "hyper:ring:serde",
            [50_000.0, 52_000.0, 47_000.0],
            100_000.0,
        ),
        ("may:ring:serde", [55_000.0, 52_000.0, 57_000.0], 100_000.0),
    ]);
    let fewer = run(&[(
        "hyper:ring:serde",
        [50_000.0, 52_000.0, 47_000.0],
        100_000.0,
    )]);
    assert!(matches!(
        compare(&base, &fewer, 0.1, None),
        Err(CompareError::MissingVariant { variant, .. }) if variant == "may:ring:serde"
    ));
    let mut other = base.clone();
    other.scenarios[0].scenario = "typical-mix".into();
    assert!(matches!(
        compare(&base, &other, 0.1, None),
        Err(CompareError::MissingScenario(s)) if s == "max-throughput"
    ));
}

#[test]
fn other_schema_versions_get_a_clear_error() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("old-{}.json", std::process::id()));
    std::fs::write(&file, r#"{"schema":"webhook-bench-results/0","run":{}}"#).expect("write");
    let e = load(&file).expect_err("wrong version");
    assert!(matches!(e, ResultsError::Schema { .. }));
    assert!(e.to_string().contains("re-run"), "{e}");
}

#[test]
fn published_readme_has_headline_choice_and_caveat() {
    let r = run(&[
        ("may:ring:serde", [57_000.0, 55_000.0, 58_000.0], 105_000.0),
        (
            "hyper:ring:serde",
            [50_000.0, 52_000.0, 47_000.0],
            100_000.0,
        ),
        ("axum:ring:serde", [43_000.0, 44_000.0, 42_000.0], 90_000.0),
        (
            "axum-naive:ring:serde",
            [20_000.0, 21_000.0, 19_000.0],
            90_000.0,
        ),
    ]);
    let md = webhook_bench::publish::results_readme(
        &r,
        "runs/x",
        &["throughput-max-throughput.svg".into()],
    );
    assert!(
        md.contains("| may:ring:serde | 57000 (55000–58000) | 0.54"),
        "{md}"
    );
    assert!(md.contains("**may:ring:serde** led"), "{md}");
    assert!(md.contains("clearly behind"), "{md}");
    assert!(md.contains("A single benchmark is never enough"), "{md}");
    assert!(md.contains("![throughput-max-throughput.svg](runs/x/throughput-max-throughput.svg)"));
}

#[test]
fn durable_variants_are_set_against_their_in_memory_sibling() {
    let r = run(&[
        (
            "hyper:ring:serde",
            [40_000.0, 41_000.0, 39_000.0],
            100_000.0,
        ),
        (
            "hyper:ring:serde:sqlite",
            [16_000.0, 17_000.0, 15_000.0],
            100_000.0,
        ),
        (
            "hyper:ring:serde:nats",
            [14_000.0, 14_500.0, 13_000.0],
            100_000.0,
        ),
        (
            "hyper:ring:serde:kafka",
            [8_000.0, 8_500.0, 7_000.0],
            100_000.0,
        ),
    ]);
    let table = webhook_bench::publish::durability_cost(&r).expect("durable rows");
    assert!(
        table.contains("| hyper:ring:serde:sqlite | SQLite, 200 after the synced commit | 16000 | 40000 | 0.40 |"),
        "{table}"
    );
    assert!(table.contains("| hyper:ring:serde:nats | NATS"), "{table}");
    assert!(
        table.contains(
            "| hyper:ring:serde:kafka | Kafka, 200 after the idempotent producer's delivery report"
        ),
        "{table}"
    );
    let md = webhook_bench::publish::results_readme(&r, "runs/x", &[]);
    assert!(md.contains("## What durability costs"), "{md}");
    // Without a durable variant there is no such section.
    let mem_only = run(&[("hyper:ring:serde", [1.0, 2.0, 3.0], 10.0)]);
    assert!(webhook_bench::publish::durability_cost(&mem_only).is_none());
}

/// A scaling run's table matches the schema and is published with its efficiency per core and
/// the reason it stopped.
#[test]
fn a_scaling_run_is_published_with_its_efficiency_and_why_it_stopped() {
    use webhook_bench::results::{Scaling, ScalingCell, ScalingPoint};
    let mut r = run(&[(
        "hyper:ring:serde",
        [50_000.0, 52_000.0, 49_000.0],
        100_000.0,
    )]);
    let point = |n: usize, rps: f64| ScalingPoint {
        receiver_cores: n,
        receiver_cpus: if n == 1 {
            "0".into()
        } else {
            format!("0-{}", n - 1)
        },
        generator_cpus: format!("{n}-{}", 2 * n - 1),
        broker_cpus: None,
        cells: vec![ScalingCell {
            variant: "hyper:ring:serde".into(),
            rps: webhook_bench::results::Spread::of(&[rps]),
            efficiency: None,
        }],
    };
    let mut points = vec![point(1, 50_000.0), point(2, 90_000.0)];
    webhook_bench::scaling::fill_efficiency(&mut points);
    r.scaling = Some(Scaling {
        scenario: "max-throughput".into(),
        points,
        stopped: "4 receiver cores and the generator's 4 need 8 cores; this machine has 4".into(),
    });
    let json = serde_json::to_value(&r).expect("serialises");
    let errors: Vec<String> = validator()
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let md = webhook_bench::publish::scaling_section(&r).expect("a scaling section");
    assert!(
        md.contains("| `hyper:ring:serde` | 50000 (1.00) | 90000 (0.90) |"),
        "{md}"
    );
    assert!(md.contains("this machine has 4"), "{md}");
    let dir = std::env::temp_dir().join(format!("scaling-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("chart dir");
    let charts = webhook_bench::charts::write_all(&r, &dir).expect("charts");
    assert!(charts.iter().any(|c| c.file == "scaling.svg"));
    let _ = std::fs::remove_dir_all(dir);
}

/// At a paced rate the latency table shows each variant's floor (its null endpoint at the same
/// rate) and the generator's lag, and "how to choose" does not rank variants whose p99s differ
/// by less than that floor.
#[test]
fn paced_latency_is_read_beside_the_machines_floor() {
    let mut r = run(&[
        ("hyper:ring:serde", [5_000.0, 5_000.0, 5_000.0], 100_000.0),
        ("may:ring:serde", [5_000.0, 5_000.0, 5_000.0], 100_000.0),
        (
            "axum-naive:ring:serde",
            [5_000.0, 5_000.0, 5_000.0],
            90_000.0,
        ),
    ]);
    let sc = &mut r.scenarios[0];
    sc.scenario = "typical-mix".into();
    sc.shape = didit_loadgen::ShapeKind::Constant;
    for (cell, p99) in sc.cells.iter_mut().zip([1_200u64, 1_500, 9_000]) {
        for rep in &mut cell.repeats {
            rep.p99_us = p99;
            rep.floor_p99_us = Some(1_000);
            rep.floor_p999_us = Some(4_000);
            rep.lag_p99_us = Some(300);
        }
        cell.summarise(None, None);
    }
    let json = serde_json::to_value(&r).expect("serialises");
    let errors: Vec<String> = validator()
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let readme = webhook_bench::publish::run_readme(&r, &[]);
    assert!(
        readme.contains("floor p99 / p99.9 µs (null, same rate) | generator lag p99 µs"),
        "{readme}"
    );
    assert!(readme.contains("| 1000 / 4000 | 300 |"), "{readme}");
    let page = webhook_bench::publish::results_readme(&r, "runs/x", &[]);
    assert!(
        page.contains("may:ring:serde is within that floor of it, so on this machine the two are not told apart on latency"),
        "{page}"
    );
    assert!(!page.contains("axum-naive:ring:serde is within"), "{page}");
}

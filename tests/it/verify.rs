//! `webhook-bench verify`, the report card for any receiver: it passes a built-in variant and a
//! correct receiver written outside this workspace (Python's standard library,
//! `tests/verify/faulty.py`), fails that receiver with each deliberate fault and names the case
//! that shows it, and exits 2 when it cannot run. Loopback only; every wait is bounded.

use crate::support;

use std::process::Output;

use support::{Launch, Process, Receiver, SECRET};
use webhook_bench::harness::command;

fn verify(args: &[&str], secret: Option<&str>) -> Output {
    let mut cmd = command(crate::support::bin("webhook-bench"));
    cmd.arg("verify")
        .args(args)
        .env_remove("DIDIT_WEBHOOK_SECRET");
    if let Some(s) = secret {
        cmd.env("DIDIT_WEBHOOK_SECRET", s);
    }
    cmd.output().expect("run webhook-bench verify")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The verdict line of a card.
fn verdict(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_default()
        .to_owned()
}

/// `tests/verify/faulty.py` with `fault`, on a port it picks (through the harness the runner
/// uses); killed on drop.
struct Faulty(#[allow(dead_code)] Process, String);

impl Faulty {
    fn start(fault: &str) -> Faulty {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify/faulty.py");
        let p = Launch::new(format!("faulty.py {fault}"), "python3")
            .args([script, "0", fault])
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!("http://{}/webhooks/didit", p.addr);
        Faulty(p, url)
    }
}

#[test]
fn a_built_in_variant_passes_including_the_framing_corpus() {
    let rx = Receiver::start("hyper", "ring", "serde", &["--max-body", "1MiB"]);
    let json = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("verify-card-{}.json", std::process::id()));
    let url = format!("http://{}", rx.addr);
    let o = verify(
        &[
            "--target",
            &url,
            "--strict-http",
            "--server",
            "hyper",
            "--json",
            json.to_str().expect("utf-8 path"),
        ],
        Some(SECRET),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(verdict(&o).starts_with("verdict: PASS"), "{}", text(&o));
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON card")).expect("JSON");
    assert_eq!(card["passed"], true);
    assert_eq!(card["framing_passed"], true);
    // Every group has cases, and the required ones are all there.
    for g in ["security", "correctness", "http", "framing", "optional"] {
        assert!(
            card["groups"][g]["total"].as_u64().unwrap_or(0) > 0,
            "no {g} cases: {}",
            card["groups"]
        );
    }
    let required: u64 = ["security", "correctness", "http"]
        .iter()
        .map(|g| card["groups"][g]["passed"].as_u64().unwrap_or(0))
        .sum();
    assert!(required >= 55, "only {required} required cases passed");
    rx.stop();
}

/// A receiver written from Didit's docs that is secure but not strict passes every required case;
/// its strict differences are reported, and count only with `--strict`.
#[test]
fn a_secure_but_lenient_receiver_passes_and_strict_names_its_differences() {
    let rx = Faulty::start("lenient");
    let o = verify(&["--target", &rx.1, "--no-framing"], Some(SECRET));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for case in [
        "uppercase signature",
        "header refreshed by a replayer",
        "signed body with a string timestamp",
        "generator timestamp_mismatch approved",
    ] {
        assert!(
            out.contains(&format!("FAIL {case}:")),
            "{case} not reported:\n{out}"
        );
    }
    assert!(
        out.contains("strict: FAIL") && out.contains("--strict makes it count"),
        "{out}"
    );
    let strict = verify(
        &["--target", &rx.1, "--no-framing", "--strict"],
        Some(SECRET),
    );
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
}

/// JUnit for CI: one testsuite per group and one testcase per line; each failed required case is
/// a `<failure>` whose message says what was sent, what a correct receiver answers and what this
/// one answered; a correct receiver has none. The Markdown card leads with the failures.
#[test]
fn the_card_as_junit_and_markdown() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (fault, failures) in [("none", 0), ("header-freshness", 3)] {
        let rx = Faulty::start(fault);
        let junit = dir.join(format!("card-{fault}-{}.xml", std::process::id()));
        let md = dir.join(format!("card-{fault}-{}.md", std::process::id()));
        let o = verify(
            &[
                "--target",
                &rx.1,
                "--no-framing",
                "--junit",
                junit.to_str().expect("utf-8 path"),
                "--markdown",
                md.to_str().expect("utf-8 path"),
            ],
            Some(SECRET),
        );
        assert_eq!(
            o.status.code(),
            Some(if failures == 0 { 0 } else { 1 }),
            "{}",
            text(&o)
        );
        let xml = std::fs::read_to_string(&junit).expect("JUnit written");
        let report = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit");
        let cases: usize = report.test_suites.iter().map(|s| s.test_cases.len()).sum();
        assert!(cases >= 60, "{cases} testcases");
        let groups: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert!(
            groups.starts_with(&["security", "correctness", "http", "strict"]),
            "{groups:?}"
        );
        let failed: Vec<&quick_junit::TestCase> = report
            .test_suites
            .iter()
            .flat_map(|s| &s.test_cases)
            .filter(|c| matches!(c.status, quick_junit::TestCaseStatus::NonSuccess { .. }))
            .collect();
        assert_eq!(failed.len(), failures, "{xml}");
        for c in failed {
            let quick_junit::TestCaseStatus::NonSuccess { message, .. } = &c.status else {
                unreachable!("filtered");
            };
            let m = message.as_ref().map(|m| m.as_str()).unwrap_or_default();
            assert!(
                c.name.as_str().starts_with("old signed body")
                    && m.contains("a correct receiver answers 401, this one answered 200"),
                "{}: {m}",
                c.name.as_str()
            );
        }
        let md = std::fs::read_to_string(&md).expect("Markdown written");
        if failures == 0 {
            assert!(md.starts_with("## webhook-bench verify: PASS"), "{md}");
        } else {
            assert!(md.starts_with("## webhook-bench verify: FAIL"), "{md}");
            assert!(
                md.contains("| ❌ | security | old signed body (400 s) with a fresh X-Timestamp |"),
                "{md}"
            );
        }
    }
}

/// The card JSON names its schema and matches the committed JSON Schema.
#[test]
fn the_card_json_matches_its_committed_schema() {
    let rx = Faulty::start("lenient");
    let json = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("card-schema-{}.json", std::process::id()));
    let o = verify(
        &[
            "--target",
            &rx.1,
            "--no-framing",
            "--json",
            json.to_str().expect("utf-8 path"),
        ],
        Some(SECRET),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the card")).expect("JSON");
    assert_eq!(card["schema"], "webhook-bench-card/1");
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/results/card.schema.json"
        ))
        .expect("results/card.schema.json"),
    )
    .expect("the schema is JSON");
    let v = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let errors: Vec<String> = v.iter_errors(&card).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // A card that is not one fails it: the check can fail.
    let mut broken = card.clone();
    broken["lines"][0]["passed"] = serde_json::json!("yes");
    assert!(!v.is_valid(&broken));
}

/// The card as a library, as a team's own `cargo test` uses it: the same verdict as the binary,
/// and a failure that names the case.
#[test]
fn the_card_as_a_library_gives_the_same_verdict() {
    let good = Faulty::start("none");
    webhook_bench::verify::check(&good.1, SECRET)
        .expect("a card")
        .assert_passed();
    let bad = Faulty::start("header-freshness");
    let card = webhook_bench::verify::check(&bad.1, SECRET).expect("a card");
    let failed = std::panic::catch_unwind(|| card.assert_passed()).expect_err("it failed");
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("FAIL [security] old signed body (1 day) with a fresh X-Timestamp"),
        "{message}"
    );
}

#[test]
fn a_correct_receiver_in_another_language_passes() {
    let rx = Faulty::start("none");
    let o = verify(&["--target", &rx.1, "--no-framing"], Some(SECRET));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(verdict(&o).starts_with("verdict: PASS"), "{}", text(&o));
}

#[test]
fn each_fault_fails_the_card_and_is_named() {
    for (fault, case) in [
        ("no-freshness", "stale timestamp (6 min)"),
        (
            "parse-first",
            "unsigned body that is not JSON (the signature comes first)",
        ),
        (
            "ascii-only",
            "vector official_wp_plugin/unicode_names, fresh",
        ),
        ("no-size-limit", "body over --max-body by Content-Length"),
        (
            "header-freshness",
            "old signed body (400 s) with a fresh X-Timestamp",
        ),
    ] {
        let rx = Faulty::start(fault);
        let o = verify(&["--target", &rx.1, "--no-framing"], Some(SECRET));
        assert_eq!(o.status.code(), Some(1), "{fault}: {}", text(&o));
        let v = verdict(&o);
        assert!(
            v.starts_with("verdict: FAIL") && v.contains(case),
            "{fault}: the verdict does not name {case:?}: {v}"
        );
        let line = String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.contains(&format!("FAIL {case}:")))
            .map(str::to_owned);
        assert!(
            line.is_some(),
            "{fault}: no FAIL line for {case:?}:\n{}",
            text(&o)
        );
    }
}

/// `verify --receiver CMD` and `--variant SPEC` start the receiver through the harness (as
/// `run --receiver` does), verify it and stop it; a command that cannot start is exit 2 with
/// what it printed.
#[test]
fn it_starts_the_receiver_it_verifies() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify/faulty.py");
    let o = verify(
        &[
            "--receiver",
            &format!("python3 {script} {{port}} none"),
            "--no-framing",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = verify(
        &[
            "--receiver",
            &format!("python3 {script} {{port}} parse-first"),
            "--no-framing",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        verdict(&o).contains("the signature comes first"),
        "{}",
        text(&o)
    );

    let o = verify(&["--variant", "may:ring:serde", "--no-framing"], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = verify(
        &[
            "--receiver",
            "echo broken-receiver-says-no >&2; exit 3 # {port}",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("exited") && text(&o).contains("broken-receiver-says-no"),
        "{}",
        text(&o)
    );
    let o = verify(&["--receiver", "python3 -m http.server"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("{port}"), "{}", text(&o));
}

#[test]
fn it_cannot_run_without_a_target_or_a_secret() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let o = verify(
        &["--target", &format!("http://127.0.0.1:{port}")],
        Some(SECRET),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot reach"), "{}", text(&o));

    let o = verify(&["--target", "http://127.0.0.1:1"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("DIDIT_WEBHOOK_SECRET"), "{}", text(&o));

    let o = verify(&["--target", "ftp://nowhere"], Some(SECRET));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

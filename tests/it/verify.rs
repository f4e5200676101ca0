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

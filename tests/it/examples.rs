//! The services a team copies (`examples/`, a workspace of its own that depends on the published
//! crates only) pass `webhook-bench verify` with no required case failed, and refuse to start
//! without a secret. Their binaries come from `cargo build --locked --manifest-path
//! examples/Cargo.toml` into the same target folder (`bash scripts/test.sh` builds them first).

use crate::support;

use std::time::Duration;

use support::{Launch, Log, SECRET};
use webhook_bench::harness::{Ready, command};

fn report_card(name: &str) {
    let process = Launch::new(name, support::bin(name))
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .env("PORT", "0")
        .log(Log::Inherit)
        .ready(Ready::Announced, Duration::from_secs(30))
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let out = command(crate::support::bin("webhook-bench"))
        .args(["verify", "--no-framing", "--target"])
        .arg(format!("http://{}/webhooks/didit", process.addr))
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .output()
        .expect("run webhook-bench verify");
    process.stop(Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_default();
    println!("{name}: {verdict}");
    assert_eq!(out.status.code(), Some(0), "{name}:\n{stdout}");
    assert!(verdict.starts_with("verdict: PASS"), "{name}:\n{stdout}");
}

#[test]
fn the_axum_example_passes_the_report_card() {
    report_card("axum-service");
}

#[test]
fn the_actix_example_passes_the_report_card() {
    report_card("actix-service");
}

#[test]
fn the_examples_refuse_to_start_without_a_secret() {
    for name in ["axum-service", "actix-service"] {
        for (value, says) in [
            (Some(""), "DIDIT_WEBHOOK_SECRET is empty"),
            (None, "DIDIT_WEBHOOK_SECRET is not set"),
        ] {
            let mut cmd = command(support::bin(name));
            cmd.env("PORT", "0");
            match value {
                Some(v) => cmd.env("DIDIT_WEBHOOK_SECRET", v),
                None => cmd.env_remove("DIDIT_WEBHOOK_SECRET"),
            };
            let out = cmd.output().expect("run the example");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{name} with {value:?}: {stderr}"
            );
            assert!(stderr.contains(says), "{name} with {value:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{name} listened without a secret");
        }
    }
}

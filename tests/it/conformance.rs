//! The conformance suite: every server × backend variant of `didit-receiver`, started as a real
//! process on a loopback port it picks, answers the corpus in `crates/webhook-bench/cases/cases.json`
//! identically (or as a per-server override in the data says, for documented limitations), then
//! the raw-TCP corpus of `crates/webhook-bench/cases/malformed.json`.
//!
//! The cases are built and the malformed corpus is played by `webhook_bench::verify`, the code
//! behind `webhook-bench verify`, so the tests and the report card send the same requests; this
//! suite judges our receivers strictly (status, JSON body, headers, per-server overrides).
//! Requests are written over raw TCP, so framing cases (chunked, malformed `Content-Length`) are
//! sent exactly as written. All traffic goes to 127.0.0.1, to ports the receivers opened, and every
//! read has a timeout.

use crate::support;

use support::{Receiver, SECRET, send};
use webhook_bench::verify::contract::{self, Case};
use webhook_bench::verify::framing;

/// Runs the malformed corpus against one running receiver; returns every failure.
fn malformed(rx: &Receiver, server: &str) -> Vec<String> {
    let target = framing::Target {
        addr: rx.addr,
        path: contract::WEBHOOK_PATH.into(),
        secret: SECRET.into(),
    };
    let cases = framing::corpus();
    framing::play_all(&target, &cases, |c| c.expect_for(server), || rx.alive())
        .into_iter()
        .filter(|p| !p.failures.is_empty())
        .map(|p| {
            format!(
                "{}: malformed/{}: {}",
                rx.label,
                p.name,
                p.failures.join("; ")
            )
        })
        .collect()
}

/// Runs the whole corpus against one variant; returns every failure.
/// Runs the corpus against one variant; `sqlite` puts its events in a fresh SQLite store (with
/// the default `--ack after-commit`) instead of memory.
fn run_variant(server: &str, hmac: &str, json: &str, sqlite: bool, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for profile in ["default", "simple"] {
        let mut extra: Vec<String> = Vec::new();
        if profile == "simple" {
            extra.push("--accept-simple".into());
        }
        if sqlite {
            let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance");
            std::fs::create_dir_all(&dir).expect("tmp dir");
            let db = dir.join(format!("{}-{server}-{profile}.db", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            extra.push("--store".into());
            extra.push(format!("sqlite:{}", db.display()));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let rx = Receiver::start(server, hmac, json, &extra);
        // Built per receiver, so timestamps are fresh however long the suite has run.
        let built = contract::build_all(
            cases,
            &contract::Build {
                secret: SECRET.into(),
                path: contract::WEBHOOK_PATH.into(),
                host: "127.0.0.1".into(),
                tag: String::new(),
                oversize: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for (case, req) in cases.iter().zip(&built) {
            if case.profile != profile {
                continue;
            }
            let expect = case.expect_for(server);
            let closes = expect.status == 0;
            let result = match send(rx.addr, &req.bytes) {
                Ok(r) if closes => Err(format!(
                    "answered {} where the connection should close",
                    r.status
                )),
                Ok(r) => contract::check(expect, r.status, &r.headers, &r.body),
                Err(_) if closes => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                failures.push(format!("{}: {}: {e}", rx.label, case.name));
            }
        }
        if profile == "default" {
            failures.extend(malformed(&rx, server));
        }
        rx.stop();
    }
    failures
}

fn conformance(server: &str) {
    let cases = contract::corpus();
    assert!(cases.len() >= 40, "the corpus shrank to {}", cases.len());
    let combos = support::backend_pairs(server);
    let mut failures = Vec::new();
    for (m, j) in combos {
        failures.extend(run_variant(server, m, j, false, &cases));
    }
    // The same answers when events are stored durably (the naive peer keeps memory only).
    if server != "axum-naive" {
        failures.extend(run_variant(server, "ring", "serde", true, &cases));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn conformance_hyper() {
    conformance("hyper");
}

#[test]
fn conformance_axum() {
    conformance("axum");
}

#[test]
fn conformance_may() {
    conformance("may");
}

#[test]
fn conformance_actix() {
    conformance("actix");
}

#[test]
fn conformance_axum_naive() {
    conformance("axum-naive");
}

//! Deterministic instruction counts of the core's hot paths under Callgrind (Gungraun), for the
//! CI gate: wall-clock gates on shared machines are noisy, instruction counts are not.
//!
//! `cargo bench -p didit-webhook --bench instructions` (needs valgrind and `gungraun-runner`
//! 0.20; `scripts/ci-bench.sh` installs the runner). Under valgrind the CPU-feature detection
//! of ring and the SIMD parsers sees valgrind's virtual CPU, so counts are comparable only with
//! counts taken the same way: `results/instructions-baseline.json`.

use std::hint::black_box;

use didit_fixtures::PayloadSize;
use didit_webhook::canon::Escaping;
use didit_webhook::{
    FixedClock, JsonBackend, Mac, RingMac, Scratch, Secret, SerdeJson, SignatureHeaders,
    SignaturePolicy, SignedDelivery, Signer, SimdJson, SonicJson, Verifier, VerifyConfig,
};
use gungraun::{library_benchmark, library_benchmark_group, main};

const SECRET: &str = "instruction-count-secret";
const NOW: i64 = 1_800_000_000;

fn delivery(size: PayloadSize) -> SignedDelivery {
    let sample = didit_fixtures::sample_value().unwrap_or_else(|e| panic!("{e}"));
    let payload = didit_fixtures::payload(size, &sample, NOW, 42);
    Signer::<RingMac>::new(&Secret::new(SECRET).expect("a non-empty secret"))
        .sign(&payload)
        .unwrap_or_else(|e| panic!("{e}"))
}

struct Case {
    verifier: Verifier<RingMac, SerdeJson, FixedClock>,
    delivery: SignedDelivery,
    policy: SignaturePolicy,
    scratch: Scratch,
}

fn case(size: PayloadSize, policy: SignaturePolicy) -> Case {
    let cfg = VerifyConfig {
        policy,
        ..VerifyConfig::default()
    };
    Case {
        verifier: Verifier::with_parts(
            RingMac::new(&Secret::new(SECRET).expect("a non-empty secret")),
            SerdeJson,
            FixedClock(NOW),
            cfg,
        ),
        delivery: delivery(size),
        policy,
        scratch: Scratch::new(),
    }
}

fn raw_4k() -> Case {
    case(PayloadSize::Approved4K, SignaturePolicy::Raw)
}
fn v2_4k() -> Case {
    case(PayloadSize::Approved4K, SignaturePolicy::V2)
}
fn v2_20k() -> Case {
    case(PayloadSize::Sample20K, SignaturePolicy::V2)
}

#[library_benchmark]
#[bench::raw_4k(setup = raw_4k)]
#[bench::v2_4k(setup = v2_4k)]
#[bench::v2_20k(setup = v2_20k)]
fn verify(mut c: Case) -> bool {
    let d = &c.delivery;
    let h = SignatureHeaders {
        signature: (c.policy == SignaturePolicy::Raw).then_some(d.signature.as_bytes()),
        signature_v2: (c.policy == SignaturePolicy::V2).then_some(d.signature_v2.as_bytes()),
        signature_simple: None,
        timestamp: Some(d.timestamp.as_bytes()),
    };
    let ok = c
        .verifier
        .verify(&h, black_box(&d.body), &mut c.scratch)
        .is_ok();
    // A benchmark of a failing path would count the wrong thing.
    assert!(ok);
    ok
}

fn body_4k() -> Vec<u8> {
    delivery(PayloadSize::Approved4K).body
}

fn parse_with<J: JsonBackend + Default>(body: &[u8]) -> bool {
    let mut scratch = Vec::new();
    let ok = J::default()
        .parse_envelope(black_box(body), &mut scratch)
        .is_ok();
    assert!(ok);
    ok
}

#[library_benchmark]
#[bench::serde_4k(setup = body_4k)]
fn parse_serde(body: Vec<u8>) -> bool {
    parse_with::<SerdeJson>(&body)
}

#[library_benchmark]
#[bench::simd_4k(setup = body_4k)]
fn parse_simd(body: Vec<u8>) -> bool {
    parse_with::<SimdJson>(&body)
}

#[library_benchmark]
#[bench::sonic_4k(setup = body_4k)]
fn parse_sonic(body: Vec<u8>) -> bool {
    parse_with::<SonicJson>(&body)
}

fn sample_wire() -> Vec<u8> {
    delivery(PayloadSize::Sample20K).body
}

#[library_benchmark]
#[bench::canonicalize_20k(setup = sample_wire)]
fn canonicalize(body: Vec<u8>) -> usize {
    let mut out = Vec::with_capacity(body.len() * 2);
    didit_webhook::canon::canonicalize(black_box(&body), Escaping::Unicode, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    out.len()
}

library_benchmark_group!(
    name = hot_paths,
    benchmarks = [verify, parse_serde, parse_simd, parse_sonic, canonicalize]
);

#[allow(
    clippy::disallowed_methods,
    reason = "gungraun's `main!` reads the bench's arguments"
)]
mod gungraun_main {
    use super::*;
    main!(library_benchmark_groups = hot_paths);
    pub fn run() {
        main()
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "a bench binary reads its arguments"
)]
fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`; Gungraun would need valgrind
    // and its runner there. Only `cargo bench` (which passes `--bench`) measures.
    // Gungraun's runner re-executes this binary under valgrind with `--gungraun-run`.
    if std::env::args().any(|a| a == "--bench" || a == "--gungraun-run") {
        gungraun_main::run();
    } else {
        eprintln!(
            "instruction counts are measured by `cargo bench -p didit-webhook --bench instructions`"
        );
    }
}

//! Replays the committed fuzz inputs (`fuzz/corpus/<target>` seeds and `fuzz/regressions/<target>`,
//! every crash the fuzzers ever found) on stable, in the normal test run:
//! - canon: CPython's `json` module is the oracle for every document (it cannot run inside the
//!   fuzzer, so this is where the canonicaliser's differential against Python happens);
//! - envelope: serde_json, simd-json and sonic-rs accept and refuse the same bodies, with the same
//!   envelope;
//! - verify: every MAC × JSON backend gives the same answer for the same headers and body.

mod common;
#[path = "../../../fuzz/fuzz_targets/verify_input.rs"]
mod verify_input;

use std::path::{Path, PathBuf};

use common::check_against_python;
use didit_webhook::{
    FixedClock, JsonBackend, Mac, RingMac, RustCryptoMac, Scratch, Secret, SerdeJson,
    SignatureHeaders, SimdJson, SonicJson, Verifier, VerifyConfig, canon,
};

#[allow(
    clippy::disallowed_methods,
    reason = "a test reads the committed corpus files"
)]
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((p, bytes));
        }
    }
    out.sort();
    out
}

#[test]
fn canon_corpus_matches_cpython() {
    let docs: Vec<Vec<u8>> = inputs("canon").into_iter().map(|(_, b)| b).collect();
    assert!(
        docs.len() >= 5,
        "the canon corpus is missing ({} files)",
        docs.len()
    );
    if let Err(e) = check_against_python(&docs) {
        panic!("{e}");
    }
}

#[test]
fn envelope_backends_agree_on_the_corpus() {
    let all = inputs("envelope");
    assert!(all.len() >= 5, "the envelope corpus is missing");
    assert!(
        all.iter()
            .any(|(p, _)| p.to_string_lossy().contains("regressions")),
        "the envelope regressions are missing"
    );
    for (path, data) in all {
        if canon::exceeds_limits(&data) {
            continue;
        }
        let (mut s1, mut s2, mut s3) = (Vec::new(), Vec::new(), Vec::new());
        let serde = SerdeJson.parse_envelope(&data, &mut s1);
        let simd = SimdJson.parse_envelope(&data, &mut s2);
        let sonic = SonicJson.parse_envelope(&data, &mut s3);
        assert_eq!(serde, simd, "serde vs simd on {}", path.display());
        assert_eq!(serde, sonic, "serde vs sonic on {}", path.display());
    }
}

fn verify<M: Mac, J: JsonBackend + Default>(
    cfg: VerifyConfig,
    h: &SignatureHeaders<'_>,
    body: &[u8],
) -> String {
    let v = Verifier::with_parts(
        M::new(&Secret::new("fuzz-secret").expect("a non-empty secret")),
        J::default(),
        FixedClock(1_700_000_000),
        cfg,
    );
    format!("{:?}", v.verify(h, body, &mut Scratch::new()))
}

#[test]
fn verify_backends_agree_on_the_corpus() {
    let all = inputs("verify");
    assert!(all.len() >= 5, "the verify corpus is missing");
    for (path, data) in all {
        let Some((h, body, cfg)) = verify_input::decode(&data) else {
            continue;
        };
        let reference = verify::<RingMac, SerdeJson>(cfg, &h, body);
        for other in [
            verify::<RustCryptoMac, SerdeJson>(cfg, &h, body),
            verify::<RingMac, SimdJson>(cfg, &h, body),
            verify::<RingMac, SonicJson>(cfg, &h, body),
        ] {
            assert_eq!(reference, other, "{}", path.display());
        }
    }
}

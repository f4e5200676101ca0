//! Each JSON backend's envelope parse, differentially: serde_json, simd-json and sonic-rs must
//! accept and refuse the same bodies and, when they accept, produce the same envelope. Bodies the
//! verifier would refuse before any backend runs (Python's depth and number limits) are skipped,
//! as in production.
#![no_main]

use didit_webhook::canon;
use didit_webhook::{JsonBackend, SerdeJson, SimdJson, SonicJson};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if canon::exceeds_limits(data) {
        return;
    }
    let mut s1 = Vec::new();
    let mut s2 = Vec::new();
    let mut s3 = Vec::new();
    let serde = SerdeJson.parse_envelope(data, &mut s1);
    let simd = SimdJson.parse_envelope(data, &mut s2);
    let sonic = SonicJson.parse_envelope(data, &mut s3);
    match (&serde, &simd, &sonic) {
        (Ok(a), Ok(b), Ok(c)) => {
            assert_eq!(a, b, "serde and simd envelopes differ");
            assert_eq!(a, c, "serde and sonic envelopes differ");
        }
        (Err(_), Err(_), Err(_)) => {}
        _ => panic!(
            "backends disagree on acceptance: serde {:?}, simd {:?}, sonic {:?}",
            serde.is_ok(),
            simd.is_ok(),
            sonic.is_ok()
        ),
    }
});

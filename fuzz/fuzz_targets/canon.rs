//! The canonicaliser. For every input it accepts: writing is deterministic and idempotent (the
//! canonical ASCII form parses back to the same canonical forms), the streaming V2 path agrees
//! with the tree path on the canonical wire form, and serde_json accepts what we accept.
//! Agreement with CPython's `json.dumps` is checked on this target's corpus by
//! `crates/didit-webhook/tests/fuzz_corpus.rs`, since Python cannot run inside the fuzzer.
#![no_main]

use didit_webhook::canon::{self, Escaping, V2Message, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = Value::parse(data) else {
        return;
    };
    let mut ascii = Vec::new();
    canon::write_value(&v, Escaping::Ascii, &mut ascii);
    let mut unicode = Vec::new();
    canon::write_value(&v, Escaping::Unicode, &mut unicode);
    assert!(ascii.is_ascii(), "ASCII form holds non-ASCII bytes");

    let again = Value::parse(&ascii).expect("our own canonical output parses");
    let mut ascii2 = Vec::new();
    canon::write_value(&again, Escaping::Ascii, &mut ascii2);
    assert_eq!(ascii, ascii2, "canonicalisation is not idempotent");

    let mut out = Vec::new();
    let fast = match canon::v2_from_wire(&ascii, &mut out) {
        V2Message::SameAsBody => ascii.clone(),
        V2Message::Rewritten => out,
        V2Message::NotCanonical => panic!("the streaming path declines our own canonical form"),
    };
    assert_eq!(fast, unicode, "streaming and tree V2 messages differ");

    let mut scratch = Vec::new();
    assert_eq!(
        canon::v2_message(data, &mut scratch).ok(),
        Some(&unicode[..]),
        "v2_message differs from the tree path"
    );

    // We follow Python, which accepts NaN/Infinity and lone surrogates that serde_json refuses;
    // for anything else serde_json must agree that it is JSON.
    let lenient = ascii.windows(3).any(|w| w == b"NaN" || w == b"Inf")
        || ascii.windows(3).any(|w| w == b"\\ud" || w == b"\\uD");
    if !lenient {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&ascii).is_ok(),
            "serde_json refuses our canonical output"
        );
    }
});

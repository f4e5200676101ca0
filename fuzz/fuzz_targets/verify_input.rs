//! The `verify` fuzz target's input layout, shared with the stable replay test
//! (`crates/didit-webhook/tests/fuzz_corpus.rs` includes this file): one flags byte, then the four
//! header values and the body separated by `\n` (X-Signature, X-Signature-V2, X-Signature-Simple,
//! X-Timestamp, body). Flag bits 0–3 say which headers are present, bits 4–5 the policy, bit 6
//! `accept_simple`.

use didit_webhook::{SignatureHeaders, SignaturePolicy, VerifyConfig};

/// Splits an input into headers, body and verifier settings; `None` for an empty input.
pub fn decode(data: &[u8]) -> Option<(SignatureHeaders<'_>, &[u8], VerifyConfig)> {
    let (&flags, rest) = data.split_first()?;
    let mut parts = rest.splitn(5, |&b| b == b'\n');
    let mut next = |present: bool| parts.next().filter(|_| present);
    let headers = SignatureHeaders {
        signature: next(flags & 1 != 0),
        signature_v2: next(flags & 2 != 0),
        signature_simple: next(flags & 4 != 0),
        timestamp: next(flags & 8 != 0),
    };
    let body = parts.next().unwrap_or_default();
    let cfg = VerifyConfig {
        tolerance_secs: 300,
        policy: match flags >> 4 & 3 {
            0 => SignaturePolicy::Any,
            1 => SignaturePolicy::Raw,
            _ => SignaturePolicy::V2,
        },
        accept_simple: flags & 64 != 0,
        max_body: 1 << 20,
    };
    Some((headers, body, cfg))
}

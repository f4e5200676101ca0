//! The verify pipeline, headers and body. Input: one flags byte, then the four header values and
//! the body separated by `\n` (X-Signature, X-Signature-V2, X-Signature-Simple, X-Timestamp, body).
//! Checks: no panic; every MAC × JSON backend gives the same answer; and the same body, correctly
//! signed over its raw bytes, is never refused for its signature.
#![no_main]

use didit_webhook::{
    FixedClock, JsonBackend, Mac, Rejection, RingMac, Scratch, Secret, SerdeJson, SignatureHeaders,
    SignaturePolicy, Verifier, VerifyConfig, WithBackends, real_pairs, with_backends,
};
use libfuzzer_sys::fuzz_target;

mod verify_input;

const NOW: i64 = 1_700_000_000;

fn verify<M: Mac, J: JsonBackend + Default>(
    cfg: VerifyConfig,
    headers: &SignatureHeaders<'_>,
    body: &[u8],
) -> String {
    let secret = Secret::new("fuzz-secret").expect("a non-empty secret");
    let v = Verifier::with_parts(M::new(&secret), J::default(), FixedClock(NOW), cfg);
    let mut scratch = Scratch::new();
    // Envelope and Verified are PartialEq, but over different lifetimes per call: compare text.
    format!("{:?}", v.verify(headers, body, &mut scratch))
}

/// One pair's answer, through the core's dispatch from kinds to types.
struct Verify<'a> {
    cfg: VerifyConfig,
    headers: &'a SignatureHeaders<'a>,
    body: &'a [u8],
}

impl WithBackends for Verify<'_> {
    type Output = String;

    fn run<M: Mac, J: JsonBackend + Default>(self) -> String {
        verify::<M, J>(self.cfg, self.headers, self.body)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((headers, body, cfg)) = verify_input::decode(data) else {
        return;
    };

    let reference = verify::<RingMac, SerdeJson>(cfg, &headers, body);
    for (m, j) in real_pairs() {
        let other = with_backends(
            m,
            j,
            Verify {
                cfg,
                headers: &headers,
                body,
            },
        );
        assert_eq!(reference, other, "ring/serde and {m}/{j} disagree");
    }

    // Signed correctly over the raw body, with a fresh timestamp header: whatever is refused is
    // refused for the body's content, never for the signature.
    let tag = RingMac::new(&Secret::new("fuzz-secret").expect("a non-empty secret")).sign(body);
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let ts = NOW.to_string();
    let signed = SignatureHeaders {
        signature: Some(hex.as_bytes()),
        signature_v2: None,
        signature_simple: None,
        timestamp: Some(ts.as_bytes()),
    };
    let raw_cfg = VerifyConfig {
        policy: SignaturePolicy::Raw,
        ..cfg
    };
    let secret = Secret::new("fuzz-secret").expect("a non-empty secret");
    let v = Verifier::with_parts(RingMac::new(&secret), SerdeJson, FixedClock(NOW), raw_cfg);
    let mut scratch = Scratch::new();
    if let Err(r) = v.verify(&signed, body, &mut scratch) {
        assert!(
            !matches!(
                r,
                Rejection::MissingSignature
                    | Rejection::MalformedSignature
                    | Rejection::InvalidSignature
                    | Rejection::MalformedTimestampHeader
            ),
            "a correctly signed body was refused for its signature: {r:?}"
        );
    }
});

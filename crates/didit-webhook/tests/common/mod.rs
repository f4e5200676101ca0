//! Shared helpers for the integration tests: every behaviour runs against every backend combination.
#![allow(dead_code)]

use didit_webhook::canon::Value;
use didit_webhook::{
    FixedClock, JsonBackend, Mac, Scratch, Secret, SignatureHeaders, SignedDelivery, Signer,
    Verifier, VerifyConfig,
};

pub const SECRET: &str = "harness-test-secret-not-a-real-key";
pub const NOW: i64 = 1_780_000_000;

/// Repeats a generic test `fn name<M: Mac, J: JsonBackend + Default>()` for every real MAC × JSON pair.
#[macro_export]
macro_rules! for_every_backend {
    ($name:ident) => {
        mod $name {
            use didit_webhook::*;
            #[test]
            fn ring_serde() {
                super::$name::<RingMac, SerdeJson>()
            }
            #[test]
            fn ring_simd() {
                super::$name::<RingMac, SimdJson>()
            }
            #[test]
            fn ring_sonic() {
                super::$name::<RingMac, SonicJson>()
            }
            #[test]
            fn rustcrypto_serde() {
                super::$name::<RustCryptoMac, SerdeJson>()
            }
            #[test]
            fn rustcrypto_simd() {
                super::$name::<RustCryptoMac, SimdJson>()
            }
            #[test]
            fn rustcrypto_sonic() {
                super::$name::<RustCryptoMac, SonicJson>()
            }
            #[test]
            fn awslc_serde() {
                super::$name::<AwsLcMac, SerdeJson>()
            }
            #[test]
            fn awslc_simd() {
                super::$name::<AwsLcMac, SimdJson>()
            }
            #[test]
            fn awslc_sonic() {
                super::$name::<AwsLcMac, SonicJson>()
            }
        }
    };
}

/// Repeats a generic test `fn name<M: Mac>()` for every real MAC backend.
#[macro_export]
macro_rules! for_every_mac {
    ($name:ident) => {
        mod $name {
            use didit_webhook::*;
            #[test]
            fn ring() {
                super::$name::<RingMac>()
            }
            #[test]
            fn rustcrypto() {
                super::$name::<RustCryptoMac>()
            }
            #[test]
            fn awslc() {
                super::$name::<AwsLcMac>()
            }
        }
    };
}

pub fn verifier<M: Mac, J: JsonBackend + Default>(
    secret: &str,
    now: i64,
    cfg: VerifyConfig,
) -> Verifier<M, J, FixedClock> {
    Verifier::with_parts(
        M::new(&Secret::new(secret)),
        J::default(),
        FixedClock(now),
        cfg,
    )
}

/// A small valid session event at `ts`.
pub fn event(ts: i64) -> Value {
    let text = format!(
        r#"{{"event_id":"e-1","webhook_type":"status.updated","timestamp":{ts},"created_at":{ts},
            "session_id":"s-1","status":"Approved","vendor_data":"user-1","metadata":{{"k":"Jos\u00e9"}},
            "decision":{{"status":"Approved","score":95.4}}}}"#
    );
    Value::parse(text.as_bytes()).unwrap_or(Value::Null)
}

pub fn sign<M: Mac>(payload: &Value) -> SignedDelivery {
    Signer::<M>::new(&Secret::new(SECRET))
        .sign(payload)
        .expect("test payloads are signable")
}

/// The headers of a signed delivery, all four present.
pub fn headers(d: &SignedDelivery) -> SignatureHeaders<'_> {
    SignatureHeaders {
        signature: Some(d.signature.as_bytes()),
        signature_v2: Some(d.signature_v2.as_bytes()),
        signature_simple: Some(d.signature_simple.as_bytes()),
        timestamp: Some(d.timestamp.as_bytes()),
    }
}

/// Verifies and returns either the scheme or the rejection, so assertions stay one line.
pub fn outcome<M: Mac, J: JsonBackend>(
    v: &Verifier<M, J, FixedClock>,
    h: &SignatureHeaders<'_>,
    body: &[u8],
) -> Result<didit_webhook::Scheme, didit_webhook::Rejection> {
    let mut scratch = Scratch::new();
    v.verify(h, body, &mut scratch).map(|ok| ok.scheme())
}

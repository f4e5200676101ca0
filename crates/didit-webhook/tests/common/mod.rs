//! Shared helpers for the integration tests: every behaviour runs against every backend combination.
#![allow(dead_code)]

use didit_webhook::canon::Value;
use didit_webhook::{
    FixedClock, JsonBackend, Mac, Scratch, Secret, SignatureHeaders, SignedDelivery, Signer,
    Verifier, VerifyConfig,
};

pub const SECRET: &str = "harness-test-secret-not-a-real-key";
pub const NOW: i64 = 1_780_000_000;

/// Runs a generic test `fn name<M: Mac, J: JsonBackend + Default>()` for every real MAC × JSON
/// pair this build of the core has, through the core's one dispatch from kinds to types
/// (`with_backends`): a new backend is tested without touching this file. The pair under test
/// is printed first, so a failure's output names it.
#[macro_export]
macro_rules! for_every_backend {
    ($name:ident) => {
        mod $name {
            use didit_webhook::{JsonBackend, Mac, WithBackends, real_pairs, with_backends};

            struct Each;

            impl WithBackends for Each {
                type Output = ();

                fn run<M: Mac, J: JsonBackend + Default>(self) {
                    eprintln!("{} x {}", M::NAME, J::NAME);
                    super::$name::<M, J>()
                }
            }

            #[test]
            fn every_pair() {
                for (m, j) in real_pairs() {
                    with_backends(m, j, Each);
                }
            }
        }
    };
}

/// Runs a generic test `fn name<M: Mac>()` for every real MAC backend, as above.
#[macro_export]
macro_rules! for_every_mac {
    ($name:ident) => {
        mod $name {
            use didit_webhook::{JsonBackend, JsonKind, Mac, MacKind, WithBackends, with_backends};

            struct Each;

            impl WithBackends for Each {
                type Output = ();

                fn run<M: Mac, J: JsonBackend + Default>(self) {
                    eprintln!("{}", M::NAME);
                    super::$name::<M>()
                }
            }

            #[test]
            fn every_mac() {
                for m in MacKind::REAL {
                    with_backends(*m, JsonKind::Serde, Each);
                }
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
        M::new(&Secret::new(secret).expect("a non-empty secret")),
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
    Signer::<M>::new(&Secret::new(SECRET).expect("a non-empty secret"))
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

/// Compares our canonicaliser and both V2 paths with CPython on every document; describes the
/// first disagreement.
pub fn check_against_python(docs: &[Vec<u8>]) -> Result<(), String> {
    let answers = didit_fixtures::python_oracle(docs).map_err(|e| e.to_string())?;
    for (doc, answer) in docs.iter().zip(answers) {
        let show = || String::from_utf8_lossy(doc).into_owned();
        let ours = didit_webhook::canon::Value::parse(doc);
        match (answer, ours) {
            (didit_fixtures::Oracle::Rejected, Err(_)) => {}
            (didit_fixtures::Oracle::Rejected, Ok(v)) => {
                return Err(format!("Python rejects, we accept {v:?}: {}", show()));
            }
            // A lone surrogate is refused wherever it stands, even in a value that a later
            // duplicate key replaces (Python keeps only the survivor): documented on didit_webhook::canon::Value::parse.
            (
                didit_fixtures::Oracle::Dumps { .. },
                Err(didit_webhook::canon::CanonError::LoneSurrogate),
            ) => {}
            // `json.loads(bytes)` decodes with surrogatepass, so UTF-8-encoded surrogates become
            // lone surrogates there; they are not UTF-8 to us. Neither side can make a V2 message.
            (
                didit_fixtures::Oracle::Dumps { unicode: None, .. },
                Err(didit_webhook::canon::CanonError::InvalidUtf8),
            ) => {}
            (didit_fixtures::Oracle::Dumps { unicode: None, .. }, other) => {
                return Err(format!(
                    "Python finds a lone surrogate, we say {other:?}: {}",
                    show()
                ));
            }
            (didit_fixtures::Oracle::Dumps { .. }, Err(e)) => {
                return Err(format!("Python accepts, we reject ({e}): {}", show()));
            }
            (
                didit_fixtures::Oracle::Dumps {
                    ascii,
                    unicode: Some(unicode),
                },
                Ok(v),
            ) => {
                let mut ours_ascii = Vec::new();
                didit_webhook::canon::write_value(
                    &v,
                    didit_webhook::canon::Escaping::Ascii,
                    &mut ours_ascii,
                );
                if ours_ascii != ascii {
                    return Err(format!(
                        "ASCII dump differs for {}\n python: {}\n    ours: {}",
                        show(),
                        String::from_utf8_lossy(&ascii),
                        String::from_utf8_lossy(&ours_ascii)
                    ));
                }
                let mut ours_unicode = Vec::new();
                didit_webhook::canon::write_value(
                    &v,
                    didit_webhook::canon::Escaping::Unicode,
                    &mut ours_unicode,
                );
                if ours_unicode != unicode {
                    return Err(format!(
                        "V2 dump differs for {}\n python: {}\n    ours: {}",
                        show(),
                        String::from_utf8_lossy(&unicode),
                        String::from_utf8_lossy(&ours_unicode)
                    ));
                }
                // The streaming path must accept Python's own wire output and agree byte for byte.
                let mut out = Vec::new();
                let fast = match didit_webhook::canon::v2_from_wire(&ascii, &mut out) {
                    didit_webhook::canon::V2Message::SameAsBody => ascii.clone(),
                    didit_webhook::canon::V2Message::Rewritten => out,
                    didit_webhook::canon::V2Message::NotCanonical => {
                        return Err(format!(
                            "fast path declines Python's wire form {}",
                            String::from_utf8_lossy(&ascii)
                        ));
                    }
                };
                if fast != unicode {
                    return Err(format!(
                        "fast V2 differs for {}\n python: {}\n    fast: {}",
                        String::from_utf8_lossy(&ascii),
                        String::from_utf8_lossy(&unicode),
                        String::from_utf8_lossy(&fast)
                    ));
                }
                let mut scratch = Vec::new();
                if didit_webhook::canon::v2_message(doc, &mut scratch) != Ok(&unicode[..]) {
                    return Err(format!("v2_message differs for {}", show()));
                }
            }
        }
    }
    Ok(())
}

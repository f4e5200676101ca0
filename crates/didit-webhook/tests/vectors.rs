//! Known-answer vectors from `crates/didit-fixtures/fixtures/didit-v3-signature-vectors.json`, for every backend.

mod common;

use common::outcome;
use didit_webhook::canon::{self, Escaping, Value};
use didit_webhook::{
    JsonBackend, Mac, Rejection, Scheme, Scratch, Secret, SignatureHeaders, SignaturePolicy,
    Signer, VerifyConfig, simple_message_of,
};

fn cases() -> Vec<didit_fixtures::Case> {
    let cases = didit_fixtures::vectors().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cases.len() >= 17,
        "expected every vector set, got {}",
        cases.len()
    );
    cases
}

fn headers(c: &didit_fixtures::Case) -> SignatureHeaders<'_> {
    SignatureHeaders {
        signature: Some(c.signature.as_bytes()),
        signature_v2: Some(c.signature_v2.as_bytes()),
        signature_simple: Some(c.signature_simple.as_bytes()),
        timestamp: None,
    }
}

fn known_answers<M: Mac, J: JsonBackend + Default>() {
    for c in cases() {
        let ts = c.timestamp.to_string();
        let with = |policy, accept_simple| {
            common::verifier::<M, J>(
                &c.secret,
                c.timestamp,
                VerifyConfig {
                    policy,
                    accept_simple,
                    ..VerifyConfig::default()
                },
            )
        };
        let mut h = headers(&c);
        h.timestamp = Some(ts.as_bytes());
        let body = c.body.as_bytes();
        assert_eq!(
            outcome(&with(SignaturePolicy::Any, false), &h, body),
            Ok(Scheme::Raw),
            "{}",
            c.id
        );
        assert_eq!(
            outcome(&with(SignaturePolicy::Raw, false), &h, body),
            Ok(Scheme::Raw),
            "{}",
            c.id
        );
        assert_eq!(
            outcome(&with(SignaturePolicy::V2, false), &h, body),
            Ok(Scheme::V2),
            "{}",
            c.id
        );

        // Simple alone verifies only when opted in.
        let simple_only = SignatureHeaders {
            signature_simple: Some(c.signature_simple.as_bytes()),
            ..SignatureHeaders::default()
        };
        assert_eq!(
            outcome(&with(SignaturePolicy::Any, true), &simple_only, body),
            Ok(Scheme::Simple),
            "{}",
            c.id
        );
        assert_eq!(
            outcome(&with(SignaturePolicy::Any, false), &simple_only, body),
            Err(Rejection::MissingSignature),
            "{}",
            c.id
        );

        // The verified envelope carries the signed timestamp.
        let v = with(SignaturePolicy::Any, false);
        let mut scratch = Scratch::new();
        let ok = v
            .verify(&h, body, &mut scratch)
            .unwrap_or_else(|r| panic!("{}: {r}", c.id));
        assert_eq!(ok.timestamp_secs(), Some(c.timestamp), "{}", c.id);

        // Middleware re-encoding breaks X-Signature but not V2.
        if let Some(re) = &c.reencoded_body {
            assert_eq!(
                outcome(&with(SignaturePolicy::Any, false), &h, re.as_bytes()),
                Ok(Scheme::V2),
                "{}",
                c.id
            );
            assert_eq!(
                outcome(&with(SignaturePolicy::V2, false), &h, re.as_bytes()),
                Ok(Scheme::V2),
                "{}",
                c.id
            );
            assert_eq!(
                outcome(&with(SignaturePolicy::Raw, false), &h, re.as_bytes()),
                Err(Rejection::InvalidSignature),
                "{}",
                c.id
            );
        }

        // One changed byte inside a value breaks every signature.
        let tampered = c.body.replacen("\"status\":\"", "\"status\":\"X", 1);
        assert_ne!(tampered, c.body);
        assert_eq!(
            outcome(&with(SignaturePolicy::Any, false), &h, tampered.as_bytes()),
            Err(Rejection::InvalidSignature),
            "{}",
            c.id
        );
    }
}
for_every_backend!(known_answers);

fn signer_reproduces_didit<M: Mac>() {
    for c in cases() {
        let payload = Value::parse(c.body.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        let signed = Signer::<M>::new(&Secret::new(&c.secret).expect("a non-empty secret"))
            .sign(&payload)
            .unwrap_or_else(|e| panic!("{}: {e}", c.id));
        assert_eq!(String::from_utf8_lossy(&signed.body), c.body, "{}", c.id);
        assert_eq!(signed.signature.as_str(), c.signature, "{}", c.id);
        assert_eq!(signed.signature_v2.as_str(), c.signature_v2, "{}", c.id);
        assert_eq!(
            signed.signature_simple.as_str(),
            c.signature_simple,
            "{}",
            c.id
        );
        assert_eq!(signed.timestamp, c.timestamp.to_string(), "{}", c.id);

        let mut simple = Vec::new();
        simple_message_of(&payload, &mut simple).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        assert_eq!(
            String::from_utf8_lossy(&simple),
            c.simple_message,
            "{}",
            c.id
        );

        // Both V2 paths produce the published canonical text.
        let mut scratch = Vec::new();
        let v2 = canon::v2_message(c.body.as_bytes(), &mut scratch).map(<[u8]>::to_vec);
        assert_eq!(v2.as_deref(), Ok(c.v2_canonical.as_bytes()), "{}", c.id);
        let mut slow = Vec::new();
        canon::canonicalize(c.body.as_bytes(), Escaping::Unicode, &mut slow).expect("valid");
        assert_eq!(slow, c.v2_canonical.as_bytes(), "{}", c.id);
        if let Some(re) = &c.reencoded_body {
            let mut scratch = Vec::new();
            let v2 = canon::v2_message(re.as_bytes(), &mut scratch).map(<[u8]>::to_vec);
            assert_eq!(
                v2.as_deref(),
                Ok(c.v2_canonical.as_bytes()),
                "{} re-encoded",
                c.id
            );
        }
    }
}
for_every_mac!(signer_reproduces_didit);

/// The tests above run on every pair the core lists; this build must list all nine, or a
/// backend would go untested without a failure.
#[test]
fn every_backend_is_compiled_into_the_tests() {
    let pairs: Vec<String> = didit_webhook::real_pairs()
        .map(|(m, j)| format!("{m}:{j}"))
        .collect();
    assert_eq!(pairs.len(), 9, "{pairs:?}");
}

#[test]
fn body_digests_match_the_published_sha256() {
    for c in cases() {
        let d = ring::digest::digest(&ring::digest::SHA256, c.body.as_bytes());
        assert_eq!(
            didit_webhook::HexTag::new(&d.as_ref().try_into().expect("32 bytes")).as_str(),
            c.body_sha256,
            "{}",
            c.id
        );
    }
}

#[test]
fn sample_fixture_canonicalises_to_the_wire_fixture() {
    let pretty = didit_fixtures::read_fixture(didit_fixtures::SAMPLE_PRETTY)
        .unwrap_or_else(|e| panic!("{e}"));
    let wire =
        didit_fixtures::read_fixture(didit_fixtures::SAMPLE_WIRE).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    canon::canonicalize(&pretty, Escaping::Ascii, &mut out).expect("the sample is valid JSON");
    // The wire fixture may end with a newline added by the tool that saved it.
    assert_eq!(out, wire.trim_ascii_end());
    // The 39-digit integer that shorten_floats makes of 1.1812083616449413e+38.
    assert!(
        String::from_utf8_lossy(&out)
            .contains("\"serial_number\":118120836164494129544568202238038638592")
    );
    let sample = cases()
        .into_iter()
        .find(|c| c.id == "sample_full")
        .expect("sample_full vector");
    assert_eq!(out, sample.body.as_bytes());
}

//! Every rejection path of the verifier, with its HTTP status, for every backend combination.

mod common;

use common::{NOW, event, headers, outcome, sign, verifier};
use didit_webhook::canon::Value;
use didit_webhook::{
    JsonBackend, Mac, Rejection, Scheme, Scratch, Secret, SignatureHeaders, SignaturePolicy,
    Signer, VerifyConfig,
};

fn cfg() -> VerifyConfig {
    VerifyConfig::default()
}

fn signature_rejections<M: Mac, J: JsonBackend + Default>() {
    let v = verifier::<M, J>(common::SECRET, NOW, cfg());
    let d = sign::<M>(&event(NOW));
    let h = headers(&d);
    assert_eq!(outcome(&v, &h, &d.body), Ok(Scheme::Raw));

    // No signature header at all.
    let none = SignatureHeaders {
        timestamp: h.timestamp,
        ..SignatureHeaders::default()
    };
    assert_eq!(
        outcome(&v, &none, &d.body),
        Err(Rejection::MissingSignature)
    );

    // Headers of the wrong shape are refused before any HMAC.
    let upper = d.signature.as_str().to_uppercase();
    let short = &d.signature.as_str()[..63];
    let long = format!("{}0", d.signature);
    let spaced = format!(" {}", &d.signature.as_str()[1..]);
    let prefixed = format!("sha256={}", &d.signature.as_str()[7..]);
    for bad in [
        upper.as_str(),
        short,
        long.as_str(),
        spaced.as_str(),
        prefixed.as_str(),
        "",
    ] {
        let hb = SignatureHeaders {
            signature: Some(bad.as_bytes()),
            ..h
        };
        assert_eq!(
            outcome(&v, &hb, &d.body),
            Err(Rejection::MalformedSignature),
            "{bad:?}"
        );
    }

    // Well-formed but wrong.
    let wrong = Signer::<M>::new(&Secret::new("another-secret").expect("a non-empty secret"))
        .sign(&event(NOW))
        .expect("signable");
    assert_eq!(
        outcome(&v, &headers(&wrong), &d.body),
        Err(Rejection::InvalidSignature)
    );

    // A valid V2 rescues a broken X-Signature, but only under a policy that accepts V2.
    let hv2 = SignatureHeaders {
        signature: Some(wrong.signature.as_bytes()),
        ..h
    };
    assert_eq!(outcome(&v, &hv2, &d.body), Ok(Scheme::V2));
    let raw_only = verifier::<M, J>(
        common::SECRET,
        NOW,
        VerifyConfig {
            policy: SignaturePolicy::Raw,
            ..cfg()
        },
    );
    assert_eq!(
        outcome(&raw_only, &hv2, &d.body),
        Err(Rejection::InvalidSignature)
    );
    let v2_only = verifier::<M, J>(
        common::SECRET,
        NOW,
        VerifyConfig {
            policy: SignaturePolicy::V2,
            ..cfg()
        },
    );
    let raw_header_only = SignatureHeaders {
        signature: h.signature,
        timestamp: h.timestamp,
        ..SignatureHeaders::default()
    };
    assert_eq!(
        outcome(&v2_only, &raw_header_only, &d.body),
        Err(Rejection::MissingSignature)
    );

    // Tampering with any byte of the body.
    let mut tampered = d.body.clone();
    let at = tampered.iter().position(|&b| b == b'1').expect("a digit");
    tampered[at] = b'2';
    assert_eq!(outcome(&v, &h, &tampered), Err(Rejection::InvalidSignature));

    // A different secret on the receiving side.
    let other = verifier::<M, J>("harness-test-secret-not-a-real-kez", NOW, cfg());
    assert_eq!(
        outcome(&other, &h, &d.body),
        Err(Rejection::InvalidSignature)
    );
}
for_every_backend!(signature_rejections);

fn simple_signature<M: Mac, J: JsonBackend + Default>() {
    let d = sign::<M>(&event(NOW));
    let simple_only = SignatureHeaders {
        signature_simple: Some(d.signature_simple.as_bytes()),
        timestamp: Some(d.timestamp.as_bytes()),
        ..SignatureHeaders::default()
    };
    let off = verifier::<M, J>(common::SECRET, NOW, cfg());
    assert_eq!(
        outcome(&off, &simple_only, &d.body),
        Err(Rejection::MissingSignature)
    );
    let on = verifier::<M, J>(
        common::SECRET,
        NOW,
        VerifyConfig {
            accept_simple: true,
            ..cfg()
        },
    );
    let mut scratch = Scratch::new();
    let ok = on
        .verify(&simple_only, &d.body, &mut scratch)
        .expect("Simple verifies");
    assert_eq!(ok.scheme(), Scheme::Simple);
    // Only the four signed fields survive; the rest of the body was not authenticated.
    assert_eq!(ok.session_id(), Some("s-1"));
    assert_eq!(ok.status().map(|s| s.as_str()), Some("Approved"));
    assert_eq!(ok.event_id, None);
    assert_eq!(ok.vendor_data, None);
    assert!(!ok.has_decision && !ok.has_metadata);

    // Changing an unsigned field keeps Simple valid (that is its weakness); a signed one does not.
    let mut p = event(NOW);
    p.as_object_mut()
        .expect("object")
        .insert("vendor_data", Value::from("attacker"));
    let forged = Signer::<M>::new(&Secret::new(common::SECRET).expect("a non-empty secret"))
        .sign(&p)
        .expect("signable")
        .body;
    assert_eq!(outcome(&on, &simple_only, &forged), Ok(Scheme::Simple));
    let mut p = event(NOW);
    p.as_object_mut()
        .expect("object")
        .insert("status", Value::from("Declined"));
    let forged = Signer::<M>::new(&Secret::new(common::SECRET).expect("a non-empty secret"))
        .sign(&p)
        .expect("signable")
        .body;
    assert_eq!(
        outcome(&on, &simple_only, &forged),
        Err(Rejection::InvalidSignature)
    );
    // An unreadable body cannot be Simple-verified.
    assert_eq!(
        outcome(&on, &simple_only, b"{not json"),
        Err(Rejection::InvalidSignature)
    );
}
for_every_backend!(simple_signature);

fn freshness<M: Mac, J: JsonBackend + Default>() {
    let at = |now: i64, body_ts: i64, header: Option<&str>| {
        let v = verifier::<M, J>(common::SECRET, now, cfg());
        let d = sign::<M>(&event(body_ts));
        let h = SignatureHeaders {
            timestamp: header.map(str::as_bytes),
            ..headers(&d)
        };
        outcome(&v, &h, &d.body)
    };
    let ts = NOW.to_string();
    // Exactly at the tolerance is accepted, one second past it is not, in both directions.
    assert_eq!(at(NOW + 300, NOW, None), Ok(Scheme::Raw));
    assert_eq!(at(NOW - 300, NOW, None), Ok(Scheme::Raw));
    assert_eq!(at(NOW + 301, NOW, None), Err(Rejection::Stale));
    assert_eq!(at(NOW - 301, NOW, None), Err(Rejection::FromFuture));
    // The unsigned header is checked first, and must equal the signed body timestamp.
    assert_eq!(at(NOW + 301, NOW, Some(&ts)), Err(Rejection::Stale));
    assert_eq!(at(NOW - 301, NOW, Some(&ts)), Err(Rejection::FromFuture));
    let refreshed = (NOW + 400).to_string();
    assert_eq!(
        at(NOW + 400, NOW, Some(&refreshed)),
        Err(Rejection::TimestampMismatch)
    );
    let off_by_one = (NOW + 1).to_string();
    assert_eq!(
        at(NOW, NOW, Some(&off_by_one)),
        Err(Rejection::TimestampMismatch)
    );
    for bad in [
        "",
        "abc",
        "-5",
        "1e9",
        " 1780000000",
        "1780000000 ",
        "+1780000000",
        "1780000000.0",
        "99999999999999999999",
    ] {
        assert_eq!(
            at(NOW, NOW, Some(bad)),
            Err(Rejection::MalformedTimestampHeader),
            "{bad:?}"
        );
    }
    // A custom tolerance.
    let strict = verifier::<M, J>(
        common::SECRET,
        NOW + 11,
        VerifyConfig {
            tolerance_secs: 10,
            ..cfg()
        },
    );
    let d = sign::<M>(&event(NOW));
    assert_eq!(
        outcome(&strict, &headers(&d), &d.body),
        Err(Rejection::Stale)
    );
}
for_every_backend!(freshness);

/// Bodies that are signed correctly but are not valid envelopes: 400, never a panic.
fn malformed_after_valid_signature<M: Mac, J: JsonBackend + Default>() {
    let signer = Signer::<M>::new(&Secret::new(common::SECRET).expect("a non-empty secret"));
    let v = verifier::<M, J>(
        common::SECRET,
        NOW,
        VerifyConfig {
            policy: SignaturePolicy::Raw,
            ..cfg()
        },
    );
    let check = |body: &[u8], want: Rejection, what: &str| {
        let sig = signer.sign_bytes(body);
        let h = SignatureHeaders {
            signature: Some(sig.as_bytes()),
            ..SignatureHeaders::default()
        };
        assert_eq!(outcome(&v, &h, body), Err(want), "{what} via {}", J::NAME);
    };
    let good = sign::<M>(&event(NOW)).body;
    check(
        &good[..good.len() / 2],
        Rejection::MalformedPayload,
        "truncated",
    );
    check(b"", Rejection::MalformedPayload, "empty");
    check(b"not json", Rejection::MalformedPayload, "not JSON");
    check(b"[1,2,3]", Rejection::MalformedPayload, "an array");
    let mut bad_utf8 = good.clone();
    let at = bad_utf8
        .windows(3)
        .position(|w| w == b"s-1")
        .expect("session id");
    bad_utf8[at] = 0xff;
    check(&bad_utf8, Rejection::MalformedPayload, "invalid UTF-8");
    let ts = NOW.to_string();
    let dup = format!(
        r#"{{"timestamp":{ts},"webhook_type":"status.updated","status":"Approved","status":"Declined"}}"#
    );
    check(
        dup.as_bytes(),
        Rejection::MalformedPayload,
        "duplicate envelope key",
    );
    let deep = format!(
        r#"{{"timestamp":{ts},"webhook_type":"status.updated","decision":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    check(
        deep.as_bytes(),
        Rejection::MalformedPayload,
        "10,000-deep nesting",
    );
    let deeper = format!(
        r#"{{"timestamp":{ts},"webhook_type":"status.updated","decision":{}{}}}"#,
        "[".repeat(400_000),
        "]".repeat(400_000)
    );
    check(
        deeper.as_bytes(),
        Rejection::MalformedPayload,
        "400,000-deep nesting",
    );
    let huge_ts = format!(
        r#"{{"timestamp":{},"webhook_type":"status.updated"}}"#,
        "9".repeat(5000)
    );
    // Every backend refuses a number beyond f64's range outright; Python refuses over 4,300 digits.
    check(
        huge_ts.as_bytes(),
        Rejection::MalformedPayload,
        "5,000-digit timestamp",
    );
    let huge_nested = format!(
        r#"{{"timestamp":{ts},"webhook_type":"status.updated","decision":{{"score":{}}}}}"#,
        "9".repeat(5000)
    );
    check(
        huge_nested.as_bytes(),
        Rejection::MalformedPayload,
        "5,000-digit number in the decision",
    );
    check(
        format!(r#"{{"webhook_type":"status.updated","created_at":{ts}}}"#).as_bytes(),
        Rejection::MissingTimestamp,
        "no timestamp",
    );
    check(
        format!(r#"{{"timestamp":{ts}}}"#).as_bytes(),
        Rejection::MissingWebhookType,
        "no webhook_type",
    );
    check(
        format!(r#"{{"timestamp":{ts},"webhook_type":null}}"#).as_bytes(),
        Rejection::MissingWebhookType,
        "null webhook_type",
    );
    for bad_ts in [
        "\"1780000000\"",
        "1780000000.5",
        "1.78e9",
        "null",
        "true",
        "[1780000000]",
        "{}",
        "9223372036854775808",
        "-9223372036854775809",
    ] {
        let body = format!(r#"{{"timestamp":{bad_ts},"webhook_type":"status.updated"}}"#);
        check(body.as_bytes(), Rejection::InvalidTimestamp, bad_ts);
    }
    check(
        format!(r#"{{"timestamp":{ts},"webhook_type":"status.updated","status":42}}"#).as_bytes(),
        Rejection::MalformedPayload,
        "status of the wrong type",
    );
    check(
        format!(r#"{{"timestamp":{ts},"webhook_type":"status.updated","event_id":["x"]}}"#)
            .as_bytes(),
        Rejection::MalformedPayload,
        "event_id of the wrong type",
    );
}
for_every_backend!(malformed_after_valid_signature);

fn oversize_is_refused_first<M: Mac, J: JsonBackend + Default>() {
    let v = verifier::<M, J>(
        common::SECRET,
        NOW,
        VerifyConfig {
            max_body: 64,
            ..cfg()
        },
    );
    let d = sign::<M>(&event(NOW));
    assert!(d.body.len() > 64);
    assert_eq!(
        outcome(&v, &headers(&d), &d.body),
        Err(Rejection::PayloadTooLarge)
    );
    // Even without any signature: size is the first check.
    assert_eq!(
        outcome(&v, &SignatureHeaders::default(), &d.body),
        Err(Rejection::PayloadTooLarge)
    );
    let roomy = verifier::<M, J>(
        common::SECRET,
        NOW,
        VerifyConfig {
            max_body: d.body.len(),
            ..cfg()
        },
    );
    assert_eq!(outcome(&roomy, &headers(&d), &d.body), Ok(Scheme::Raw));
}
for_every_backend!(oversize_is_refused_first);

fn unknown_values_are_kept<M: Mac, J: JsonBackend + Default>() {
    let mut p = event(NOW);
    let m = p.as_object_mut().expect("object");
    m.insert("status", Value::from("Some New Status"));
    m.insert("webhook_type", Value::from("session.future_event"));
    m.insert("brand_new_field", Value::from("ignored"));
    let d = sign::<M>(&p);
    let v = verifier::<M, J>(common::SECRET, NOW, cfg());
    let mut scratch = Scratch::new();
    let ok = v
        .verify(&headers(&d), &d.body, &mut scratch)
        .expect("verifies");
    assert_eq!(ok.status().map(|s| s.as_str()), Some("Some New Status"));
    assert!(matches!(ok.status(), Some(didit_webhook::Status::Other(_))));
    assert_eq!(
        ok.webhook_type().map(|w| w.as_str()),
        Some("session.future_event")
    );
    assert_eq!(ok.event_id.as_deref(), Some("e-1"));
    assert_eq!(
        ok.verified_at(),
        NOW,
        "the clock reading used for freshness"
    );
    assert_eq!(ok.vendor_data.as_deref(), Some("user-1"));
    assert!(ok.has_decision && ok.has_metadata && !ok.has_resubmit_info);
}
for_every_backend!(unknown_values_are_kept);

#[test]
fn statuses_are_the_contracts() {
    use Rejection::*;
    for r in Rejection::ALL {
        let want = match r {
            PayloadTooLarge => 413,
            MissingSignature | MalformedSignature | InvalidSignature | TimestampMismatch
            | Stale | FromFuture => 401,
            MalformedTimestampHeader
            | MalformedPayload
            | MissingTimestamp
            | InvalidTimestamp
            | MissingWebhookType => 400,
        };
        assert_eq!(r.status(), want, "{r:?}");
        assert!(!r.to_string().ends_with('.'), "{r}");
    }
    let reasons: std::collections::HashSet<_> = Rejection::ALL.iter().map(|r| r.reason()).collect();
    assert_eq!(
        reasons.len(),
        Rejection::ALL.len(),
        "metric labels are unique"
    );
}

#[test]
fn null_backends_measure_only_the_harness() {
    use didit_webhook::{NullJson, NullMac, RingMac};
    let d = sign::<RingMac>(&event(NOW));
    let h = SignatureHeaders {
        signature: Some(&[b'0'; 64]),
        timestamp: Some(d.timestamp.as_bytes()),
        ..SignatureHeaders::default()
    };
    let v = verifier::<NullMac, NullJson>(common::SECRET, NOW, cfg());
    assert_eq!(outcome(&v, &h, b"anything"), Ok(Scheme::Raw));
    // The header is still checked for freshness and syntax.
    let later = verifier::<NullMac, NullJson>(common::SECRET, NOW + 301, cfg());
    assert_eq!(outcome(&later, &h, b"anything"), Err(Rejection::Stale));
    let bad = SignatureHeaders {
        signature: Some(b"zz"),
        ..h
    };
    assert_eq!(
        outcome(&v, &bad, b"anything"),
        Err(Rejection::MalformedSignature)
    );
}

#[test]
fn backend_names_parse_with_helpful_errors() {
    use didit_webhook::{JsonKind, MacKind};
    for k in MacKind::REAL {
        assert_eq!(k.name().parse::<MacKind>(), Ok(*k));
    }
    for k in JsonKind::REAL {
        assert_eq!(k.name().parse::<JsonKind>(), Ok(*k));
    }
    let err = "openssl"
        .parse::<MacKind>()
        .expect_err("unknown")
        .to_string();
    assert_eq!(
        err,
        "unknown HMAC backend `openssl`; expected one of: ring, rustcrypto, aws-lc, null"
    );
    let err = "yaml".parse::<JsonKind>().expect_err("unknown").to_string();
    assert_eq!(
        err,
        "unknown JSON `yaml`; expected one of: serde, simd, sonic, null"
    );
}

/// Numbers Python accepts but an IEEE double cannot hold (Didit never sends them): every backend
/// accepts them like Python. simd-json alone refuses them (it converts every number), so its
/// backend asks serde_json for a second opinion on what it refuses (found by the `envelope` fuzz
/// target); this pins that they agree.
fn numbers_beyond_f64<M: Mac, J: JsonBackend + Default>() {
    let signer = Signer::<M>::new(&Secret::new(common::SECRET).expect("a non-empty secret"));
    let v = verifier::<M, J>(common::SECRET, NOW, cfg());
    for n in ["9".repeat(400), "1e400".to_string()] {
        let body = format!(
            r#"{{"timestamp":{NOW},"webhook_type":"status.updated","decision":{{"n":{n}}}}}"#
        );
        let sig = signer.sign_bytes(body.as_bytes());
        let h = SignatureHeaders {
            signature: Some(sig.as_bytes()),
            ..SignatureHeaders::default()
        };
        assert_eq!(
            outcome(&v, &h, body.as_bytes()),
            Ok(Scheme::Raw),
            "{}",
            &n[..5]
        );
    }
}
for_every_backend!(numbers_beyond_f64);

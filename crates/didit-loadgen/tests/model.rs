//! The traffic model against the core crate and CPython: every generated delivery is encoded and
//! signed exactly as Didit would, and every bad-traffic class gets the rejection its label names.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use didit_fixtures::{Oracle, python_oracle};
use didit_loadgen::scenario::Scenario;
use didit_loadgen::{Acked, Class, Delivery, Expect, Generator, PayloadKind, Templates};
use didit_webhook::{
    FixedClock, HexTag, Mac, RingMac, Scratch, Secret, SerdeJson, SignatureHeaders, Signer,
    Verifier, VerifyConfig,
};

const SECRET: &str = "whsec_loadgen-test_Zx81";

fn scenario(extra: &str) -> Scenario {
    let mut weights = String::new();
    for k in PayloadKind::ALL {
        weights.push_str(&format!("{} = 1\n", k.key()));
    }
    let text = format!(
        "name = \"t\"\n[load]\nshape = \"constant\"\nrate = 10\n[payloads]\n{weights}{extra}"
    );
    Scenario::parse(&text, Path::new("test.toml")).expect("valid scenario")
}

fn generator(s: &Scenario, seed: u64) -> Generator {
    let templates = Arc::new(Templates::load().expect("fixtures"));
    Generator::new(
        templates,
        s,
        &Secret::new(SECRET).expect("a non-empty secret"),
        Acked::shared(),
        seed,
    )
}

fn verify(d: &Delivery, now: i64, cfg: VerifyConfig) -> Result<(), didit_webhook::Rejection> {
    let v: Verifier<RingMac, SerdeJson, FixedClock> = Verifier::with_parts(
        RingMac::new(&Secret::new(SECRET).expect("a non-empty secret")),
        SerdeJson,
        FixedClock(now),
        cfg,
    );
    let headers = SignatureHeaders::from_lookup(|name| d.header(name).map(str::as_bytes));
    let mut scratch = Scratch::new();
    v.verify(&headers, &d.body, &mut scratch).map(|_| ())
}

const NOW: i64 = 1_800_000_000;

#[test]
fn every_template_renders_what_the_full_signer_produces() {
    let s = scenario("");
    let mut g = generator(&s, 7);
    let templates = g.templates().clone();
    let signer = Signer::<RingMac>::new(&Secret::new(SECRET).expect("a non-empty secret"));
    // Several renders per template, in one second and across seconds, so both the cached and the
    // recomputed prefix paths are checked.
    let mut checked = 0;
    for kind in PayloadKind::ALL {
        for round in 0..3 {
            let d = g.make(Class::Valid, NOW + round / 2);
            let o = d.origin.as_ref().expect("valid deliveries have an origin");
            assert_eq!(templates.kind_of(o.template), d.label.kind);
            let fill = didit_loadgen::template::Fill {
                session_id: &o.session_id,
                event_id: &o.event_id,
                vendor_data: &o.vendor_data,
                timestamp: o.timestamp,
            };
            let value = templates.get(o.template).value(&fill);
            let full = signer.sign(&value).expect("signable");
            assert_eq!(&full.body[..], &d.body[..], "{kind:?} body");
            assert_eq!(d.header("x-signature"), Some(full.signature.as_str()));
            assert_eq!(d.header("x-signature-v2"), Some(full.signature_v2.as_str()));
            assert_eq!(
                d.header("x-signature-simple"),
                Some(full.signature_simple.as_str()),
                "{kind:?} simple"
            );
            assert_eq!(d.header("x-timestamp"), Some(full.timestamp.as_str()));
            assert_eq!(d.header("user-agent"), Some(didit_webhook::USER_AGENT));
            assert_eq!(verify(&d, NOW, VerifyConfig::default()), Ok(()));
            checked += 1;
        }
    }
    assert!(checked >= 39);
}

#[test]
fn wire_bodies_match_cpython_and_v2_signs_pythons_unicode_dump() {
    let s = scenario("");
    let mut g = generator(&s, 11);
    let mut ds = Vec::new();
    for _ in 0..60 {
        ds.push(g.make(Class::Valid, NOW));
    }
    let docs: Vec<Vec<u8>> = ds.iter().map(|d| d.body.to_vec()).collect();
    let oracle = python_oracle(&docs).expect("python3 runs");
    let mac = RingMac::new(&Secret::new(SECRET).expect("a non-empty secret"));
    let mut non_ascii = 0;
    for (d, o) in ds.iter().zip(oracle) {
        let Oracle::Dumps {
            ascii,
            unicode: Some(unicode),
        } = o
        else {
            panic!("CPython refused a generated body: {:?}", d.label);
        };
        assert_eq!(
            ascii,
            d.body.to_vec(),
            "wire form is json.dumps(sort_keys, compact)"
        );
        let v2 = HexTag::new(&mac.sign(&unicode));
        assert_eq!(d.header("x-signature-v2"), Some(v2.as_str()));
        if unicode != ascii {
            non_ascii += 1;
        }
    }
    assert!(non_ascii > 0, "the mix must include non-ASCII names");
}

#[test]
fn every_bad_class_gets_the_rejection_its_label_names() {
    let s = scenario("");
    let mut g = generator(&s, 3);
    // Replays and retries need acknowledged deliveries first.
    for _ in 0..20 {
        let d = g.make(Class::Valid, NOW);
        g.remember(&d);
    }
    let cfg = VerifyConfig {
        max_body: s.receiver.max_body,
        ..VerifyConfig::default()
    };
    for class in Class::ALL {
        for _ in 0..10 {
            let d = g.make(class, NOW);
            assert_eq!(d.label.class, class);
            let got = verify(&d, NOW, cfg);
            match d.label.expect {
                // The verifier admits these; the processing stage decides accepted or duplicate.
                Expect::Accepted | Expect::Duplicate => {
                    assert_eq!(got, Ok(()), "{class:?} {:?}", d.label.kind)
                }
                Expect::Rejected(r) => assert_eq!(got, Err(r), "{class:?} {:?}", d.label.kind),
                Expect::NullOk => panic!("only calibration runs expect the null endpoint"),
            }
        }
    }
}

#[test]
fn simple_only_is_accepted_when_the_receiver_accepts_simple() {
    let s = scenario("[receiver]\naccept_simple = true\n");
    let mut g = generator(&s, 5);
    let d = g.make(Class::SimpleOnly, NOW);
    assert_eq!(d.label.expect, Expect::Accepted);
    let cfg = VerifyConfig {
        accept_simple: true,
        ..VerifyConfig::default()
    };
    assert_eq!(verify(&d, NOW, cfg), Ok(()));
}

#[test]
fn replays_and_retries_reuse_acknowledged_event_ids() {
    let s = scenario("");
    let mut g = generator(&s, 9);
    // Nothing acknowledged yet: a replay falls back to a fresh valid delivery.
    assert_eq!(g.make(Class::Replay, NOW).label.class, Class::Valid);
    let first = g.make(Class::Valid, NOW - 10);
    g.remember(&first);
    let replay = g.make(Class::Replay, NOW);
    assert_eq!(replay.label.expect, Expect::Duplicate);
    assert_eq!(replay.body, first.body);
    let retry = g.make(Class::Retry, NOW);
    assert_eq!(retry.event_id(), first.event_id());
    assert_ne!(
        retry.body, first.body,
        "a retry is re-signed with a fresh timestamp"
    );
    assert_eq!(retry.header("x-timestamp"), Some(NOW.to_string().as_str()));
    // Too old to replay inside the window: not used.
    let mut g2 = generator(&s, 10);
    let old = g2.make(Class::Valid, NOW - 290);
    g2.remember(&old);
    assert_eq!(g2.make(Class::Replay, NOW).label.class, Class::Valid);
}

#[test]
fn shares_and_weights_shape_the_mix() {
    let s = scenario("[bad]\nstale = 0.10\nbad_signature = 0.05\n");
    let mut g = generator(&s, 1);
    let n = 20_000;
    let mut classes: HashMap<Class, usize> = HashMap::new();
    let mut kinds: HashMap<PayloadKind, usize> = HashMap::new();
    for _ in 0..n {
        let d = g.next(NOW);
        *classes.entry(d.label.class).or_default() += 1;
        *kinds.entry(d.label.kind).or_default() += 1;
    }
    let share = |c: Class| classes.get(&c).copied().unwrap_or(0) as f64 / n as f64;
    // Binomial standard deviation at n = 20,000 is under 0.4 %; allow about four of them.
    assert!((share(Class::Stale) - 0.10).abs() < 0.015, "{classes:?}");
    assert!(
        (share(Class::BadSignature) - 0.05).abs() < 0.01,
        "{classes:?}"
    );
    assert!((share(Class::Valid) - 0.85).abs() < 0.015, "{classes:?}");
    assert_eq!(share(Class::Replay), 0.0);
    for k in PayloadKind::ALL {
        let got = kinds.get(&k).copied().unwrap_or(0) as f64 / n as f64;
        assert!((got - 1.0 / 13.0).abs() < 0.015, "{k:?}: {got}");
    }
}

#[test]
fn payload_sizes_are_realistic() {
    let s = scenario("");
    let mut g = generator(&s, 2);
    let mut size = |k: PayloadKind| {
        let templates = g.templates().clone();
        loop {
            let d = g.make(Class::Valid, NOW);
            if templates.kind_of(d.origin.as_ref().expect("origin").template) == k {
                return d.body.len();
            }
        }
    };
    assert!(size(PayloadKind::NotStarted) < 600);
    let approved = size(PayloadKind::Approved);
    assert!((3_000..8_000).contains(&approved), "{approved}");
    let full = size(PayloadKind::FullSample);
    assert!((18_000..30_000).contains(&full), "{full}");
    let aml = size(PayloadKind::AmlHeavy);
    assert!((200 * 1024..300 * 1024).contains(&aml), "{aml}");
}

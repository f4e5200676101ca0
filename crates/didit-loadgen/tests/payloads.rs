//! Golden test of the traffic model's output: every template rendered with one fixed fill, and
//! every class × payload kind drawn from a seeded generator, recorded as length, SHA-256 of the
//! body and every header. A change to the payload catalogue, the header building or the signing
//! shows up here as a diff of `tests/golden/payloads.txt`; refresh it with `UPDATE_EXPECT=1` only
//! when the change is meant.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use didit_loadgen::scenario::Scenario;
use didit_loadgen::template::{Fill, TemplateSigner};
use didit_loadgen::{Acked, Class, Expect, Generator, PayloadKind, Templates};
use didit_webhook::{HexTag, Secret};

const SECRET: &str = "whsec_golden-payloads_Q7";
const NOW: i64 = 1_800_000_000;

fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut raw = [0u8; 32];
    raw.copy_from_slice(d.as_ref());
    HexTag::new(&raw).as_str().to_owned()
}

fn scenario() -> Scenario {
    let mut text =
        String::from("name = \"golden\"\n[load]\nshape = \"constant\"\nrate = 10\n[payloads]\n");
    for k in PayloadKind::ALL {
        let _ = writeln!(text, "{} = 1", k.key());
    }
    Scenario::parse(&text, Path::new("golden.toml")).expect("valid scenario")
}

fn expect_word(e: Expect) -> String {
    format!("{} {}", e.status(), e.word())
}

fn render_all() -> String {
    let templates = Arc::new(Templates::load().expect("fixtures"));
    let secret = Secret::new(SECRET).expect("a non-empty secret");
    let mut out = String::new();
    let mut signer = TemplateSigner::new(&secret, templates.len());
    let fill = Fill {
        session_id: "11111111-2222-4333-8444-555555555555",
        event_id: "66666666-7777-4888-9999-aaaaaaaaaaaa",
        vendor_data: "user-4242",
        timestamp: NOW,
    };
    for i in 0..templates.len() {
        let r = signer.render(i, templates.get(i), &fill);
        let _ = writeln!(
            out,
            "template {i} {} len={} body={} sig={} v2={} simple={}",
            templates.kind_of(i).key(),
            r.body.len(),
            sha256(&r.body),
            r.signature.as_str(),
            r.signature_v2.as_str(),
            r.signature_simple.as_str(),
        );
    }
    let s = scenario();
    let mut g = Generator::new(templates, &s, &secret, Acked::shared(), 42);
    // Valid deliveries first, acknowledged, so that replays and retries have something to draw on.
    for class in Class::ALL {
        for kind in PayloadKind::ALL {
            let d = g.make_kind(class, kind, NOW);
            if class == Class::Valid {
                g.remember(&d);
            }
            let _ = write!(
                out,
                "delivery {} {} -> {} {} expect={} len={} body={}",
                class.key(),
                kind.key(),
                d.label.class.key(),
                d.label.kind.key(),
                expect_word(d.label.expect),
                d.body.len(),
                sha256(&d.body),
            );
            for (name, value) in &d.headers {
                let _ = write!(out, " {}={}", name.as_str(), value.to_str().unwrap_or("?"));
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn generated_payloads_match_the_golden_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/payloads.txt");
    let actual = render_all();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (UPDATE_EXPECT=1 writes it)");
    if actual != expected {
        for (i, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
            if a != e {
                panic!("line {}:\n  expected {e}\n  actual   {a}", i + 1);
            }
        }
        panic!(
            "{} lines generated, {} expected",
            actual.lines().count(),
            expected.lines().count()
        );
    }
}

//! The conformance suite: every server × backend variant of `didit-receiver`, started as a real
//! process on a loopback port it picks, answers the corpus in `tests/conformance/cases.json`
//! identically (or as a per-server override in the data says, for documented limitations).
//!
//! Requests are written over raw TCP, so framing cases (chunked, malformed `Content-Length`) are
//! sent exactly as written. All traffic goes to 127.0.0.1, to ports the receivers opened, and every
//! read has a timeout.

#[path = "conformance/malformed.rs"]
mod malformed;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use support::{Receiver, Response, SECRET, send};

use didit_webhook::canon::{Map, Value};
use didit_webhook::{Reencoding, RingMac, Secret, Signer, reencode};
use serde::Deserialize;

/// One request of the corpus and the answer every variant must give. Fields:
/// - `payload`: `event` (default: a small session event), `vector:<set/name>` (a known-answer
///   vector's payload re-signed with a fresh timestamp), `vector-as-is:<set/name>` (the vector's
///   exact bytes and headers), `sample` (the 20 KB console sample), `large` (200 KB).
/// - `event_id`: `auto` (unique per case, default), `none`, or `fixed:<id>`; `session`: a session id.
/// - `timestamp_offset`: seconds added to now for the body `timestamp`.
/// - `header_timestamp`: `same` (default), `omit`, `offset:<s>` (body + s), `raw:<text>`.
/// - `encoding`: `wire` (default), `pretty`, `unsorted_unicode`, `whole_floats` (re-encodings
///   done after signing, as middleware would).
/// - `signatures`: which of `raw`, `v2`, `simple` to send (default all).
/// - `tamper`: `body`, `secret`, `uppercase`, `short`, `status`.
/// - `raw_body`: literal bytes (`{now}` replaced), signed with X-Signature only.
/// - `transport`: `content_length` (default), `chunked`, `bad_length`, `no_length`.
/// - `profile`: `default` or `simple` (receiver started with `--accept-simple`).
/// - `repeat`: resend the exact request of an earlier case.
/// - `expect`: `status`, optional `body` (JSON), `headers`, `contains`; a server name key
///   (`may`, `hyper`, `axum`, `axum-naive`, `actix`) overrides `expect` for that server. Status 0 means
///   the server closes the connection without an answer (a documented limitation).
/// - `why`: the reason for a server's override.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(default = "default_payload")]
    payload: String,
    #[serde(default = "default_auto")]
    event_id: String,
    session: Option<String>,
    #[serde(default)]
    timestamp_offset: i64,
    #[serde(default = "default_same")]
    header_timestamp: String,
    #[serde(default = "default_wire")]
    encoding: String,
    signatures: Option<Vec<String>>,
    tamper: Option<String>,
    raw_body: Option<String>,
    #[serde(default = "default_transport")]
    transport: String,
    #[serde(default = "default_profile")]
    profile: String,
    repeat: Option<String>,
    #[allow(dead_code)]
    why: Option<String>,
    expect: Expect,
    may: Option<Expect>,
    hyper: Option<Expect>,
    axum: Option<Expect>,
    #[serde(rename = "axum-naive")]
    axum_naive: Option<Expect>,
    actix: Option<Expect>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    body: Option<serde_json::Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    contains: Vec<String>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_path() -> String {
    "/webhooks/didit".into()
}
fn default_payload() -> String {
    "event".into()
}
fn default_auto() -> String {
    "auto".into()
}
fn default_same() -> String {
    "same".into()
}
fn default_wire() -> String {
    "wire".into()
}
fn default_transport() -> String {
    "content_length".into()
}
fn default_profile() -> String {
    "default".into()
}

#[derive(Deserialize)]
struct Corpus {
    cases: Vec<Case>,
}

fn corpus() -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let c: Corpus =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    c.cases
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---- building requests -------------------------------------------------------------------

/// The bytes of one request.
#[derive(Clone, Debug)]
struct Built {
    bytes: Vec<u8>,
}

fn event_payload(case: &Case, idx: usize, ts: i64) -> Value {
    let event_id = match case.event_id.as_str() {
        "auto" => Some(format!("evt-{idx:04}")),
        "none" => None,
        fixed => Some(fixed.trim_start_matches("fixed:").to_owned()),
    };
    let session = case
        .session
        .clone()
        .unwrap_or_else(|| format!("s-{idx:04}"));
    let mut m = Map::default();
    m.insert("webhook_type", Value::from("status.updated"));
    m.insert("timestamp", Value::int(ts));
    m.insert("created_at", Value::int(ts));
    m.insert("session_id", Value::from(session));
    m.insert("status", Value::from("Approved"));
    m.insert("vendor_data", Value::from("user-42"));
    m.insert("environment", Value::from("live"));
    if let Some(id) = event_id {
        m.insert("event_id", Value::from(id));
    }
    let decision = Value::parse(r#"{"status":"Approved","score":95.5,"id_verifications":[{"first_name":"José","note":"日本 😀"}]}"#.as_bytes())
        .expect("valid decision");
    m.insert("decision", decision);
    Value::Object(m)
}

fn build(
    case: &Case,
    idx: usize,
    t0: i64,
    earlier: &HashMap<String, Built>,
    vectors: &[didit_fixtures::Case],
    sample: &Value,
) -> Built {
    if let Some(r) = &case.repeat {
        return earlier
            .get(r)
            .unwrap_or_else(|| panic!("{}: no earlier case {r:?}", case.name))
            .clone();
    }
    let ts = t0 + case.timestamp_offset;
    let signer = Signer::<RingMac>::new(&Secret::new(SECRET));
    let mut headers: Vec<(String, String)> = Vec::new();
    let (body, body_ts): (Vec<u8>, Option<i64>) = if let Some(raw) = &case.raw_body {
        let body = raw.replace("{now}", &t0.to_string()).into_bytes();
        if case
            .signatures
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == "raw"))
        {
            headers.push(("X-Signature".into(), signer.sign_bytes(&body).to_string()));
        }
        (body, Some(t0))
    } else if let Some(id) = case.payload.strip_prefix("vector-as-is:") {
        let v = vectors
            .iter()
            .find(|v| v.id == id)
            .unwrap_or_else(|| panic!("no vector {id}"));
        headers.push(("X-Signature".into(), v.signature.clone()));
        headers.push(("X-Signature-V2".into(), v.signature_v2.clone()));
        headers.push(("X-Signature-Simple".into(), v.signature_simple.clone()));
        headers.push(("X-Timestamp".into(), v.timestamp.to_string()));
        (v.body.clone().into_bytes(), None)
    } else {
        let mut payload = match case.payload.as_str() {
            "event" => event_payload(case, idx, ts),
            "sample" => didit_fixtures::payload(
                didit_fixtures::PayloadSize::Sample20K,
                sample,
                ts,
                idx as u64,
            ),
            "large" => didit_fixtures::payload(
                didit_fixtures::PayloadSize::Aml200K,
                sample,
                ts,
                idx as u64,
            ),
            p => {
                let id = p
                    .strip_prefix("vector:")
                    .unwrap_or_else(|| panic!("unknown payload {p}"));
                let v = vectors
                    .iter()
                    .find(|v| v.id == id)
                    .unwrap_or_else(|| panic!("no vector {id}"));
                let mut value = Value::parse(v.body.as_bytes()).expect("vector bodies are JSON");
                let m = value.as_object_mut().expect("object");
                m.insert("timestamp", Value::int(ts));
                if m.get("event_id").is_some() {
                    m.insert("event_id", Value::from(format!("evt-{idx:04}")));
                }
                value
            }
        };
        let secret_signer;
        let s = if case.tamper.as_deref() == Some("secret") {
            secret_signer = Signer::<RingMac>::new(&Secret::new("some-other-secret"));
            &secret_signer
        } else {
            &signer
        };
        let signed = s
            .sign(&payload)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut body = signed.body.clone();
        match case.encoding.as_str() {
            "wire" => {}
            style => {
                let style = match style {
                    "pretty" => Reencoding::Pretty,
                    "unsorted_unicode" => Reencoding::UnsortedUnicode,
                    "whole_floats" => Reencoding::WholeFloats,
                    other => panic!("{}: unknown encoding {other}", case.name),
                };
                body.clear();
                reencode(&payload, style, &mut body);
            }
        }
        match case.tamper.as_deref() {
            Some("body") => {
                let at = body
                    .windows(8)
                    .position(|w| w == b"Approved")
                    .expect("a status");
                body[at..at + 8].copy_from_slice(b"Declined");
            }
            Some("status") => {
                let m = payload.as_object_mut().expect("object");
                m.insert("status", Value::from("Declined"));
                body = s.sign(&payload).expect("signable").body;
            }
            _ => {}
        }
        let wanted = case
            .signatures
            .clone()
            .unwrap_or_else(|| vec!["raw".into(), "v2".into(), "simple".into()]);
        let fix = |sig: String| match case.tamper.as_deref() {
            Some("uppercase") => sig.to_uppercase(),
            Some("short") => sig[..63].to_owned(),
            _ => sig,
        };
        for (name, key, value) in [
            ("X-Signature", "raw", signed.signature.to_string()),
            ("X-Signature-V2", "v2", signed.signature_v2.to_string()),
            (
                "X-Signature-Simple",
                "simple",
                signed.signature_simple.to_string(),
            ),
        ] {
            if wanted.iter().any(|w| w == key) {
                headers.push((name.into(), fix(value)));
            }
        }
        (body, Some(ts))
    };
    if let Some(ts) = body_ts {
        match case.header_timestamp.as_str() {
            "same" => headers.push(("X-Timestamp".into(), ts.to_string())),
            "omit" => {}
            h if h.starts_with("offset:") => {
                let off: i64 = h[7..].parse().expect("offset:<seconds>");
                headers.push(("X-Timestamp".into(), (ts + off).to_string()));
            }
            h if h.starts_with("raw:") => headers.push(("X-Timestamp".into(), h[4..].to_owned())),
            h => panic!("{}: header_timestamp {h}", case.name),
        }
    }

    let mut req = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {}\r\nContent-Type: application/json\r\n",
        case.method,
        case.path,
        didit_webhook::USER_AGENT
    )
    .into_bytes();
    for (k, v) in &headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    let is_get = case.method == "GET";
    match case.transport.as_str() {
        "content_length" if is_get => req.extend_from_slice(b"\r\n"),
        "content_length" => {
            req.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            req.extend_from_slice(&body);
        }
        "chunked" => {
            req.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mid = body.len() / 2;
            for part in [&body[..mid], &body[mid..]] {
                req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                req.extend_from_slice(part);
                req.extend_from_slice(b"\r\n");
            }
            req.extend_from_slice(b"0\r\n\r\n");
        }
        "bad_length" => {
            req.extend_from_slice(format!("Content-Length: {}abc\r\n\r\n", body.len()).as_bytes());
            req.extend_from_slice(&body);
        }
        "no_length" => req.extend_from_slice(b"\r\n"),
        t => panic!("{}: transport {t}", case.name),
    }
    Built { bytes: req }
}

fn expectation<'c>(case: &'c Case, server: &str) -> &'c Expect {
    support::for_server(
        server,
        [
            case.may.as_ref(),
            case.hyper.as_ref(),
            case.axum.as_ref(),
            case.axum_naive.as_ref(),
            case.actix.as_ref(),
        ],
        &case.expect,
    )
}

fn check(case: &Case, server: &str, r: &Response) -> Result<(), String> {
    let expect = expectation(case, server);
    let body_text = String::from_utf8_lossy(&r.body);
    if r.status != expect.status {
        return Err(format!(
            "status {} (body {body_text}), expected {}",
            r.status, expect.status
        ));
    }
    if let Some(want) = &expect.body {
        let got: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("body {body_text:?} is not JSON: {e}"))?;
        if &got != want {
            return Err(format!("body {got}, expected {want}"));
        }
        if r.headers.get("content-type").map(String::as_str) != Some("application/json") {
            return Err(format!("content-type {:?}", r.headers.get("content-type")));
        }
    }
    for (k, v) in &expect.headers {
        if r.headers.get(k) != Some(v) {
            return Err(format!(
                "header {k}: {:?}, expected {v:?}",
                r.headers.get(k)
            ));
        }
    }
    for needle in &expect.contains {
        if !body_text.contains(needle.as_str()) {
            return Err(format!("body lacks {needle:?}"));
        }
    }
    Ok(())
}

/// Runs the whole corpus against one variant; returns every failure.
/// Runs the corpus against one variant; `sqlite` puts its events in a fresh SQLite store (with
/// the default `--ack after-commit`) instead of memory.
fn run_variant(server: &str, hmac: &str, json: &str, sqlite: bool, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for profile in ["default", "simple"] {
        let mut extra: Vec<String> = Vec::new();
        if profile == "simple" {
            extra.push("--accept-simple".into());
        }
        if sqlite {
            let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance");
            std::fs::create_dir_all(&dir).expect("tmp dir");
            let db = dir.join(format!("{}-{server}-{profile}.db", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            extra.push("--store".into());
            extra.push(format!("sqlite:{}", db.display()));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let rx = Receiver::start(server, hmac, json, &extra);
        // Built per receiver, so timestamps are fresh however long the suite has run.
        let built = build_all(cases);
        for (case, req) in cases.iter().zip(&built) {
            if case.profile != profile {
                continue;
            }
            let closes = expectation(case, server).status == 0;
            let result = match send(rx.addr, &req.bytes) {
                Ok(r) if closes => Err(format!(
                    "answered {} where the connection should close",
                    r.status
                )),
                Ok(r) => check(case, server, &r),
                Err(_) if closes => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                failures.push(format!("{}: {}: {e}", rx.label, case.name));
            }
        }
        if profile == "default" {
            failures.extend(malformed::run(&rx, server));
        }
        rx.stop();
    }
    failures
}

fn build_all(cases: &[Case]) -> Vec<Built> {
    let vectors = didit_fixtures::vectors().unwrap_or_else(|e| panic!("{e}"));
    let sample = didit_fixtures::sample_value().unwrap_or_else(|e| panic!("{e}"));
    let t0 = now();
    let mut earlier = HashMap::new();
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        assert!(
            names.insert(c.name.clone()),
            "duplicate case name {:?}",
            c.name
        );
        let b = build(c, i, t0, &earlier, &vectors, &sample);
        earlier.insert(c.name.clone(), b.clone());
        out.push(b);
    }
    out
}

fn conformance(server: &str) {
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus shrank to {}", cases.len());
    let combos: Vec<(&str, &str)> = if server == "axum-naive" {
        // The naive peer is fixed to hmac+sha2 and serde_json::Value; the flags are ignored.
        vec![("ring", "serde")]
    } else {
        let mut v = Vec::new();
        for m in ["ring", "rustcrypto", "aws-lc"] {
            for j in ["serde", "simd", "sonic"] {
                v.push((m, j));
            }
        }
        v
    };
    let mut failures = Vec::new();
    for (m, j) in combos {
        failures.extend(run_variant(server, m, j, false, &cases));
    }
    // The same answers when events are stored durably (the naive peer keeps memory only).
    if server != "axum-naive" {
        failures.extend(run_variant(server, "ring", "serde", true, &cases));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn conformance_hyper() {
    conformance("hyper");
}

#[test]
fn conformance_axum() {
    conformance("axum");
}

#[test]
fn conformance_may() {
    conformance("may");
}

#[test]
fn conformance_actix() {
    conformance("actix");
}

#[test]
fn conformance_axum_naive() {
    conformance("axum-naive");
}

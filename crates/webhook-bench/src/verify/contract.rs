//! The contract corpus (`crates/webhook-bench/cases/cases.json`, compiled in): the requests a receiver
//! must answer and how they are built. The conformance tests and `webhook-bench verify` read the
//! same file through this module, so a case added once runs in both.

use std::collections::{BTreeMap, HashMap};

use didit_webhook::canon::{Map, Value};
use didit_webhook::{Reencoding, RingMac, Secret, Signer, reencode};
use serde::Deserialize;

use super::VerifyError;

/// The corpus as committed.
const CASES: &str = include_str!("../../cases/cases.json");

/// The path of the webhook in the corpus; `verify` sends those cases to the target's path.
pub const WEBHOOK_PATH: &str = "/webhooks/didit";

/// One request of the corpus and the answer every variant must give. Fields:
/// - `payload`: `event` (default: a small session event), `vector:<set/name>` (a known-answer
///   vector's payload re-signed with a fresh timestamp), `vector-as-is:<set/name>` (the vector's
///   exact bytes and headers), `sample` (the 20 KB console sample), `large` (200 KB, or one over
///   the target's limit for `verify`).
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
/// - `expect`: `status`, optional `body` (JSON), `headers`, `contains`; `except` maps a server
///   name (`may`, `hyper`, `axum`, `axum-naive`, `actix`) to what it answers instead. Status 0
///   means the server closes the connection without an answer (a documented limitation).
/// - `why`: the reason for a server's override.
/// - `group` (for `verify`): `security`, `correctness`, `http` or `optional`; derived from the
///   case when absent ([`Case::group`]). `also`: other statuses `verify` accepts from a receiver
///   that is not one of ours (the contract fixes the class of answer, not every code).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_payload")]
    pub payload: String,
    #[serde(default = "default_auto")]
    pub event_id: String,
    pub session: Option<String>,
    #[serde(default)]
    pub timestamp_offset: i64,
    #[serde(default = "default_same")]
    pub header_timestamp: String,
    #[serde(default = "default_wire")]
    pub encoding: String,
    pub signatures: Option<Vec<String>>,
    pub tamper: Option<String>,
    pub raw_body: Option<String>,
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default = "default_profile")]
    pub profile: String,
    pub repeat: Option<String>,
    /// The reason for a server's override.
    pub why: Option<String>,
    pub expect: Expect,
    #[serde(default)]
    pub except: super::Overrides<Expect>,
    pub group: Option<String>,
    #[serde(default)]
    pub also: Vec<u16>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: u16,
    pub body: Option<serde_json::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub contains: Vec<String>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_path() -> String {
    WEBHOOK_PATH.into()
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

impl Case {
    /// The expectation for one of our servers (its override, else the common one).
    pub fn expect_for(&self, server: &str) -> &Expect {
        self.except.for_server(server, &self.expect)
    }

    /// The report-card group: `security` (a forged, tampered, replayed or stale delivery must be
    /// refused), `correctness` (a valid delivery or a retry must be taken), `http` (limits and
    /// routing a sender relies on: 413, 404, 405), `framing` (chunked and malformed framing, which
    /// a proxy in front may own), `optional` (what our receivers offer beyond the contract:
    /// health, metrics, the null endpoint, V2 after re-encoding).
    pub fn group(&self) -> &str {
        if let Some(g) = &self.group {
            return g;
        }
        if self.path != WEBHOOK_PATH && self.path != "/webhooks/other" {
            "optional"
        } else if self.transport != "content_length" {
            "framing"
        } else if self.payload == "large" || self.method != "POST" || self.path != WEBHOOK_PATH {
            "http"
        } else if self.expect.status != 200 {
            "security"
        } else if self.encoding != "wire" {
            // V2 after middleware re-encoded the body: Didit's recommended check, beyond what
            // a receiver verifying the raw body needs.
            "optional"
        } else {
            "correctness"
        }
    }
}

#[derive(Deserialize)]
struct Corpus {
    cases: Vec<Case>,
}

/// The committed corpus, in order.
pub fn corpus() -> Vec<Case> {
    let c: Corpus = serde_json::from_str(CASES).unwrap_or_else(|e| {
        panic!("crates/webhook-bench/cases/cases.json is compiled in and must parse: {e}")
    });
    c.cases
}

/// How requests are built for one receiver.
#[derive(Clone, Debug)]
pub struct Build {
    /// The shared secret.
    pub secret: String,
    /// Where the webhook cases go (the corpus's `/webhooks/didit` on our receivers).
    pub path: String,
    /// The `Host` header.
    pub host: String,
    /// Makes ids unique across runs against a receiver that outlives one run (empty: `evt-0001`).
    pub tag: String,
    /// The body size of the `large` payload: `None` for the 200 KB document, else a JSON body of
    /// this many bytes (one over the receiver's limit).
    pub oversize: Option<usize>,
}

/// The bytes of one request.
#[derive(Clone, Debug)]
pub struct Built {
    pub bytes: Vec<u8>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn event_payload(case: &Case, idx: usize, ts: i64, tag: &str) -> Value {
    let event_id = match case.event_id.as_str() {
        "auto" => Some(format!("evt-{tag}{idx:04}")),
        "none" => None,
        fixed => Some(format!("{tag}{}", fixed.trim_start_matches("fixed:"))),
    };
    let session = match &case.session {
        Some(s) => format!("{tag}{s}"),
        None => format!("s-{tag}{idx:04}"),
    };
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

/// The fixtures the corpus draws on.
struct Fixtures {
    vectors: Vec<didit_fixtures::Case>,
    sample: Value,
}

fn vector<'v>(
    f: &'v Fixtures,
    case: &Case,
    id: &str,
) -> Result<&'v didit_fixtures::Case, VerifyError> {
    f.vectors
        .iter()
        .find(|v| v.id == id)
        .ok_or_else(|| VerifyError::Case(format!("{}: no vector {id}", case.name)))
}

fn build(
    case: &Case,
    idx: usize,
    t0: i64,
    earlier: &HashMap<String, Built>,
    fx: &Fixtures,
    b: &Build,
) -> Result<Built, VerifyError> {
    let bad = |what: String| VerifyError::Case(format!("{}: {what}", case.name));
    if let Some(r) = &case.repeat {
        return earlier
            .get(r)
            .cloned()
            .ok_or_else(|| bad(format!("no earlier case {r:?}")));
    }
    let ts = t0.saturating_add(case.timestamp_offset);
    let signer = Signer::<RingMac>::new(&Secret::new(&b.secret).expect("a non-empty secret"));
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
        let v = vector(fx, case, id)?;
        // The bytes and headers as published: long stale, and signed with the vectors' own secret.
        headers.push(("X-Signature".into(), v.signature.clone()));
        headers.push(("X-Signature-V2".into(), v.signature_v2.clone()));
        headers.push(("X-Signature-Simple".into(), v.signature_simple.clone()));
        headers.push(("X-Timestamp".into(), v.timestamp.to_string()));
        (v.body.clone().into_bytes(), None)
    } else if let (Some(size), "large") = (b.oversize, case.payload.as_str()) {
        let mut body = b"{\"padding\":\"".to_vec();
        body.resize(size.saturating_sub(2).max(body.len()), b'x');
        body.extend_from_slice(b"\"}");
        headers.push(("X-Signature".into(), signer.sign_bytes(&body).to_string()));
        (body, Some(ts))
    } else {
        let mut payload = match case.payload.as_str() {
            "event" => event_payload(case, idx, ts, &b.tag),
            "sample" => didit_fixtures::payload(
                didit_fixtures::PayloadSize::Sample20K,
                &fx.sample,
                ts,
                idx as u64,
            ),
            "large" => didit_fixtures::payload(
                didit_fixtures::PayloadSize::Aml200K,
                &fx.sample,
                ts,
                idx as u64,
            ),
            p => {
                let id = p
                    .strip_prefix("vector:")
                    .ok_or_else(|| bad(format!("unknown payload {p}")))?;
                let v = vector(fx, case, id)?;
                let mut value = Value::parse(v.body.as_bytes())
                    .map_err(|e| bad(format!("vector body: {e}")))?;
                let m = value
                    .as_object_mut()
                    .ok_or_else(|| bad("vector body is not an object".into()))?;
                m.insert("timestamp", Value::int(ts));
                if m.get("event_id").is_some() {
                    m.insert("event_id", Value::from(format!("evt-{}{idx:04}", b.tag)));
                }
                if let (false, Some(Value::String(s))) = (b.tag.is_empty(), m.get("session_id")) {
                    let s = format!("{}{s}", b.tag);
                    m.insert("session_id", Value::from(s));
                }
                value
            }
        };
        let other;
        let s = if case.tamper.as_deref() == Some("secret") {
            other = Signer::<RingMac>::new(
                &Secret::new("some-other-secret").expect("a non-empty secret"),
            );
            &other
        } else {
            &signer
        };
        let signed = s.sign(&payload).map_err(|e| bad(e.to_string()))?;
        let mut body = signed.body.clone();
        match case.encoding.as_str() {
            "wire" => {}
            style => {
                let style = match style {
                    "pretty" => Reencoding::Pretty,
                    "unsorted_unicode" => Reencoding::UnsortedUnicode,
                    "whole_floats" => Reencoding::WholeFloats,
                    other => return Err(bad(format!("unknown encoding {other}"))),
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
                    .ok_or_else(|| bad("no status to tamper with".into()))?;
                body[at..at + 8].copy_from_slice(b"Declined");
            }
            Some("status") => {
                let m = payload.as_object_mut().expect("payloads are objects");
                m.insert("status", Value::from("Declined"));
                body = s.sign(&payload).map_err(|e| bad(e.to_string()))?.body;
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
                let off: i64 = h[7..].parse().map_err(|_| bad("offset:<seconds>".into()))?;
                headers.push(("X-Timestamp".into(), (ts + off).to_string()));
            }
            h if h.starts_with("raw:") => headers.push(("X-Timestamp".into(), h[4..].to_owned())),
            h => return Err(bad(format!("header_timestamp {h}"))),
        }
    }

    let path = if case.path == WEBHOOK_PATH {
        b.path.as_str()
    } else {
        case.path.as_str()
    };
    let mut req = format!(
        "{} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Type: application/json\r\n",
        case.method,
        b.host,
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
        t => return Err(bad(format!("transport {t}"))),
    }
    Ok(Built { bytes: req })
}

/// Builds every case, in order, with timestamps fresh as of now.
pub fn build_all(cases: &[Case], b: &Build) -> Result<Vec<Built>, VerifyError> {
    let fx = Fixtures {
        vectors: didit_fixtures::vectors()?,
        sample: didit_fixtures::sample_value()?,
    };
    let t0 = now();
    let mut earlier = HashMap::new();
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if !names.insert(c.name.clone()) {
            return Err(VerifyError::Case(format!(
                "duplicate case name {:?}",
                c.name
            )));
        }
        let built = build(c, i, t0, &earlier, &fx, b)?;
        earlier.insert(c.name.clone(), built.clone());
        out.push(built);
    }
    Ok(out)
}

/// Checks an answer against an expectation: status, then body, headers and text, if given.
pub fn check(
    expect: &Expect,
    status: u16,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<(), String> {
    let body_text = String::from_utf8_lossy(body);
    if status != expect.status {
        return Err(format!(
            "status {status} (body {body_text}), expected {}",
            expect.status
        ));
    }
    if let Some(want) = &expect.body {
        let got: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| format!("body {body_text:?} is not JSON: {e}"))?;
        if &got != want {
            return Err(format!("body {got}, expected {want}"));
        }
        if headers.get("content-type").map(String::as_str) != Some("application/json") {
            return Err(format!("content-type {:?}", headers.get("content-type")));
        }
    }
    for (k, v) in &expect.headers {
        if headers.get(k) != Some(v) {
            return Err(format!("header {k}: {:?}, expected {v:?}", headers.get(k)));
        }
    }
    for needle in &expect.contains {
        if !body_text.contains(needle.as_str()) {
            return Err(format!("body lacks {needle:?}"));
        }
    }
    Ok(())
}

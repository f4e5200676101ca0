//! The Didit fixtures the product ships (the console sample and the known-answer vectors,
//! compiled in from `fixtures/`), benchmark payloads of known sizes, and the CPython oracle.
//!
//! `DIDIT_SHARED_DIR` points the tests at another folder holding `fixtures/` (the originals in
//! `shared/fixtures/` beside the project root, say). Nothing here writes to it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use didit_webhook::canon::{Map, Value};

mod payloads;
pub use payloads::{PayloadSize, payload};

/// What went wrong locating or reading fixtures, or running the oracle; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error(
        "no fixture named {0}; the shipped ones are {SAMPLE_PRETTY}, {SAMPLE_WIRE} and {VECTORS}"
    )]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not the expected JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("fixture {0} is not valid JSON for the canonicaliser: {1}")]
    Canon(String, didit_webhook::canon::CanonError),
    #[error("cannot run the CPython oracle `{python}` (set DIDIT_PYTHON to a python3): {source}")]
    Python {
        python: String,
        source: std::io::Error,
    },
    #[error("the CPython oracle failed: {0}")]
    Oracle(String),
}

/// The fixtures this crate ships, compiled in: copies of Didit's console sample (as pasted and in
/// wire form) and of the known-answer vectors, so that no binary needs a file beside it.
const COMPILED: [(&str, &[u8]); 3] = [
    (
        SAMPLE_PRETTY,
        include_bytes!("../fixtures/didit-v3-sample-full.json"),
    ),
    (
        SAMPLE_WIRE,
        include_bytes!("../fixtures/didit-v3-sample-full-wire.json"),
    ),
    (
        VECTORS,
        include_bytes!("../fixtures/didit-v3-signature-vectors.json"),
    ),
];

/// A fixture's bytes: the compiled-in copy, or `$DIDIT_SHARED_DIR/fixtures/<name>` when that
/// variable is set (for testing against another set of fixtures).
pub fn read_fixture(name: &str) -> Result<Vec<u8>, FixtureError> {
    if let Some(dir) = std::env::var_os("DIDIT_SHARED_DIR") {
        let path = PathBuf::from(dir).join("fixtures").join(name);
        return std::fs::read(&path).map_err(|source| FixtureError::Read { path, source });
    }
    COMPILED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| bytes.to_vec())
        .ok_or_else(|| FixtureError::NotFound(PathBuf::from(name)))
}

/// The console test payload exactly as pasted (pretty-printed).
pub const SAMPLE_PRETTY: &str = "didit-v3-sample-full.json";
/// The same payload in Didit's wire form.
pub const SAMPLE_WIRE: &str = "didit-v3-sample-full-wire.json";
/// The known-answer vectors.
pub const VECTORS: &str = "didit-v3-signature-vectors.json";

/// The sample payload as a value.
pub fn sample_value() -> Result<Value, FixtureError> {
    let bytes = read_fixture(SAMPLE_PRETTY)?;
    Value::parse(&bytes).map_err(|e| FixtureError::Canon(SAMPLE_PRETTY.into(), e))
}

/// One known-answer case: a body and the headers Didit sends with it.
#[derive(Clone, Debug)]
pub struct Case {
    /// `set/name`, e.g. `official_wp_plugin/unicode_names`.
    pub id: String,
    pub secret: String,
    pub body: String,
    pub v2_canonical: String,
    pub simple_message: String,
    pub timestamp: i64,
    pub signature: String,
    pub signature_v2: String,
    pub signature_simple: String,
    /// The body re-encoded by "middleware" (pretty, unsorted): X-Signature fails, V2 holds.
    pub reencoded_body: Option<String>,
    pub body_sha256: String,
}

#[derive(serde::Deserialize)]
struct RawCase {
    body: String,
    v2_canonical: String,
    simple_message: String,
    body_sha256: String,
    headers: BTreeMap<String, String>,
    reencoded_body_example: Option<String>,
    secret: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawSet {
    secret: String,
    cases: BTreeMap<String, RawCase>,
}

#[derive(serde::Deserialize)]
struct RawVectors {
    official_wp_plugin: RawSet,
    edge_cases: RawSet,
    sample_full: RawCase,
}

/// Every known-answer case in `didit-v3-signature-vectors.json`, in a stable order.
pub fn vectors() -> Result<Vec<Case>, FixtureError> {
    let bytes = read_fixture(VECTORS)?;
    let raw: RawVectors = serde_json::from_slice(&bytes).map_err(|source| FixtureError::Json {
        path: VECTORS.into(),
        source,
    })?;
    let mut out = Vec::new();
    let mut push = |id: String, secret: &str, c: RawCase| -> Result<(), FixtureError> {
        let h = |k: &str| {
            c.headers
                .get(k)
                .cloned()
                .ok_or_else(|| FixtureError::Oracle(format!("vector {id} lacks header {k}")))
        };
        let timestamp = h("X-Timestamp")?
            .parse()
            .map_err(|_| FixtureError::Oracle(format!("vector {id}: bad X-Timestamp")))?;
        out.push(Case {
            signature: h("X-Signature")?,
            signature_v2: h("X-Signature-V2")?,
            signature_simple: h("X-Signature-Simple")?,
            timestamp,
            secret: c.secret.clone().unwrap_or_else(|| secret.to_owned()),
            body: c.body,
            v2_canonical: c.v2_canonical,
            simple_message: c.simple_message,
            reencoded_body: c.reencoded_body_example,
            body_sha256: c.body_sha256,
            id,
        });
        Ok(())
    };
    for (set_name, set) in [
        ("official_wp_plugin", raw.official_wp_plugin),
        ("edge_cases", raw.edge_cases),
    ] {
        for (name, c) in set.cases {
            push(format!("{set_name}/{name}"), &set.secret, c)?;
        }
    }
    let secret = raw.sample_full.secret.clone().unwrap_or_default();
    push("sample_full".into(), &secret, raw.sample_full)?;
    Ok(out)
}

/// What CPython made of one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Oracle {
    /// `json.loads` refused it.
    Rejected,
    /// The ASCII dump, and the V2 dump (`None` when UTF-8 encoding failed: a lone surrogate).
    Dumps {
        ascii: Vec<u8>,
        unicode: Option<Vec<u8>>,
    },
}

const ORACLE_PY: &str = r#"
import sys, json, binascii
def shorten_floats(o):
    if isinstance(o, float) and o.is_integer():
        return int(o)
    if isinstance(o, dict):
        return {k: shorten_floats(v) for k, v in o.items()}
    if isinstance(o, list):
        return [shorten_floats(v) for v in o]
    return o
out = []
for line in sys.stdin.buffer.read().split(b"\n"):
    if not line:
        continue
    doc = binascii.unhexlify(line[1:])
    try:
        p = shorten_floats(json.loads(doc))
    except Exception:
        out.append("R")
        continue
    a = json.dumps(p, sort_keys=True, separators=(",", ":")).encode("ascii")
    try:
        u = json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8").hex()
    except UnicodeEncodeError:
        u = "-"
    out.append("D " + a.hex() + " " + u)
sys.stdout.write("\n".join(out) + "\n")
"#;

/// Runs CPython's `json.loads` then Didit's `json.dumps` over each document, in one process.
#[allow(
    clippy::disallowed_methods,
    reason = "test support below webhook-bench: one CPython run to completion, no harness to use"
)]
pub fn python_oracle(docs: &[Vec<u8>]) -> Result<Vec<Oracle>, FixtureError> {
    let python = std::env::var("DIDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .args(["-c", ORACLE_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FixtureError::Python {
            python: python.clone(),
            source,
        })?;
    let mut input = String::new();
    for d in docs {
        // A leading marker keeps an empty document from being an empty line.
        input.push('x');
        for b in d {
            input.push_str(&format!("{b:02x}"));
        }
        input.push('\n');
    }
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| FixtureError::Oracle("no stdin".into()))?;
    // Write from a thread so a large batch cannot deadlock against the child's full stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|source| FixtureError::Python { python, source })?;
    writer
        .join()
        .map_err(|_| FixtureError::Oracle("writer thread panicked".into()))?
        .map_err(|e| FixtureError::Oracle(format!("writing to python: {e}")))?;
    if !output.status.success() {
        return Err(FixtureError::Oracle(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let results: Vec<Oracle> = text
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            match parts.next() {
                Some("D") => {
                    let ascii = unhex(parts.next().unwrap_or_default());
                    let unicode = match parts.next() {
                        Some("-") | None => None,
                        Some(h) => Some(unhex(h)),
                    };
                    Oracle::Dumps { ascii, unicode }
                }
                _ => Oracle::Rejected,
            }
        })
        .collect();
    if results.len() != docs.len() {
        return Err(FixtureError::Oracle(format!(
            "expected {} answers, got {}",
            docs.len(),
            results.len()
        )));
    }
    Ok(results)
}

fn unhex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| {
            let n = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            (n(p[0]) << 4) | n(p[1])
        })
        .collect()
}

/// An empty object value.
pub fn object() -> Value {
    Value::Object(Map::default())
}

//! The peer receivers of `peers/` (Node.js on `node:http`, Python on FastAPI and uvicorn, Go on
//! `net/http`, Bun on `Bun.serve`), each started as a real process on a loopback port it picks
//! (`--port 0`, then its `listening on` line), answer real deliveries signed as Didit signs them:
//! the answers of the receivers' HTTP contract, by status and JSON body.
//!
//! Needs `node`, the pinned virtualenv of `peers/python/requirements.txt`, `go` with the Go
//! peer's binary, and the pinned Bun of `peers/bun/package-lock.json`: the test runs
//! `scripts/peers-install.sh` once (skipped when already done; `bash scripts/test.sh` runs it
//! too). All traffic goes to 127.0.0.1, every read has a timeout, and each peer's process group is
//! stopped at the end. Each peer's own unit tests (the known-answer vectors through its
//! verifier) run here too.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use didit_webhook::canon::{Map, Value};
use didit_webhook::{Reencoding, RingMac, Secret, Signer, reencode};
use support::{Launch, Log, Process, Response, SECRET, send};
use webhook_bench::harness::{Ready, command};

const MAX_BODY: usize = 1 << 20;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/peers-install.sh` once per test binary; every peer test needs it.
fn installed() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let done = DONE.get_or_init(|| {
        let out = command("bash")
            .arg(root().join("scripts/peers-install.sh"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/peers-install.sh failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = done {
        panic!(
            "{e}\nthe peers need node, a Python virtualenv, go and Bun: run `bash scripts/test.sh`"
        );
    }
}

fn venv_python() -> PathBuf {
    std::env::var_os("DIDIT_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache/didit-webhook-bench/peers-venv")
        })
        .join("bin/python")
}

/// Where `scripts/peers-install.sh` keeps the Go peer's build cache and GOPATH.
fn go_cache() -> PathBuf {
    std::env::var_os("DIDIT_PEERS_GO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache/didit-webhook-bench/go")
        })
}

/// A running peer in a process group of its own (uvicorn, node:cluster and the Bun peer may
/// start worker processes), started through the harness the runner uses; SIGTERM to the group
/// on drop, SIGKILL after 10 s.
struct Peer {
    process: Option<Process>,
    addr: SocketAddr,
    name: &'static str,
}

impl Peer {
    fn start(name: &'static str) -> Peer {
        Peer::start_with(name, &[])
    }

    fn start_with(name: &'static str, extra: &[&str]) -> Peer {
        installed();
        let launch = match name {
            "node" => Launch::new(name, "node").arg(root().join("peers/node/server.js")),
            "python" => Launch::new(name, venv_python()).arg(root().join("peers/python/server.py")),
            "go" => Launch::new(name, root().join("peers/go/bin/didit-peer-go")),
            "bun" => Launch::new(name, root().join("peers/bun/node_modules/.bin/bun"))
                .arg(root().join("peers/bun/server.js")),
            other => panic!("no peer {other}"),
        };
        let process = launch
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .env_remove("DIDIT_ACCEPT_SIMPLE")
            .log(Log::Inherit)
            .group()
            .ready(Ready::Announced, Duration::from_secs(30))
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Peer {
            addr: process.addr,
            process: Some(process),
            name,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            p.stop(Duration::from_secs(10));
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn event(event_id: &str, session: &str, ts: i64) -> Value {
    let mut m = Map::default();
    m.insert("event_id", Value::from(event_id));
    m.insert("webhook_type", Value::from("status.updated"));
    m.insert("timestamp", Value::int(ts));
    m.insert("created_at", Value::int(ts));
    m.insert("session_id", Value::from(session));
    m.insert("status", Value::from("Approved"));
    m.insert("vendor_data", Value::from("user-42"));
    let decision = Value::parse(
        r#"{"status":"Approved","score":95.5,"id_verifications":[{"first_name":"José","note":"日本 😀"}]}"#
            .as_bytes(),
    )
    .expect("valid decision");
    m.insert("decision", decision);
    Value::Object(m)
}

fn request(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {}\r\nContent-Type: application/json\r\n",
        didit_webhook::USER_AGENT
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "GET" {
        req.push_str("\r\n");
        return req.into_bytes();
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A delivery as Didit sends it: the wire body, the three signatures and `X-Timestamp`.
#[derive(Clone, Debug)]
struct Delivery {
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Delivery {
    fn signed(payload: &Value, header_ts: i64) -> Delivery {
        let s = Signer::<RingMac>::new(&Secret::new(SECRET).expect("a non-empty secret"))
            .sign(payload)
            .expect("signable");
        Delivery {
            body: s.body,
            headers: vec![
                ("X-Signature", s.signature.to_string()),
                ("X-Signature-V2", s.signature_v2.to_string()),
                ("X-Signature-Simple", s.signature_simple.to_string()),
                ("X-Timestamp", header_ts.to_string()),
            ],
        }
    }

    fn bytes(&self) -> Vec<u8> {
        request("POST", "/webhooks/didit", &self.headers, &self.body)
    }

    fn set(mut self, name: &'static str, value: String) -> Delivery {
        self.headers.retain(|(k, _)| *k != name);
        self.headers.push((name, value));
        self
    }

    fn without(mut self, names: &[&str]) -> Delivery {
        self.headers.retain(|(k, _)| !names.contains(k));
        self
    }
}

/// One request and the answer every peer must give (`None` body: the status is enough), or the
/// answer of the JavaScript peers (Node.js and Bun) where it differs on purpose (see their
/// READMEs).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    status: u16,
    body: Option<&'static str>,
    header: Option<(&'static str, &'static str)>,
    js: Option<(u16, &'static str)>,
}

fn case(name: &'static str, bytes: Vec<u8>, status: u16, body: Option<&'static str>) -> Case {
    Case {
        name,
        bytes,
        status,
        body,
        header: None,
        js: None,
    }
}

fn cases(peer: &str) -> Vec<Case> {
    let t = now();
    let id = |n: &str| format!("evt-{peer}-{n}");
    let sid = |n: &str| format!("s-{peer}-{n}");
    let valid = Delivery::signed(&event(&id("valid"), &sid("1"), t), t);
    let flipped = |d: &Delivery, name: &str| -> String {
        let (_, v) = d.headers.iter().find(|(k, _)| *k == name).expect("signed");
        let last = if v.ends_with('0') { "1" } else { "0" };
        format!("{}{last}", &v[..63])
    };
    let bad = valid
        .clone()
        .set("X-Signature", flipped(&valid, "X-Signature"))
        .set("X-Signature-V2", flipped(&valid, "X-Signature-V2"));
    let stale = Delivery::signed(&event(&id("stale"), &sid("2"), t - 600), t - 600);
    let future = Delivery::signed(&event(&id("future"), &sid("3"), t + 600), t + 600);
    let mismatch = Delivery::signed(&event(&id("mismatch"), &sid("4"), t), t + 5);
    let not_json = b"this is not json".to_vec();
    let not_json_sig = Signer::<RingMac>::new(&Secret::new(SECRET).expect("a non-empty secret"))
        .sign_bytes(&not_json)
        .to_string();
    let malformed = Delivery {
        body: not_json,
        headers: vec![
            ("X-Signature", not_json_sig),
            ("X-Timestamp", t.to_string()),
        ],
    };
    let sample = didit_fixtures::sample_value().unwrap_or_else(|e| panic!("{e}"));
    let big = didit_fixtures::payload(didit_fixtures::PayloadSize::Sample20K, &sample, t, 7);
    let sample_delivery = Delivery::signed(&big, t);
    assert!(
        sample_delivery.body.len() > 15_000
            && sample_delivery.body.windows(6).any(|w| w == b"\\u00f3"),
        "the sample payload is ~20 KB with non-ASCII text (ó written \\u00f3)"
    );
    let mut pretty = Vec::new();
    reencode(&big, Reencoding::Pretty, &mut pretty);
    let pretty_sample = Delivery {
        body: pretty,
        ..Delivery::signed(&big, t)
    }
    .without(&["X-Signature"]);
    let mut pretty = Vec::new();
    let small = event(&id("pretty"), &sid("5"), t);
    reencode(&small, Reencoding::Pretty, &mut pretty);
    let pretty_small = Delivery {
        body: pretty,
        ..Delivery::signed(&small, t)
    };
    let oversized = Delivery {
        body: vec![b' '; MAX_BODY + 1],
        ..valid.clone()
    };
    let mut chunked = request("POST", "/webhooks/didit", &valid.headers, b"");
    chunked.truncate(chunked.len() - b"Content-Length: 0\r\n\r\n".len());
    chunked.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        chunked.extend_from_slice(format!("{:x}\r\n", MAX_BODY / 2).as_bytes());
        chunked.extend_from_slice(&vec![b' '; MAX_BODY / 2]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let no_event_id = {
        let mut p = event("", &sid("6"), t);
        p.as_object_mut().expect("an object").remove("event_id");
        Delivery::signed(&p, t)
    };

    let mut out = vec![
        case(
            "valid delivery",
            valid.bytes(),
            200,
            Some(r#"{"status":"accepted"}"#),
        ),
        case(
            "the same delivery again",
            valid.bytes(),
            200,
            Some(r#"{"status":"duplicate"}"#),
        ),
        case(
            "no event_id",
            no_event_id.bytes(),
            200,
            Some(r#"{"status":"accepted"}"#),
        ),
        case(
            "no event_id, repeated",
            no_event_id.bytes(),
            200,
            Some(r#"{"status":"duplicate"}"#),
        ),
        case(
            "bad signature",
            bad.bytes(),
            401,
            Some(r#"{"error":"invalid_signature"}"#),
        ),
        case(
            "no signature headers",
            valid
                .clone()
                .without(&["X-Signature", "X-Signature-V2", "X-Signature-Simple"])
                .bytes(),
            401,
            Some(r#"{"error":"missing_signature"}"#),
        ),
        case(
            "Simple only (deprecated, refused by default)",
            valid
                .clone()
                .without(&["X-Signature", "X-Signature-V2"])
                .bytes(),
            401,
            Some(r#"{"error":"missing_signature"}"#),
        ),
        case(
            "uppercase signature",
            valid
                .clone()
                .without(&["X-Signature-V2"])
                .set("X-Signature", flipped(&valid, "X-Signature").to_uppercase())
                .bytes(),
            401,
            Some(r#"{"error":"malformed_signature"}"#),
        ),
        case(
            "stale (600 s old)",
            stale.bytes(),
            401,
            Some(r#"{"error":"stale"}"#),
        ),
        case(
            "from the future (600 s)",
            future.bytes(),
            401,
            Some(r#"{"error":"from_future"}"#),
        ),
        case(
            "X-Timestamp differs from the body",
            mismatch.bytes(),
            401,
            Some(r#"{"error":"timestamp_mismatch"}"#),
        ),
        case(
            "signed body that is not JSON",
            malformed.bytes(),
            400,
            Some(r#"{"error":"malformed_payload"}"#),
        ),
        case(
            "body over 1 MiB by Content-Length",
            oversized.bytes(),
            413,
            Some(r#"{"error":"payload_too_large"}"#),
        ),
        case(
            "chunked body over 1 MiB",
            chunked,
            413,
            Some(r#"{"error":"payload_too_large"}"#),
        ),
        case(
            "pretty-printed by middleware: V2 holds",
            pretty_small.bytes(),
            200,
            Some(r#"{"status":"accepted"}"#),
        ),
        case(
            "the 20 KB console sample",
            sample_delivery.bytes(),
            200,
            Some(r#"{"status":"accepted"}"#),
        ),
        Case {
            // Its 1.1812083616449413e+38 is a 39-digit integer in Didit's canonical form;
            // JSON.stringify writes it as a float (peers/node/README.md, "Known differences").
            js: Some((401, r#"{"error":"invalid_signature"}"#)),
            ..case(
                "the 20 KB sample pretty-printed, V2 only",
                pretty_sample.bytes(),
                200,
                Some(r#"{"status":"duplicate"}"#),
            )
        },
        case(
            "wrong path",
            request("POST", "/webhooks/other", &[], b"{}"),
            404,
            Some(r#"{"error":"not_found"}"#),
        ),
        Case {
            header: Some(("allow", "POST")),
            ..case(
                "GET on the webhook path",
                request("GET", "/webhooks/didit", &[], b""),
                405,
                Some(r#"{"error":"method_not_allowed"}"#),
            )
        },
        case(
            "health",
            request("GET", "/healthz", &[], b""),
            200,
            Some(r#"{"status":"ok"}"#),
        ),
    ];
    out.push(case(
        "still healthy after everything",
        request("GET", "/healthz", &[], b""),
        200,
        Some(r#"{"status":"ok"}"#),
    ));
    out
}

fn check(c: &Case, peer: &str, r: &Response) -> Result<(), String> {
    let (status, body) = match (peer, c.js) {
        ("node" | "bun", Some((s, b))) => (s, Some(b)),
        _ => (c.status, c.body),
    };
    let text = String::from_utf8_lossy(&r.body);
    if r.status != status {
        return Err(format!(
            "status {} (body {text}), expected {status}",
            r.status
        ));
    }
    if let Some(want) = body {
        let got: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("body {text:?} is not JSON: {e}"))?;
        let want: serde_json::Value = serde_json::from_str(want).expect("expected JSON");
        if got != want {
            return Err(format!("body {got}, expected {want}"));
        }
        let ct = r.headers.get("content-type").map(String::as_str);
        if ct != Some("application/json") {
            return Err(format!("content-type {ct:?}"));
        }
    }
    if let Some((k, v)) = c.header
        && r.headers.get(k).map(String::as_str) != Some(v)
    {
        return Err(format!(
            "header {k}: {:?}, expected {v:?}",
            r.headers.get(k)
        ));
    }
    Ok(())
}

fn run(peer: &'static str) {
    let p = Peer::start(peer);
    let mut failures = Vec::new();
    let cases = cases(peer);
    for c in &cases {
        let result = send(p.addr, &c.bytes).and_then(|r| check(c, peer, &r));
        if let Err(e) = result {
            failures.push(format!("{}: {}: {e}", p.name, c.name));
        }
    }
    drop(p);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn node_peer() {
    run("node");
}

#[test]
fn python_peer() {
    run("python");
}

#[test]
fn go_peer() {
    run("go");
}

#[test]
fn bun_peer() {
    run("bun");
}

/// `--workers 2` as the benchmark matrix runs it (`{workers}`): the Bun peer's second process
/// joins the port (SO_REUSEPORT) before the first one announces it, and each answers. Go's
/// `--workers` only sets GOMAXPROCS.
#[test]
fn bun_peer_with_two_workers() {
    let p = Peer::start_with("bun", &["--workers", "2"]);
    let pids = p.process.as_ref().expect("running").pids();
    assert_eq!(pids.len(), 2, "one process per worker: {pids:?}");
    let t = now();
    for n in 0..8 {
        let d = Delivery::signed(&event(&format!("evt-bun2-{n}"), "s-bun2", t), t);
        let r = send(p.addr, &d.bytes()).unwrap_or_else(|e| panic!("delivery {n}: {e}"));
        assert_eq!(
            r.status,
            200,
            "delivery {n}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

/// Runs a peer's own unit tests (the known-answer vectors through its verifier), at most 120 s.
fn unit_tests(dir: &str, program: &Path, args: &[&str], envs: &[(&str, PathBuf)]) {
    installed();
    let out = command("timeout")
        .arg("120")
        .arg(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .current_dir(root().join(dir))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{dir}: cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{dir}: unit tests failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn node_peer_vectors() {
    unit_tests("peers/node", Path::new("node"), &["--test"], &[]);
}

#[test]
fn python_peer_vectors() {
    unit_tests(
        "peers/python",
        &venv_python(),
        &["-m", "unittest", "discover", "-s", "tests"],
        &[],
    );
}

#[test]
fn go_peer_vectors() {
    // The build cache scripts/peers-install.sh filled; nothing is downloaded.
    let cache = go_cache();
    unit_tests(
        "peers/go",
        Path::new("go"),
        &["test", "-count=1", "."],
        &[
            ("GOCACHE", cache.join("build")),
            ("GOPATH", cache.join("path")),
            ("GOPROXY", "off".into()),
            ("GOFLAGS", "".into()),
            ("GOTOOLCHAIN", "local".into()),
        ],
    );
}

#[test]
fn bun_peer_vectors() {
    unit_tests(
        "peers/bun",
        &root().join("peers/bun/node_modules/.bin/bun"),
        &["test"],
        &[],
    );
}

/// `webhook-bench verify`, the report card teams run on their own receivers, passes each peer:
/// a correct receiver written outside this workspace, in another language. The framing corpus
/// belongs to the peer's HTTP stack (node:http, uvicorn, net/http, Bun.serve), not to its webhook
/// code, so it is left to the published cards.
fn report_card(peer: &'static str) {
    let p = Peer::start(peer);
    let out = command(crate::support::bin("webhook-bench"))
        .args(["verify", "--no-framing", "--target"])
        .arg(format!("http://{}/webhooks/didit", p.addr))
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .output()
        .expect("run webhook-bench verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict:"))
        .unwrap_or_default();
    println!("{peer}: {verdict}");
    assert_eq!(out.status.code(), Some(0), "{peer}:\n{stdout}");
    assert!(verdict.starts_with("verdict: PASS"), "{peer}:\n{stdout}");
}

#[test]
fn node_peer_report_card() {
    report_card("node");
}

#[test]
fn python_peer_report_card() {
    report_card("python");
}

#[test]
fn go_peer_report_card() {
    report_card("go");
}

#[test]
fn bun_peer_report_card() {
    report_card("bun");
}

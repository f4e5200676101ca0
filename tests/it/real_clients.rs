//! The receivers as real senders meet them: every server × backend variant the conformance suite
//! covers answers the cases in `tests/clients/cases.json`, sent by the HTTP clients people send
//! webhooks with: Python's `http.client` and `requests`, curl, and Node's `http` and `fetch`
//! (`tests/clients/driver.py`, `tests/clients/driver.mjs`).
//!
//! The raw-TCP corpus checks framing byte for byte; this suite checks what a client sees. The two
//! differ: `http.client` writes a whole request before it reads the answer, so a server that
//! answers 413 early and then closes a socket with unread input resets the connection, and the
//! client gets a broken pipe instead of the 413 (and retries, where a 413 is final).
//!
//! Needs `python3` with the pinned packages of `tests/clients/requirements.txt` (`scripts/test.sh`
//! installs them into a virtualenv and sets `DIDIT_CLIENTS_PYTHON`), `node` and `curl`. All traffic
//! goes to 127.0.0.1, to ports the receivers opened; every client has a 10 s timeout.

use crate::support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use didit_webhook::canon::{Map, Value};
use didit_webhook::{RingMac, Secret, Signer};
use serde::Deserialize;
use support::{Receiver, SECRET};
use webhook_bench::harness::command;

/// Every client the drivers know, in the order the summary lists them.
const CLIENTS: [&str; 5] = ["http.client", "requests", "curl", "node-http", "node-fetch"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    send: String,
    size: Option<usize>,
    #[serde(default = "one")]
    times: usize,
    clients: Option<Vec<String>>,
    #[serde(default)]
    connection_close: bool,
    #[serde(default)]
    http10: bool,
    content_length: Option<String>,
    #[serde(default)]
    expect_continue: bool,
    expect: Expect,
    /// Per-server answers that differ from `expect`, each with its reason.
    #[serde(default)]
    servers: BTreeMap<String, Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    closed: Option<bool>,
    body_sent: Option<bool>,
    /// Why a server's answer differs (required in `servers`).
    why: Option<String>,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

/// One result line of a driver.
#[derive(Debug, Deserialize)]
struct Outcome {
    id: String,
    status: Option<u16>,
    error: Option<String>,
    closed: Option<bool>,
    body_sent: Option<bool>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cases() -> Vec<Case> {
    let path = root().join("tests/clients/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let c: Cases =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for case in &c.cases {
        for (server, e) in &case.servers {
            assert!(
                e.why.is_some(),
                "{}: the {server} override needs a `why`",
                case.name
            );
        }
        for client in case.clients.iter().flatten() {
            assert!(
                CLIENTS.contains(&client.as_str()),
                "{}: unknown client {client:?}",
                case.name
            );
        }
    }
    c.cases
}

/// The Python with the pinned client packages: `DIDIT_CLIENTS_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("DIDIT_CLIENTS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails with what to do when a client is missing, instead of a confusing case failure.
fn check_clients() {
    let py = python();
    let pinned = std::fs::read_to_string(root().join("tests/clients/requirements.txt"))
        .expect("tests/clients/requirements.txt");
    let want = pinned
        .lines()
        .find_map(|l| l.strip_prefix("requests=="))
        .expect("requests is pinned");
    let got = command(&py)
        .args(["-c", "import requests; print(requests.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert_eq!(
        got, want,
        "{py} lacks requests {want} (found {got:?}): run `bash scripts/test.sh`, which installs \
         tests/clients/requirements.txt into a virtualenv and sets DIDIT_CLIENTS_PYTHON"
    );
    for tool in ["node", "curl"] {
        assert!(
            command(tool).arg("--version").output().is_ok(),
            "{tool} is not installed: run `bash scripts/test.sh`, which installs it"
        );
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A fresh delivery as Didit sends it: body and the four signature headers.
fn delivery(id: &str, ts: i64) -> (Vec<u8>, Vec<(String, String)>) {
    let mut m = Map::default();
    m.insert("webhook_type", Value::from("status.updated"));
    m.insert("timestamp", Value::int(ts));
    m.insert("created_at", Value::int(ts));
    m.insert("session_id", Value::from(format!("s-{id}")));
    m.insert("event_id", Value::from(format!("evt-{id}")));
    m.insert("status", Value::from("Approved"));
    m.insert("vendor_data", Value::from("user-42"));
    let decision = Value::parse(
        r#"{"status":"Approved","id_verifications":[{"first_name":"José"}]}"#.as_bytes(),
    )
    .expect("valid decision");
    m.insert("decision", decision);
    let signed = Signer::<RingMac>::new(&Secret::new(SECRET).expect("a non-empty secret"))
        .sign(&Value::Object(m))
        .expect("signable");
    let headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-Signature".into(), signed.signature.to_string()),
        ("X-Signature-V2".into(), signed.signature_v2.to_string()),
        (
            "X-Signature-Simple".into(),
            signed.signature_simple.to_string(),
        ),
        ("X-Timestamp".into(), signed.timestamp),
    ];
    (signed.body, headers)
}

/// Writes the plan for one receiver into `dir` and returns it with its requests' cases and
/// clients, by request id.
fn plan(
    dir: &Path,
    url: &str,
    cases: &[Case],
) -> (PathBuf, HashMap<String, (usize, String, usize)>) {
    let ts = now();
    let mut requests = Vec::new();
    let mut index = HashMap::new();
    let mut oversize: HashMap<usize, PathBuf> = HashMap::new();
    for (ci, case) in cases.iter().enumerate() {
        let clients: Vec<&str> = match &case.clients {
            Some(c) => c.iter().map(String::as_str).collect(),
            None => CLIENTS.to_vec(),
        };
        for client in clients {
            for attempt in 0..case.times {
                let id = format!("{ci}-{client}-{attempt}");
                let (body_file, mut headers) = match case.send.as_str() {
                    "valid" | "bad_signature" => {
                        let (body, mut headers) = delivery(&format!("{ts}-{id}"), ts);
                        if case.send == "bad_signature" {
                            // Well-formed tags under no secret: every scheme must refuse them.
                            for (name, value) in &mut headers {
                                if name.starts_with("X-Signature") {
                                    *value = "0".repeat(64);
                                }
                            }
                        }
                        let file = dir.join(format!("{id}.json"));
                        std::fs::write(&file, body).expect("write body");
                        (file, headers)
                    }
                    "oversize" => {
                        let size = case.size.expect("oversize needs a size");
                        let file = oversize
                            .entry(size)
                            .or_insert_with(|| {
                                let file = dir.join(format!("oversize-{size}.json"));
                                let mut body = b"{\"pad\":\"".to_vec();
                                body.resize(size - 2, b'x');
                                body.extend_from_slice(b"\"}");
                                std::fs::write(&file, body).expect("write body");
                                file
                            })
                            .clone();
                        (
                            file,
                            vec![("Content-Type".into(), "application/json".into())],
                        )
                    }
                    other => panic!("{}: unknown send {other:?}", case.name),
                };
                if case.connection_close {
                    headers.push(("Connection".into(), "close".into()));
                }
                requests.push(serde_json::json!({
                    "id": id,
                    "client": client,
                    "method": "POST",
                    "path": "/webhooks/didit",
                    "headers": headers,
                    "body_file": body_file,
                    "http10": case.http10,
                    "content_length": case.content_length,
                    "expect_continue": case.expect_continue,
                }));
                index.insert(id, (ci, client.to_owned(), attempt));
            }
        }
    }
    let file = dir.join("plan.json");
    let plan = serde_json::json!({ "url": url, "requests": requests });
    std::fs::write(&file, serde_json::to_vec_pretty(&plan).expect("json")).expect("write plan");
    (file, index)
}

/// Runs one driver on the plan and returns its result lines.
fn drive(program: &str, script: &str, plan: &Path) -> Vec<Outcome> {
    let out = command(program)
        .arg(root().join("tests/clients").join(script))
        .arg(plan)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {script}: {e}"));
    assert!(
        out.status.success(),
        "{program} {script} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{script}: {l:?}: {e}")))
        .collect()
}

/// What was wrong with one result, if anything.
fn judge(expect: &Expect, client: &str, o: &Outcome) -> Option<String> {
    if o.status != Some(expect.status) {
        return Some(match (&o.status, &o.error) {
            (Some(s), _) => format!("status {s}, expected {}", expect.status),
            (None, Some(e)) => format!("{e}, expected status {}", expect.status),
            (None, None) => format!("no answer, expected status {}", expect.status),
        });
    }
    if let Some(want) = expect.closed {
        match o.closed {
            Some(got) if got != want => {
                return Some(format!(
                    "connection {} after the answer",
                    if got { "closed" } else { "left open" }
                ));
            }
            None if client == "http.client" => return Some("closing not observed".into()),
            _ => {}
        }
    }
    if expect.body_sent == Some(false) && o.body_sent == Some(true) {
        return Some("the body was sent before the answer".into());
    }
    None
}

/// Per (case index, client): (passed, sent).
type Tally = BTreeMap<(usize, String), (usize, usize)>;

/// Runs every case with every client against one variant. Returns the failures and the tally.
fn run_variant(server: &str, hmac: &str, json: &str, cases: &[Case]) -> (Vec<String>, Tally) {
    let rx = Receiver::start(
        server,
        hmac,
        json,
        // A 1 MiB limit like the default; the test profile's 1 s body timeout is too short to
        // write 8 MiB on a loaded machine before the server's drain gives up.
        &["--max-body", "1MiB", "--body-timeout", "5s"],
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("real-clients")
        .join(format!("{}-{server}-{hmac}-{json}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let (plan_file, index) = plan(&dir, &format!("http://{}", rx.addr), cases);
    let mut outcomes = drive(&python(), "driver.py", &plan_file);
    outcomes.extend(drive("node", "driver.mjs", &plan_file));
    let mut failures = Vec::new();
    let mut tally = Tally::new();
    let mut seen = std::collections::HashSet::new();
    for o in &outcomes {
        let (ci, client, attempt) = index
            .get(&o.id)
            .unwrap_or_else(|| panic!("a driver answered an unknown id {:?}", o.id));
        seen.insert(o.id.clone());
        let case = &cases[*ci];
        let entry = tally.entry((*ci, client.clone())).or_default();
        entry.1 += 1;
        let expect = case.servers.get(server).unwrap_or(&case.expect);
        match judge(expect, client, o) {
            None => entry.0 += 1,
            Some(why) => failures.push(format!(
                "{}: {}: {client} (try {}): {why}",
                rx.label,
                case.name,
                attempt + 1
            )),
        }
    }
    for (id, (ci, client, _)) in &index {
        if !seen.contains(id) {
            failures.push(format!(
                "{}: {}: {client}: the driver reported nothing",
                rx.label, cases[*ci].name
            ));
        }
    }
    assert!(rx.alive(), "{}: the receiver died", rx.label);
    rx.stop();
    let _ = std::fs::remove_dir_all(&dir);
    (failures, tally)
}

fn real_clients(server: &str) {
    check_clients();
    let cases = cases();
    let pairs = support::backend_pairs(server);
    let mut failures = Vec::new();
    let mut total = Tally::new();
    for (m, j) in pairs {
        let (f, tally) = run_variant(server, m, j, &cases);
        failures.extend(f);
        for (k, (p, n)) in tally {
            let e = total.entry(k).or_default();
            e.0 += p;
            e.1 += n;
        }
    }
    // The summary a person reads (`cargo test --test real_clients -- --nocapture`).
    let mut summary = format!("{server}: passed / sent, over every backend pair\n");
    for (ci, case) in cases.iter().enumerate() {
        let cells: Vec<String> = CLIENTS
            .iter()
            .filter_map(|c| {
                total
                    .get(&(ci, (*c).to_owned()))
                    .map(|(p, n)| format!("{c} {p}/{n}"))
            })
            .collect();
        summary.push_str(&format!("  {:<40} {}\n", case.name, cells.join(", ")));
    }
    println!("{summary}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}\n{summary}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn real_clients_hyper() {
    real_clients("hyper");
}

#[test]
fn real_clients_axum() {
    real_clients("axum");
}

#[test]
fn real_clients_axum_naive() {
    real_clients("axum-naive");
}

#[test]
fn real_clients_actix() {
    real_clients("actix");
}

#[test]
fn real_clients_may() {
    real_clients("may");
}

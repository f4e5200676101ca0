//! The malformed-request corpus (`crates/webhook-bench/cases/malformed.json`, compiled in), written over
//! raw TCP so that requests no HTTP client library would send arrive byte for byte. Each case
//! lists the answers the server must give in order and whether it must then close the
//! connection; after every case the receiver must still accept a good delivery on a new
//! connection. The conformance tests and `webhook-bench verify` both play it through [`play_all`].
//!
//! `MALFORMED_RECORD=1` prints what each server actually did, to help write a new case.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use didit_webhook::canon::{Map, Value};
use didit_webhook::{RingMac, Secret, Signer};
use serde::Deserialize;

use super::wire;

/// The corpus as committed.
const MALFORMED: &str = include_str!("../../cases/malformed.json");

/// How long to wait for an answer or a close. The test receivers cut off a stalled client after
/// 1 s (`--header-timeout`/`--body-timeout`), so this is generous.
const WAIT: Duration = Duration::from_secs(4);

/// One piece of what is written to the socket, in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Part {
    /// Literal text (JSON escapes give `\r\n`).
    Text(String),
    /// Raw bytes as hex pairs, for what a JSON string cannot hold (non-UTF-8).
    Hex(String),
    /// `text` written `times` times.
    Repeat { text: String, times: usize },
    /// A complete, validly signed delivery (a fresh `event_id` each time).
    Good,
    /// A complete delivery whose signature is wrong (well framed, so a 401).
    BadSignature,
    /// The header lines of a good delivery without the blank line that ends the head, so that
    /// more headers can follow; `Body` sends its body.
    GoodHead,
    /// The same as HTTP/1.0.
    GoodHead10,
    /// The body matching the last `GoodHead`.
    Body,
    /// Wait for an interim `100 Continue` (recorded), up to 2 s, then go on.
    AwaitContinue,
    /// Close the write half: the server sees end of stream.
    Shutdown,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The statuses of the answers, in order (interim 1xx answers are not counted).
    pub responses: Vec<u16>,
    /// `close`: the server must close the connection after those answers; `open`: it must keep
    /// it open (checked with one more good delivery); `any`: either.
    #[serde(default = "default_then")]
    pub then: String,
    /// Whether a `100 Continue` must be seen (only checked when the case awaits one).
    #[serde(rename = "continue")]
    pub continue_: Option<bool>,
}

fn default_then() -> String {
    "any".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Why the expected answer is right (RFC 9112 section, or the limit that applies).
    pub why: String,
    pub send: Vec<Part>,
    pub expect: Expect,
    /// Per-server overrides, each explained in `why`.
    #[serde(default)]
    pub except: super::Overrides<Expect>,
}

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
}

/// The committed corpus, in order.
pub fn corpus() -> Vec<Case> {
    let f: File = serde_json::from_str(MALFORMED).unwrap_or_else(|e| {
        panic!("crates/webhook-bench/cases/malformed.json is compiled in and must parse: {e}")
    });
    f.cases
}

impl Case {
    /// The expectation for one of our servers (its override, else the common one).
    pub fn expect_for(&self, server: &str) -> &Expect {
        self.except.for_server(server, &self.expect)
    }
}

/// Where and how the corpus is sent.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// The webhook path: the corpus's `/webhooks/didit` is rewritten to it.
    pub path: String,
    pub secret: String,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A validly signed delivery: (head without the blank line, body).
fn good_parts(t: &Target, bad_signature: bool) -> (String, Vec<u8>) {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut m = Map::default();
    m.insert("webhook_type", Value::from("status.updated"));
    m.insert("timestamp", Value::int(now));
    m.insert("created_at", Value::int(now));
    m.insert(
        "session_id",
        Value::from(format!("malformed-{}-{n}", std::process::id())),
    );
    m.insert(
        "event_id",
        Value::from(format!("malformed-{}-{n}", std::process::id())),
    );
    m.insert("status", Value::from("Approved"));
    let signed = Signer::<RingMac>::new(&Secret::new(&t.secret).expect("a non-empty secret"))
        .sign(&Value::Object(m))
        .expect("signable");
    let mut sig = signed.signature.to_string();
    if bad_signature {
        sig = sig.chars().rev().collect();
    }
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-Signature: {sig}\r\nX-Timestamp: {now}\r\nContent-Length: {}\r\n",
        t.path,
        signed.body.len()
    );
    (head, signed.body)
}

/// A complete, validly signed delivery to `t`.
pub fn good_request(t: &Target) -> Vec<u8> {
    let (head, body) = good_parts(t, false);
    let mut v = head.into_bytes();
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(&body);
    v
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect()
}

/// Waits up to 2 s for the first bytes of an answer; consumes it only if it is an interim
/// `100 Continue`, so that a final answer sent instead is still read as one.
fn await_continue(s: &TcpStream, reader: &mut BufReader<TcpStream>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut peeked = [0u8; 12];
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let mut seen = 0;
    while Instant::now() < deadline {
        match s.peek(&mut peeked) {
            Ok(0) => break,
            Ok(n) => {
                seen = n;
                if n == peeked.len() {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    let _ = s.set_read_timeout(Some(WAIT));
    if seen < peeked.len() || !peeked.starts_with(b"HTTP/1.1 100") {
        return false;
    }
    // The whole interim answer: status line and the blank line (no headers are sent with it).
    let mut line = String::new();
    while std::io::BufRead::read_line(reader, &mut line).is_ok_and(|n| n > 0) {
        if line.ends_with("\r\n\r\n") {
            return true;
        }
    }
    false
}

/// What the server did with one case.
#[derive(Debug, PartialEq)]
pub struct Observed {
    pub responses: Vec<u16>,
    /// Whether the server closed the connection (EOF or reset) after its answers.
    pub closed: bool,
    /// Whether a `100 Continue` arrived while awaited (None: not awaited).
    pub continued: Option<bool>,
}

/// Reads one response head and its content-length body from the raw stream; skips 1xx.
fn read_one(r: &mut BufReader<TcpStream>) -> Option<u16> {
    loop {
        let resp = wire::read_response(r).ok()?;
        if !(100..200).contains(&resp.status) {
            return Some(resp.status);
        }
    }
}

fn play(t: &Target, case: &Case, expected: usize, then: &str) -> std::io::Result<Observed> {
    let mut s = TcpStream::connect_timeout(&t.addr, WAIT)?;
    s.set_read_timeout(Some(WAIT))?;
    s.set_write_timeout(Some(WAIT))?;
    let mut continued = None;
    let mut pending_body: Option<Vec<u8>> = None;
    let mut out: Vec<u8> = Vec::new();
    let mut reader = BufReader::new(s.try_clone()?);
    let flush = |s: &mut TcpStream, out: &mut Vec<u8>| {
        // The server may close before reading everything; that is an answer, not an error.
        let _ = s.write_all(out);
        out.clear();
    };
    for part in &case.send {
        match part {
            Part::Text(text) => {
                out.extend_from_slice(text.replace("/webhooks/didit", &t.path).as_bytes());
            }
            Part::Hex(h) => out.extend_from_slice(&hex(h)),
            Part::Repeat { text, times } => {
                for _ in 0..*times {
                    out.extend_from_slice(text.as_bytes());
                }
            }
            Part::Good => out.extend_from_slice(&good_request(t)),
            Part::BadSignature => {
                let (head, body) = good_parts(t, true);
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&body);
            }
            Part::GoodHead | Part::GoodHead10 => {
                let (mut head, body) = good_parts(t, false);
                if matches!(part, Part::GoodHead10) {
                    head = head.replacen("HTTP/1.1", "HTTP/1.0", 1);
                }
                out.extend_from_slice(head.as_bytes());
                pending_body = Some(body);
            }
            Part::Body => {
                out.extend_from_slice(&pending_body.take().unwrap_or_default());
            }
            Part::AwaitContinue => {
                flush(&mut s, &mut out);
                continued = Some(await_continue(&s, &mut reader));
            }
            Part::Shutdown => {
                flush(&mut s, &mut out);
                let _ = s.shutdown(Shutdown::Write);
            }
        }
    }
    flush(&mut s, &mut out);
    let mut responses = Vec::new();
    // Read at least what is expected, and one more if it comes (an extra answer is a failure).
    while responses.len() < expected {
        match read_one(&mut reader) {
            Some(st) => responses.push(st),
            None => break,
        }
    }
    let closed = if responses.len() < expected {
        true
    } else {
        match then {
            // Still usable: one more good delivery on the same connection is answered.
            "open" => {
                let _ = s.write_all(&good_request(t));
                read_one(&mut reader) != Some(200)
            }
            "close" => wait_for_eof(&mut reader, WAIT, &mut responses),
            // Either is allowed; a short look still catches an unexpected extra answer.
            _ => wait_for_eof(&mut reader, Duration::from_millis(150), &mut responses),
        }
    };
    Ok(Observed {
        responses,
        closed,
        continued,
    })
}

/// Whether the server closes within `limit`: EOF or a reset. Bytes arriving instead are an
/// unexpected extra answer, recorded as status 0.
fn wait_for_eof(r: &mut BufReader<TcpStream>, limit: Duration, responses: &mut Vec<u16>) -> bool {
    let started = Instant::now();
    let _ = r
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)));
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => {
                responses.push(0);
                return false;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if started.elapsed() > limit {
                    return false;
                }
            }
            Err(_) => return true,
        }
    }
}

/// What one case gave, judged.
#[derive(Debug)]
pub struct Played {
    pub name: String,
    pub why: String,
    pub expected: Expect,
    /// `None` when the connection could not be opened.
    pub observed: Option<Observed>,
    /// Empty when the server answered as expected.
    pub failures: Vec<String>,
}

/// Plays every case against `t`, judging each by `expect(case)`. After each case `alive` is asked
/// whether the receiver still runs (a process the caller started; `|| true` otherwise) and a good
/// delivery must be answered 200 on a new connection.
pub fn play_all<'c>(
    t: &Target,
    cases: &'c [Case],
    expect: impl Fn(&'c Case) -> &'c Expect,
    alive: impl Fn() -> bool,
) -> Vec<Played> {
    let record = std::env::var_os("MALFORMED_RECORD").is_some();
    let mut out = Vec::new();
    for case in cases {
        let want = expect(case);
        let got = play(t, case, want.responses.len(), &want.then);
        let mut why = Vec::new();
        match &got {
            Err(e) => why.push(format!("cannot connect: {e}")),
            Ok(got) => {
                if record {
                    eprintln!("RECORD {:<44} {got:?}", case.name);
                }
                if got.responses != want.responses {
                    why.push(format!(
                        "answers {:?}, expected {:?}",
                        got.responses, want.responses
                    ));
                }
                match want.then.as_str() {
                    "close" if !got.closed => why.push("left the connection open".into()),
                    "open" if got.closed => why.push("closed the connection".into()),
                    _ => {}
                }
                if let (Some(w), Some(g)) = (want.continue_, got.continued)
                    && w != g
                {
                    why.push(format!("100 Continue seen: {g}, expected {w}"));
                }
            }
        }
        let died = !alive();
        if died {
            why.push("the receiver died".into());
        } else {
            match wire::send(t.addr, &good_request(t)) {
                Ok(r) if r.status == 200 => {}
                Ok(r) => why.push(format!("the next good delivery got {}", r.status)),
                Err(e) => why.push(format!("the next good delivery failed: {e}")),
            }
        }
        out.push(Played {
            name: case.name.clone(),
            why: case.why.clone(),
            expected: want.clone(),
            observed: got.ok(),
            failures: why,
        });
        if died {
            break;
        }
    }
    out
}

//! `webhook-bench verify`: a conformance report card for any receiver, in any language, over
//! real HTTP.
//!
//! Three sources of cases, each read from the same data the project's own tests use:
//! - [`contract`]: the corpus of `crates/webhook-bench/cases/cases.json` (valid deliveries and retries,
//!   the known-answer vectors, the console sample, tampering, freshness, signed malformed bodies,
//!   limits and routing);
//! - the generator's labelled classes (`didit-loadgen`): a valid delivery of every payload kind,
//!   then every bad class (stale, future, replayed, re-encoded, Simple-only, ...);
//! - [`framing`]: the raw-TCP malformed-request corpus of `crates/webhook-bench/cases/malformed.json`.
//!
//! An `https://` target gets the contract cases and the generator's classes over TLS ([`wire`]);
//! the framing corpus is skipped there, with a note on the card: it needs the bare socket
//! (half-closes, peeking for `100 Continue`), and behind TLS the framing is usually the
//! terminating proxy's anyway.
//!
//! A receiver that is not one of ours is judged on status codes (its bodies are its own); body
//! markers such as `{"status":"duplicate"}` are optional. The framing group gets a verdict of its
//! own and counts only with `--strict-http`: a receiver behind a proxy does not own its framing.

pub mod contract;
pub mod framing;
pub mod report;
pub mod wire;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use didit_loadgen::scenario::Scenario;
use didit_loadgen::tls::{BlockingStream, ConnectError};
use didit_loadgen::{Acked, Class, Generator, PayloadKind, Templates, TlsClient, Trust};
use didit_webhook::Secret;
use serde::Serialize;

/// A corpus entry's per-server overrides (`"except": {"may": …}`), each explained in the
/// entry's `why`: documented limitations of one of our servers.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides<E> {
    pub may: Option<E>,
    pub hyper: Option<E>,
    pub axum: Option<E>,
    #[serde(rename = "axum-naive")]
    pub axum_naive: Option<E>,
    pub actix: Option<E>,
}

// By hand: a derive would ask `E: Default`, and an absent `except` overrides nothing.
impl<E> Default for Overrides<E> {
    fn default() -> Self {
        Overrides {
            may: None,
            hyper: None,
            axum: None,
            axum_naive: None,
            actix: None,
        }
    }
}

impl<E> Overrides<E> {
    /// The expectation for `server`: its override, else `common`.
    pub fn for_server<'a>(&'a self, server: &str, common: &'a E) -> &'a E {
        match server {
            "may" => self.may.as_ref(),
            "hyper" => self.hyper.as_ref(),
            "axum" => self.axum.as_ref(),
            "axum-naive" => self.axum_naive.as_ref(),
            "actix" => self.actix.as_ref(),
            _ => None,
        }
        .unwrap_or(common)
    }
}

/// Why a card could not be made (exit 2): the target, the secret or the case data.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0} is not a target like http://127.0.0.1:8080/webhooks/didit")]
    BadTarget(String),
    #[error("cannot reach {target}: {error}; is the receiver running there?")]
    Unreachable { target: String, error: String },
    #[error("{target}: {error}")]
    Tls {
        target: String,
        error: didit_loadgen::TlsError,
    },
    #[error(transparent)]
    Fixture(#[from] didit_fixtures::FixtureError),
    #[error(transparent)]
    Secret(#[from] didit_webhook::SecretError),
    #[error("the generator's traffic model: {0}")]
    Model(String),
    #[error("case data: {0}")]
    Case(String),
}

/// A receiver to verify.
#[derive(Clone, Debug)]
pub struct Target {
    /// As given, for the card.
    pub url: String,
    pub addr: SocketAddr,
    /// `host:port`, for the `Host` header.
    pub host: String,
    /// The webhook path (default `/webhooks/didit`).
    pub path: String,
    /// For an `https://` target: the TLS client every connection goes through.
    pub tls: Option<TlsClient>,
}

impl Target {
    /// Parses `http://HOST[:PORT][/path]` or `https://…`; an `https://` target's certificate
    /// must chain to the system's roots.
    pub fn parse(url: &str) -> Result<Target, VerifyError> {
        Target::parse_with(url, Trust::SystemRoots)
    }

    /// [`Target::parse`], with the certificates an `https://` target may show.
    pub fn parse_with(url: &str, trust: Trust) -> Result<Target, VerifyError> {
        let bad = || VerifyError::BadTarget(url.to_owned());
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err(bad()),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = if path.is_empty() || path == "/" {
            contract::WEBHOOK_PATH
        } else {
            path
        };
        // `host:port`, `[v6]:port`, or either without a port (the scheme's).
        let name = match host.rsplit_once(':') {
            Some((name, port)) if !port.ends_with(']') => {
                port.parse::<u16>().map_err(|_| bad())?;
                name
            }
            _ => host,
        };
        let default_port = if https { 443 } else { 80 };
        let addr = if name.len() == host.len() {
            format!("{host}:{default_port}")
        } else {
            host.to_owned()
        }
        .to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)?;
        let tls = https
            .then(|| TlsClient::new(name.trim_start_matches('[').trim_end_matches(']'), trust))
            .transpose()
            .map_err(|error| VerifyError::Tls {
                target: url.to_owned(),
                error,
            })?;
        Ok(Target {
            url: url.to_owned(),
            addr,
            host: host.to_owned(),
            path: path.to_owned(),
            tls,
        })
    }

    /// Writes `bytes` on a new connection (TLS for `https://`) and reads one answer.
    pub fn send(&self, bytes: &[u8]) -> Result<wire::Response, String> {
        wire::send_over(self.addr, self.tls.as_ref(), bytes)
    }
}

/// What to check and how.
#[derive(Clone, Debug)]
pub struct Options {
    pub target: Target,
    pub secret: String,
    /// The receiver's body limit: oversize cases are one byte over it.
    pub max_body: usize,
    /// The receiver's freshness tolerance: stale and future cases are a minute outside it.
    pub tolerance: Duration,
    /// The receiver accepts Simple-only deliveries (`--accept-simple` on ours).
    pub accept_simple: bool,
    /// Framing failures fail the card.
    pub strict_http: bool,
    /// Strict-contract failures fail the card (uppercase hex of a correct MAC, a header that
    /// disagrees with a fresh signed body, a malformed header beside one, a numeric-string
    /// timestamp, and the generator's `timestamp_mismatch` class).
    pub strict: bool,
    /// Play the raw-TCP framing corpus.
    pub framing: bool,
    /// One of our servers (`hyper`, `may`, ...): the framing corpus is judged with that
    /// server's recorded answers instead of the common ones.
    pub server: Option<String>,
}

/// The report-card groups, in the order the card lists them. `security`, `correctness` and
/// `http` are required; `strict` counts with `--strict`, `framing` with `--strict-http`,
/// `optional` never.
pub const GROUPS: [&str; 6] = [
    "security",
    "correctness",
    "http",
    "strict",
    "framing",
    "optional",
];

/// The card JSON's schema id (`results/card.schema.json`).
pub const CARD_SCHEMA: &str = "webhook-bench-card/1";

/// Where the contract each group tests is written down.
const CONTRACT_DOC: &str = "crates/didit-webhook/CONTRACT.md";

/// Why a failure of this line matters, in one sentence, and the section of the contract
/// documentation it tests.
pub fn why(group: &str, name: &str) -> (&'static str, String) {
    let has = |w: &str| name.contains(w);
    let (sentence, section) = match group {
        "security" if has("stale") || has("future") || has("old signed body") || has("replay") => (
            "A captured delivery could be sent again later and acted on as new.",
            "freshness-and-replay",
        ),
        "security"
            if has("JSON")
                || has("malformed")
                || has("without timestamp")
                || has("string timestamp") =>
        {
            (
                "A signed but malformed body must be refused whole, never half-processed.",
                "parse-after-verify",
            )
        }
        "security" => (
            "A forged or altered delivery would be acted on as if Didit had sent it.",
            "signatures",
        ),
        "correctness" => (
            "A delivery Didit sent, or its retry, would be lost or processed twice.",
            "exactly-once",
        ),
        "http" => (
            "Senders and proxies act on these statuses: 413 ends an oversized upload, 404 and 405 say the route is wrong.",
            "limits-and-routing",
        ),
        "strict" => (
            "Stricter than security needs: nothing forged or stale gets through, but the receiver reads the contract loosely.",
            "strict-contract",
        ),
        "framing" => (
            "A malformed request got another answer than RFC 9112's; often the proxy's business.",
            "framing",
        ),
        _ => (
            "Beyond the contract: what this project's receivers offer besides it.",
            "optional",
        ),
    };
    (sentence, format!("{CONTRACT_DOC}#{section}"))
}

/// One case's line.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Line {
    pub group: String,
    pub name: String,
    /// What was sent, briefly.
    pub sent: String,
    /// What a correct receiver answers.
    pub expected: String,
    /// What it answered.
    pub got: String,
    pub passed: bool,
    /// Why a failure matters, in one sentence ([`why`]).
    pub why: String,
    /// The section of the contract documentation the line tests.
    pub doc: String,
}

impl Line {
    /// A line with its `why` and `doc` filled in from its group and name.
    pub fn new(
        group: &str,
        name: String,
        sent: String,
        expected: String,
        got: String,
        passed: bool,
    ) -> Line {
        let (why, doc) = why(group, &name);
        Line {
            group: group.to_owned(),
            name,
            sent,
            expected,
            got,
            passed,
            why: why.to_owned(),
            doc,
        }
    }

    /// Whether this line decides the verdict under these settings.
    pub fn counts(&self, strict: bool, strict_http: bool) -> bool {
        match self.group.as_str() {
            "security" | "correctness" | "http" => true,
            "strict" => strict,
            "framing" => strict_http,
            _ => false,
        }
    }
}

/// Passed and total for one group.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Tally {
    pub passed: usize,
    pub total: usize,
}

/// The whole card.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Card {
    /// [`CARD_SCHEMA`].
    pub schema: String,
    pub target: String,
    pub lines: Vec<Line>,
    pub groups: std::collections::BTreeMap<String, Tally>,
    /// Every required case (security, correctness, http) passed.
    pub required_passed: bool,
    pub framing_passed: bool,
    /// Why the framing corpus did not run, when it did not.
    pub framing_skipped: Option<String>,
    pub strict_http: bool,
    pub strict_passed: bool,
    pub strict: bool,
    /// The verdict: required passed, and strict too under `--strict`, framing too under
    /// `--strict-http`.
    pub passed: bool,
}

impl Card {
    fn tally(&self, group: &str) -> Tally {
        self.groups.get(group).cloned().unwrap_or_default()
    }

    /// The required cases: security, correctness and http.
    pub fn required(&self) -> Tally {
        let mut t = Tally::default();
        for g in ["security", "correctness", "http"] {
            let x = self.tally(g);
            t.passed += x.passed;
            t.total += x.total;
        }
        t
    }

    /// `61/61 required, 4/4 strict, 41/41 framing, 3/5 optional`.
    pub fn summary(&self) -> String {
        let r = self.required();
        let o = self.tally("optional");
        let f = self.tally("framing");
        let s = self.tally("strict");
        format!(
            "{}/{} required, {}/{} strict, {}/{} framing, {}/{} optional",
            r.passed, r.total, s.passed, s.total, f.passed, f.total, o.passed, o.total
        )
    }

    /// The card as a person reads it: one line per case, grouped, then the verdict lines.
    pub fn render(&self) -> String {
        let mut out = format!("webhook-bench verify {}\n", self.target);
        for g in GROUPS {
            let t = self.tally(g);
            if t.total == 0 {
                continue;
            }
            out.push_str(&format!("\n{g} ({}/{})\n", t.passed, t.total));
            for l in self.lines.iter().filter(|l| l.group == g) {
                out.push_str(&format!(
                    "  {} {}: sent {}; expected {}, got {}\n",
                    if l.passed { "pass" } else { "FAIL" },
                    l.name,
                    l.sent,
                    l.expected,
                    l.got
                ));
                if !l.passed {
                    out.push_str(&format!("       why: {} ({})\n", l.why, l.doc));
                }
            }
        }
        let r = self.required();
        let f = self.tally("framing");
        out.push_str(&if f.total == 0 {
            format!(
                "\nframing: skipped ({})\n",
                self.framing_skipped.as_deref().unwrap_or("--no-framing")
            )
        } else {
            format!(
                "\nframing: {} ({}/{}; {}{})\n",
                if self.framing_passed { "pass" } else { "FAIL" },
                f.passed,
                f.total,
                if self.strict_http {
                    "counts: --strict-http"
                } else {
                    "informational; --strict-http makes it count"
                },
                self.framing_skipped
                    .as_deref()
                    .map(|why| format!("; the raw-TCP corpus skipped: {why}"))
                    .unwrap_or_default()
            )
        });
        let s = self.tally("strict");
        if s.total > 0 {
            out.push_str(&format!(
                "strict: {} ({}/{}; {})\n",
                if self.strict_passed { "pass" } else { "FAIL" },
                s.passed,
                s.total,
                if self.strict {
                    "counts: --strict"
                } else {
                    "informational; --strict makes it count"
                }
            ));
        }
        out.push_str(&format!(
            "verdict: {} ({})\n",
            if self.passed { "PASS" } else { "FAIL" },
            if r.passed == r.total {
                self.summary()
            } else {
                format!(
                    "{}; failed: {}",
                    self.summary(),
                    self.failed_required().join(", ")
                )
            }
        ));
        out
    }

    /// The lines that fail the verdict under the card's settings, one per line as the card
    /// prints them, with why each matters.
    pub fn failures(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| !l.passed && l.counts(self.strict, self.strict_http))
            .map(|l| {
                format!(
                    "FAIL [{}] {}: sent {}; expected {}, got {} ({})",
                    l.group, l.name, l.sent, l.expected, l.got, l.why
                )
            })
            .collect()
    }

    /// For a team's own test suite: panics with the card's failure lines unless it passed.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(
            self.passed,
            "the report card of {} failed:\n{}",
            self.target,
            self.failures().join("\n")
        );
    }

    /// Names of the failed required cases.
    pub fn failed_required(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| {
                !l.passed && matches!(l.group.as_str(), "security" | "correctness" | "http")
            })
            .map(|l| l.name.clone())
            .collect()
    }
}

/// Checks that the target accepts connections at all, and TLS ones from us for an `https://`
/// target (else exit 2, not a failed card: an untrusted certificate names `--insecure`).
fn reachable(t: &Target) -> Result<(), VerifyError> {
    match BlockingStream::connect(t.addr, t.tls.as_ref(), Duration::from_secs(5)) {
        Ok(_) => Ok(()),
        Err(ConnectError::Tcp(e)) => Err(VerifyError::Unreachable {
            target: t.url.clone(),
            error: e.to_string(),
        }),
        Err(ConnectError::Tls(error)) => Err(VerifyError::Tls {
            target: t.url.clone(),
            error,
        }),
    }
}

fn answer(r: &Result<wire::Response, String>) -> String {
    match r {
        Ok(r) => format!("{}", r.status),
        Err(e) => e.clone(),
    }
}

fn describe(c: &contract::Case) -> String {
    let mut parts = vec![format!("{} {}", c.method, c.path)];
    if c.payload != "event" {
        parts.push(c.payload.clone());
    }
    if let Some(t) = &c.tamper {
        parts.push(format!("tampered {t}"));
    }
    if c.timestamp_offset != 0 {
        parts.push(format!("timestamp {:+} s", c.timestamp_offset));
    }
    if c.header_timestamp != "same" {
        parts.push(format!("X-Timestamp {}", c.header_timestamp));
    }
    if let Some(s) = &c.signatures {
        parts.push(format!("signatures [{}]", s.join(",")));
    }
    if c.encoding != "wire" {
        parts.push(format!("re-encoded {}", c.encoding));
    }
    if c.transport != "content_length" {
        parts.push(c.transport.clone());
    }
    if c.raw_body.is_some() {
        parts.push("literal body".into());
    }
    if let Some(r) = &c.repeat {
        parts.push(format!("repeat of {r:?}"));
    }
    parts.join(", ")
}

/// The contract corpus, judged by status (and `also`); duplicate markers as optional lines.
fn contract_lines(o: &Options, tag: &str) -> Result<Vec<Line>, VerifyError> {
    let cases: Vec<contract::Case> = contract::corpus()
        .into_iter()
        .filter(|c| {
            let simple_only = c.signatures.as_deref() == Some(&["simple".to_owned()][..]);
            if c.profile == "simple" {
                o.accept_simple
            } else {
                !(o.accept_simple && simple_only)
            }
        })
        .collect();
    let built = contract::build_all(
        &cases,
        &contract::Build {
            secret: o.secret.clone(),
            path: o.target.path.clone(),
            host: o.target.host.clone(),
            tag: tag.to_owned(),
            oversize: Some(o.max_body + 1),
        },
    )?;
    let mut lines = Vec::new();
    for (c, b) in cases.iter().zip(&built) {
        let r = o.target.send(&b.bytes);
        let mut ok = vec![c.expect.status];
        ok.extend(&c.also);
        let passed = r.as_ref().is_ok_and(|r| ok.contains(&r.status));
        let expected = ok
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        lines.push(Line::new(
            c.group(),
            c.name.clone(),
            describe(c),
            expected,
            answer(&r),
            passed,
        ));
        // The body marker of a duplicate: ours say so; others need not.
        if c.expect.body == Some(serde_json::json!({"status": "duplicate"})) {
            let marked = r.as_ref().is_ok_and(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body)
                    .is_ok_and(|v| v["status"] == "duplicate")
            });
            lines.push(Line::new(
                "optional",
                format!("{}: body says duplicate", c.name),
                describe(c),
                r#"{"status":"duplicate"}"#.into(),
                r.as_ref().map_or_else(Clone::clone, |r| {
                    String::from_utf8_lossy(&r.body).chars().take(80).collect()
                }),
                marked,
            ));
        }
    }
    Ok(lines)
}

/// The generator's labelled classes: a valid delivery of every payload kind, then one of every
/// bad class, as `didit-loadgen` sends them.
fn generator_lines(o: &Options) -> Result<Vec<Line>, VerifyError> {
    let toml = format!(
        "name = \"verify\"\npath = \"{}\"\n[load]\nshape = \"max\"\n[payloads]\n{}\n[receiver]\n\
         accept_simple = {}\nmax_body = \"{}\"\ntolerance = \"{}s\"\n",
        o.target.path,
        PayloadKind::ALL
            .iter()
            .map(|k| format!("{} = 1", k.key()))
            .collect::<Vec<_>>()
            .join("\n"),
        o.accept_simple,
        o.max_body,
        o.tolerance.as_secs(),
    );
    let scenario = Scenario::parse(&toml, std::path::Path::new("verify"))
        .map_err(|e| VerifyError::Model(e.to_string()))?;
    let templates = Arc::new(Templates::load().map_err(|e| VerifyError::Model(e.to_string()))?);
    let secret = Secret::new(&o.secret)?;
    let mut g = Generator::new(templates, &scenario, &secret, Acked::shared(), seed());
    let now = || didit_webhook::Clock::now_unix(&didit_webhook::SystemClock);
    let mut plan: Vec<(Class, PayloadKind)> = PayloadKind::ALL
        .iter()
        .map(|k| (Class::Valid, *k))
        .collect();
    plan.extend(
        Class::ALL
            .iter()
            .filter(|c| **c != Class::Valid)
            .map(|c| (*c, PayloadKind::Approved)),
    );
    let mut lines = Vec::new();
    for (class, kind) in plan {
        let d = g.make_kind(class, kind, now());
        let expect = d.label.expect;
        let req = wire::request(&o.target.path, &o.target.host, &d);
        let r = o.target.send(&req);
        let passed = r.as_ref().is_ok_and(|r| r.status == expect.status());
        if class == Class::Valid && passed {
            // A source for the replay and retry classes that follow.
            g.remember(&d);
        }
        let group = match (class, d.label.class) {
            // Replays and retries fall back to valid deliveries when nothing was acknowledged.
            (_, Class::Valid | Class::Retry | Class::Replay) => "correctness",
            (Class::Reformatted, _) => "optional",
            // The unsigned header disagreeing with a fresh signed body: strict, as in the corpus.
            (Class::TimestampMismatch, _) => "strict",
            (Class::Oversize, _) => "http",
            _ => "security",
        };
        lines.push(Line::new(
            group,
            format!("generator {} {}", class.key(), kind.key()),
            format!(
                "{} bytes, {} {}",
                d.body.len(),
                d.label.class.key(),
                kind.key()
            ),
            format!("{} ({})", expect.status(), expect.word()),
            answer(&r),
            passed,
        ));
    }
    Ok(lines)
}

fn framing_lines(o: &Options) -> Vec<Line> {
    let cases = framing::corpus();
    let target = framing::Target {
        addr: o.target.addr,
        path: o.target.path.clone(),
        secret: o.secret.clone(),
    };
    let server = o.server.clone().unwrap_or_default();
    framing::play_all(&target, &cases, |c| c.expect_for(&server), || true)
        .into_iter()
        .map(|p| {
            let got = match &p.observed {
                Some(ob) => format!(
                    "{:?}{}",
                    ob.responses,
                    if ob.closed {
                        " then close"
                    } else {
                        " then open"
                    }
                ),
                None => "no connection".into(),
            };
            Line::new(
                "framing",
                p.name,
                format!("raw bytes; {}", p.why),
                format!("{:?} then {}", p.expected.responses, p.expected.then),
                got,
                p.failures.is_empty(),
            )
        })
        .collect()
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The card of the receiver at `url` (`http://` or `https://`, the webhook path included) that
/// shares `secret`, with the defaults of `webhook-bench verify --no-framing` (1 MiB body limit,
/// 300 s tolerance, Simple refused, certificates checked against the system's roots): what a
/// team's `cargo test` calls, with [`Card::assert_passed`], to get the same verdict as the binary.
pub fn check(url: &str, secret: &str) -> Result<Card, VerifyError> {
    let o = Options {
        target: Target::parse(url)?,
        secret: secret.to_owned(),
        max_body: 1 << 20,
        tolerance: Duration::from_secs(300),
        accept_simple: false,
        strict_http: false,
        strict: false,
        framing: false,
        server: None,
    };
    verify(&o, |_| {})
}

/// Runs every case against the target and makes the card. `progress` is told each group as it
/// starts.
pub fn verify(o: &Options, mut progress: impl FnMut(&str)) -> Result<Card, VerifyError> {
    reachable(&o.target)?;
    // Ids unique to this run, so a receiver that outlives one run sees new events the next time.
    let tag = format!("v{:x}-", seed() & 0xff_ffff_ffff);
    progress("contract cases (crates/webhook-bench/cases/cases.json)");
    let mut lines = contract_lines(o, &tag)?;
    progress("generator classes (didit-loadgen)");
    lines.extend(generator_lines(o)?);
    let framing_skipped = if !o.framing {
        Some("--no-framing".to_owned())
    } else if o.target.tls.is_some() {
        let why = "an https target: the raw corpus needs the bare TCP socket, and behind TLS \
                   the framing is usually the terminating proxy's";
        progress(&format!("framing corpus skipped ({why})"));
        Some(why.to_owned())
    } else {
        progress("framing corpus (crates/webhook-bench/cases/malformed.json)");
        lines.extend(framing_lines(o));
        None
    };
    let mut groups = std::collections::BTreeMap::<String, Tally>::new();
    for l in &lines {
        let t = groups.entry(l.group.clone()).or_default();
        t.total += 1;
        t.passed += usize::from(l.passed);
    }
    let required_passed = lines
        .iter()
        .filter(|l| matches!(l.group.as_str(), "security" | "correctness" | "http"))
        .all(|l| l.passed);
    let framing_passed = lines
        .iter()
        .filter(|l| l.group == "framing")
        .all(|l| l.passed);
    let strict_passed = lines
        .iter()
        .filter(|l| l.group == "strict")
        .all(|l| l.passed);
    Ok(Card {
        schema: CARD_SCHEMA.into(),
        target: o.target.url.clone(),
        lines,
        groups,
        required_passed,
        framing_passed,
        framing_skipped,
        strict_http: o.strict_http,
        strict_passed,
        strict: o.strict,
        passed: required_passed
            && (framing_passed || !o.strict_http)
            && (strict_passed || !o.strict),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_their_scheme_port_and_path() {
        let t = Target::parse("http://127.0.0.1:3000").expect("http");
        assert_eq!(
            (t.addr.port(), t.path.as_str()),
            (3000, contract::WEBHOOK_PATH)
        );
        assert!(t.tls.is_none());
        let t = Target::parse_with("https://127.0.0.1/hooks", Trust::AnyCertificate)
            .expect("https without a port");
        assert_eq!((t.addr.port(), t.path.as_str()), (443, "/hooks"));
        assert!(t.tls.is_some());
        let t = Target::parse_with("https://[::1]:8443", Trust::AnyCertificate).expect("v6");
        assert_eq!((t.addr.port(), t.host.as_str()), (8443, "[::1]:8443"));
        for bad in ["ftp://127.0.0.1:1", "127.0.0.1:1", "http://127.0.0.1:port"] {
            assert!(
                matches!(Target::parse(bad), Err(VerifyError::BadTarget(_))),
                "{bad}"
            );
        }
    }
}

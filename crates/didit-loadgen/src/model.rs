//! The traffic model: payload kinds built from the real console sample, traffic classes (good and
//! bad), and the label that says what a correct receiver answers to each delivery.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use didit_fixtures::{PayloadSize, payload};
use didit_webhook::canon::{Map, Value};
use didit_webhook::{CONTENT_TYPE, Reencoding, Rejection, Secret, USER_AGENT, reencode};
use hyper::http::{HeaderName, HeaderValue, header};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::scenario::{ReceiverProfile, Scenario};
use crate::template::{Fill, Slot, Template, TemplateError, TemplateSigner};

/// The kinds of good payloads (contract §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PayloadKind {
    NotStarted,
    InProgress,
    Approved,
    Declined,
    InReview,
    Abandoned,
    Resubmitted,
    DataUpdated,
    UserEvent,
    BusinessEvent,
    TransactionEvent,
    /// The whole console sample (about 20 KB).
    FullSample,
    /// The sample with its AML hits repeated to about 200 KB.
    AmlHeavy,
}

impl PayloadKind {
    pub const ALL: [PayloadKind; 13] = [
        PayloadKind::NotStarted,
        PayloadKind::InProgress,
        PayloadKind::Approved,
        PayloadKind::Declined,
        PayloadKind::InReview,
        PayloadKind::Abandoned,
        PayloadKind::Resubmitted,
        PayloadKind::DataUpdated,
        PayloadKind::UserEvent,
        PayloadKind::BusinessEvent,
        PayloadKind::TransactionEvent,
        PayloadKind::FullSample,
        PayloadKind::AmlHeavy,
    ];

    /// The key in scenario files and reports.
    pub fn key(self) -> &'static str {
        match self {
            PayloadKind::NotStarted => "not_started",
            PayloadKind::InProgress => "in_progress",
            PayloadKind::Approved => "approved",
            PayloadKind::Declined => "declined",
            PayloadKind::InReview => "in_review",
            PayloadKind::Abandoned => "abandoned",
            PayloadKind::Resubmitted => "resubmitted",
            PayloadKind::DataUpdated => "data_updated",
            PayloadKind::UserEvent => "user_event",
            PayloadKind::BusinessEvent => "business_event",
            PayloadKind::TransactionEvent => "transaction_event",
            PayloadKind::FullSample => "full_sample",
            PayloadKind::AmlHeavy => "aml_heavy",
        }
    }
}

/// A traffic class: good deliveries and each kind of bad one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Encoded and signed exactly as Didit does, fresh ids and timestamp.
    Valid,
    /// Both body signatures wrong.
    BadSignature,
    /// Correctly signed, timestamp a minute older than the tolerance.
    Stale,
    /// Correctly signed, timestamp a minute past the tolerance in the future.
    Future,
    /// `X-Timestamp` differs from the signed body timestamp (a replayer refreshed the header).
    TimestampMismatch,
    /// The exact bytes and headers of an earlier acknowledged delivery.
    Replay,
    /// Re-encoded by middleware (pretty-printed or unsorted raw UTF-8): only V2 still holds.
    Reformatted,
    /// Only `X-Signature-Simple`.
    SimpleOnly,
    /// Not JSON, with a valid `X-Signature`.
    MalformedJson,
    /// One byte over the receiver's `--max-body`.
    Oversize,
    /// A Didit retry: the same `event_id`, re-signed with a fresh timestamp.
    Retry,
}

impl Class {
    pub const ALL: [Class; 11] = [
        Class::Valid,
        Class::BadSignature,
        Class::Stale,
        Class::Future,
        Class::TimestampMismatch,
        Class::Replay,
        Class::Reformatted,
        Class::SimpleOnly,
        Class::MalformedJson,
        Class::Oversize,
        Class::Retry,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Class::Valid => "valid",
            Class::BadSignature => "bad_signature",
            Class::Stale => "stale",
            Class::Future => "future",
            Class::TimestampMismatch => "timestamp_mismatch",
            Class::Replay => "replay",
            Class::Reformatted => "reformatted",
            Class::SimpleOnly => "simple_only",
            Class::MalformedJson => "malformed_json",
            Class::Oversize => "oversize",
            Class::Retry => "retry",
        }
    }

    /// What a receiver started as `profile` describes must answer.
    pub fn expect(self, profile: &ReceiverProfile) -> Expect {
        match self {
            Class::Valid | Class::Reformatted => Expect::Accepted,
            Class::Replay | Class::Retry => Expect::Duplicate,
            Class::BadSignature => Expect::Rejected(Rejection::InvalidSignature),
            Class::Stale => Expect::Rejected(Rejection::Stale),
            Class::Future => Expect::Rejected(Rejection::FromFuture),
            Class::TimestampMismatch => Expect::Rejected(Rejection::TimestampMismatch),
            Class::SimpleOnly if profile.accept_simple => Expect::Accepted,
            Class::SimpleOnly => Expect::Rejected(Rejection::MissingSignature),
            Class::MalformedJson => Expect::Rejected(Rejection::MalformedPayload),
            Class::Oversize => Expect::Rejected(Rejection::PayloadTooLarge),
        }
    }
}

/// The answer a correct receiver gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// 200 `{"status":"accepted"}`.
    Accepted,
    /// 200 `{"status":"duplicate"}`.
    Duplicate,
    /// The rejection's status and `{"error":"<reason>"}`.
    Rejected(Rejection),
    /// 200 `{"status":"ok"}`: the receiver's `/webhooks/null` endpoint, which verifies nothing
    /// (calibration runs).
    NullOk,
}

impl Expect {
    pub fn status(self) -> u16 {
        match self {
            Expect::Accepted | Expect::Duplicate | Expect::NullOk => 200,
            Expect::Rejected(r) => r.status(),
        }
    }

    /// The `status` or `error` word of the JSON answer.
    pub fn word(self) -> &'static str {
        match self {
            Expect::Accepted => "accepted",
            Expect::Duplicate => "duplicate",
            Expect::Rejected(r) => r.reason(),
            Expect::NullOk => "ok",
        }
    }
}

/// How an answer compares with its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Status and body word as labelled.
    Correct,
    /// 503 to a delivery that expected 200: the receiver shed load (allowed; Didit retries it).
    Shed,
    /// Anything else: a correctness failure.
    Mismatch,
}

/// How answers are judged against their labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Judge {
    /// Status and the `status`/`error` word of the JSON body, as this project's receivers answer.
    #[default]
    StatusAndBody,
    /// Status only: a receiver written elsewhere has bodies of its own.
    Status,
}

impl Judge {
    pub fn name(self) -> &'static str {
        match self {
            Judge::StatusAndBody => "status-and-body",
            Judge::Status => "status",
        }
    }
}

/// Compares a response with the label, as `judge` says. `body` is the response body.
pub fn check_with(judge: Judge, expect: Expect, status: u16, body: &[u8]) -> Verdict {
    match judge {
        Judge::StatusAndBody => check(expect, status, body),
        Judge::Status if status == 503 && expect.status() == 200 => Verdict::Shed,
        Judge::Status if status == expect.status() => Verdict::Correct,
        Judge::Status => Verdict::Mismatch,
    }
}

/// Compares a response with the label, status and body word. `body` is the response body.
pub fn check(expect: Expect, status: u16, body: &[u8]) -> Verdict {
    if status == 503 && expect.status() == 200 {
        return Verdict::Shed;
    }
    if status != expect.status() {
        return Verdict::Mismatch;
    }
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        status: Option<&'a str>,
        #[serde(borrow)]
        error: Option<&'a str>,
    }
    match serde_json::from_slice::<Answer<'_>>(body) {
        Ok(a) if a.status.or(a.error) == Some(expect.word()) => Verdict::Correct,
        _ => Verdict::Mismatch,
    }
}

/// What a delivery is and what it must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    pub class: Class,
    pub kind: PayloadKind,
    pub expect: Expect,
}

/// The identity of a good delivery, kept to replay or retry it after it is acknowledged.
#[derive(Clone, Debug)]
pub struct Origin {
    pub template: usize,
    pub session_id: Arc<str>,
    pub event_id: Arc<str>,
    pub vendor_data: Arc<str>,
    pub timestamp: i64,
}

/// One request: body, headers, label.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub label: Label,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub origin: Option<Origin>,
}

impl Delivery {
    /// The `event_id` the receiver keys on, when the delivery carries one.
    pub fn event_id(&self) -> Option<&str> {
        self.origin.as_ref().map(|o| &*o.event_id)
    }

    /// The header value of `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }
}

/// Why the model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Fixture(#[from] didit_fixtures::FixtureError),
    #[error("payload kind {kind}: {source}")]
    Template {
        kind: &'static str,
        source: TemplateError,
    },
}

/// Names on identity documents, with accents, CJK, Cyrillic and emoji: their `\uXXXX` wire
/// escapes make X-Signature and V2 differ.
const NAMES: [(&str, &str); 6] = [
    ("John", "Doe Smith"),
    ("José María", "Núñez Peña"),
    ("Zoë", "Ångström-Øster"),
    ("太郎", "山田"),
    ("Ana 🌟", "López"),
    ("Фёдор", "Достоевский"),
];

fn marker(slot: Slot) -> Value {
    Value::from(slot.marker())
}

fn set(m: &mut Map, k: &str, v: impl Into<Value>) {
    m.insert(k, v.into());
}

/// The current v3 envelope, with slot markers for the per-delivery values.
fn session_envelope(m: &mut Map, status: &str, webhook_type: &str) {
    set(m, "application_id", "8d6c1b0e-5a4f-4e3d-9c2b-1a0f9e8d7c6b");
    m.insert("created_at", marker(Slot::CreatedAt));
    set(m, "environment", "live");
    m.insert("event_id", marker(Slot::EventId));
    m.insert("session_id", marker(Slot::SessionId));
    set(m, "status", status);
    m.insert("timestamp", marker(Slot::Timestamp));
    m.insert("vendor_data", marker(Slot::VendorData));
    set(m, "webhook_type", webhook_type);
    set(m, "workflow_id", "f0e1d2c3-b4a5-6789-0123-456789abcdef");
    m.insert("workflow_version", Value::int(3));
}

fn decision(sample: &Value, status: &str, names: (&str, &str), full: bool) -> Value {
    let src = sample
        .as_object()
        .and_then(|m| m.get("decision"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut d = Map::default();
    for (k, v) in src.iter() {
        // Scalars, plus the arrays a typical KYC flow fills; `full` keeps everything.
        let keep = full
            || !matches!(v, Value::Array(_))
            || matches!(k, "id_verifications" | "liveness_checks" | "face_matches");
        if keep {
            d.insert(k, v.clone());
        }
    }
    d.insert("session_id", marker(Slot::SessionId));
    d.insert(
        "session_url",
        Value::from(format!(
            "https://verify.didit.me/session/{}",
            Slot::SessionId.marker()
        )),
    );
    set(&mut d, "status", status);
    d.insert("vendor_data", marker(Slot::VendorData));
    if let Some(Value::Array(ids)) = d.get_mut("id_verifications")
        && let Some(first) = ids.first_mut().and_then(Value::as_object_mut)
    {
        set(first, "first_name", names.0);
        set(first, "last_name", names.1);
        set(first, "full_name", format!("{} {}", names.0, names.1));
        set(first, "status", status);
    }
    Value::Object(d)
}

fn entity(webhook_type: &str, status: &str, extra: &[(&str, Value)]) -> Value {
    let mut m = Map::default();
    set(
        &mut m,
        "application_id",
        "8d6c1b0e-5a4f-4e3d-9c2b-1a0f9e8d7c6b",
    );
    m.insert("created_at", marker(Slot::CreatedAt));
    set(&mut m, "environment", "live");
    m.insert("event_id", marker(Slot::EventId));
    set(&mut m, "status", status);
    m.insert("timestamp", marker(Slot::Timestamp));
    m.insert("vendor_data", marker(Slot::VendorData));
    set(&mut m, "webhook_type", webhook_type);
    for (k, v) in extra {
        m.insert(*k, v.clone());
    }
    Value::Object(m)
}

fn obj(entries: &[(&str, Value)]) -> Value {
    Value::Object(Map::from_entries(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    ))
}

/// The payload values (with slot markers) of one kind, in several variants.
fn payloads_of(kind: PayloadKind, sample: &Value) -> Vec<Value> {
    let session = |status: &str, webhook_type: &str, extra: Option<(&str, Value)>| {
        let mut m = Map::default();
        session_envelope(&mut m, status, webhook_type);
        if let Some((k, v)) = extra {
            m.insert(k, v);
        }
        Value::Object(m)
    };
    let with_decision = |status: &str, webhook_type: &str| {
        NAMES
            .iter()
            .map(|n| {
                session(
                    status,
                    webhook_type,
                    Some(("decision", decision(sample, status, *n, false))),
                )
            })
            .collect::<Vec<_>>()
    };
    match kind {
        PayloadKind::NotStarted => vec![session("Not Started", "status.updated", None)],
        PayloadKind::InProgress => vec![session("In Progress", "status.updated", None)],
        PayloadKind::Approved => with_decision("Approved", "status.updated"),
        PayloadKind::Declined => with_decision("Declined", "status.updated"),
        PayloadKind::InReview => with_decision("In Review", "status.updated"),
        PayloadKind::Abandoned => with_decision("Abandoned", "status.updated"),
        PayloadKind::DataUpdated => {
            let mut v = with_decision("In Review", "data.updated");
            for p in &mut v {
                if let Some(m) = p.as_object_mut() {
                    set(m, "trigger", "review_updated");
                }
            }
            v
        }
        PayloadKind::Resubmitted => vec![session(
            "Resubmitted",
            "status.updated",
            Some((
                "resubmit_info",
                obj(&[
                    (
                        "nodes_to_resubmit",
                        Value::Array(vec![Value::from("id_verification_1")]),
                    ),
                    (
                        "reasons",
                        obj(&[(
                            "id_verification_1",
                            Value::from("La foto del documento está borrosa"),
                        )]),
                    ),
                ]),
            )),
        )],
        PayloadKind::UserEvent => vec![
            entity(
                "user.status.updated",
                "FLAGGED",
                &[("previous_status", Value::from("ACTIVE"))],
            ),
            entity(
                "user.data.updated",
                "ACTIVE",
                &[
                    (
                        "changed_fields",
                        Value::Array(vec![Value::from("full_name")]),
                    ),
                    (
                        "changes",
                        obj(&[(
                            "full_name",
                            obj(&[
                                ("current", Value::from("Zoë Ångström")),
                                ("previous", Value::from("Zoe Angstrom")),
                            ]),
                        )]),
                    ),
                ],
            ),
        ],
        PayloadKind::BusinessEvent => vec![
            entity(
                "business.status.updated",
                "ACTIVE",
                &[
                    ("previous_status", Value::from("FLAGGED")),
                    (
                        "vendor_business_id",
                        Value::from(format!("biz-{}", Slot::VendorData.marker())),
                    ),
                ],
            ),
            entity(
                "business.data.updated",
                "ACTIVE",
                &[
                    (
                        "changed_fields",
                        Value::Array(vec![Value::from("legal_name")]),
                    ),
                    (
                        "changes",
                        obj(&[(
                            "legal_name",
                            obj(&[
                                ("current", Value::from("Café Zürich 株式会社 GmbH")),
                                ("previous", Value::from("Cafe Zurich GmbH")),
                            ]),
                        )]),
                    ),
                    (
                        "vendor_business_id",
                        Value::from(format!("biz-{}", Slot::VendorData.marker())),
                    ),
                ],
            ),
        ],
        PayloadKind::TransactionEvent => vec![
            entity(
                "transaction.created",
                "APPROVED",
                &[
                    ("action_required", Value::Null),
                    ("amount", Value::from(1250.5)),
                    ("currency", Value::from("EUR")),
                    ("direction", Value::from("OUTBOUND")),
                    (
                        "transaction_id",
                        Value::from(format!("txn-{}", Slot::EventId.marker())),
                    ),
                ],
            ),
            entity(
                "transaction.status.updated",
                "IN_REVIEW",
                &[
                    (
                        "action_required",
                        obj(&[
                            ("reason", Value::from("Large transfer to a new beneficiary")),
                            ("type", Value::from("MANUAL_REVIEW")),
                        ]),
                    ),
                    ("amount", Value::from(98000.0)),
                    ("currency", Value::from("USD")),
                    ("direction", Value::from("INBOUND")),
                    ("previous_status", Value::from("APPROVED")),
                    (
                        "transaction_id",
                        Value::from(format!("txn-{}", Slot::EventId.marker())),
                    ),
                ],
            ),
        ],
        PayloadKind::FullSample | PayloadKind::AmlHeavy => {
            let size = if kind == PayloadKind::FullSample {
                PayloadSize::Sample20K
            } else {
                PayloadSize::Aml200K
            };
            let mut p = payload(size, sample, 0, 0);
            if let Some(m) = p.as_object_mut() {
                session_envelope(m, "Approved", "status.updated");
                if let Some(d) = m.get_mut("decision").and_then(Value::as_object_mut) {
                    d.insert("session_id", marker(Slot::SessionId));
                    d.insert("vendor_data", marker(Slot::VendorData));
                }
            }
            vec![p]
        }
    }
}

/// Templates of every kind, immutable and shared by all connections.
#[derive(Debug)]
pub struct Templates {
    templates: Vec<Template>,
    /// Template indices per kind (index = position in `PayloadKind::ALL`).
    by_kind: Vec<Vec<usize>>,
    kinds: Vec<PayloadKind>,
}

impl Templates {
    /// Builds every kind from the console sample.
    pub fn from_sample(sample: &Value) -> Result<Templates, ModelError> {
        let mut templates = Vec::new();
        let mut by_kind = Vec::new();
        let mut kinds = Vec::new();
        for kind in PayloadKind::ALL {
            let mut idx = Vec::new();
            for p in payloads_of(kind, sample) {
                let t = Template::new(&p).map_err(|source| ModelError::Template {
                    kind: kind.key(),
                    source,
                })?;
                idx.push(templates.len());
                templates.push(t);
                kinds.push(kind);
            }
            by_kind.push(idx);
        }
        Ok(Templates {
            templates,
            by_kind,
            kinds,
        })
    }

    /// Loads the sample from the shared fixtures and builds the templates.
    pub fn load() -> Result<Templates, ModelError> {
        Templates::from_sample(&didit_fixtures::sample_value()?)
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    pub fn get(&self, idx: usize) -> &Template {
        &self.templates[idx]
    }

    pub fn kind_of(&self, idx: usize) -> PayloadKind {
        self.kinds[idx]
    }

    pub fn of_kind(&self, kind: PayloadKind) -> &[usize] {
        let i = PayloadKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default();
        &self.by_kind[i]
    }
}

/// Recently acknowledged deliveries, the source of replays and retries. Shared by connections.
#[derive(Debug, Default)]
pub struct Acked {
    ring: VecDeque<Delivery>,
}

const ACKED_KEPT: usize = 4096;

impl Acked {
    pub fn shared() -> Arc<Mutex<Acked>> {
        Arc::new(Mutex::new(Acked::default()))
    }

    /// Remembers a delivery that got 200 `accepted`.
    pub fn push(&mut self, d: &Delivery) {
        if d.origin.is_none() {
            return;
        }
        if self.ring.len() == ACKED_KEPT {
            self.ring.pop_front();
        }
        self.ring.push_back(d.clone());
    }

    /// An acknowledged delivery whose timestamp is still at least `margin` inside the window.
    fn pick(&mut self, now: i64, max_age: i64, r: usize) -> Option<Delivery> {
        while let Some(front) = self.ring.front() {
            match &front.origin {
                Some(o) if now - o.timestamp <= max_age => break,
                _ => {
                    self.ring.pop_front();
                }
            }
        }
        if self.ring.is_empty() {
            return None;
        }
        let i = r % self.ring.len();
        self.ring.get(i).cloned()
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// Cumulative weights for weighted choice.
#[derive(Clone, Debug)]
struct Choice<T> {
    items: Vec<(f64, T)>,
    total: f64,
}

impl<T: Copy> Choice<T> {
    fn new(weights: impl IntoIterator<Item = (f64, T)>) -> Self {
        let mut total = 0.0;
        let items = weights
            .into_iter()
            .filter(|(w, _)| *w > 0.0)
            .map(|(w, t)| {
                total += w;
                (total, t)
            })
            .collect();
        Choice { items, total }
    }

    fn pick(&self, r: f64) -> Option<T> {
        let x = r * self.total;
        self.items
            .iter()
            .find(|(c, _)| x < *c)
            .or(self.items.last())
            .map(|(_, t)| *t)
    }
}

/// Produces deliveries for one connection (or one goose user): not shared, no locking except
/// the acknowledged-deliveries store.
#[derive(Debug)]
pub struct Generator {
    templates: Arc<Templates>,
    profile: ReceiverProfile,
    kinds: Choice<PayloadKind>,
    /// Class by share; `Valid` takes what the bad shares leave.
    classes: Choice<Class>,
    signer: TemplateSigner,
    /// Renders off the current second (stale, future) without evicting the prefix cache.
    offtime: TemplateSigner,
    rng: SmallRng,
    acked: Arc<Mutex<Acked>>,
    oversize: Bytes,
    oversize_sig: String,
    seq: u64,
    calibrate: bool,
    /// The thread this model feeds, written into the first byte of every id it draws, so that
    /// the threads of one run never draw the same `event_id` or `session_id`.
    stream: Option<u8>,
}

impl Generator {
    pub fn new(
        templates: Arc<Templates>,
        scenario: &Scenario,
        secret: &Secret,
        acked: Arc<Mutex<Acked>>,
        seed: u64,
    ) -> Generator {
        let kinds = Choice::new(
            PayloadKind::ALL
                .iter()
                .map(|k| (scenario.payloads.get(*k), *k)),
        );
        let bad_total = scenario.bad.total().min(1.0);
        let classes = Choice::new(Class::ALL.iter().map(|c| {
            let w = if *c == Class::Valid {
                1.0 - bad_total
            } else {
                scenario.bad.get(*c)
            };
            (w, *c)
        }));
        let n = templates.len();
        // A JSON document one byte over the limit: the receiver must refuse it by its length.
        let max = scenario.receiver.max_body;
        let mut big = Vec::with_capacity(max + 1);
        big.extend_from_slice(b"{\"padding\":\"");
        big.resize(max - 1, b'x');
        big.extend_from_slice(b"\"}");
        let signer = TemplateSigner::new(secret, n);
        let oversize_sig = signer.sign_bytes(&big).as_str().to_owned();
        Generator {
            templates,
            profile: scenario.receiver,
            kinds,
            classes,
            signer,
            offtime: TemplateSigner::new(secret, n),
            rng: SmallRng::seed_from_u64(seed),
            acked,
            oversize: Bytes::from(big),
            oversize_sig,
            seq: 0,
            calibrate: false,
            stream: None,
        }
    }

    /// Marks every id this model draws with `stream` (one thread of a multi-threaded run).
    pub fn stream(mut self, stream: u8) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Calibration: every delivery is labelled 200 `ok`, the answer of `/webhooks/null`.
    pub fn calibrate(mut self, on: bool) -> Self {
        self.calibrate = on;
        self
    }

    /// Remembers an acknowledged (200 `accepted`) delivery as a source of replays and retries.
    pub fn remember(&self, d: &Delivery) {
        if let Ok(mut a) = self.acked.lock() {
            a.push(d);
        }
    }

    /// The templates this generator draws from.
    pub fn templates(&self) -> &Arc<Templates> {
        &self.templates
    }

    fn uuid(&mut self) -> Arc<str> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut x: u128 = self.rng.random();
        if let Some(stream) = self.stream {
            x = (x & !(0xff << 120)) | (u128::from(stream) << 120);
        }
        // RFC 9562 version 4, variant 10.
        let x = (x & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        let mut out = [0u8; 36];
        let mut nibble = 32;
        for (i, b) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                *b = b'-';
            } else {
                nibble -= 1;
                *b = HEX[((x >> (4 * nibble)) & 0xf) as usize];
            }
        }
        Arc::from(std::str::from_utf8(&out).unwrap_or_default())
    }

    /// The next delivery at Unix time `now`, by the scenario's class shares and payload weights.
    pub fn next(&mut self, now: i64) -> Delivery {
        let r: f64 = self.rng.random();
        let class = self.classes.pick(r).unwrap_or(Class::Valid);
        self.make(class, now)
    }

    /// A delivery of `class` (falls back to `Valid` for replays and retries while nothing has been
    /// acknowledged yet).
    pub fn make(&mut self, class: Class, now: i64) -> Delivery {
        let kind = self
            .kinds
            .pick(self.rng.random())
            .unwrap_or(PayloadKind::Approved);
        self.make_kind(class, kind, now)
    }

    /// A delivery of `class` built on a payload of `kind` (where the class has a payload).
    pub fn make_kind(&mut self, class: Class, kind: PayloadKind, now: i64) -> Delivery {
        let tol = self.profile.tolerance.as_secs() as i64;
        match class {
            Class::Valid => self.fresh(kind, now, Class::Valid),
            Class::Stale => self.fresh(kind, now - tol - 60, Class::Stale),
            Class::Future => self.fresh(kind, now + tol + 60, Class::Future),
            Class::BadSignature => {
                let mut d = self.fresh(kind, now, Class::BadSignature);
                for (name, value) in &mut d.headers {
                    if name == "x-signature" || name == "x-signature-v2" {
                        let mut s = value.as_bytes().to_vec();
                        if let Some(last) = s.last_mut() {
                            *last = if *last == b'0' { b'1' } else { b'0' };
                        }
                        *value = hv(&s);
                    }
                }
                d
            }
            Class::TimestampMismatch => {
                let mut d = self.fresh(kind, now, Class::TimestampMismatch);
                let ts = d.origin.as_ref().map_or(now, |o| o.timestamp);
                set_header(&mut d.headers, "x-timestamp", &(ts + 5).to_string());
                d
            }
            Class::SimpleOnly => {
                let mut d = self.fresh(kind, now, Class::SimpleOnly);
                d.headers
                    .retain(|(n, _)| n != "x-signature" && n != "x-signature-v2");
                d
            }
            Class::MalformedJson => {
                let d = self.fresh(kind, now, Class::MalformedJson);
                // Cut the document short: still signed, no longer JSON.
                let body = d.body.slice(..d.body.len() / 2);
                let sig = self.signer.sign_bytes(&body);
                let ts = d.origin.as_ref().map_or(now, |o| o.timestamp);
                Delivery {
                    headers: base_headers(ts, Some(sig.as_str()), None, None),
                    body,
                    origin: None,
                    ..d
                }
            }
            Class::Reformatted => {
                let mut d = self.fresh(kind, now, Class::Reformatted);
                if let Some(o) = &d.origin {
                    let t = self.templates.get(o.template);
                    let v = t.value(&fill_of(o));
                    let style = if self.seq.is_multiple_of(2) {
                        Reencoding::Pretty
                    } else {
                        Reencoding::UnsortedUnicode
                    };
                    let mut body = Vec::with_capacity(d.body.len() * 2);
                    reencode(&v, style, &mut body);
                    d.body = Bytes::from(body);
                }
                d
            }
            Class::Oversize => Delivery {
                label: self.label(Class::Oversize, kind),
                body: self.oversize.clone(),
                headers: base_headers(now, Some(&self.oversize_sig), None, None),
                origin: None,
            },
            Class::Replay | Class::Retry => {
                let r = self.rng.random::<u64>() as usize;
                let picked = self
                    .acked
                    .lock()
                    .ok()
                    // Replayed while still inside the tolerance with room to spare (30 s, or
                    // half of a shorter tolerance such as the soak's).
                    .and_then(|mut a| a.pick(now, tol - (tol / 2).min(30), r));
                let Some(prev) = picked else {
                    return self.fresh(kind, now, Class::Valid);
                };
                if class == Class::Replay {
                    return Delivery {
                        label: self.label(Class::Replay, prev.label.kind),
                        ..prev
                    };
                }
                let Some(o) = prev.origin else {
                    return self.fresh(kind, now, Class::Valid);
                };
                self.render(
                    o.template,
                    Origin {
                        timestamp: now,
                        ..o
                    },
                    Class::Retry,
                )
            }
        }
    }

    fn label(&self, class: Class, kind: PayloadKind) -> Label {
        Label {
            class,
            kind,
            expect: if self.calibrate {
                Expect::NullOk
            } else {
                class.expect(&self.profile)
            },
        }
    }

    fn fresh(&mut self, kind: PayloadKind, ts: i64, class: Class) -> Delivery {
        let choices = self.templates.of_kind(kind);
        let template = choices[self.rng.random_range(0..choices.len())];
        self.seq += 1;
        let origin = Origin {
            template,
            session_id: self.uuid(),
            event_id: self.uuid(),
            vendor_data: {
                let mut v = b"user-".to_vec();
                crate::template::write_int(self.rng.random_range(1..10_000_000), &mut v);
                Arc::from(std::str::from_utf8(&v).unwrap_or_default())
            },
            timestamp: ts,
        };
        self.render(template, origin, class)
    }

    fn render(&mut self, template: usize, origin: Origin, class: Class) -> Delivery {
        let t = self.templates.get(template);
        let kind = self.templates.kind_of(template);
        let fill = fill_of(&origin);
        // Off-second renders (stale, future) use their own cache so the hot one stays warm.
        let signer = if matches!(class, Class::Stale | Class::Future) {
            &mut self.offtime
        } else {
            &mut self.signer
        };
        let r = signer.render(template, t, &fill);
        Delivery {
            label: self.label(class, kind),
            headers: base_headers(
                origin.timestamp,
                Some(r.signature.as_str()),
                Some(r.signature_v2.as_str()),
                Some(r.signature_simple.as_str()),
            ),
            body: Bytes::from(r.body),
            origin: Some(origin),
        }
    }
}

fn fill_of(o: &Origin) -> Fill<'_> {
    Fill {
        session_id: &o.session_id,
        event_id: &o.event_id,
        vendor_data: &o.vendor_data,
        timestamp: o.timestamp,
    }
}

fn hv(s: &[u8]) -> HeaderValue {
    // Only ASCII hex and digits reach here.
    HeaderValue::from_bytes(s).unwrap_or(HeaderValue::from_static(""))
}

fn set_header(h: &mut [(HeaderName, HeaderValue)], name: &str, value: &str) {
    for (n, v) in h.iter_mut() {
        if n == name {
            *v = hv(value.as_bytes());
        }
    }
}

static X_TIMESTAMP: HeaderName = HeaderName::from_static("x-timestamp");
static X_SIGNATURE: HeaderName = HeaderName::from_static("x-signature");
static X_SIGNATURE_V2: HeaderName = HeaderName::from_static("x-signature-v2");
static X_SIGNATURE_SIMPLE: HeaderName = HeaderName::from_static("x-signature-simple");

/// Didit's headers (contract §1), with whichever signatures are given. The variable values share
/// one allocation (this runs for every delivery).
fn base_headers(
    ts: i64,
    sig: Option<&str>,
    v2: Option<&str>,
    simple: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut buf = Vec::with_capacity(20 + 3 * 64);
    crate::template::write_int(ts, &mut buf);
    let ts_end = buf.len();
    let mut spans = [(0, 0); 3];
    for (span, value) in spans.iter_mut().zip([sig, v2, simple]) {
        if let Some(v) = value {
            let at = buf.len();
            buf.extend_from_slice(v.as_bytes());
            *span = (at, buf.len());
        }
    }
    let buf = Bytes::from(buf);
    let value = |a: usize, b: usize| {
        HeaderValue::from_maybe_shared(buf.slice(a..b)).unwrap_or(HeaderValue::from_static(""))
    };
    let mut h = Vec::with_capacity(6);
    h.push((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
    h.push((header::USER_AGENT, HeaderValue::from_static(USER_AGENT)));
    h.push((X_TIMESTAMP.clone(), value(0, ts_end)));
    for (name, (a, b)) in [&X_SIGNATURE, &X_SIGNATURE_V2, &X_SIGNATURE_SIMPLE]
        .into_iter()
        .zip(spans)
    {
        if b > a {
            h.push((name.clone(), value(a, b)));
        }
    }
    h
}

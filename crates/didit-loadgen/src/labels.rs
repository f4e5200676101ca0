//! The label vocabulary: payload kinds, traffic classes, the answer a correct receiver gives
//! (`Expect`) and how an answer is judged against it (`Verdict`, `Judge`, `check`).
//!
//! It knows nothing about how deliveries are built, so scenarios, engines and reports can name
//! kinds and classes without depending on the generator.

use didit_webhook::Rejection;

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

    /// What a receiver must answer. Of the receiver's settings only `--accept-simple` changes an
    /// answer; its body limit and tolerance shape the deliveries instead, which the generator
    /// builds to fall outside them.
    pub fn expect(self, accept_simple: bool) -> Expect {
        match self {
            Class::Valid | Class::Reformatted => Expect::Accepted,
            Class::Replay | Class::Retry => Expect::Duplicate,
            Class::BadSignature => Expect::Rejected(Rejection::InvalidSignature),
            Class::Stale => Expect::Rejected(Rejection::Stale),
            Class::Future => Expect::Rejected(Rejection::FromFuture),
            Class::TimestampMismatch => Expect::Rejected(Rejection::TimestampMismatch),
            Class::SimpleOnly if accept_simple => Expect::Accepted,
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

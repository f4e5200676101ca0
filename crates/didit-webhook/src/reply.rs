//! The contract's answers as data: what became of one webhook request ([`Outcome`]) and the
//! status, body and `Retry-After` that answer it ([`Reply`]). Every server of this project and
//! both framework integrations answer from here, so the statuses cannot drift apart.
//!
//! Didit retries after a 5xx, a 404, a timeout or a refused connection, and never after another
//! 4xx. So a delivery the receiver could not keep answers 503 (retry later) and one it refuses
//! answers 4xx (do not send it again).

use std::sync::LazyLock;

use crate::verify::Rejection;

/// `Content-Type` of every reply.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Seconds a sender is told to wait after a 503.
pub const RETRY_AFTER_SECS: &str = "1";

pub const BODY_ACCEPTED: &str = r#"{"status":"accepted"}"#;
pub const BODY_DUPLICATE: &str = r#"{"status":"duplicate"}"#;
pub const BODY_OK: &str = r#"{"status":"ok"}"#;
pub const BODY_SATURATED: &str = r#"{"error":"saturated"}"#;
pub const BODY_IN_FLIGHT: &str = r#"{"error":"in_flight"}"#;
pub const BODY_FAILED: &str = r#"{"error":"processing_failed"}"#;
pub const BODY_LENGTH_REQUIRED: &str = r#"{"error":"length_required"}"#;
pub const BODY_BAD_CONTENT_LENGTH: &str = r#"{"error":"bad_content_length"}"#;
pub const BODY_TIMEOUT: &str = r#"{"error":"body_timeout"}"#;

/// What happened to one request on a webhook endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Verified and kept (or handled): 200.
    Accepted,
    /// A delivery already kept before (a retry or a resend): 200, so Didit stops sending it.
    Duplicate,
    /// The same event is being handled right now by another request: 503, so Didit retries
    /// (a 200 would lose the event if that first attempt fails).
    InFlight,
    /// The processing queue was full: 503.
    Saturated,
    /// The handler or the de-duplication store failed: 503, so Didit retries.
    Failed,
    /// Answered by a null endpoint without verification (measurement only).
    Null,
    /// No `Content-Length` where the server needs one: 411.
    LengthRequired,
    /// A `Content-Length` that is not a single decimal number, or a body cut short: 400.
    BadContentLength,
    /// The body did not arrive within the body timeout: 408.
    BodyTimeout,
    /// Refused by the verifier, with the rejection's own status.
    Rejected(Rejection),
}

/// Labels of the outcomes that are not rejections, in [`Outcome::index`] order.
const FIXED: [&str; 9] = [
    "accepted",
    "duplicate",
    "in_flight",
    "saturated",
    "failed",
    "null",
    "length_required",
    "bad_content_length",
    "body_timeout",
];

impl Outcome {
    /// How many distinct outcomes there are: the size of a table indexed by [`Outcome::index`].
    pub const COUNT: usize = FIXED.len() + Rejection::ALL.len();

    /// Every outcome, in [`Outcome::index`] order: for tables and tests that cover them all.
    pub fn all() -> impl Iterator<Item = Outcome> {
        [
            Outcome::Accepted,
            Outcome::Duplicate,
            Outcome::InFlight,
            Outcome::Saturated,
            Outcome::Failed,
            Outcome::Null,
            Outcome::LengthRequired,
            Outcome::BadContentLength,
            Outcome::BodyTimeout,
        ]
        .into_iter()
        .chain(Rejection::ALL.iter().map(|r| Outcome::Rejected(*r)))
    }

    /// A dense index in `0..COUNT`, for lock-free counters.
    pub fn index(self) -> usize {
        match self {
            Outcome::Accepted => 0,
            Outcome::Duplicate => 1,
            Outcome::InFlight => 2,
            Outcome::Saturated => 3,
            Outcome::Failed => 4,
            Outcome::Null => 5,
            Outcome::LengthRequired => 6,
            Outcome::BadContentLength => 7,
            Outcome::BodyTimeout => 8,
            Outcome::Rejected(r) => {
                FIXED.len() + Rejection::ALL.iter().position(|x| *x == r).unwrap_or(0)
            }
        }
    }

    /// Every outcome's label, in [`Outcome::index`] order (the `outcome` label of a metric).
    pub fn labels() -> impl Iterator<Item = &'static str> {
        FIXED
            .iter()
            .copied()
            .chain(Rejection::ALL.iter().map(|r| r.reason()))
    }

    /// A short name for logs and metrics: `accepted`, `in_flight`, `invalid_signature`, ...
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Rejected(r) => r.reason(),
            other => FIXED[other.index()],
        }
    }

    /// The contract's answer.
    pub fn reply(self) -> Reply {
        let (status, body) = match self {
            Outcome::Accepted => (200, BODY_ACCEPTED),
            Outcome::Duplicate => (200, BODY_DUPLICATE),
            Outcome::Null => (200, BODY_OK),
            Outcome::InFlight => (503, BODY_IN_FLIGHT),
            Outcome::Saturated => (503, BODY_SATURATED),
            Outcome::Failed => (503, BODY_FAILED),
            Outcome::LengthRequired => (411, BODY_LENGTH_REQUIRED),
            Outcome::BadContentLength => (400, BODY_BAD_CONTENT_LENGTH),
            Outcome::BodyTimeout => (408, BODY_TIMEOUT),
            Outcome::Rejected(r) => (r.status(), rejection_body(r)),
        };
        Reply {
            status,
            body,
            retry_after: status == 503,
            close: matches!(status, 408 | 413),
        }
    }
}

impl From<Rejection> for Outcome {
    fn from(r: Rejection) -> Self {
        Outcome::Rejected(r)
    }
}

/// One answer, ready for any HTTP stack to write: `Content-Type` is always
/// [`CONTENT_TYPE_JSON`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: &'static str,
    /// Send `Retry-After: 1` (every 503).
    pub retry_after: bool,
    /// The body was refused or cut off unread, so the connection's framing is lost: say
    /// `Connection: close` (RFC 9112 §9.6), and the sender opens a new one.
    pub close: bool,
}

/// `{"error":"<reason>"}` for every rejection, built once.
static REJECTION_BODIES: LazyLock<Vec<String>> = LazyLock::new(|| {
    Rejection::ALL
        .iter()
        .map(|r| format!(r#"{{"error":"{}"}}"#, r.reason()))
        .collect()
});

/// The JSON body that answers `r`.
pub fn rejection_body(r: Rejection) -> &'static str {
    let i = Rejection::ALL.iter().position(|x| *x == r).unwrap_or(0);
    REJECTION_BODIES[i].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_has_its_body_and_status() {
        for r in Rejection::ALL {
            let reply = Outcome::Rejected(*r).reply();
            assert_eq!(reply.status, r.status());
            assert_eq!(reply.body, format!(r#"{{"error":"{}"}}"#, r.reason()));
        }
    }

    #[test]
    fn what_must_be_retried_answers_503_with_retry_after() {
        for o in [Outcome::InFlight, Outcome::Saturated, Outcome::Failed] {
            let r = o.reply();
            assert_eq!((r.status, r.retry_after), (503, true), "{o:?}");
        }
        for o in [Outcome::Accepted, Outcome::Duplicate] {
            assert_eq!(o.reply().status, 200, "{o:?}");
            assert!(!o.reply().retry_after, "{o:?}");
        }
    }

    #[test]
    fn indexes_are_dense_and_labels_follow_them() {
        let labels: Vec<_> = Outcome::labels().collect();
        assert_eq!(labels.len(), Outcome::COUNT);
        let all: Vec<Outcome> = Outcome::all().collect();
        assert_eq!(all.len(), Outcome::COUNT);
        for (i, o) in all.iter().enumerate() {
            assert_eq!(o.index(), i, "{o:?}");
            assert_eq!(o.label(), labels[i], "{o:?}");
        }
    }
}

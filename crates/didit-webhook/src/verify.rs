//! The verifier: raw bytes and headers in, a [`Verified`] envelope or a typed [`Rejection`] out.
//!
//! The order is the contract's: size, header syntax and header freshness first (cheap, no
//! cryptography), then the signatures in constant time, and only then the body is parsed; its
//! signed `timestamp` decides freshness and must equal the unsigned `X-Timestamp` header.

use crate::canon;
use crate::clock::{Clock, SystemClock};
use crate::hex::{Tag, parse_tag};
use crate::json::JsonBackend;
use crate::mac::Mac;
use crate::payload::{Envelope, Nullable, Text, Timestamp};
use crate::secret::Secret;
use crate::sign::simple_message_from;

/// Header names, lowercase as HTTP/2 and most servers normalise them.
pub const HEADER_SIGNATURE: &str = "x-signature";
pub const HEADER_SIGNATURE_V2: &str = "x-signature-v2";
pub const HEADER_SIGNATURE_SIMPLE: &str = "x-signature-simple";
pub const HEADER_TIMESTAMP: &str = "x-timestamp";

/// Why a delivery was refused. Small and `Copy` so that the hot path allocates nothing; every
/// receiver maps it to the same HTTP status with [`Rejection::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("body exceeds the configured maximum size")]
    PayloadTooLarge,
    #[error("no signature header that the policy accepts")]
    MissingSignature,
    #[error("signature header is not 64 lowercase hex characters")]
    MalformedSignature,
    #[error("signature does not match")]
    InvalidSignature,
    #[error("X-Timestamp header is not a decimal Unix time")]
    MalformedTimestampHeader,
    #[error("X-Timestamp header differs from the signed body timestamp")]
    TimestampMismatch,
    #[error("timestamp is older than the tolerance")]
    Stale,
    #[error("timestamp is further in the future than the tolerance")]
    FromFuture,
    #[error("body is not a valid Didit envelope")]
    MalformedPayload,
    #[error("body has no timestamp")]
    MissingTimestamp,
    #[error("body timestamp is not an integer number of seconds")]
    InvalidTimestamp,
    #[error("body has no webhook_type")]
    MissingWebhookType,
}

impl Rejection {
    pub const ALL: &'static [Rejection] = &[
        Rejection::PayloadTooLarge,
        Rejection::MissingSignature,
        Rejection::MalformedSignature,
        Rejection::InvalidSignature,
        Rejection::MalformedTimestampHeader,
        Rejection::TimestampMismatch,
        Rejection::Stale,
        Rejection::FromFuture,
        Rejection::MalformedPayload,
        Rejection::MissingTimestamp,
        Rejection::InvalidTimestamp,
        Rejection::MissingWebhookType,
    ];

    /// The HTTP status: 401 for authentication and freshness (Didit does not retry 4xx other than
    /// 404, so a forged or replayed delivery ends there), 400 for malformed input, 413 for size.
    pub fn status(self) -> u16 {
        match self {
            Rejection::PayloadTooLarge => 413,
            Rejection::MissingSignature
            | Rejection::MalformedSignature
            | Rejection::InvalidSignature
            | Rejection::TimestampMismatch
            | Rejection::Stale
            | Rejection::FromFuture => 401,
            Rejection::MalformedTimestampHeader
            | Rejection::MalformedPayload
            | Rejection::MissingTimestamp
            | Rejection::InvalidTimestamp
            | Rejection::MissingWebhookType => 400,
        }
    }

    /// A stable snake_case name for metrics labels and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::PayloadTooLarge => "payload_too_large",
            Rejection::MissingSignature => "missing_signature",
            Rejection::MalformedSignature => "malformed_signature",
            Rejection::InvalidSignature => "invalid_signature",
            Rejection::MalformedTimestampHeader => "malformed_timestamp_header",
            Rejection::TimestampMismatch => "timestamp_mismatch",
            Rejection::Stale => "stale",
            Rejection::FromFuture => "from_future",
            Rejection::MalformedPayload => "malformed_payload",
            Rejection::MissingTimestamp => "missing_timestamp",
            Rejection::InvalidTimestamp => "invalid_timestamp",
            Rejection::MissingWebhookType => "missing_webhook_type",
        }
    }
}

/// Which signatures authenticate a delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignaturePolicy {
    /// A valid `X-Signature` or a valid `X-Signature-V2` (Didit's own plugin accepts either).
    #[default]
    Any,
    /// `X-Signature` only: the raw bytes must be exactly what Didit sent.
    Raw,
    /// `X-Signature-V2` only: survives middleware that re-encodes the JSON.
    V2,
}

impl SignaturePolicy {
    pub const ALL: &'static [SignaturePolicy] = &[
        SignaturePolicy::Any,
        SignaturePolicy::Raw,
        SignaturePolicy::V2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SignaturePolicy::Any => "any",
            SignaturePolicy::Raw => "raw",
            SignaturePolicy::V2 => "v2",
        }
    }

    fn raw(self) -> bool {
        matches!(self, SignaturePolicy::Any | SignaturePolicy::Raw)
    }

    fn v2(self) -> bool {
        matches!(self, SignaturePolicy::Any | SignaturePolicy::V2)
    }
}

impl std::str::FromStr for SignaturePolicy {
    type Err = crate::error::UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SignaturePolicy::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                crate::error::UnknownBackend::new(
                    "signature policy",
                    s,
                    SignaturePolicy::ALL.iter().map(|p| p.name()).collect(),
                )
            })
    }
}

/// Verifier settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Largest accepted |now - timestamp|, in seconds, in either direction. Didit's docs: 300.
    pub tolerance_secs: u64,
    pub policy: SignaturePolicy,
    /// Also accept `X-Signature-Simple`. It authenticates only `timestamp`, `session_id`, `status`
    /// and `webhook_type`; the verified envelope then carries only those four fields.
    pub accept_simple: bool,
    /// Bodies longer than this are refused before anything else is done.
    pub max_body: usize,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            tolerance_secs: 300,
            policy: SignaturePolicy::Any,
            accept_simple: false,
            max_body: 1 << 20,
        }
    }
}

/// The header values the verifier reads, as raw bytes (header values need not be UTF-8).
#[derive(Clone, Copy, Debug, Default)]
pub struct SignatureHeaders<'h> {
    pub signature: Option<&'h [u8]>,
    pub signature_v2: Option<&'h [u8]>,
    pub signature_simple: Option<&'h [u8]>,
    pub timestamp: Option<&'h [u8]>,
}

impl<'h> SignatureHeaders<'h> {
    /// Collects the four headers through a lookup by lowercase name.
    pub fn from_lookup(mut get: impl FnMut(&str) -> Option<&'h [u8]>) -> Self {
        SignatureHeaders {
            signature: get(HEADER_SIGNATURE),
            signature_v2: get(HEADER_SIGNATURE_V2),
            signature_simple: get(HEADER_SIGNATURE_SIMPLE),
            timestamp: get(HEADER_TIMESTAMP),
        }
    }
}

/// Which signature authenticated a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Raw,
    V2,
    /// Only the four Simple fields are authenticated.
    Simple,
}

/// A value that passed verification. Only [`Verifier::verify`] constructs one, so a function that
/// takes `Verified<_>` cannot be handed an unauthenticated delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified<T> {
    value: T,
    scheme: Scheme,
    tag: Tag,
    verified_at: i64,
}

impl<T> Verified<T> {
    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn into_inner(self) -> T {
        self.value
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The signature that matched: the de-duplication key when a delivery has no `event_id`.
    pub fn signature(&self) -> &Tag {
        &self.tag
    }

    /// The clock reading (Unix seconds) the freshness check used: the receive time, without
    /// reading the clock again.
    pub fn verified_at(&self) -> i64 {
        self.verified_at
    }
}

impl Verified<Envelope<'_>> {
    /// An owned copy that outlives the body buffer, still marked verified.
    pub fn into_owned(self) -> Verified<Envelope<'static>> {
        Verified {
            value: self.value.into_owned(),
            scheme: self.scheme,
            tag: self.tag,
            verified_at: self.verified_at,
        }
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Reusable per-worker buffers, so that verification allocates nothing in the steady state.
#[derive(Debug, Default)]
pub struct Scratch {
    v2: Vec<u8>,
    json: Vec<u8>,
    simple: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch::default()
    }

    /// Runs `f` with this thread's scratch, the one every verifier on the thread shares (the
    /// `Inbox` and a server that verifies by hand alike). Not re-entrant, and never to be held
    /// across an `.await`: `f` is synchronous.
    pub fn with_thread_local<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new());
        }
        SCRATCH.with(|s| f(&mut s.borrow_mut()))
    }
}

/// Verifies deliveries for one destination secret. Generic over the MAC, the JSON backend and the
/// clock, so each combination is compiled into its own monomorphised hot path.
#[derive(Debug)]
pub struct Verifier<M, J, C = SystemClock> {
    mac: M,
    json: J,
    clock: C,
    cfg: VerifyConfig,
}

impl<M: Mac, J: JsonBackend + Default> Verifier<M, J, SystemClock> {
    pub fn new(secret: &Secret, cfg: VerifyConfig) -> Self {
        Verifier::with_parts(M::new(secret), J::default(), SystemClock, cfg)
    }
}

/// The tags parsed from the headers the policy looks at.
struct Tags {
    raw: Option<Tag>,
    v2: Option<Tag>,
    simple: Option<Tag>,
}

fn parse_header_tag(h: Option<&[u8]>, wanted: bool) -> Result<Option<Tag>, Rejection> {
    match h {
        Some(v) if wanted => parse_tag(v).map(Some).ok_or(Rejection::MalformedSignature),
        _ => Ok(None),
    }
}

/// A decimal Unix time of at most 18 digits (no sign, no spaces), as Didit writes `str(int)`.
fn parse_timestamp_header(v: &[u8]) -> Result<i64, Rejection> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::MalformedTimestampHeader);
    }
    Ok(v.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

impl<M: Mac, J: JsonBackend, C: Clock> Verifier<M, J, C> {
    pub fn with_parts(mac: M, json: J, clock: C, cfg: VerifyConfig) -> Self {
        Verifier {
            mac,
            json,
            clock,
            cfg,
        }
    }

    pub fn config(&self) -> &VerifyConfig {
        &self.cfg
    }

    pub fn mac(&self) -> &M {
        &self.mac
    }

    fn check_fresh(&self, ts: i64, now: i64) -> Result<(), Rejection> {
        let tol = i64::try_from(self.cfg.tolerance_secs).unwrap_or(i64::MAX);
        let age = now.saturating_sub(ts);
        if age > tol {
            Err(Rejection::Stale)
        } else if age < -tol {
            Err(Rejection::FromFuture)
        } else {
            Ok(())
        }
    }

    /// Verifies one delivery. `body` is the exact bytes received; `scratch` is reused between
    /// calls. The returned envelope borrows from `body` or `scratch`.
    pub fn verify<'a>(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &'a [u8],
        scratch: &'a mut Scratch,
    ) -> Result<Verified<Envelope<'a>>, Rejection> {
        if body.len() > self.cfg.max_body {
            return Err(Rejection::PayloadTooLarge);
        }
        let now = self.clock.now_unix();
        let header_ts = match headers.timestamp {
            Some(v) => Some(parse_timestamp_header(v)?),
            None => None,
        };
        // An unsigned header cannot prove freshness, but a stale one is refused before any HMAC.
        if let Some(ts) = header_ts {
            self.check_fresh(ts, now)?;
        }
        let policy = self.cfg.policy;
        let tags = Tags {
            raw: parse_header_tag(headers.signature, policy.raw())?,
            v2: parse_header_tag(headers.signature_v2, policy.v2())?,
            simple: parse_header_tag(headers.signature_simple, self.cfg.accept_simple)?,
        };
        if tags.raw.is_none() && tags.v2.is_none() && tags.simple.is_none() {
            return Err(Rejection::MissingSignature);
        }

        let Scratch { v2, json, simple } = scratch;
        // What was signed is what gets parsed: the body for X-Signature, the canonical message
        // for V2 (a re-encoded body may spell `95` as `95.0`; the signed text says `95`).
        let mut matched: Option<(Scheme, Tag, &'a [u8])> = None;
        if let Some(tag) = &tags.raw
            && self.mac.verify(body, tag)
        {
            matched = Some((Scheme::Raw, *tag, body));
        }
        if matched.is_none()
            && let Some(tag) = &tags.v2
        {
            // A body that cannot be canonicalised cannot carry a valid V2 signature.
            if let Ok(msg) = canon::v2_message(body, v2)
                && self.mac.verify(msg, tag)
            {
                matched = Some((Scheme::V2, *tag, msg));
            }
        }
        // Python's limits on depth and integer length, before any backend reads the body
        // (see `canon::exceeds_limits`).
        let exceeds_limits = |bytes: &[u8]| J::PARSES && canon::exceeds_limits(bytes);
        let (scheme, tag, envelope) = match matched {
            Some((scheme, tag, signed)) => {
                if exceeds_limits(signed) {
                    return Err(Rejection::MalformedPayload);
                }
                let env = self
                    .json
                    .parse_envelope(signed, json)
                    .map_err(|_| Rejection::MalformedPayload)?;
                (scheme, tag, env)
            }
            None => {
                let tag = tags.simple.ok_or(Rejection::InvalidSignature)?;
                if exceeds_limits(body) {
                    return Err(Rejection::InvalidSignature);
                }
                // Simple signs four body fields, so the body must be read before it is trusted;
                // anything unreadable is simply not authenticated.
                let env = self
                    .json
                    .parse_envelope(body, json)
                    .map_err(|_| Rejection::InvalidSignature)?;
                simple.clear();
                if !J::PARSES || !simple_message(&env, simple) || !self.mac.verify(simple, &tag) {
                    return Err(Rejection::InvalidSignature);
                }
                (Scheme::Simple, tag, only_simple_fields(env))
            }
        };

        if J::PARSES {
            let ts = match envelope.timestamp {
                Nullable::Present(Timestamp::Seconds(s)) => s,
                Nullable::Present(Timestamp::Invalid) | Nullable::Null => {
                    return Err(Rejection::InvalidTimestamp);
                }
                Nullable::Missing => return Err(Rejection::MissingTimestamp),
            };
            if !envelope.webhook_type.is_present() {
                return Err(Rejection::MissingWebhookType);
            }
            if header_ts.is_some_and(|h| h != ts) {
                return Err(Rejection::TimestampMismatch);
            }
            self.check_fresh(ts, now)?;
        }
        Ok(Verified {
            value: envelope,
            scheme,
            tag,
            verified_at: now,
        })
    }
}

/// Python's `f"{timestamp}:{session_id}:{status}:{webhook_type}"` over `str()` of the body fields:
/// a missing key is `""`, `null` is `"None"`. Returns `false` when a field holds something whose
/// Python `str()` this envelope cannot reproduce (a non-integer timestamp).
pub fn simple_message(env: &Envelope<'_>, out: &mut Vec<u8>) -> bool {
    fn as_str<T, F: Fn(&T) -> &str>(n: &Nullable<T>, f: F) -> Nullable<&str> {
        match n {
            Nullable::Missing => Nullable::Missing,
            Nullable::Null => Nullable::Null,
            Nullable::Present(v) => Nullable::Present(f(v)),
        }
    }
    let seconds;
    let timestamp = match env.timestamp {
        Nullable::Present(Timestamp::Seconds(s)) => {
            seconds = s.to_string();
            Nullable::Present(seconds.as_str())
        }
        Nullable::Present(Timestamp::Invalid) => return false,
        Nullable::Null => Nullable::Null,
        Nullable::Missing => Nullable::Missing,
    };
    simple_message_from(
        timestamp,
        as_str(&env.session_id, Text::as_str),
        as_str(&env.status, |s| s.as_str()),
        as_str(&env.webhook_type, |w| w.as_str()),
        out,
    );
    true
}

/// Under Simple only four fields are authenticated: drop the rest so nothing downstream acts on them.
fn only_simple_fields(env: Envelope<'_>) -> Envelope<'_> {
    Envelope {
        timestamp: env.timestamp,
        session_id: env.session_id,
        status: env.status,
        webhook_type: env.webhook_type,
        ..Envelope::default()
    }
}

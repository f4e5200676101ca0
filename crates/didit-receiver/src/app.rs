//! The HTTP contract, independent of any server: routing, verification, processing, replies.
//!
//! Every server variant translates its request into these calls and writes the [`Reply`] back, so
//! statuses, bodies and metrics are the same whichever server runs them.

use std::sync::Arc;
use std::time::Instant;

use didit_webhook::{
    Envelope, Inbox, JsonBackend, Mac, NoDedup, Scratch, Secret, SignatureHeaders, Verified,
    Verifier, VerifyConfig,
};

use crate::metrics::{Metrics, Outcome};
use crate::process::{Ack, Processor, Submit};
use crate::store::Store;
use crate::ticket::Ticket;

pub(crate) const WEBHOOK_PATH: &str = "/webhooks/didit";
pub(crate) const NULL_PATH: &str = "/webhooks/null";
pub(crate) const HEALTH_PATH: &str = "/healthz";
pub(crate) const METRICS_PATH: &str = "/metrics";

pub(crate) use didit_webhook::reply::{CONTENT_TYPE_JSON, RETRY_AFTER_SECS};
pub(crate) const CONTENT_TYPE_METRICS: &str = "text/plain; version=0.0.4";

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Webhook,
    Null,
    Health,
    Metrics,
    NotFound,
    /// The path exists but not for this method; the value is the `Allow` header.
    MethodNotAllowed(&'static str),
}

/// Routes by method and path (a query string is ignored).
pub(crate) fn route(method: &str, path: &str, null_enabled: bool) -> Route {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match path {
        WEBHOOK_PATH => post_only(method, Route::Webhook),
        NULL_PATH if null_enabled => post_only(method, Route::Null),
        HEALTH_PATH if method == "GET" || method == "HEAD" => Route::Health,
        HEALTH_PATH => Route::MethodNotAllowed("GET, HEAD"),
        METRICS_PATH if method == "GET" => Route::Metrics,
        METRICS_PATH => Route::MethodNotAllowed("GET"),
        _ => Route::NotFound,
    }
}

fn post_only(method: &str, r: Route) -> Route {
    if method == "POST" {
        r
    } else {
        Route::MethodNotAllowed("POST")
    }
}

/// A response body: a static JSON document on every hot path, owned text for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyBody {
    Json(&'static str),
    Metrics(String),
}

/// A complete response, ready for any server to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: ReplyBody,
    /// Send `Retry-After` (503 only).
    pub retry_after: bool,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
    /// What to count this request as, if it is a webhook request.
    pub outcome: Option<Outcome>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: &'static str) -> Self {
        Reply {
            status,
            body: ReplyBody::Json(body),
            retry_after: false,
            allow: None,
            outcome: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn body_bytes(&self) -> &[u8] {
        match &self.body {
            ReplyBody::Json(s) => s.as_bytes(),
            ReplyBody::Metrics(s) => s.as_bytes(),
        }
    }

    pub(crate) fn content_type(&self) -> &'static str {
        match self.body {
            ReplyBody::Json(_) => CONTENT_TYPE_JSON,
            ReplyBody::Metrics(_) => CONTENT_TYPE_METRICS,
        }
    }

    /// The reason phrase for the status line.
    pub(crate) fn reason(&self) -> &'static str {
        reason_phrase(self.status)
    }
}

pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

pub(crate) use didit_webhook::reply::BODY_OK;
pub(crate) const BODY_NOT_FOUND: &str = r#"{"error":"not_found"}"#;
pub(crate) const BODY_METHOD_NOT_ALLOWED: &str = r#"{"error":"method_not_allowed"}"#;
pub(crate) const BODY_URI_TOO_LONG: &str = r#"{"error":"uri_too_long"}"#;
pub(crate) const BODY_HEAD_TOO_LARGE: &str = r#"{"error":"request_head_too_large"}"#;

/// The reply for a request answered by the contract alone (`didit_webhook::reply`): refused
/// before or by verification, or settled by the store.
pub(crate) fn early_reply(outcome: Outcome) -> Reply {
    let r = outcome.reply();
    Reply {
        retry_after: r.retry_after,
        outcome: Some(outcome),
        ..Reply::json(r.status, r.body)
    }
}

/// A webhook request's answer: now, or when the store has kept the event.
#[derive(Debug)]
pub(crate) enum Handled {
    Ready(Reply),
    Pending(Ticket),
}

fn ack_outcome(ack: Ack) -> Outcome {
    match ack {
        Ack::Accepted => Outcome::Accepted,
        Ack::Duplicate => Outcome::Duplicate,
        Ack::Saturated => Outcome::Saturated,
    }
}

/// The reply once a store has settled a delivery.
pub(crate) fn ack_reply(ack: Ack) -> Reply {
    early_reply(ack_outcome(ack))
}

/// Settings every server shares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_body: usize,
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub max_connections: usize,
    /// CPU time burnt per verified delivery (`--extra-work`): slows a variant on purpose so the
    /// benchmark runner's regression gate can be shown to catch it. Zero in real use.
    pub extra_work: std::time::Duration,
}

/// Spins for `d` (the `--extra-work` knob); returns at once for zero.
pub(crate) fn burn(d: std::time::Duration) {
    if d.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// One receiver: the inbox for one secret (verification; the store de-duplicates, so the inbox
/// does not), the processing stage and the metrics.
#[derive(Debug)]
pub(crate) struct App<M, J, P = Store> {
    inbox: Arc<Inbox<M, J, NoDedup>>,
    processor: P,
    metrics: Metrics,
    null_enabled: bool,
    limits: Limits,
}

impl<M: Mac, J: JsonBackend + Default, P: Processor> App<M, J, P> {
    pub(crate) fn new(
        secret: &Secret,
        cfg: VerifyConfig,
        limits: Limits,
        null_enabled: bool,
        processor: P,
    ) -> Self {
        let inbox = Inbox::new(secret, cfg)
            .with_dedup(NoDedup)
            .with_body_timeout(limits.body_timeout);
        App {
            inbox: Arc::new(inbox),
            processor,
            metrics: Metrics::default(),
            null_enabled,
            limits,
        }
    }
}

impl<M: Mac, J: JsonBackend, P: Processor> App<M, J, P> {
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn verifier(&self) -> &Verifier<M, J> {
        self.inbox.verifier()
    }

    /// What the framework extractors verify with.
    pub(crate) fn inbox(&self) -> &Arc<Inbox<M, J, NoDedup>> {
        &self.inbox
    }

    pub(crate) fn route(&self, method: &str, path: &str) -> Route {
        route(method, path, self.null_enabled)
    }

    /// Verifies and processes one delivery. A durable store may answer later: the server then
    /// waits for the [`Ticket`] in its own way and builds the reply with [`ack_reply`].
    pub(crate) fn webhook(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
        scratch: &mut Scratch,
    ) -> Handled {
        let outcome = match self.verifier().verify(headers, body, scratch) {
            Ok(event) => {
                burn(self.limits.extra_work);
                match self.processor.submit(&event, body, event.verified_at()) {
                    Submit::Done(ack) => ack_outcome(ack),
                    Submit::Pending(t) => return Handled::Pending(t),
                }
            }
            Err(r) => {
                tracing::debug!(
                    reason = r.reason(),
                    status = r.status(),
                    "rejected delivery"
                );
                Outcome::Rejected(r)
            }
        };
        Handled::Ready(early_reply(outcome))
    }

    /// Hands an event an extractor verified to processing and waits for the answer (a durable
    /// store's commit or confirm): the async servers' half of [`App::webhook`].
    pub(crate) async fn process(&self, event: &Verified<Envelope<'_>>, body: &[u8]) -> Ack {
        burn(self.limits.extra_work);
        match self.processor.submit(event, body, event.verified_at()) {
            Submit::Done(ack) => ack,
            Submit::Pending(ticket) => ticket.await,
        }
    }

    /// Answers a non-webhook route (and the null endpoint, whose body the server has read).
    pub(crate) fn simple_route(&self, route: Route) -> Reply {
        simple_reply(route, &self.metrics, self.processor.queue_depth())
    }

    /// Counts a finished request.
    pub(crate) fn finish(&self, reply: &Reply, started: Instant) {
        if let Some(o) = reply.outcome {
            self.metrics.record(o, started.elapsed());
        }
    }

    /// Stops processing after the servers have stopped: applies what is queued.
    pub(crate) fn shutdown(&self) {
        self.processor.drain();
    }
}

/// The reply for every route but the webhook itself.
pub(crate) fn simple_reply(route: Route, metrics: &Metrics, queue_depth: usize) -> Reply {
    match route {
        Route::Null => early_reply(Outcome::Null),
        Route::Health => Reply::json(200, BODY_OK),
        Route::Metrics => Reply {
            body: ReplyBody::Metrics(metrics.render(queue_depth)),
            ..Reply::json(200, "")
        },
        Route::NotFound => Reply::json(404, BODY_NOT_FOUND),
        Route::MethodNotAllowed(allow) => Reply {
            allow: Some(allow),
            ..Reply::json(405, BODY_METHOD_NOT_ALLOWED)
        },
        // The server handles the webhook route itself (it has the body).
        Route::Webhook => Reply::json(404, BODY_NOT_FOUND),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("POST", "/webhooks/didit", false), Route::Webhook);
        assert_eq!(route("POST", "/webhooks/didit?x=1", false), Route::Webhook);
        assert_eq!(
            route("GET", "/webhooks/didit", false),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(route("POST", "/webhooks/null", false), Route::NotFound);
        assert_eq!(route("POST", "/webhooks/null", true), Route::Null);
        assert_eq!(route("GET", "/healthz", false), Route::Health);
        assert_eq!(
            route("POST", "/healthz", false),
            Route::MethodNotAllowed("GET, HEAD")
        );
        assert_eq!(route("GET", "/metrics", false), Route::Metrics);
        assert_eq!(route("GET", "/", false), Route::NotFound);
        assert_eq!(route("POST", "/webhooks/didit/", false), Route::NotFound);
    }

    #[test]
    fn the_contract_replies_carry_their_outcome() {
        let reply = early_reply(Outcome::Saturated);
        assert_eq!((reply.status, reply.retry_after), (503, true));
        assert_eq!(reply.outcome, Some(Outcome::Saturated));
        assert_eq!(reply.body_bytes(), br#"{"error":"saturated"}"#);
    }
}

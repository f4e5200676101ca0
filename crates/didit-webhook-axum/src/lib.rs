//! Didit webhooks in axum, verified and exactly once.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use didit_webhook_axum::{Answer, Didit, DiditWebhook, Inbox, Secret, VerifyConfig};
//!
//! async fn on_didit(hook: DiditWebhook) -> Answer {
//!     // Only verified, fresh, first-time deliveries get here; the rest were answered already.
//!     let event = hook.event();
//!     println!("{:?} is now {:?}", event.session_id(), event.status());
//!     hook.commit().await // 200 accepted; dropped without a commit, Didit's retry is handled
//! }
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::from_var("DIDIT_WEBHOOK_SECRET", std::env::var("DIDIT_WEBHOOK_SECRET").ok())?;
//! let didit: Didit = Didit::new(Inbox::new(&secret, VerifyConfig::default()));
//! let app: Router = Router::new().route("/webhooks/didit", post(on_didit)).with_state(didit);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! [`DiditWebhook`] finds its [`Inbox`] through axum's `FromRef`, so an app with state of its
//! own adds `impl FromRef<AppState> for Didit`. It reads the raw body (never a decoded one: the
//! signature covers the bytes as sent) within the inbox's size limit and body timeout, verifies
//! it, and reserves its `event_id`; a request that fails any step is answered at once with the
//! contract's status (`didit_webhook::reply`). Each response carries its
//! [`Outcome`] in its extensions, for metrics middleware.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum_core::extract::{FromRef, FromRequest, Request};
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use http_body_util::BodyExt;

use didit_webhook::body::BodyCollector;
pub use didit_webhook::dedup::{Dedup, DedupKey, MemoryDedup, NoDedup};
use didit_webhook::reply::{CONTENT_TYPE_JSON, RETRY_AFTER_SECS};
pub use didit_webhook::{
    Delivery, Envelope, JsonBackend, Mac, Outcome, RingMac, Secret, SecretError, SerdeJson,
    SignatureHeaders, Verified, VerifyConfig,
};

/// The core's [`Inbox`](didit_webhook::Inbox) with this crate's defaults: ring, serde_json and
/// in-memory de-duplication, so that `let inbox: Inbox = Inbox::new(..)` needs no type names.
pub type Inbox<M = RingMac, J = SerdeJson, D = MemoryDedup> = didit_webhook::Inbox<M, J, D>;

/// The app state the extractor needs: a shared [`Inbox`]. The defaults are ring, serde_json and
/// in-memory de-duplication.
pub type Didit<M = RingMac, J = SerdeJson, D = MemoryDedup> = Arc<Inbox<M, J, D>>;

/// A verified Didit delivery whose key is reserved. Handle it, then [`DiditWebhook::commit`].
#[derive(Debug)]
pub struct DiditWebhook<M = RingMac, J = SerdeJson, D: Dedup = MemoryDedup> {
    delivery: Delivery<D>,
    backends: PhantomData<fn() -> (M, J)>,
}

impl<M, J, D: Dedup> DiditWebhook<M, J, D> {
    /// The verified envelope: `event_id`, `session_id()`, `status()`, `webhook_type()`, ...
    pub fn event(&self) -> &Verified<Envelope<'static>> {
        self.delivery.event()
    }

    /// The raw body the signature covered, to store or to parse in full.
    pub fn body(&self) -> &Bytes {
        self.delivery.body()
    }

    /// Records the delivery as handled and answers 200 `accepted`; if the de-duplication store
    /// fails, 503 so that Didit retries.
    pub async fn commit(self) -> Answer {
        match self.delivery.commit().await {
            Ok(()) => Answer(Outcome::Accepted),
            Err(_) => Answer(Outcome::Failed),
        }
    }

    /// The delivery, for code that is not axum-specific.
    pub fn into_delivery(self) -> Delivery<D> {
        self.delivery
    }
}

/// The contract's answer to a webhook request, as an axum response: what the extractor refuses
/// with, and what a handler returns ([`Answer::failed`] when its own work failed, so that Didit
/// retries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer(pub Outcome);

impl Answer {
    /// 503 with `Retry-After`: the handler could not finish; the key is released when the
    /// [`DiditWebhook`] is dropped, so Didit's retry is handled.
    pub fn failed() -> Self {
        Answer(Outcome::Failed)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        response(self.0)
    }
}

/// The contract's reply for `outcome` as an axum response, with the outcome in its extensions.
pub fn response(outcome: Outcome) -> Response {
    let reply = outcome.reply();
    let mut resp = Response::new(axum_core::body::Body::from(reply.body));
    *resp.status_mut() = http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::OK);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
    if reply.retry_after {
        h.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    if reply.close {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp.extensions_mut().insert(outcome);
    resp
}

/// The four signature headers of a request, borrowed.
pub fn signature_headers(h: &HeaderMap) -> SignatureHeaders<'_> {
    SignatureHeaders::from_lookup(|name| h.get(name).map(HeaderValue::as_bytes))
}

/// Reads a request body of at most `max_body` bytes within `timeout`: 413 for a declared or
/// actual length over the limit (before a byte is read when it is declared), 408 when it is too
/// slow, 400 when the sender broke the framing.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    max_body: usize,
    timeout: Duration,
) -> Result<Bytes, Outcome>
where
    B: http_body::Body<Data = Bytes>,
{
    let declared = headers
        .get_all(CONTENT_LENGTH)
        .iter()
        .map(HeaderValue::as_bytes);
    let mut collector = BodyCollector::new(declared, max_body)?;
    let read = async {
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            // A short body or a broken chunk: the sender broke the framing, nothing to verify.
            let frame = frame.map_err(|_| Outcome::BadContentLength)?;
            if let Ok(data) = frame.into_data() {
                collector.push(data)?;
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(Outcome::BodyTimeout),
        Ok(Err(o)) => Err(o),
        Ok(Ok(())) => Ok(collector.finish()),
    }
}

impl<S, M, J, D> FromRequest<S> for DiditWebhook<M, J, D>
where
    S: Send + Sync,
    Didit<M, J, D>: FromRef<S>,
    M: Mac,
    J: JsonBackend,
    D: Dedup,
{
    type Rejection = Answer;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let inbox = Didit::<M, J, D>::from_ref(state);
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, inbox.max_body(), inbox.body_timeout())
            .await
            .map_err(Answer)?;
        let delivery = inbox
            .receive(&signature_headers(&parts.headers), bytes)
            .await
            .map_err(Answer)?;
        Ok(DiditWebhook {
            delivery,
            backends: PhantomData,
        })
    }
}

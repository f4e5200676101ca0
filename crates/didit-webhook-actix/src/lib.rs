//! Didit webhooks in actix-web, verified and exactly once.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use didit_webhook_actix::{Answer, Didit, DiditWebhook, Inbox, Secret, VerifyConfig};
//!
//! async fn on_didit(hook: DiditWebhook) -> Answer {
//!     // Only verified, fresh, first-time deliveries get here; the rest were answered already.
//!     let event = hook.event();
//!     println!("{:?} is now {:?}", event.session_id(), event.status());
//!     hook.commit().await // 200 accepted; dropped without a commit, Didit's retry is handled
//! }
//!
//! # fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::from_var("DIDIT_WEBHOOK_SECRET", std::env::var("DIDIT_WEBHOOK_SECRET").ok())?;
//! let didit: Didit = Didit::new(Inbox::new(&secret, VerifyConfig::default()));
//! actix_web::rt::System::new().block_on(
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(didit.clone())
//!             .service(web::resource("/webhooks/didit").route(web::post().to(on_didit)))
//!     })
//!     .bind(("127.0.0.1", 3000))?
//!     .run(),
//! )?;
//! # Ok(()) }
//! ```
//!
//! [`DiditWebhook`] finds its [`Inbox`] as `web::Data<Inbox<M, J, D>>` ([`Didit`]) in the app
//! data. It reads the raw body itself, never through actix's `Bytes` extractor: with a
//! `compress-*` feature on, that one decodes `Content-Encoding`, and the signature covers the
//! bytes as sent. A request that fails any step is answered at once with the contract's status
//! (`didit_webhook::reply`), and each response carries its [`Outcome`] in its extensions, for
//! metrics middleware.

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, ResponseError, web};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::Either;

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

/// The app data the extractor needs: a shared [`Inbox`]. The defaults are ring, serde_json and
/// in-memory de-duplication.
pub type Didit<M = RingMac, J = SerdeJson, D = MemoryDedup> = web::Data<Inbox<M, J, D>>;

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
            Ok(()) => Answer::Outcome(Outcome::Accepted),
            Err(_) => Answer::Outcome(Outcome::Failed),
        }
    }

    /// The delivery, for code that is not actix-specific.
    pub fn into_delivery(self) -> Delivery<D> {
        self.delivery
    }
}

/// The contract's answer to a webhook request, as an actix response: what the extractor refuses
/// with, and what a handler returns ([`Answer::failed`] when its own work failed, so that Didit
/// retries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The contract's answer: 200, 401, 400, 408, 413, 503 and so on.
    Outcome(Outcome),
    /// The app has no [`Didit`] of the extractor's type in its data: a set-up mistake, answered
    /// 500 with the type it looked for in the error.
    MissingInbox(&'static str),
}

impl Answer {
    /// 503 with `Retry-After`: the handler could not finish; the key is released when the
    /// [`DiditWebhook`] is dropped, so Didit's retry is handled.
    pub fn failed() -> Self {
        Answer::Outcome(Outcome::Failed)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Outcome(o) => write!(f, "Didit webhook answered {}", o.label()),
            Answer::MissingInbox(t) => write!(
                f,
                "no web::Data<{t}> in the app data: add the Didit inbox with App::app_data"
            ),
        }
    }
}

impl ResponseError for Answer {
    fn status_code(&self) -> StatusCode {
        match self {
            Answer::Outcome(o) => {
                StatusCode::from_u16(o.reply().status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Answer::MissingInbox(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Answer::Outcome(o) => response(*o),
            Answer::MissingInbox(_) => HttpResponse::InternalServerError()
                .content_type(CONTENT_TYPE_JSON)
                .body(r#"{"error":"not_configured"}"#),
        }
    }
}

impl Responder for Answer {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

/// The contract's reply for `outcome` as an actix-web response, with the outcome in its
/// extensions.
pub fn response(outcome: Outcome) -> HttpResponse {
    let reply = outcome.reply();
    let mut b = HttpResponse::build(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK));
    b.insert_header((header::CONTENT_TYPE, CONTENT_TYPE_JSON));
    if reply.retry_after {
        b.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
    }
    if reply.close {
        b.force_close();
    }
    let mut resp = b.body(reply.body);
    resp.extensions_mut().insert(outcome);
    resp
}

/// The four signature headers of a request, borrowed.
pub fn signature_headers(h: &HeaderMap) -> SignatureHeaders<'_> {
    SignatureHeaders::from_lookup(|name| h.get(name).map(header::HeaderValue::as_bytes))
}

/// Reads a request body of at most `max_body` bytes within `timeout` (actix itself times out
/// only the request head): 413 for a declared or actual length over the limit (before a byte is
/// read when it is declared), 408 when it is too slow, 400 when the sender broke the framing.
pub async fn read_body(
    headers: &HeaderMap,
    payload: &mut Payload,
    max_body: usize,
    timeout: Duration,
) -> Result<Bytes, Outcome> {
    let declared = headers
        .get_all(header::CONTENT_LENGTH)
        .map(header::HeaderValue::as_bytes);
    let mut collector = BodyCollector::new(declared, max_body)?;
    let read = async {
        while let Some(chunk) = payload.next().await {
            // A short body or a broken chunk: the sender broke the framing, nothing to verify.
            collector.push(chunk.map_err(|_| Outcome::BadContentLength)?)?;
        }
        Ok(())
    };
    match actix_web::rt::time::timeout(timeout, read).await {
        Err(_) => Err(Outcome::BodyTimeout),
        Ok(Err(o)) => Err(o),
        Ok(Ok(())) => Ok(collector.finish()),
    }
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, Answer>>>>;

impl<M, J, D> FromRequest for DiditWebhook<M, J, D>
where
    M: Mac,
    J: JsonBackend,
    D: Dedup,
{
    type Error = Answer;
    type Future = Either<Ready<Result<Self, Answer>>, Extracted<Self>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let Some(inbox) = req.app_data::<Didit<M, J, D>>().cloned() else {
            return Either::Left(ready(Err(Answer::MissingInbox(std::any::type_name::<
                Inbox<M, J, D>,
            >()))));
        };
        let mut payload = payload.take();
        let req = req.clone();
        Either::Right(Box::pin(async move {
            let headers = req.headers();
            let body = read_body(
                headers,
                &mut payload,
                inbox.max_body(),
                inbox.body_timeout(),
            )
            .await
            .map_err(Answer::Outcome)?;
            let delivery = inbox
                .receive(&signature_headers(headers), body)
                .await
                .map_err(Answer::Outcome)?;
            Ok(DiditWebhook {
                delivery,
                backends: PhantomData,
            })
        }))
    }
}

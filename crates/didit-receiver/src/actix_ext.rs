//! A drop-in actix-web extractor that verifies Didit webhooks: what a team running actix-web puts
//! in its own app, the counterpart of [`axum_ext`](crate::axum_ext).
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use didit_receiver::actix_ext::{DiditVerifier, DiditWebhook};
//! use didit_webhook::{RingMac, Secret, SerdeJson, VerifyConfig};
//!
//! async fn on_didit(hook: DiditWebhook<RingMac, SerdeJson>) -> HttpResponse {
//!     // Only verified, fresh deliveries get here; anything else was already answered 401/400/413.
//!     let event = &hook.event;
//!     println!("{:?} is now {:?}", event.session_id(), event.status());
//!     HttpResponse::Ok().content_type("application/json").body(r#"{"status":"accepted"}"#)
//! }
//!
//! # fn start() -> std::io::Result<()> {
//! let secret = Secret::new(std::env::var("DIDIT_WEBHOOK_SECRET").unwrap_or_default());
//! let verifier = web::Data::new(DiditVerifier::<RingMac, SerdeJson>::new(&secret, VerifyConfig::default()));
//! actix_web::rt::System::new().block_on(
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(verifier.clone())
//!             .route("/webhooks/didit", web::post().to(on_didit))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run(),
//! )
//! # }
//! ```
//!
//! The extractor finds its verifier as `web::Data<S>` in the app data, where `S` (the third type
//! parameter, [`DiditVerifier`] by default) implements [`VerifierSource`]. It reads the raw body
//! itself, never through actix's `Bytes` extractor: with a `compress-*` feature on, that one
//! decodes `Content-Encoding`, and the signature covers the bytes as sent. Rejections answer with
//! the contract's status and a `{"error":"<reason>"}` body and carry the [`Outcome`] in the
//! response extensions, for metrics middleware.

use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use bytes::{Bytes, BytesMut};
use didit_webhook::{Envelope, JsonBackend, Mac, Rejection, SignatureHeaders, Verified};
use futures_util::StreamExt;

use crate::app::{ContentLength, RETRY_AFTER_SECS, Reply, ReplyBody, content_length, early_reply};
use crate::metrics::Outcome;
use crate::server::http1::SCRATCH;

pub use crate::integration::{DiditVerifier, VerifierSource};

/// A verified Didit delivery: the envelope (owned) and the raw body, for storing or full parsing.
#[derive(Debug)]
pub struct DiditWebhook<M, J, S = DiditVerifier<M, J>> {
    pub event: Verified<Envelope<'static>>,
    pub body: Bytes,
    backends: Backends<M, J, S>,
}

/// Which backends and state the extractor was typed with (no data; `fn` keeps it `Send`).
type Backends<M, J, S> = PhantomData<fn() -> (M, J, S)>;

/// Why the extractor refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookRejection {
    /// The contract's answer: 401, 400, 408, 413 and so on.
    Refused(Outcome),
    /// The app has no `web::Data<S>` for the extractor: a set-up mistake, answered 500 and logged.
    MissingVerifier(&'static str),
}

impl std::fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookRejection::Refused(o) => write!(f, "Didit webhook refused: {o:?}"),
            WebhookRejection::MissingVerifier(t) => write!(
                f,
                "no web::Data<{t}> in the app data: add it with App::app_data"
            ),
        }
    }
}

impl ResponseError for WebhookRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookRejection::Refused(o) => {
                StatusCode::from_u16(early_reply(*o).status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            WebhookRejection::MissingVerifier(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebhookRejection::Refused(o) => reply_response(early_reply(*o)),
            WebhookRejection::MissingVerifier(_) => {
                tracing::error!("{self}");
                HttpResponse::InternalServerError()
                    .content_type(crate::app::CONTENT_TYPE_JSON)
                    .body(r#"{"error":"not_configured"}"#)
            }
        }
    }
}

/// A contract [`Reply`] as an actix-web response, with its outcome in the extensions.
pub fn reply_response(reply: Reply) -> HttpResponse {
    let mut b = HttpResponse::build(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK));
    b.insert_header((header::CONTENT_TYPE, reply.content_type()));
    if reply.retry_after {
        b.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
    }
    if let Some(allow) = reply.allow {
        b.insert_header((header::ALLOW, allow));
    }
    // The body was refused or cut off unread: the connection's framing is lost (RFC 9112 §9.6).
    if matches!(reply.status, 408 | 413) {
        b.force_close();
    }
    let outcome = reply.outcome;
    let mut resp = match reply.body {
        ReplyBody::Json(s) => b.body(s),
        ReplyBody::Metrics(s) => b.body(s),
    };
    if let Some(o) = outcome {
        resp.extensions_mut().insert(o);
    }
    resp
}

/// The four signature headers of a request, borrowed.
pub fn signature_headers(h: &HeaderMap) -> SignatureHeaders<'_> {
    SignatureHeaders::from_lookup(|name| h.get(name).map(header::HeaderValue::as_bytes))
}

/// The declared body length, when it is over `max_body`: refuse before reading a byte.
fn declared_too_large(h: &HeaderMap, max_body: usize) -> bool {
    let declared = content_length(
        h.get_all(header::CONTENT_LENGTH)
            .map(header::HeaderValue::as_bytes),
    );
    matches!(declared, ContentLength::Valid(n) if n > max_body)
}

/// Reads a request body within the size limit and the body timeout (actix itself times out only
/// the request head).
pub async fn read_payload(
    payload: &mut Payload,
    max_body: usize,
    body_timeout: Duration,
) -> Result<Bytes, Outcome> {
    let read = async {
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            // A short body or a broken chunk: the client broke the framing, nothing to verify.
            let chunk = chunk.map_err(|_| Outcome::BadContentLength)?;
            let have = first.as_ref().map_or(0, Bytes::len) + rest.len();
            if have + chunk.len() > max_body {
                return Err(Outcome::Rejected(Rejection::PayloadTooLarge));
            }
            // Most bodies arrive in one chunk: keep it without copying.
            match first.take() {
                None if rest.is_empty() => first = Some(chunk),
                None => rest.extend_from_slice(&chunk),
                Some(f) => {
                    rest.reserve(f.len() + chunk.len());
                    rest.extend_from_slice(&f);
                    rest.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| rest.freeze()))
    };
    actix_web::rt::time::timeout(body_timeout, read)
        .await
        .unwrap_or(Err(Outcome::BodyTimeout))
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, WebhookRejection>>>>;

impl<M, J, S> FromRequest for DiditWebhook<M, J, S>
where
    M: Mac,
    J: JsonBackend,
    S: VerifierSource<M, J> + 'static,
{
    type Error = WebhookRejection;
    type Future =
        futures_util::future::Either<Ready<Result<Self, WebhookRejection>>, Extracted<Self>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use futures_util::future::Either;
        let Some(source) = req.app_data::<web::Data<S>>().cloned() else {
            return Either::Left(ready(Err(WebhookRejection::MissingVerifier(
                std::any::type_name::<S>(),
            ))));
        };
        let max_body = source.verifier().config().max_body;
        if declared_too_large(req.headers(), max_body) {
            return Either::Left(ready(Err(WebhookRejection::Refused(Outcome::Rejected(
                Rejection::PayloadTooLarge,
            )))));
        }
        let mut payload = payload.take();
        let req = req.clone();
        Either::Right(Box::pin(async move {
            let body = read_payload(&mut payload, max_body, source.body_timeout())
                .await
                .map_err(WebhookRejection::Refused)?;
            let headers = signature_headers(req.headers());
            let event = SCRATCH
                .with(|s| {
                    source
                        .verifier()
                        .verify(&headers, &body, &mut s.borrow_mut())
                        .map(Verified::into_owned)
                })
                .map_err(|r| WebhookRejection::Refused(Outcome::Rejected(r)))?;
            Ok(DiditWebhook {
                event,
                body,
                backends: PhantomData,
            })
        }))
    }
}

/// Reads (and drops) a body under the same limits: the null endpoint's work.
pub async fn drain_body(
    req: &HttpRequest,
    payload: &mut Payload,
    max_body: usize,
    body_timeout: Duration,
) -> Result<(), Outcome> {
    if declared_too_large(req.headers(), max_body) {
        return Err(Outcome::Rejected(Rejection::PayloadTooLarge));
    }
    read_payload(payload, max_body, body_timeout)
        .await
        .map(drop)
}

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

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;
use didit_webhook::{Envelope, JsonBackend, Mac, Rejection, Verified};

use crate::app::early_reply;
use crate::metrics::Outcome;
use crate::wire::SCRATCH;
use crate::wire::actix::{declared_too_large, read_payload, reply_response, signature_headers};

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

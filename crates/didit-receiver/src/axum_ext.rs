//! A drop-in axum extractor that verifies Didit webhooks: what a team adopting this project's
//! results puts in its own axum app.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use didit_receiver::axum_ext::{DiditVerifier, DiditWebhook};
//! use didit_webhook::{RingMac, Secret, SerdeJson, VerifyConfig};
//!
//! async fn on_didit(hook: DiditWebhook<RingMac, SerdeJson>) -> &'static str {
//!     // Only verified, fresh deliveries get here; anything else was already answered 401/400/413.
//!     let event = &hook.event;
//!     println!("{:?} is now {:?}", event.session_id(), event.status());
//!     "{\"status\":\"accepted\"}"
//! }
//!
//! # async fn start() {
//! let secret = Secret::new(std::env::var("DIDIT_WEBHOOK_SECRET").unwrap_or_default());
//! let verifier = DiditVerifier::<RingMac, SerdeJson>::new(&secret, VerifyConfig::default());
//! let app: Router = Router::new().route("/webhooks/didit", post(on_didit)).with_state(verifier);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! The state only has to implement [`VerifierSource`]; [`DiditVerifier`] is a ready one. Rejections
//! answer with the contract's status and a `{"error":"<reason>"}` body, and carry the
//! [`Outcome`] in the response extensions for metrics middleware.

use std::marker::PhantomData;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use didit_webhook::{Envelope, JsonBackend, Mac, Verified};

use crate::app::early_reply;
use crate::metrics::Outcome;
use crate::wire::SCRATCH;
use crate::wire::axum::reply_response;
use crate::wire::http1::{read_body, signature_headers};

pub use crate::integration::{DiditVerifier, VerifierSource};

/// A verified Didit delivery: the envelope (owned) and the raw body, for storing or full parsing.
#[derive(Debug)]
pub struct DiditWebhook<M, J> {
    pub event: Verified<Envelope<'static>>,
    pub body: Bytes,
    backends: PhantomData<fn() -> (M, J)>,
}

/// Why the extractor refused a request; answers as the contract says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookRejection(pub Outcome);

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        reply_response(early_reply(self.0))
    }
}

impl<S, M, J> FromRequest<S> for DiditWebhook<M, J>
where
    S: VerifierSource<M, J>,
    M: Mac,
    J: JsonBackend,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let verifier = state.verifier();
        let max_body = verifier.config().max_body;
        let bytes = read_body(&parts.headers, body, max_body, state.body_timeout())
            .await
            .map_err(WebhookRejection)?;
        let headers = signature_headers(&parts.headers);
        let event = SCRATCH
            .with(|s| {
                verifier
                    .verify(&headers, &bytes, &mut s.borrow_mut())
                    .map(Verified::into_owned)
            })
            .map_err(|r| WebhookRejection(Outcome::Rejected(r)))?;
        Ok(DiditWebhook {
            event,
            body: bytes,
            backends: PhantomData,
        })
    }
}

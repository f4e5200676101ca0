//! The actix-web side of the wire: a contract reply as an actix response, the signature headers,
//! and body reading under the contract's limits (actix itself times out only the request head).

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use didit_webhook::{Rejection, SignatureHeaders};
use futures_util::StreamExt;

use crate::app::{ContentLength, RETRY_AFTER_SECS, Reply, ReplyBody, content_length};
use crate::metrics::Outcome;

/// A contract [`Reply`] as an actix-web response, with its outcome in the extensions.
pub(crate) fn reply_response(reply: Reply) -> HttpResponse {
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
pub(crate) fn signature_headers(h: &HeaderMap) -> SignatureHeaders<'_> {
    SignatureHeaders::from_lookup(|name| h.get(name).map(header::HeaderValue::as_bytes))
}

/// The declared body length, when it is over `max_body`: refuse before reading a byte.
pub(crate) fn declared_too_large(h: &HeaderMap, max_body: usize) -> bool {
    let declared = content_length(
        h.get_all(header::CONTENT_LENGTH)
            .map(header::HeaderValue::as_bytes),
    );
    matches!(declared, ContentLength::Valid(n) if n > max_body)
}

/// Reads a request body within the size limit and the body timeout (actix itself times out only
/// the request head).
pub(crate) async fn read_payload(
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

/// Reads (and drops) a body under the same limits: the null endpoint's work.
pub(crate) async fn drain_body(
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

//! The actix-web side of the wire: a receiver reply (the contract's, or a route's of its own such
//! as `/metrics`) as an actix response. Body reading and the signature headers are the published
//! extractor's (`didit-webhook-actix`).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;

use crate::app::{RETRY_AFTER_SECS, Reply, ReplyBody};

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

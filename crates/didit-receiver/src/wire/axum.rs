//! The axum side of the wire: a contract reply as an axum response.

use axum::response::Response;

use super::http1::to_response;

/// A contract [`Reply`](crate::app::Reply) as an axum response, with its outcome attached.
pub(crate) fn reply_response(reply: crate::app::Reply) -> Response {
    let outcome = reply.outcome;
    let mut resp = to_response(reply).map(axum::body::Body::new);
    if let Some(o) = outcome {
        resp.extensions_mut().insert(o);
    }
    resp
}

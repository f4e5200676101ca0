//! What the may variant does with a request's body, decided from its head's bytes alone (how
//! `Content-Length` reads is the core's `body::content_length`). Nothing but the core, so the
//! fuzz target `fuzz/fuzz_targets/may_request.rs` compiles this very file beside httparse.

use didit_webhook::body::{ContentLength, content_length};

/// What the may variant does with a request's body, decided from its head alone. Only
/// [`BodyPlan::Read`] asks may_minihttp for the body; for the others the body is left unread,
/// and may_minihttp closes the connection after the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyPlan {
    /// 411: no length, or a transfer coding may_minihttp cannot decode.
    LengthRequired,
    /// 400: a malformed or ambiguous length (the patched may_minihttp refuses it before the
    /// handler runs; kept so the plan stands on its own).
    BadLength,
    /// 413: a declared length over the limit.
    TooLarge,
    /// Read exactly this many bytes.
    Read(usize),
}

/// The plan for a request with these framing headers (name, value), in order.
pub(crate) fn body_plan<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    max_body: usize,
) -> BodyPlan {
    let mut chunked = false;
    let mut lengths_ok = true;
    let mut length = ContentLength::Missing;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            let this = content_length(std::iter::once(value));
            length = match (length, this) {
                (ContentLength::Missing, v) => v,
                (ContentLength::Valid(n), ContentLength::Valid(m)) if n == m => length,
                _ => ContentLength::Malformed,
            };
            lengths_ok &= length != ContentLength::Malformed;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    match (chunked, lengths_ok, length) {
        (true, _, _) | (false, true, ContentLength::Missing) => BodyPlan::LengthRequired,
        (false, false, _) | (false, _, ContentLength::Malformed) => BodyPlan::BadLength,
        (false, true, ContentLength::Valid(n)) if n > max_body => BodyPlan::TooLarge,
        (false, true, ContentLength::Valid(n)) => BodyPlan::Read(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_plans() {
        let plan = |h: &[(&'static str, &'static str)]| {
            body_plan(h.iter().map(|(n, v)| (*n, v.as_bytes())), 100)
        };
        assert_eq!(plan(&[]), BodyPlan::LengthRequired);
        assert_eq!(plan(&[("Content-Length", "7")]), BodyPlan::Read(7));
        assert_eq!(
            plan(&[("content-length", "7"), ("Content-Length", "7")]),
            BodyPlan::Read(7)
        );
        assert_eq!(
            plan(&[("Content-Length", "7"), ("Content-Length", "8")]),
            BodyPlan::BadLength
        );
        // A bad value first, then a good one: still refused (may_minihttp would read the first).
        assert_eq!(
            plan(&[("Content-Length", "x"), ("Content-Length", "8")]),
            BodyPlan::BadLength
        );
        assert_eq!(plan(&[("Content-Length", "+8")]), BodyPlan::BadLength);
        assert_eq!(
            plan(&[("Transfer-Encoding", "chunked")]),
            BodyPlan::LengthRequired
        );
        assert_eq!(
            plan(&[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]),
            BodyPlan::LengthRequired
        );
        assert_eq!(plan(&[("Content-Length", "101")]), BodyPlan::TooLarge);
        assert_eq!(
            plan(&[("Content-Length", "99999999999")]),
            BodyPlan::TooLarge
        );
    }
}

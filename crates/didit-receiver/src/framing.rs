//! Request framing decisions that need nothing but bytes: how `Content-Length` reads, and what
//! the may variant does with a request's body. No dependencies, so the fuzz target
//! `fuzz/fuzz_targets/may_request.rs` compiles this very file beside httparse.

/// How a `Content-Length` header reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentLength {
    Missing,
    Valid(usize),
    /// Not a plain decimal, or several different values: a framing attack or a broken client.
    Malformed,
}

/// Parses every `Content-Length` value of a request (RFC 9110: one decimal number; repeated
/// headers must agree).
pub(crate) fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> ContentLength {
    let mut found: Option<usize> = None;
    for v in values {
        // 19 digits cannot overflow a 64-bit usize, so the fold below is exact.
        if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
            return ContentLength::Malformed;
        }
        let n = v.iter().fold(0usize, |acc, d| {
            acc.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
        match found {
            Some(prev) if prev != n => return ContentLength::Malformed,
            _ => found = Some(n),
        }
    }
    found.map_or(ContentLength::Missing, ContentLength::Valid)
}

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
    fn content_lengths() {
        let cl = |vals: &[&str]| content_length(vals.iter().map(|v| v.as_bytes()));
        assert_eq!(cl(&[]), ContentLength::Missing);
        assert_eq!(cl(&["42"]), ContentLength::Valid(42));
        assert_eq!(cl(&["42", "42"]), ContentLength::Valid(42));
        for bad in [
            &["42", "43"][..],
            &["-1"],
            &["4 2"],
            &[""],
            &["0x10"],
            &["+5"],
            &["99999999999999999999"],
        ] {
            assert_eq!(cl(bad), ContentLength::Malformed, "{bad:?}");
        }
    }

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

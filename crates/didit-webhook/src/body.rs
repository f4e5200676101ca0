//! Reading a request body under the contract's size limit, for any HTTP stack: how the declared
//! `Content-Length` reads, and a collector that takes the body's chunks as they arrive and refuses
//! the first byte over the limit. The stack drives it (and owns the timeout); nothing here waits.

use bytes::{Bytes, BytesMut};

use crate::reply::Outcome;
use crate::verify::Rejection;

/// How a `Content-Length` header reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentLength {
    Missing,
    Valid(usize),
    /// Not a plain decimal, or several different values: a framing attack or a broken client.
    Malformed,
}

/// Parses every `Content-Length` value of a request (RFC 9110: one decimal number; repeated
/// headers must agree).
pub fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> ContentLength {
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

/// A body limit as people write it: `1MiB`, `512KiB`, `64kB`, `64 KB`, `1048576`. Binary units
/// (`KiB`/`K`, `MiB`/`M`, `GiB`/`G`) and decimal ones (`kB`/`KB`, `MB`, `GB`); refuses 0 and
/// sizes that do not fit. The one grammar of every tool's `--max-body` and every scenario's.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; use e.g. 1MiB, 256KiB or 65536"))?;
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "kB" | "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit `{other}`; use B, KiB, MiB, GiB, kB, MB or GB"
            ));
        }
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("`{s}` must be between 1 byte and {} bytes", usize::MAX))
}

/// Collects a body of at most `max_body` bytes from its chunks. Most bodies arrive in one chunk,
/// which is kept without a copy.
#[derive(Debug)]
pub struct BodyCollector {
    max_body: usize,
    first: Option<Bytes>,
    rest: BytesMut,
}

impl BodyCollector {
    /// A collector for a request whose `Content-Length` values are `declared`: a declared length
    /// over the limit is refused (413) before a byte is read. A malformed one is left to the HTTP
    /// stack, which frames the body.
    pub fn new<'a>(
        declared: impl Iterator<Item = &'a [u8]>,
        max_body: usize,
    ) -> Result<Self, Outcome> {
        if let ContentLength::Valid(n) = content_length(declared)
            && n > max_body
        {
            return Err(Outcome::Rejected(Rejection::PayloadTooLarge));
        }
        Ok(BodyCollector {
            max_body,
            first: None,
            rest: BytesMut::new(),
        })
    }

    fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.rest.len()
    }

    /// Takes the next chunk; 413 once the body would pass the limit.
    pub fn push(&mut self, chunk: Bytes) -> Result<(), Outcome> {
        if self.len() + chunk.len() > self.max_body {
            return Err(Outcome::Rejected(Rejection::PayloadTooLarge));
        }
        match self.first.take() {
            None if self.rest.is_empty() => self.first = Some(chunk),
            None => self.rest.extend_from_slice(&chunk),
            Some(f) => {
                self.rest.reserve(f.len() + chunk.len());
                self.rest.extend_from_slice(&f);
                self.rest.extend_from_slice(&chunk);
            }
        }
        Ok(())
    }

    /// The whole body.
    pub fn finish(self) -> Bytes {
        self.first.unwrap_or_else(|| self.rest.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_have_one_grammar() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("64 KiB"), Ok(65536));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("2kB"), Ok(2000));
        assert_eq!(parse_size("2KB"), Ok(2000));
        for bad in [
            "0",
            "1TB",
            "MiB",
            "-1",
            "lots",
            "99999999999999999999",
            "18446744073709551615GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

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
    fn a_body_is_collected_up_to_the_limit_and_refused_past_it() {
        let too_large = Err(Outcome::Rejected(Rejection::PayloadTooLarge));
        let declared = |v: &'static str| std::iter::once(v.as_bytes());
        assert_eq!(BodyCollector::new(declared("11"), 10).map(drop), too_large);
        let mut c = BodyCollector::new(declared("10"), 10).expect("within the limit");
        c.push(Bytes::from_static(b"abcd")).expect("4 bytes");
        c.push(Bytes::from_static(b"efg")).expect("7 bytes");
        c.push(Bytes::from_static(b"hij")).expect("10 bytes");
        assert_eq!(c.finish(), Bytes::from_static(b"abcdefghij"));
        // A lying or absent Content-Length does not let more through.
        let mut c = BodyCollector::new(std::iter::empty(), 10).expect("no length");
        c.push(Bytes::from_static(b"0123456789")).expect("10 bytes");
        assert_eq!(c.push(Bytes::from_static(b"x")), too_large);
        let one = BodyCollector::new(std::iter::empty(), 10)
            .map(|mut c| c.push(Bytes::from_static(b"one")).map(|()| c.finish()));
        assert_eq!(one, Ok(Ok(Bytes::from_static(b"one"))));
    }
}

//! Canonical JSON exactly as Didit's Python signs it.
//!
//! Didit serialises a payload `P` as
//! `json.dumps(shorten_floats(P), sort_keys=True, separators=(",", ":"), ensure_ascii=…)`:
//! with `ensure_ascii=True` that is the wire body (signed by `X-Signature`), with `False` it is the
//! message of `X-Signature-V2`. This module reproduces both byte for byte for every document CPython's
//! `json.loads` accepts (minus the deliberate exceptions listed on [`Value::parse`]).
//!
//! Two paths produce the V2 message from a received body:
//! - [`v2_from_wire`] is a single streaming pass for bodies that are already in Didit's canonical
//!   wire form (all real deliveries): it checks that form and rewrites `\uXXXX` escapes to raw UTF-8,
//!   without building a tree. It declines anything else.
//! - [`canonicalize`] parses into a [`Value`] and writes it out again; it accepts any input.
//!
//! [`v2_message`] tries the first and falls back to the second.

mod fast;
mod value;
mod write;

pub use fast::{V2Message, v2_from_wire};
pub use value::{MAX_DEPTH, MAX_INT_DIGITS, Map, Number, Value};
pub use write::{write_python_float_repr, write_string, write_value};

/// Which `ensure_ascii` setting to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Escaping {
    /// `ensure_ascii=True`: the wire body and `X-Signature`.
    Ascii,
    /// `ensure_ascii=False`, then UTF-8: the `X-Signature-V2` message.
    Unicode,
}

/// Why a document could not be canonicalised. Each is an input Python would also reject, or one of
/// the deliberate exceptions documented on [`Value::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    #[error("body is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid JSON at byte {offset}")]
    Syntax { offset: usize },
    #[error("JSON nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("integer with {digits} digits exceeds Python's limit of {MAX_INT_DIGITS}")]
    NumberTooLong { digits: usize },
    #[error("string holds a lone UTF-16 surrogate, which Didit cannot encode for X-Signature-V2")]
    LoneSurrogate,
}

/// Parses `input` with Python semantics and appends its canonical form to `out`.
pub fn canonicalize(input: &[u8], esc: Escaping, out: &mut Vec<u8>) -> Result<(), CanonError> {
    let v = Value::parse(input)?;
    write_value(&v, esc, out);
    Ok(())
}

/// Whether `body` nests deeper than [`MAX_DEPTH`] or holds an integer longer than
/// [`MAX_INT_DIGITS`] digits. Exact for valid JSON; for invalid JSON it may answer either way (the
/// parser rejects that anyway).
///
/// The JSON backends disagree on such input (serde_json skips any depth and any number inside
/// a value it ignores, simd-json refuses big numbers, sonic-rs recurses until the stack
/// overflows), so the verifier applies Python's own limits before any backend runs. The common
/// case costs one vectorised count and a few sampled bytes: a body with at most `MAX_DEPTH`
/// brackets cannot nest deeper, and a run of `MAX_INT_DIGITS + 1` digits must cover one of the
/// bytes sampled at that stride.
pub fn exceeds_limits(body: &[u8]) -> bool {
    let maybe_deep = body.len() > MAX_DEPTH && count_openers(body) > MAX_DEPTH;
    let maybe_long = body.len() > MAX_INT_DIGITS && has_digit_run(body, MAX_INT_DIGITS + 1);
    (maybe_deep || maybe_long) && structural_scan(body, maybe_long)
}

/// The number of `[` and `{` bytes, strings included. Written so that it vectorises: `[` (0x5B)
/// and `{` (0x7B) are the only bytes that OR 0x20 makes 0x7B, and a per-chunk `u8` sum cannot
/// overflow in 128 bytes.
fn count_openers(body: &[u8]) -> usize {
    let chunks = body.chunks_exact(128);
    let tail = chunks.remainder();
    let mut total = 0usize;
    for chunk in chunks {
        let mut n = 0u8;
        for &b in chunk {
            n += u8::from(b | 0x20 == b'{');
        }
        total += usize::from(n);
    }
    total + tail.iter().filter(|&&b| b | 0x20 == b'{').count()
}

/// Whether `body` holds `len` consecutive ASCII digits anywhere (strings included).
fn has_digit_run(body: &[u8], len: usize) -> bool {
    let mut probe = len - 1;
    while probe < body.len() {
        if body[probe].is_ascii_digit() {
            let start = body[..probe]
                .iter()
                .rposition(|b| !b.is_ascii_digit())
                .map_or(0, |p| p + 1);
            let end = body[probe..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(body.len(), |p| probe + p);
            if end - start >= len {
                return true;
            }
            probe = end + len;
        } else {
            probe += len;
        }
    }
    false
}

/// Bytes that end a run of plain string content.
const STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The exact check, skipping strings: nesting depth and (when `ints`) integer-token length.
fn structural_scan(body: &[u8], ints: bool) -> bool {
    let n = body.len();
    let mut depth = 0usize;
    let mut i = 0;
    while i < n {
        match body[i] {
            b'"' => {
                // Skip the string: brackets and digits inside it do not count. Most strings are
                // short, so a table loop first, memchr for the long tail.
                i += 1;
                loop {
                    let short_end = (i + 24).min(n);
                    while i < short_end && !STRING_SPECIAL[body[i] as usize] {
                        i += 1;
                    }
                    if i == short_end {
                        match memchr::memchr2(b'"', b'\\', body.get(i..).unwrap_or_default()) {
                            Some(off) => i += off,
                            // An unterminated string: the parser will reject the body.
                            None => return false,
                        }
                    }
                    if body[i] == b'"' {
                        break;
                    }
                    i += 2;
                    if i >= n {
                        return false;
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'0'..=b'9' if ints => {
                let start = i;
                while i < n && body[i].is_ascii_digit() {
                    i += 1;
                }
                let is_int = !matches!(body.get(i), Some(b'.' | b'e' | b'E'));
                if is_int && i - start > MAX_INT_DIGITS {
                    return true;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// The `X-Signature-V2` message for a received body: the streaming path when the body is in
/// Didit's wire form, a full re-serialisation otherwise. `scratch` is reused between calls.
pub fn v2_message<'a>(body: &'a [u8], scratch: &'a mut Vec<u8>) -> Result<&'a [u8], CanonError> {
    scratch.clear();
    match v2_from_wire(body, scratch) {
        V2Message::SameAsBody => Ok(body),
        V2Message::Rewritten => Ok(scratch),
        V2Message::NotCanonical => {
            scratch.clear();
            canonicalize(body, Escaping::Unicode, scratch)?;
            Ok(scratch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str, esc: Escaping) -> Result<String, CanonError> {
        let mut out = Vec::new();
        canonicalize(s.as_bytes(), esc, &mut out)?;
        Ok(String::from_utf8(out).unwrap_or_default())
    }

    #[test]
    fn sorts_dedups_and_compacts() {
        let got = canon(
            r#" { "b" : [1, 2.50, 100.0, -0, -0.0], "a": {"z":1,"y":2}, "b": true } "#,
            Escaping::Ascii,
        );
        assert_eq!(got.as_deref(), Ok(r#"{"a":{"y":2,"z":1},"b":true}"#));
        let got = canon(r#"{"10":1,"2":2,"9":3,"～":4,"😀":5}"#, Escaping::Unicode);
        assert_eq!(got.as_deref(), Ok(r#"{"10":1,"2":2,"9":3,"～":4,"😀":5}"#));
    }

    #[test]
    fn numbers_follow_python() {
        let got = canon(
            "[100.0,-0.0,1e16,1.1812083616449413e+38,1e-5,1.5e-7,0.0001,-0,1E2,1e400,-1e400,NaN]",
            Escaping::Ascii,
        );
        assert_eq!(
            got.as_deref(),
            Ok(
                "[100,0,10000000000000000,118120836164494129544568202238038638592,1e-05,1.5e-07,0.0001,0,100,Infinity,-Infinity,NaN]"
            )
        );
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "-",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "\"\t\"",
            "\"\\x\"",
            "tru",
            "[",
            "\"abc",
            "1 1",
            "[-Inf]",
            "\"\\u12\"",
        ] {
            assert!(
                matches!(canon(bad, Escaping::Ascii), Err(CanonError::Syntax { .. })),
                "accepted {bad:?}"
            );
        }
        assert_eq!(
            canon(&"1".repeat(4301), Escaping::Ascii),
            Err(CanonError::NumberTooLong { digits: 4301 })
        );
        assert!(canon(&"1".repeat(4300), Escaping::Ascii).is_ok());
        assert_eq!(
            canon(
                &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
                Escaping::Ascii
            ),
            Err(CanonError::TooDeep)
        );
        assert_eq!(
            canon("\"\\ud800\"", Escaping::Unicode),
            Err(CanonError::LoneSurrogate)
        );
        assert_eq!(
            canon("\"\\udc00\\ud800\"", Escaping::Unicode),
            Err(CanonError::LoneSurrogate)
        );
        assert_eq!(
            canonicalize(b"\"\xff\"", Escaping::Ascii, &mut Vec::new()),
            Err(CanonError::InvalidUtf8)
        );
    }

    #[test]
    fn limits_skip_strings() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!exceeds_limits(deep(MAX_DEPTH).as_bytes()));
        assert!(exceeds_limits(deep(MAX_DEPTH + 1).as_bytes()));
        let in_string = format!("[\"{}\\\"\",1]", "[".repeat(500));
        assert!(!exceeds_limits(in_string.as_bytes()));
        let siblings = format!("[{}[]]", "[],".repeat(300));
        assert!(!exceeds_limits(siblings.as_bytes()));
        // Unterminated strings and stray closers do not panic.
        assert!(!exceeds_limits(
            format!("{}\"\\", "[".repeat(100)).as_bytes()
        ));
        assert!(!exceeds_limits("]]]]".repeat(100).as_bytes()));

        let digits = |n: usize| "7".repeat(n);
        assert!(!exceeds_limits(
            format!("[{}]", digits(MAX_INT_DIGITS)).as_bytes()
        ));
        assert!(exceeds_limits(
            format!("[{}]", digits(MAX_INT_DIGITS + 1)).as_bytes()
        ));
        assert!(exceeds_limits(
            format!("{{\"a\":\"x\",\"n\":-{}}}", digits(9000)).as_bytes()
        ));
        // Long digit runs in strings and in floats are what Python accepts.
        assert!(!exceeds_limits(
            format!("[\"{}\"]", digits(9000)).as_bytes()
        ));
        assert!(!exceeds_limits(format!("[{}.5]", digits(9000)).as_bytes()));
        assert!(!exceeds_limits(format!("[{}e5]", digits(9000)).as_bytes()));
        // Runs at every offset relative to the sampling stride are found.
        for pad in 0..7 {
            let body = format!("[{}{}]", " ".repeat(pad * 613), digits(MAX_INT_DIGITS + 1));
            assert!(exceeds_limits(body.as_bytes()), "pad {pad}");
        }
    }

    #[test]
    fn v2_message_paths_agree() {
        let wire = br#"{"a":"Jos\u00e9 \ud83d\ude00","b":[1,2.5,{}],"c":"\u007f\n\u0001"}"#;
        let mut scratch = Vec::new();
        let fast = v2_message(wire, &mut scratch).map(<[u8]>::to_vec);
        let mut slow = Vec::new();
        canonicalize(wire, Escaping::Unicode, &mut slow).expect("valid");
        assert_eq!(fast, Ok(slow));
        assert_eq!(
            fast.as_deref(),
            Ok("{\"a\":\"José 😀\",\"b\":[1,2.5,{}],\"c\":\"\u{7f}\\n\\u0001\"}".as_bytes())
        );
    }
}

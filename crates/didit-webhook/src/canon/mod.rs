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
        let got = canon(r#" { "b" : [1, 2.50, 100.0, -0, -0.0], "a": {"z":1,"y":2}, "b": true } "#, Escaping::Ascii);
        assert_eq!(got.as_deref(), Ok(r#"{"a":{"y":2,"z":1},"b":true}"#));
        let got = canon(r#"{"10":1,"2":2,"9":3,"～":4,"😀":5}"#, Escaping::Unicode);
        assert_eq!(got.as_deref(), Ok(r#"{"10":1,"2":2,"9":3,"～":4,"😀":5}"#));
    }

    #[test]
    fn numbers_follow_python() {
        let got = canon("[100.0,-0.0,1e16,1.1812083616449413e+38,1e-5,1.5e-7,0.0001,-0,1E2,1e400,-1e400,NaN]", Escaping::Ascii);
        assert_eq!(
            got.as_deref(),
            Ok("[100,0,10000000000000000,118120836164494129544568202238038638592,1e-05,1.5e-07,0.0001,0,100,Infinity,-Infinity,NaN]")
        );
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "[1 2]", "{\"a\" 1}", "{1:2}", "\"\t\"",
            "\"\\x\"", "tru", "[", "\"abc", "1 1", "[-Inf]", "\"\\u12\"",
        ] {
            assert!(
                matches!(canon(bad, Escaping::Ascii), Err(CanonError::Syntax { .. })),
                "accepted {bad:?}"
            );
        }
        assert_eq!(canon(&"1".repeat(4301), Escaping::Ascii), Err(CanonError::NumberTooLong { digits: 4301 }));
        assert!(canon(&"1".repeat(4300), Escaping::Ascii).is_ok());
        assert_eq!(canon(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), Escaping::Ascii), Err(CanonError::TooDeep));
        assert_eq!(canon("\"\\ud800\"", Escaping::Unicode), Err(CanonError::LoneSurrogate));
        assert_eq!(canon("\"\\udc00\\ud800\"", Escaping::Unicode), Err(CanonError::LoneSurrogate));
        assert_eq!(
            canonicalize(b"\"\xff\"", Escaping::Ascii, &mut Vec::new()),
            Err(CanonError::InvalidUtf8)
        );
    }

    #[test]
    fn v2_message_paths_agree() {
        let wire = br#"{"a":"Jos\u00e9 \ud83d\ude00","b":[1,2.5,{}],"c":"\u007f\n\u0001"}"#;
        let mut scratch = Vec::new();
        let fast = v2_message(wire, &mut scratch).map(<[u8]>::to_vec);
        let mut slow = Vec::new();
        canonicalize(wire, Escaping::Unicode, &mut slow).expect("valid");
        assert_eq!(fast, Ok(slow));
        assert_eq!(fast.as_deref(), Ok("{\"a\":\"José 😀\",\"b\":[1,2.5,{}],\"c\":\"\u{7f}\\n\\u0001\"}".as_bytes()));
    }
}

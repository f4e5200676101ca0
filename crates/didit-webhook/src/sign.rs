//! Signing exactly as Didit's server does, for the load generator and for tests.

use crate::canon::{Escaping, Number, Value, write_python_float_repr, write_string, write_value};
use crate::hex::HexTag;
use crate::mac::Mac;
use crate::secret::Secret;

/// Didit's `User-Agent` (contract §1).
pub const USER_AGENT: &str = "DiditWebhook/2.0 +https://didit.me";
/// The assumed `Content-Type` (the contract could not observe the exact value).
pub const CONTENT_TYPE: &str = "application/json";

/// Why a payload cannot be signed as Didit would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("payload is not a JSON object")]
    NotAnObject,
    #[error("payload has no integer `timestamp`, which X-Timestamp must equal")]
    NoTimestamp,
    #[error(
        "field `{0}` is an array or object, whose Python str() the Simple signature cannot reproduce"
    )]
    UnsupportedSimpleField(&'static str),
}

/// One delivery as Didit sends it: the wire body and every header value.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedDelivery {
    /// `json.dumps(shorten_floats(P), sort_keys=True, separators=(",", ":"))`, ASCII-escaped.
    pub body: Vec<u8>,
    /// `X-Timestamp`: the body `timestamp` as decimal text.
    pub timestamp: String,
    pub signature: HexTag,
    pub signature_v2: HexTag,
    pub signature_simple: HexTag,
}

impl SignedDelivery {
    /// The request headers in the form Didit sends them (names as Didit capitalises them).
    pub fn headers(&self) -> [(&'static str, &str); 6] {
        [
            ("Content-Type", CONTENT_TYPE),
            ("User-Agent", USER_AGENT),
            ("X-Timestamp", &self.timestamp),
            ("X-Signature", self.signature.as_str()),
            ("X-Signature-V2", self.signature_v2.as_str()),
            ("X-Signature-Simple", self.signature_simple.as_str()),
        ]
    }
}

/// Signs payloads with one destination secret.
#[derive(Debug)]
pub struct Signer<M> {
    mac: M,
}

impl<M: Mac> Signer<M> {
    pub fn new(secret: &Secret) -> Self {
        Signer {
            mac: M::new(secret),
        }
    }

    /// Encodes and signs `payload` as Didit does. `v2_scratch` is reused between calls.
    pub fn sign_with(
        &self,
        payload: &Value,
        v2_scratch: &mut Vec<u8>,
    ) -> Result<SignedDelivery, SignError> {
        let obj = payload.as_object().ok_or(SignError::NotAnObject)?;
        let ts = obj
            .get("timestamp")
            .and_then(Value::as_i64)
            .ok_or(SignError::NoTimestamp)?;
        let mut body = Vec::new();
        write_value(payload, Escaping::Ascii, &mut body);
        v2_scratch.clear();
        write_value(payload, Escaping::Unicode, v2_scratch);
        let mut simple = Vec::new();
        simple_message_of(payload, &mut simple)?;
        Ok(SignedDelivery {
            signature: HexTag::new(&self.mac.sign(&body)),
            signature_v2: HexTag::new(&self.mac.sign(v2_scratch)),
            signature_simple: HexTag::new(&self.mac.sign(&simple)),
            timestamp: ts.to_string(),
            body,
        })
    }

    pub fn sign(&self, payload: &Value) -> Result<SignedDelivery, SignError> {
        self.sign_with(payload, &mut Vec::new())
    }

    /// The `X-Signature` of arbitrary bytes, e.g. a body re-encoded by middleware.
    pub fn sign_bytes(&self, bytes: &[u8]) -> HexTag {
        HexTag::new(&self.mac.sign(bytes))
    }
}

/// The Simple message of a payload:
/// `":".join(str(P.get(k, "")) for k in ("timestamp", "session_id", "status", "webhook_type"))`.
pub fn simple_message_of(payload: &Value, out: &mut Vec<u8>) -> Result<(), SignError> {
    let obj = payload.as_object().ok_or(SignError::NotAnObject)?;
    for (i, key) in ["timestamp", "session_id", "status", "webhook_type"]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push(b':');
        }
        match obj.get(key) {
            None => {}
            Some(Value::Null) => out.extend_from_slice(b"None"),
            Some(Value::Bool(b)) => out.extend_from_slice(if *b { b"True" } else { b"False" }),
            Some(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
            Some(Value::Number(Number::Int(s))) => out.extend_from_slice(s.as_bytes()),
            // Python 3's str(float) is repr(float), on the payload before shorten_floats.
            Some(Value::Number(Number::Float(f))) => write_python_float_repr(*f, out),
            Some(Value::Array(_) | Value::Object(_)) => {
                return Err(SignError::UnsupportedSimpleField(key));
            }
        }
    }
    Ok(())
}

/// How re-encoding middleware (a proxy, a framework's JSON layer) might rewrite a Didit body.
/// X-Signature no longer matches the result; X-Signature-V2 still does (contract §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reencoding {
    /// Two-space indentation and `": "`, ASCII-escaped, keys still sorted.
    Pretty,
    /// Raw UTF-8 instead of `\uXXXX`, keys in reverse order.
    UnsortedUnicode,
    /// Whole numbers below 10^14 written as `95.0`, as a float-typed field would be.
    WholeFloats,
}

/// Writes `v` as `style` would; see [`Reencoding`].
pub fn reencode(v: &Value, style: Reencoding, out: &mut Vec<u8>) {
    reencode_at(v, style, out, 0);
}

fn reencode_at(v: &Value, style: Reencoding, out: &mut Vec<u8>, depth: usize) {
    let pretty = style == Reencoding::Pretty;
    let nl = |out: &mut Vec<u8>, depth: usize| {
        if pretty {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', 2 * depth));
        }
    };
    let esc = if style == Reencoding::UnsortedUnicode {
        Escaping::Unicode
    } else {
        Escaping::Ascii
    };
    match v {
        Value::Object(m) => {
            out.push(b'{');
            let mut entries: Vec<(&str, &Value)> = m.iter().collect();
            if style == Reencoding::UnsortedUnicode {
                entries.reverse();
            }
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                nl(out, depth + 1);
                write_string(k, esc, out);
                out.extend_from_slice(if pretty { b": " } else { b":" });
                reencode_at(item, style, out, depth + 1);
            }
            if !entries.is_empty() {
                nl(out, depth);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                nl(out, depth + 1);
                reencode_at(item, style, out, depth + 1);
            }
            if !items.is_empty() {
                nl(out, depth);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, esc, out),
        Value::Number(Number::Int(s)) if style == Reencoding::WholeFloats && s.len() < 15 => {
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b".0");
        }
        other => write_value(other, esc, out),
    }
}

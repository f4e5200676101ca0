//! Signing exactly as Didit's server does, for the load generator and for tests.

use crate::canon::{Escaping, Number, Value, write_python_float_repr, write_string, write_value};
use crate::hex::HexTag;
use crate::mac::Mac;
use crate::payload::Nullable;
use crate::secret::Secret;

/// Didit's `User-Agent` (contract §1).
pub const USER_AGENT: &str = "DiditWebhook/2.0 +https://didit.me";
/// The assumed `Content-Type` (the contract could not observe the exact value).
pub const CONTENT_TYPE: &str = "application/json";

/// Why a payload cannot be signed as Didit would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("payload is not JSON")]
    NotJson,
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

    /// Signs a JSON payload given as text, as Didit would send it: the body it would put on the
    /// wire and all four headers ([`SignedDelivery::headers`]). For a team's own handler tests:
    ///
    /// ```
    /// use didit_webhook::{RingMac, Secret, Signer};
    /// let secret = Secret::new("test-secret").expect("not empty");
    /// let now = 1_780_000_000; // the receiver checks freshness: use the current time
    /// let payload = format!(
    ///     r#"{{"event_id":"e-1","session_id":"s-1","status":"Approved","webhook_type":"status.updated","timestamp":{now}}}"#
    /// );
    /// let delivery = Signer::<RingMac>::new(&secret).sign_json(payload.as_bytes()).expect("signable");
    /// // POST delivery.body with delivery.headers() to the handler under test.
    /// assert_eq!(delivery.timestamp, now.to_string());
    /// ```
    pub fn sign_json(&self, payload: &[u8]) -> Result<SignedDelivery, SignError> {
        let value = Value::parse(payload).map_err(|_| SignError::NotJson)?;
        self.sign(&value)
    }

    /// A minimal `status.updated` event of session `s-1`, `Approved` at `timestamp`, with
    /// `event_id` when given (without one, a receiver falls back to the contract's key), signed
    /// as Didit signs it: the delivery a handler test sends.
    ///
    /// ```
    /// use didit_webhook::{RingMac, Secret, Signer};
    /// let secret = Secret::new("test-secret").expect("not empty");
    /// let signer = Signer::<RingMac>::new(&secret);
    /// let d = signer.sign_status_update(Some("e-1"), 1_780_000_000).expect("signable");
    /// assert!(d.body.starts_with(br#"{"event_id":"e-1""#));
    /// ```
    pub fn sign_status_update(
        &self,
        event_id: Option<&str>,
        timestamp: i64,
    ) -> Result<SignedDelivery, SignError> {
        let id = match event_id {
            Some(id) => {
                let quoted = serde_json::to_string(id).map_err(|_| SignError::NotJson)?;
                format!(r#""event_id":{quoted},"#)
            }
            None => String::new(),
        };
        let payload = format!(
            r#"{{{id}"session_id":"s-1","status":"Approved","webhook_type":"status.updated","timestamp":{timestamp}}}"#
        );
        self.sign_json(payload.as_bytes())
    }

    /// The `X-Signature` of arbitrary bytes, e.g. a body re-encoded by middleware.
    pub fn sign_bytes(&self, bytes: &[u8]) -> HexTag {
        HexTag::new(&self.mac.sign(bytes))
    }
}

/// The Simple message of a payload:
/// `":".join(str(P.get(k, "")) for k in ("timestamp", "session_id", "status", "webhook_type"))`.
pub fn simple_message_of(payload: &Value, out: &mut Vec<u8>) -> Result<(), SignError> {
    const KEYS: [&str; 4] = ["timestamp", "session_id", "status", "webhook_type"];
    let obj = payload.as_object().ok_or(SignError::NotAnObject)?;
    // Python 3's str(float) is repr(float), on the payload before shorten_floats.
    let mut floats: [Vec<u8>; 4] = Default::default();
    for (key, text) in KEYS.iter().zip(&mut floats) {
        if let Some(Value::Number(Number::Float(f))) = obj.get(key) {
            write_python_float_repr(*f, text);
        }
    }
    let field = |i: usize| -> Result<Nullable<&str>, SignError> {
        Ok(match obj.get(KEYS[i]) {
            None => Nullable::Missing,
            Some(Value::Null) => Nullable::Null,
            Some(Value::Bool(b)) => Nullable::Present(if *b { "True" } else { "False" }),
            Some(Value::String(s)) => Nullable::Present(s.as_str()),
            Some(Value::Number(Number::Int(s))) => Nullable::Present(&**s),
            // The repr is ASCII.
            Some(Value::Number(Number::Float(_))) => {
                Nullable::Present(std::str::from_utf8(&floats[i]).unwrap_or_default())
            }
            Some(Value::Array(_) | Value::Object(_)) => {
                return Err(SignError::UnsupportedSimpleField(KEYS[i]));
            }
        })
    };
    simple_message_from(field(0)?, field(1)?, field(2)?, field(3)?, out);
    Ok(())
}

/// Writes the Simple message from its four fields, each as Python's `str()` writes it:
/// `f"{timestamp}:{session_id}:{status}:{webhook_type}"`, a missing key as `""`, `null` as
/// `None`. The one place the message is laid out: [`simple_message_of`] (a payload value),
/// [`crate::simple_message`] (a parsed envelope) and the load generator's templates (field values
/// known in advance) all call it.
pub fn simple_message_from(
    timestamp: Nullable<&str>,
    session_id: Nullable<&str>,
    status: Nullable<&str>,
    webhook_type: Nullable<&str>,
    out: &mut Vec<u8>,
) {
    for (i, field) in [timestamp, session_id, status, webhook_type]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push(b':');
        }
        match field {
            Nullable::Missing => {}
            Nullable::Null => out.extend_from_slice(b"None"),
            Nullable::Present(s) => out.extend_from_slice(s.as_bytes()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simple_message_is_python_str_of_each_field() {
        let mut out = Vec::new();
        let v = Value::parse(br#"{"timestamp":1.5,"session_id":null,"status":true,"x":[1]}"#)
            .expect("json");
        simple_message_of(&v, &mut out).expect("scalars only");
        assert_eq!(out, b"1.5:None:True:");
        out.clear();
        let v = Value::parse(br#"{"timestamp":17,"webhook_type":{"a":1}}"#).expect("json");
        assert_eq!(
            simple_message_of(&v, &mut out),
            Err(SignError::UnsupportedSimpleField("webhook_type"))
        );
    }
}

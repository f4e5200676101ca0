//! JSON backends for the envelope parse, behind one narrow trait.

use crate::payload::Envelope;

/// The envelope could not be parsed: invalid JSON, too deep, or a known key with the wrong type.
/// Deliberately carries no message: it is a hot-path rejection and the body is attacker-shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the body is not a valid Didit envelope")]
pub struct JsonError;

/// Parses a verified body into its [`Envelope`].
///
/// Contract for implementers: accept exactly the JSON text grammar (RFC 8259) in UTF-8; reject a
/// repeated envelope key (parsers disagree on which copy wins, so a repeat is ambiguous); ignore
/// unknown keys; never panic or overflow the stack, whatever the input. `scratch` is the caller's
/// reusable buffer; a backend that parses in place copies the body there first, so `body` is never
/// modified.
pub trait JsonBackend: Send + Sync + Sized + 'static {
    /// The name used on command lines and in benchmark ids.
    const NAME: &'static str;

    /// `false` only for [`NullJson`]: the verifier then has no body fields to check.
    const PARSES: bool = true;

    fn parse_envelope<'a>(
        &self,
        body: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<Envelope<'a>, JsonError>;
}

/// `serde_json`: the reference parser, borrowing straight from the body.
#[derive(Clone, Copy, Debug, Default)]
pub struct SerdeJson;

impl JsonBackend for SerdeJson {
    const NAME: &'static str = "serde";

    fn parse_envelope<'a>(
        &self,
        body: &'a [u8],
        _scratch: &'a mut Vec<u8>,
    ) -> Result<Envelope<'a>, JsonError> {
        serde_envelope(body)
    }
}

fn serde_envelope(body: &[u8]) -> Result<Envelope<'_>, JsonError> {
    // serde_json stops at 128 levels of nesting, so deep input is an error, not a stack overflow.
    // `from_slice` does not check UTF-8 inside strings it skips, so `{"x":"\xda"}` would pass
    // where simd-json, sonic-rs and Python refuse it (found by fuzz/fuzz_targets/envelope.rs):
    // validate the whole body once, then parse it as text.
    let text = std::str::from_utf8(body).map_err(|_| JsonError)?;
    serde_json::from_str(text).map_err(|_| JsonError)
}

/// `simd-json`: SIMD structural indexing; it un-escapes in place, hence the copy into `scratch`.
#[cfg(feature = "simd-json")]
#[derive(Clone, Copy, Debug, Default)]
pub struct SimdJson;

#[cfg(feature = "simd-json")]
impl JsonBackend for SimdJson {
    const NAME: &'static str = "simd";

    fn parse_envelope<'a>(
        &self,
        body: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<Envelope<'a>, JsonError> {
        scratch.clear();
        scratch.extend_from_slice(body);
        match simd_json::serde::from_slice(scratch.as_mut_slice()) {
            Ok(env) => Ok(env),
            // simd-json refuses some JSON that Python (and serde_json) accept, such as a number
            // that overflows to infinity (`1e999`; found by fuzz/fuzz_targets/envelope.rs). A
            // body it refuses gets a second opinion, so every backend accepts the same bodies;
            // only malformed bodies, rare after a valid signature, pay for two parses.
            Err(_) => serde_envelope(body),
        }
    }
}

/// `sonic-rs`: SIMD parsing that borrows from the body.
#[cfg(feature = "sonic")]
#[derive(Clone, Copy, Debug, Default)]
pub struct SonicJson;

#[cfg(feature = "sonic")]
impl JsonBackend for SonicJson {
    const NAME: &'static str = "sonic";

    fn parse_envelope<'a>(
        &self,
        body: &'a [u8],
        _scratch: &'a mut Vec<u8>,
    ) -> Result<Envelope<'a>, JsonError> {
        let env: Envelope<'a> = sonic_rs::from_slice(body).map_err(|_| JsonError)?;
        // sonic-rs skips the strings of unknown fields without checking their escapes, so
        // `{"x":"\ud12t"}` would pass where serde_json, simd-json and Python refuse it (found by
        // fuzz/fuzz_targets/envelope.rs). The parse succeeded, so every backslash is inside a
        // string: checking each escape is enough.
        if escapes_valid(body) {
            Ok(env)
        } else {
            Err(JsonError)
        }
    }
}

/// Whether every `\` escape in `body` is one JSON allows (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, or `\u` and four hex digits). Only meaningful for a body that parsed, where every
/// backslash is inside a string.
#[cfg(feature = "sonic")]
fn escapes_valid(body: &[u8]) -> bool {
    let mut at = 0;
    while let Some(off) = memchr::memchr(b'\\', &body[at..]) {
        let i = at + off;
        match body.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => at = i + 2,
            Some(b'u') => {
                let hex = body.get(i + 2..i + 6);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                at = i + 6;
            }
            _ => return false,
        }
    }
    true
}

/// No parse at all: returns an empty envelope. For measuring a receiver's cost without JSON;
/// the verifier then checks freshness on the `X-Timestamp` header alone. Never deploy it.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullJson;

impl JsonBackend for NullJson {
    const NAME: &'static str = "null";
    const PARSES: bool = false;

    fn parse_envelope<'a>(
        &self,
        _body: &'a [u8],
        _scratch: &'a mut Vec<u8>,
    ) -> Result<Envelope<'a>, JsonError> {
        Ok(Envelope::default())
    }
}

/// The JSON backends built into this crate, for command-line selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JsonKind {
    Serde,
    #[cfg(feature = "simd-json")]
    Simd,
    #[cfg(feature = "sonic")]
    Sonic,
    Null,
}

impl JsonKind {
    /// Every real (non-null) backend compiled in.
    pub const REAL: &'static [JsonKind] = &[
        JsonKind::Serde,
        #[cfg(feature = "simd-json")]
        JsonKind::Simd,
        #[cfg(feature = "sonic")]
        JsonKind::Sonic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JsonKind::Serde => SerdeJson::NAME,
            #[cfg(feature = "simd-json")]
            JsonKind::Simd => SimdJson::NAME,
            #[cfg(feature = "sonic")]
            JsonKind::Sonic => SonicJson::NAME,
            JsonKind::Null => NullJson::NAME,
        }
    }
}

impl std::str::FromStr for JsonKind {
    type Err = crate::error::UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = || JsonKind::REAL.iter().copied().chain([JsonKind::Null]);
        all().find(|k| k.name() == s).ok_or_else(|| {
            crate::error::UnknownBackend::new("JSON", s, all().map(JsonKind::name).collect())
        })
    }
}

impl std::fmt::Display for JsonKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

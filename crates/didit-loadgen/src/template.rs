//! Pre-encoded payload templates with slots, signed incrementally.
//!
//! A template is a payload already written in Didit's wire form (and, when it differs, in the V2
//! form) and cut at its per-delivery values: session id, event id, vendor data, timestamp. Keys
//! are sorted, so the large `decision` object usually sits before the first per-delivery slot: the
//! HMAC state after that prefix is computed once a second (when the timestamp-bearing prefix can
//! change) and cloned for each delivery, so signing a 4 KB delivery hashes a few hundred bytes,
//! not four thousand. Tests check every rendered delivery against the full signer and verifier.

use didit_webhook::canon::{Escaping, Value, write_value};
use didit_webhook::{HexTag, Nullable, Secret, simple_message_from};
use ring::hmac;

/// A value filled in per delivery (or per second, for the time slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    SessionId,
    EventId,
    VendorData,
    /// The body `timestamp`: an integer, written without quotes.
    Timestamp,
    /// The top-level `created_at`: an integer, equal to the timestamp (as in a real capture).
    CreatedAt,
}

impl Slot {
    const ALL: [Slot; 5] = [
        Slot::SessionId,
        Slot::EventId,
        Slot::VendorData,
        Slot::Timestamp,
        Slot::CreatedAt,
    ];

    fn letter(self) -> u8 {
        match self {
            Slot::SessionId => b'S',
            Slot::EventId => b'E',
            Slot::VendorData => b'V',
            Slot::Timestamp => b'T',
            Slot::CreatedAt => b'C',
        }
    }

    /// The placeholder string put into the payload value where the slot goes.
    pub fn marker(self) -> String {
        format!("\u{1}{}\u{1}", self.letter() as char)
    }

    fn numeric(self) -> bool {
        matches!(self, Slot::Timestamp | Slot::CreatedAt)
    }

    /// Depends only on the current second, so it may be part of the cached prefix.
    fn per_second(self) -> bool {
        self.numeric()
    }
}

/// The per-delivery values.
#[derive(Clone, Copy, Debug)]
pub struct Fill<'a> {
    pub session_id: &'a str,
    pub event_id: &'a str,
    pub vendor_data: &'a str,
    pub timestamp: i64,
}

impl Fill<'_> {
    fn write(&self, slot: Slot, out: &mut Vec<u8>) {
        match slot {
            Slot::SessionId => out.extend_from_slice(self.session_id.as_bytes()),
            Slot::EventId => out.extend_from_slice(self.event_id.as_bytes()),
            Slot::VendorData => out.extend_from_slice(self.vendor_data.as_bytes()),
            Slot::Timestamp | Slot::CreatedAt => write_int(self.timestamp, out),
        }
    }
}

/// One encoding of a template, cut at its slots.
#[derive(Clone, Debug)]
struct Cut {
    /// `segments.len() == slots.len() + 1`.
    segments: Vec<Vec<u8>>,
    slots: Vec<Slot>,
    /// Index of the first slot that changes per delivery (`slots.len()` when none does).
    first_dynamic: usize,
}

impl Cut {
    fn new(text: &[u8]) -> Result<Cut, TemplateError> {
        let mut segments = Vec::new();
        let mut slots = Vec::new();
        let mut start = 0;
        let mut i = 0;
        // The marker is written as the JSON escape \u0001X\u0001 in both encodings.
        while let Some(pos) = find(&text[i..], b"\\u0001") {
            let at = i + pos;
            let letter = text.get(at + 6).copied();
            let slot = Slot::ALL
                .into_iter()
                .find(|s| Some(s.letter()) == letter)
                .ok_or(TemplateError::StrayControl)?;
            if text.get(at + 7..at + 13) != Some(b"\\u0001".as_slice()) {
                return Err(TemplateError::StrayControl);
            }
            let (seg_end, next) = if slot.numeric() {
                // A whole-string marker: drop the quotes so the number is bare.
                if at == 0 || text[at - 1] != b'"' || text.get(at + 13) != Some(&b'"') {
                    return Err(TemplateError::NumericInString(slot));
                }
                (at - 1, at + 14)
            } else {
                (at, at + 13)
            };
            segments.push(text[start..seg_end].to_vec());
            slots.push(slot);
            start = next;
            i = next;
        }
        segments.push(text[start..].to_vec());
        let first_dynamic = slots
            .iter()
            .position(|s| !s.per_second())
            .unwrap_or(slots.len());
        Ok(Cut {
            segments,
            slots,
            first_dynamic,
        })
    }

    fn write_range(&self, from: usize, fill: &Fill<'_>, out: &mut Vec<u8>) {
        // Segment `from`, then slot/segment pairs.
        out.extend_from_slice(&self.segments[from]);
        for k in from..self.slots.len() {
            fill.write(self.slots[k], out);
            out.extend_from_slice(&self.segments[k + 1]);
        }
    }

    /// Writes everything before slot `first_dynamic` (time slots filled).
    fn write_prefix(&self, fill: &Fill<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.segments[0]);
        for k in 0..self.first_dynamic {
            fill.write(self.slots[k], out);
            out.extend_from_slice(&self.segments[k + 1]);
        }
    }

    fn write_suffix(&self, fill: &Fill<'_>, out: &mut Vec<u8>) {
        for k in self.first_dynamic..self.slots.len() {
            fill.write(self.slots[k], out);
            out.extend_from_slice(&self.segments[k + 1]);
        }
    }

    fn len_hint(&self) -> usize {
        self.segments.iter().map(Vec::len).sum::<usize>() + 48 * self.slots.len()
    }
}

/// Decimal text of `n` without an intermediate `String` (this runs for every delivery).
pub fn write_int(n: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(int_text(n, &mut buf).as_bytes());
}

/// Decimal text of `n`, written into `buf` (19 digits and a sign at most).
fn int_text(n: i64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    // Only ASCII digits and a sign were written.
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Why a payload cannot be a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the payload holds a U+0001 control character that is not a slot marker")]
    StrayControl,
    #[error("the {0:?} slot must be a whole string value so that it can become a bare number")]
    NumericInString(Slot),
    #[error("the payload has no timestamp slot")]
    NoTimestamp,
}

/// A payload template: wire and V2 encodings with slots, and the fields of the Simple message.
#[derive(Clone, Debug)]
pub struct Template {
    wire: Cut,
    /// `None` when the V2 text equals the wire text (an ASCII-only payload): one HMAC serves both.
    v2: Option<Cut>,
    /// The Simple message's fixed fields, `status` and `webhook_type`; the core's
    /// `simple_message_from` lays the message out, with the timestamp and (when the payload has
    /// one) the session id from the fill.
    status: String,
    webhook_type: String,
    has_session_id: bool,
}

impl Template {
    /// Encodes `payload`, whose per-delivery values are [`Slot::marker`] strings.
    pub fn new(payload: &Value) -> Result<Template, TemplateError> {
        let mut text = Vec::new();
        write_value(payload, Escaping::Ascii, &mut text);
        let wire = Cut::new(&text)?;
        if !wire.slots.contains(&Slot::Timestamp) {
            return Err(TemplateError::NoTimestamp);
        }
        let mut v2_text = Vec::new();
        write_value(payload, Escaping::Unicode, &mut v2_text);
        let v2 = if v2_text == text {
            None
        } else {
            Some(Cut::new(&v2_text)?)
        };
        let obj = payload.as_object();
        let field = |k: &str| {
            obj.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Template {
            wire,
            v2,
            status: field("status"),
            webhook_type: field("webhook_type"),
            has_session_id: obj.is_some_and(|m| m.get("session_id").is_some()),
        })
    }

    /// Approximate wire size.
    pub fn wire_len(&self) -> usize {
        self.wire.len_hint()
    }

    pub fn has_session_id(&self) -> bool {
        self.has_session_id
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    pub fn webhook_type(&self) -> &str {
        &self.webhook_type
    }

    /// The payload with `fill`, as a canonical value (for re-encodings). Slower path.
    pub fn value(&self, fill: &Fill<'_>) -> Value {
        let mut body = Vec::with_capacity(self.wire.len_hint());
        self.wire.write_range(0, fill, &mut body);
        // The wire text is canonical JSON written by this crate; it always parses.
        Value::parse(&body).unwrap_or(Value::Null)
    }
}

/// A rendered, signed delivery body with its header values.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub body: Vec<u8>,
    pub signature: HexTag,
    pub signature_v2: HexTag,
    pub signature_simple: HexTag,
}

/// HMAC keyed with the destination secret, plus per-template prefix states for the current second.
#[derive(Debug)]
pub struct TemplateSigner {
    key: hmac::Key,
    cache: Vec<Option<Prefix>>,
    scratch: Vec<u8>,
}

struct Prefix {
    second: i64,
    wire_bytes: Vec<u8>,
    wire_ctx: hmac::Context,
    v2_ctx: Option<hmac::Context>,
}

impl std::fmt::Debug for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefix")
            .field("second", &self.second)
            .field("len", &self.wire_bytes.len())
            .finish()
    }
}

impl TemplateSigner {
    pub fn new(secret: &Secret, templates: usize) -> Self {
        TemplateSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
            cache: (0..templates).map(|_| None).collect(),
            scratch: Vec::new(),
        }
    }

    /// Renders template number `idx` with `fill` and signs it as Didit does.
    pub fn render(&mut self, idx: usize, t: &Template, fill: &Fill<'_>) -> Rendered {
        if self.cache.len() <= idx {
            self.cache.resize_with(idx + 1, || None);
        }
        let fresh = matches!(&self.cache[idx], Some(p) if p.second == fill.timestamp);
        if !fresh {
            let mut wire_bytes = Vec::new();
            t.wire.write_prefix(fill, &mut wire_bytes);
            let mut wire_ctx = hmac::Context::with_key(&self.key);
            wire_ctx.update(&wire_bytes);
            let v2_ctx = t.v2.as_ref().map(|cut| {
                self.scratch.clear();
                cut.write_prefix(fill, &mut self.scratch);
                let mut c = hmac::Context::with_key(&self.key);
                c.update(&self.scratch);
                c
            });
            self.cache[idx] = Some(Prefix {
                second: fill.timestamp,
                wire_bytes,
                wire_ctx,
                v2_ctx,
            });
        }
        let Some(prefix) = &self.cache[idx] else {
            unreachable!("filled above")
        };
        let mut body = Vec::with_capacity(t.wire.len_hint());
        body.extend_from_slice(&prefix.wire_bytes);
        let suffix_at = body.len();
        t.wire.write_suffix(fill, &mut body);
        let mut ctx = prefix.wire_ctx.clone();
        ctx.update(&body[suffix_at..]);
        let signature = tag(ctx.sign());
        let signature_v2 = match (&t.v2, &prefix.v2_ctx) {
            (Some(cut), Some(v2_ctx)) => {
                self.scratch.clear();
                cut.write_suffix(fill, &mut self.scratch);
                let mut ctx = v2_ctx.clone();
                ctx.update(&self.scratch);
                tag(ctx.sign())
            }
            _ => signature,
        };
        self.scratch.clear();
        let mut digits = [0u8; 20];
        simple_message_from(
            Nullable::Present(int_text(fill.timestamp, &mut digits)),
            if t.has_session_id {
                Nullable::Present(fill.session_id)
            } else {
                Nullable::Missing
            },
            Nullable::Present(&t.status),
            Nullable::Present(&t.webhook_type),
            &mut self.scratch,
        );
        let signature_simple = tag(hmac::sign(&self.key, &self.scratch));
        Rendered {
            body,
            signature,
            signature_v2,
            signature_simple,
        }
    }

    /// X-Signature of arbitrary bytes (malformed bodies, re-encodings).
    pub fn sign_bytes(&self, bytes: &[u8]) -> HexTag {
        tag(hmac::sign(&self.key, bytes))
    }
}

fn tag(t: hmac::Tag) -> HexTag {
    let mut raw = [0u8; 32];
    raw.copy_from_slice(t.as_ref());
    HexTag::new(&raw)
}

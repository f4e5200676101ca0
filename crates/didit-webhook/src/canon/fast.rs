//! The streaming V2 path: from a body already in Didit's wire form to the V2 message, in one pass.
//!
//! Didit's wire body is `json.dumps(..., sort_keys=True, separators=(",", ":"))` with
//! `ensure_ascii=True`. The V2 message is the same dump with `ensure_ascii=False`, so for a body in
//! that exact form the two differ only where a `\uXXXX` escape of a code point >= U+007F stands:
//! V2 has the raw UTF-8 there. This pass proves the body is in that form (compact, keys strictly
//! increasing by code point, numbers as Python prints them, escapes exactly as Python writes them)
//! and rewrites those escapes. Any deviation returns [`V2Message::NotCanonical`] and the caller
//! re-serialises from a parsed tree instead; the fast path never decides a rejection itself.

use super::value::{MAX_DEPTH, MAX_INT_DIGITS};
use super::write::write_shortened_float;

/// What [`v2_from_wire`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2Message {
    /// The body is canonical and pure ASCII in V2 form too: the V2 message is the body itself.
    SameAsBody,
    /// The body is canonical; the V2 message was written to `out`.
    Rewritten,
    /// The body is not in Didit's wire form; canonicalise it from a parsed tree.
    NotCanonical,
}

/// Checks that `body` is in Didit's canonical wire form and, if escapes need rewriting, writes the
/// V2 message into `out` (which must be empty).
pub fn v2_from_wire(body: &[u8], out: &mut Vec<u8>) -> V2Message {
    let mut s = Scan {
        b: body,
        pos: 0,
        depth: 0,
        out,
        copied: 0,
        rewrote: false,
        num_buf: Vec::new(),
        key_a: Vec::new(),
        key_b: Vec::new(),
    };
    if s.value().is_err() || s.pos != body.len() {
        s.out.clear();
        return V2Message::NotCanonical;
    }
    if !s.rewrote {
        return V2Message::SameAsBody;
    }
    s.out.extend_from_slice(&body[s.copied..]);
    V2Message::Rewritten
}

struct NotCanonical;

type R<T = ()> = Result<T, NotCanonical>;

/// Bytes that may stand unescaped inside a canonical ASCII JSON string.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0x20;
    while i < 0x7f {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = false;
    t[b'\\' as usize] = false;
    t
};

struct Scan<'b, 'o> {
    b: &'b [u8],
    pos: usize,
    depth: usize,
    out: &'o mut Vec<u8>,
    /// Body bytes before this index are already in `out` (when `rewrote`).
    copied: usize,
    rewrote: bool,
    num_buf: Vec<u8>,
    key_a: Vec<u8>,
    key_b: Vec<u8>,
}

/// A scanned string: the content between the quotes, and whether it held any escape.
#[derive(Clone, Copy)]
struct Str {
    start: usize,
    end: usize,
    escaped: bool,
}

impl Scan<'_, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> R {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(NotCanonical)
        }
    }

    fn literal(&mut self, lit: &[u8]) -> R {
        if self.b[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(NotCanonical)
        }
    }

    fn value(&mut self) -> R {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(|_| ()),
            Some(b'n') => self.literal(b"null"),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'N') => self.literal(b"NaN"),
            Some(b'I') => self.literal(b"Infinity"),
            Some(b'-') if self.b[self.pos..].starts_with(b"-I") => self.literal(b"-Infinity"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(NotCanonical),
        }
    }

    fn enter(&mut self) -> R {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(NotCanonical);
        }
        self.pos += 1;
        Ok(())
    }

    fn object(&mut self) -> R {
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut prev: Option<Str> = None;
        loop {
            if self.peek() != Some(b'"') {
                return Err(NotCanonical);
            }
            let key = self.string()?;
            if let Some(p) = prev
                && !self.key_less(p, key)
            {
                return Err(NotCanonical);
            }
            prev = Some(key);
            self.expect(b':')?;
            self.value()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(NotCanonical),
            }
        }
    }

    /// Strict code-point order between two keys (equal keys are a duplicate: not canonical).
    fn key_less(&mut self, a: Str, b: Str) -> bool {
        if !a.escaped && !b.escaped {
            // Plain printable ASCII: byte order is code-point order.
            return self.b[a.start..a.end] < self.b[b.start..b.end];
        }
        decode_into(&self.b[a.start..a.end], &mut self.key_a);
        decode_into(&self.b[b.start..b.end], &mut self.key_b);
        // UTF-8 byte order is code-point order.
        self.key_a < self.key_b
    }

    fn array(&mut self) -> R {
        self.enter()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.value()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(NotCanonical),
            }
        }
    }

    fn string(&mut self) -> R<Str> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let b = self.b;
            let mut p = self.pos;
            while p < b.len() && PLAIN[b[p] as usize] {
                p += 1;
            }
            self.pos = p;
            match b.get(p) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Str {
                        start,
                        end: p,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                // Raw control, DEL or non-ASCII byte, or end of input: Python would have escaped it.
                _ => return Err(NotCanonical),
            }
        }
    }

    fn escape(&mut self) -> R {
        let at = self.pos;
        match self.b.get(at + 1) {
            Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                let cp = hex4_lower(self.b, at + 2)?;
                let mut end = at + 6;
                let ch = match cp {
                    // Python writes these five in short form.
                    0x08 | 0x09 | 0x0A | 0x0C | 0x0D => return Err(NotCanonical),
                    // Other C0 controls stay `\u00xx` in V2 too.
                    0x00..=0x1F => {
                        self.pos = end;
                        return Ok(());
                    }
                    // Printable ASCII is never escaped this way.
                    0x20..=0x7E => return Err(NotCanonical),
                    0xD800..=0xDBFF => {
                        if self.b.get(end) != Some(&b'\\') || self.b.get(end + 1) != Some(&b'u') {
                            return Err(NotCanonical);
                        }
                        let lo = hex4_lower(self.b, end + 2)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(NotCanonical);
                        }
                        end += 6;
                        char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00))
                    }
                    0xDC00..=0xDFFF => return Err(NotCanonical),
                    _ => char::from_u32(cp),
                };
                let ch = ch.ok_or(NotCanonical)?;
                self.out.extend_from_slice(&self.b[self.copied..at]);
                let mut utf8 = [0u8; 4];
                self.out
                    .extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                self.copied = end;
                self.rewrote = true;
                self.pos = end;
                Ok(())
            }
            // `\/` and anything else Python never writes.
            _ => Err(NotCanonical),
        }
    }

    fn number(&mut self) -> R {
        let start = self.pos;
        let b = self.b;
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        let int_start = p;
        match b.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = b.get(p) {
                    p += 1;
                }
            }
            _ => return Err(NotCanonical),
        }
        let int_end = p;
        let mut is_float = false;
        if b.get(p) == Some(&b'.') {
            is_float = true;
            p += 1;
            let d = p;
            while let Some(b'0'..=b'9') = b.get(p) {
                p += 1;
            }
            if p == d {
                return Err(NotCanonical);
            }
        }
        if let Some(b'e' | b'E') = b.get(p) {
            is_float = true;
            p += 1;
            if let Some(b'+' | b'-') = b.get(p) {
                p += 1;
            }
            let d = p;
            while let Some(b'0'..=b'9') = b.get(p) {
                p += 1;
            }
            if p == d {
                return Err(NotCanonical);
            }
        }
        self.pos = p;
        let token = &b[start..p];
        if !is_float {
            if token == b"-0" || int_end - int_start > MAX_INT_DIGITS {
                return Err(NotCanonical);
            }
            return Ok(());
        }
        // A float token is canonical only if it is exactly what Python prints for its value.
        let f: f64 = std::str::from_utf8(token)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(NotCanonical)?;
        self.num_buf.clear();
        write_shortened_float(f, &mut self.num_buf);
        if self.num_buf != token {
            return Err(NotCanonical);
        }
        Ok(())
    }
}

fn hex4_lower(b: &[u8], at: usize) -> R<u32> {
    let h = b.get(at..at + 4).ok_or(NotCanonical)?;
    let mut v = 0u32;
    for &c in h {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return Err(NotCanonical),
        };
        v = v * 16 + d as u32;
    }
    Ok(v)
}

/// Decodes the content of a string that [`Scan::string`] accepted into UTF-8 (for key comparison).
fn decode_into(s: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let c = s.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        let short = match c {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'b' => Some(8),
            b'f' => Some(12),
            _ => None,
        };
        if let Some(byte) = short {
            out.push(byte);
            continue;
        }
        // `\uXXXX`, validated by the scanner (a high surrogate is always followed by a low one).
        let mut cp = hex4_lower(s, i).unwrap_or(0xFFFD);
        i += 4;
        if (0xD800..0xDC00).contains(&cp) {
            let lo = hex4_lower(s, i + 2).unwrap_or(0xDC00);
            i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &[u8]) -> (V2Message, Vec<u8>) {
        let mut out = Vec::new();
        let r = v2_from_wire(s, &mut out);
        (r, out)
    }

    #[test]
    fn accepts_canonical_ascii_as_is() {
        let (r, _) = run(br#"{"a":[1,-2,0.5,1e-05,true,false,null,{}],"b":"x\"\\\n\u0001"}"#);
        assert_eq!(r, V2Message::SameAsBody);
    }

    #[test]
    fn rewrites_non_ascii_escapes() {
        let (r, out) = run(br#"{"k\u00e9":"\u007f\ud83d\ude00"}"#);
        assert_eq!(r, V2Message::Rewritten);
        assert_eq!(out, "{\"ké\":\"\u{7f}😀\"}".as_bytes());
    }

    #[test]
    fn declines_every_non_canonical_form() {
        for s in [
            &br#"{"b":1,"a":2}"#[..],
            br#"{"a":1,"a":2}"#,
            br#"{"a": 1}"#,
            br#" {"a":1}"#,
            br#"{"a":1} "#,
            br#"[1.0]"#,
            br#"[-0]"#,
            br#"[1E-05]"#,
            br#"[1e-5]"#,
            br#"[0.10]"#,
            br#"[1e400]"#,
            br#"["\/"]"#,
            br#"["\u0041"]"#,
            br#"["\u00E9"]"#,
            br#"["\u000a"]"#,
            br#"["\ud800"]"#,
            br#"["\udc00"]"#,
            "[\"é\"]".as_bytes(),
            b"[\"\x7f\"]",
            b"[\"\x01\"]",
            br#"{"a#":1,"a\"":2}"#,
            br#"[1,]"#,
            br#"{"a":1"#,
        ] {
            assert_eq!(
                run(s).0,
                V2Message::NotCanonical,
                "accepted {}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn escaped_keys_compare_by_code_point() {
        // '"' (U+0022) sorts before '#' (U+0023), though its escape starts with '\' (U+005C).
        assert_eq!(run(br#"{"a\"":1,"a#":2}"#).0, V2Message::SameAsBody);
        assert_eq!(run(br#"{"a#":1,"a\"":2}"#).0, V2Message::NotCanonical);
        assert_eq!(run(br#"{"a\"":1,"a\"":2}"#).0, V2Message::NotCanonical);
        assert_eq!(run(br#"{"a!":1,"a\"":2}"#).0, V2Message::SameAsBody);
        assert_eq!(
            run(br#"{"\uff5e":1,"\ud83d\ude00":2}"#).0,
            V2Message::Rewritten
        );
        assert_eq!(
            run(br#"{"\ud83d\ude00":1,"\uff5e":2}"#).0,
            V2Message::NotCanonical
        );
    }
}

//! The writer: CPython `json.dumps(shorten_floats(v), sort_keys=True, separators=(",", ":"))`.

use super::Escaping;
use super::value::{Number, Value};

const HEX: &[u8; 16] = b"0123456789abcdef";

// Here, not beside `Value`, so that the value model does not depend on its writer.
impl std::fmt::Display for Value {
    /// Displays the ASCII wire form (`ensure_ascii=True`), as Didit would send it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::new();
        write_value(self, Escaping::Ascii, &mut out);
        // The ASCII form is pure ASCII, hence valid UTF-8.
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Appends the canonical serialisation of `v` to `out`.
pub fn write_value(v: &Value, esc: Escaping, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(Number::Int(s)) => out.extend_from_slice(s.as_bytes()),
        Value::Number(Number::Float(f)) => write_shortened_float(*f, out),
        Value::String(s) => write_string(s, esc, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, esc, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, esc, out);
                out.push(b':');
                write_value(item, esc, out);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string as `json.dumps` writes it: `ensure_ascii=True` escapes everything outside
/// U+0020..U+007E as lowercase `\uxxxx` (surrogate pairs above the BMP); `ensure_ascii=False`
/// escapes only `"`, `\` and the C0 controls.
pub fn write_string(s: &str, esc: Escaping, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    match esc {
        Escaping::Unicode => {
            for (i, &b) in bytes.iter().enumerate() {
                if b >= 0x20 && b != b'"' && b != b'\\' {
                    continue;
                }
                out.extend_from_slice(&bytes[run..i]);
                write_short_escape(b as u32, out);
                run = i + 1;
            }
            out.extend_from_slice(&bytes[run..]);
        }
        Escaping::Ascii => {
            for (i, c) in s.char_indices() {
                let cp = c as u32;
                if (0x20..0x7f).contains(&cp) && c != '"' && c != '\\' {
                    continue;
                }
                out.extend_from_slice(&bytes[run..i]);
                if cp < 0x80 {
                    write_short_escape(cp, out);
                } else if cp < 0x10000 {
                    write_u_escape(cp, out);
                } else {
                    let v = cp - 0x10000;
                    write_u_escape(0xD800 | (v >> 10), out);
                    write_u_escape(0xDC00 | (v & 0x3FF), out);
                }
                run = i + c.len_utf8();
            }
            out.extend_from_slice(&bytes[run..]);
        }
    }
    out.push(b'"');
}

fn write_short_escape(cp: u32, out: &mut Vec<u8>) {
    match cp {
        0x22 => out.extend_from_slice(b"\\\""),
        0x5C => out.extend_from_slice(b"\\\\"),
        0x0A => out.extend_from_slice(b"\\n"),
        0x0D => out.extend_from_slice(b"\\r"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0C => out.extend_from_slice(b"\\f"),
        _ => write_u_escape(cp, out),
    }
}

pub(crate) fn write_u_escape(cp: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(cp >> 12) as usize & 15],
        HEX[(cp >> 8) as usize & 15],
        HEX[(cp >> 4) as usize & 15],
        HEX[cp as usize & 15],
    ]);
}

/// Didit's `shorten_floats` followed by `json.dumps`: a whole-number double becomes its exact integer,
/// anything else is written as Python's `float.__repr__` (`NaN`/`Infinity` as `json.dumps` spells them).
pub fn write_shortened_float(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() && f.fract() == 0.0 {
        write_exact_integer(f, out);
    } else {
        write_python_float_repr(f, out);
    }
}

/// `float.__repr__` as `json.dumps` uses it: shortest round-trip digits, fixed notation when the
/// decimal exponent is in `-4 ..= 15`, otherwise `d.ddde±XX`.
pub fn write_python_float_repr(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    // Ryu gives the shortest round-trip digits and, on an exact tie between two shortest
    // candidates, the even one, as CPython's dtoa does (Rust's `{:e}` rounds such ties up:
    // 29941060809111.5625 must print as ...111.562). Its layout differs from Python's, so only
    // the digits and the decimal exponent are taken from it.
    let mut ryu_buf = ryu::Buffer::new();
    let text = ryu_buf.format_finite(f).as_bytes();
    let (neg, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = text
        .iter()
        .position(|&b| b == b'e' || b == b'E')
        .unwrap_or(text.len());
    let exp: i32 = std::str::from_utf8(&text[(e_at + 1).min(text.len())..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mant = &text[..e_at];
    let int_len = mant.iter().position(|&b| b == b'.').unwrap_or(mant.len()) as i32;
    let mut digits = [0u8; 32];
    let mut nd = 0;
    // value = 0.d1d2... * 10^decpt; leading zeros move the point, trailing zeros are dropped.
    let mut decpt = int_len + exp;
    for &b in mant.iter().filter(|b| b.is_ascii_digit()) {
        if nd == 0 && b == b'0' {
            decpt -= 1;
            continue;
        }
        if nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    let digits = &digits[..nd];
    if neg {
        out.push(b'-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        let e = decpt - 1;
        out.push(if e < 0 { b'-' } else { b'+' });
        let ea = e.unsigned_abs();
        if ea < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(ea.to_string().as_bytes());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
        out.extend_from_slice(digits);
    } else {
        let d = decpt as usize;
        if d >= nd {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', d - nd));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..d]);
            out.push(b'.');
            out.extend_from_slice(&digits[d..]);
        }
    }
}

/// The exact decimal value of a whole-number double (`int(f)` in Python), which for large magnitudes
/// has more digits than any primitive integer holds: `1.1812083616449413e+38` is
/// `118120836164494129544568202238038638592`.
pub fn write_exact_integer(f: f64, out: &mut Vec<u8>) {
    debug_assert!(f.is_finite() && f.fract() == 0.0);
    if f.abs() < 9.2e18 {
        // -0.0 casts to 0, as Python's int(-0.0) is 0.
        out.extend_from_slice((f as i64).to_string().as_bytes());
        return;
    }
    let bits = f.to_bits();
    let neg = bits >> 63 == 1;
    let exp_bits = ((bits >> 52) & 0x7FF) as i32;
    let mantissa = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    // |f| = mantissa * 2^shift, and shift > 0 here because |f| >= 2^63.
    let shift = (exp_bits - 1075) as u32;
    // Base-1e9 limbs, least significant first.
    let mut limbs: Vec<u64> = vec![mantissa % 1_000_000_000, mantissa / 1_000_000_000];
    let mut remaining = shift;
    while remaining > 0 {
        let step = remaining.min(30);
        remaining -= step;
        let mut carry = 0u64;
        for limb in limbs.iter_mut() {
            let v = (*limb << step) + carry;
            *limb = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    if neg {
        out.push(b'-');
    }
    let mut iter = limbs.iter().rev();
    if let Some(top) = iter.next() {
        out.extend_from_slice(top.to_string().as_bytes());
    }
    for limb in iter {
        out.extend_from_slice(format!("{limb:09}").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut out = Vec::new();
        write_shortened_float(f, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    // The tie case needs its exact binary value written out in full.
    #[allow(clippy::excessive_precision)]
    fn python_repr_layout() {
        // Expected strings are CPython 3.11's `json.dumps(shorten_floats(x))`.
        let cases: &[(f64, &str)] = &[
            (1e-05, "1e-05"),
            (1.5e-07, "1.5e-07"),
            (5e-324, "5e-324"),
            (0.0001, "0.0001"),
            (95.4, "95.4"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.5, "-0.5"),
            // An exact tie between two shortest candidates goes to the even digit.
            (29941060809111.5625, "29941060809111.562"),
            (0.5e-4, "5e-05"),
            (1.25e-5, "1.25e-05"),
            (123456789012345.6, "123456789012345.6"),
            (100.0, "100"),
            (-0.0, "0"),
            (1e16, "10000000000000000"),
            (
                1.1812083616449413e38,
                "118120836164494129544568202238038638592",
            ),
            (-9.3e18, "-9300000000000000000"),
            (
                f64::MAX,
                "179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368",
            ),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ];
        for &(f, want) in cases {
            assert_eq!(repr(f), want, "for {f:e}");
        }
    }

    #[test]
    fn repr_of_whole_floats_keeps_python_spelling() {
        let mut out = Vec::new();
        write_python_float_repr(100.0, &mut out);
        assert_eq!(out, b"100.0");
        out.clear();
        write_python_float_repr(1e16, &mut out);
        assert_eq!(out, b"1e+16");
        out.clear();
        write_python_float_repr(1e22, &mut out);
        assert_eq!(out, b"1e+22");
    }

    #[test]
    fn string_escaping_both_modes() {
        let s = "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{7f}é😀\u{2028}/";
        let mut out = Vec::new();
        write_string(s, Escaping::Ascii, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#""a\"\\\n\r\t\b\f\u0001\u007f\u00e9\ud83d\ude00\u2028/""#
        );
        out.clear();
        write_string(s, Escaping::Unicode, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"a\\\"\\\\\\n\\r\\t\\b\\f\\u0001\u{7f}é😀\u{2028}/\""
        );
    }
}

//! The Python-compatible JSON value model and its parser (`json.loads` semantics).
use super::CanonError;

/// Deepest nesting accepted anywhere in this crate (canonicaliser, fast path, envelope parse).
/// CPython's `json.loads` fails somewhere below 1,000 levels (its recursion limit) and no webhook
/// nests beyond a dozen; 128 (serde_json's own limit) keeps recursion, and so stack use, small
/// enough for coroutine stacks, whatever the backend.
pub const MAX_DEPTH: usize = 128;

/// CPython 3.11's default `sys.get_int_max_str_digits()`: `json.loads` rejects longer integers.
pub const MAX_INT_DIGITS: usize = 4300;

/// A JSON number as Python's `json.loads` sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Number {
    /// An integer token: arbitrary precision, kept as its canonical decimal text (`-0` becomes `0`).
    Int(Box<str>),
    /// A token with `.`, `e` or `E`, or `NaN`/`Infinity`: an IEEE-754 double.
    Float(f64),
}

/// A JSON value with Python semantics: big integers, doubles, and objects whose keys are kept sorted
/// by code point with the last duplicate winning (what `sort_keys=True` over a `dict` produces).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

/// An object whose entries are sorted by key (code point order, which is UTF-8 byte order) and unique.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// Builds a map from entries in any order; for a repeated key the last one wins, as in a Python `dict`.
    pub fn from_entries(mut entries: Vec<(String, Value)>) -> Self {
        // A stable sort keeps duplicates in input order, so the last of each run is the winner.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Map { entries: out }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Inserts or replaces `key`, keeping the order invariant.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.entries.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => self.entries.insert(i, (key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self
            .entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()?;
        Some(self.entries.remove(i).1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self
            .entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()?;
        Some(&mut self.entries[i].1)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Value {
    /// Parses `input` exactly as CPython's `json.loads(bytes)` does for UTF-8 input.
    ///
    /// Deliberate differences, none of which a Didit delivery can carry: lone UTF-16 surrogates
    /// (`"\ud800"`) are rejected wherever they stand, even in a value that a later duplicate key
    /// replaces, because a Rust `String` cannot hold them and Didit itself cannot encode them for
    /// `X-Signature-V2` (the same goes for UTF-8-encoded surrogates, which `json.loads(bytes)` admits
    /// through `surrogatepass`); UTF-16/32 input and nesting deeper than [`MAX_DEPTH`] are rejected. A leading
    /// UTF-8 BOM is skipped, as `json.loads(bytes)` does.
    pub fn parse(input: &[u8]) -> Result<Value, CanonError> {
        let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        let text = std::str::from_utf8(input).map_err(|_| CanonError::InvalidUtf8)?;
        let mut p = Parser {
            s: text.as_bytes(),
            pos: 0,
            depth: 0,
        };
        p.skip_ws();
        let v = p.value()?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(CanonError::Syntax { offset: p.pos });
        }
        Ok(v)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// An integer value from an `i64`.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i.to_string().into_boxed_str()))
    }

    /// The value as an `i64` when it is an integer token that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(Number::Int(s)) => s.parse().ok(),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Number(Number::Float(f))
    }
}

struct Parser<'s> {
    s: &'s [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self) -> CanonError {
        CanonError::Syntax { offset: self.pos }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, lit: &[u8]) -> bool {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, CanonError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'n') if self.eat_literal(b"null") => Ok(Value::Null),
            Some(b't') if self.eat_literal(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat_literal(b"false") => Ok(Value::Bool(false)),
            Some(b'N') if self.eat_literal(b"NaN") => Ok(Value::Number(Number::Float(f64::NAN))),
            Some(b'I') if self.eat_literal(b"Infinity") => {
                Ok(Value::Number(Number::Float(f64::INFINITY)))
            }
            Some(b'-') if self.s[self.pos..].starts_with(b"-Infinity") => {
                self.pos += 9;
                Ok(Value::Number(Number::Float(f64::NEG_INFINITY)))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err()),
        }
    }

    fn enter(&mut self) -> Result<(), CanonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CanonError::TooDeep);
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, CanonError> {
        self.enter()?;
        self.pos += 1;
        let mut entries = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(Map::default()));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err());
            }
            let k = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err());
            }
            self.pos += 1;
            self.skip_ws();
            let v = self.value()?;
            entries.push((k, v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err()),
            }
        }
        self.depth -= 1;
        Ok(Value::Object(Map::from_entries(entries)))
    }

    fn array(&mut self) -> Result<Value, CanonError> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err()),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn hex4(&mut self) -> Result<u32, CanonError> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err())?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char).to_digit(16).ok_or_else(|| self.err())?;
            v = v * 16 + d;
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, CanonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            // Copy the run up to the next quote, backslash or control character.
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input was validated as UTF-8 and the run stops only at ASCII bytes.
            out.push_str(std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| self.err())?);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err())?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                // Python joins a high surrogate with an immediately following low one.
                                if self.s[self.pos..].starts_with(b"\\u") {
                                    let save = self.pos;
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if (0xDC00..0xE000).contains(&lo) {
                                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                    } else {
                                        self.pos = save;
                                        return Err(CanonError::LoneSurrogate);
                                    }
                                } else {
                                    return Err(CanonError::LoneSurrogate);
                                }
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(CanonError::LoneSurrogate);
                            } else {
                                hi
                            };
                            out.push(char::from_u32(cp).ok_or(CanonError::LoneSurrogate)?);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err());
                        }
                    }
                }
                // A raw control character (strict mode) or the end of input.
                _ => return Err(self.err()),
            }
        }
    }

    fn number(&mut self) -> Result<Value, CanonError> {
        let start = self.pos;
        let neg = self.peek() == Some(b'-');
        if neg {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err()),
        }
        let int_end = self.pos;
        let mut is_float = false;
        // Python's NUMBER_RE takes a fraction or exponent only when digits follow; otherwise the
        // integer ends there and the stray character is a syntax error one level up.
        if self.peek() == Some(b'.') && matches!(self.s.get(self.pos + 1), Some(b'0'..=b'9')) {
            is_float = true;
            self.pos += 1;
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            let mut q = self.pos + 1;
            if let Some(b'+' | b'-') = self.s.get(q) {
                q += 1;
            }
            if matches!(self.s.get(q), Some(b'0'..=b'9')) {
                is_float = true;
                self.pos = q;
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
        }
        // The slice is ASCII digits and signs, hence valid UTF-8.
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| self.err())?;
        if is_float {
            let f: f64 = text.parse().map_err(|_| self.err())?;
            return Ok(Value::Number(Number::Float(f)));
        }
        let digits = int_end - int_start;
        if digits > MAX_INT_DIGITS {
            return Err(CanonError::NumberTooLong { digits });
        }
        let canonical = if text == "-0" { "0" } else { text };
        Ok(Value::Number(Number::Int(canonical.into())))
    }
}

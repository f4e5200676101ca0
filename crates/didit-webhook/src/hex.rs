//! Lowercase hex for 32-byte HMAC-SHA256 tags.

/// An HMAC-SHA256 tag.
pub type Tag = [u8; 32];

/// Parses exactly 64 lowercase hex characters, as Python's `hexdigest()` writes them.
/// Anything else (wrong length, uppercase, spaces) is `None`, decided without computing an HMAC.
pub fn parse_tag(s: &[u8]) -> Option<Tag> {
    if s.len() != 64 {
        return None;
    }
    let mut tag = [0u8; 32];
    // Branch-free over the 64 characters; any invalid one sets the high bit of `bad`.
    let mut bad = 0u8;
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = NIBBLE[pair[0] as usize];
        let lo = NIBBLE[pair[1] as usize];
        bad |= hi | lo;
        tag[i] = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0x80 == 0).then_some(tag)
}

/// Lowercase hex digit values; 0x80 marks every other byte.
const NIBBLE: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// A tag as 64 lowercase hex characters, ready to be a header value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexTag([u8; 64]);

impl HexTag {
    pub fn new(tag: &Tag) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in tag.iter().enumerate() {
            out[2 * i] = HEX[(b >> 4) as usize];
            out[2 * i + 1] = HEX[(b & 15) as usize];
        }
        HexTag(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for HexTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for HexTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let hex = "c8abe0c1a9e1e8325e83b789f4d1c398a3c9a5cd727424b642d4a93036be8977";
        let tag = parse_tag(hex.as_bytes()).expect("valid");
        assert_eq!(HexTag::new(&tag).as_str(), hex);
        assert_eq!(parse_tag(hex.to_uppercase().as_bytes()), None);
        assert_eq!(parse_tag(&hex.as_bytes()[..63]), None);
        assert_eq!(parse_tag(format!("{hex}0").as_bytes()), None);
        assert_eq!(parse_tag(format!("{} ", &hex[..63]).as_bytes()), None);
        assert_eq!(parse_tag(format!("g{}", &hex[1..]).as_bytes()), None);
    }
}

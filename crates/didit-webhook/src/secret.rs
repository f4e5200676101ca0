//! The shared webhook secret, whose `Debug` never shows the key.

use std::fmt;

/// A destination's `secret_shared_key`. The HMAC key is the UTF-8 bytes of the string, verbatim:
/// Didit neither base64-decodes nor trims it, and neither must we.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    pub fn new(secret: impl AsRef<str>) -> Self {
        Secret(secret.as_ref().as_bytes().into())
    }

    /// A secret as stored in a file or variable: one trailing newline (`\n` or `\r\n`) is not part
    /// of it, everything else is. `None` when nothing is left.
    pub fn from_text(text: &str) -> Option<Self> {
        let t = text
            .strip_suffix('\n')
            .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
        (!t.is_empty()).then(|| Secret::new(t))
    }

    /// The HMAC key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([REDACTED; {} bytes])", self.0.len())
    }
}

impl Drop for Secret {
    // Best effort: a copy may remain in backend key schedules, but not in this allocation.
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            *b = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("wh_test_secret_9f2c4b8e1a7d");
        let shown = format!("{s:?}");
        assert!(!shown.contains("9f2c"), "{shown}");
        assert_eq!(shown, "Secret([REDACTED; 27 bytes])");
    }

    #[test]
    fn text_loses_one_newline_only() {
        let key = |t: &str| Secret::from_text(t).map(|s| s.expose().to_vec());
        assert_eq!(key("a-b_c\n"), Some(b"a-b_c".to_vec()));
        assert_eq!(key("a-b_c\r\n"), Some(b"a-b_c".to_vec()));
        assert_eq!(key(" a \n\n"), Some(b" a \n".to_vec()));
        assert_eq!(key("\n"), None);
        assert_eq!(key(""), None);
    }
}

//! The shared webhook secret, whose `Debug` never shows the key.

use std::fmt;

/// A destination's `secret_shared_key`. The HMAC key is the UTF-8 bytes of the string, verbatim:
/// Didit neither base64-decodes nor trims it, and neither must we. Never empty: anyone can sign
/// with an empty key.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

/// Why there is no usable secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// An empty key: every sender could sign with it.
    #[error(
        "the webhook secret is empty: use the destination's secret_shared_key from Didit's console"
    )]
    Empty,
    /// The variable that should hold the secret is not set.
    #[error(
        "{0} is not set: export it with the destination's secret_shared_key from Didit's console"
    )]
    Unset(String),
    /// The variable that should hold the secret is set but empty (or only a newline).
    #[error("{0} is empty: set it to the destination's secret_shared_key from Didit's console")]
    EmptyVariable(String),
}

impl Secret {
    /// The key, verbatim. Refuses an empty one.
    pub fn new(secret: impl AsRef<str>) -> Result<Self, SecretError> {
        let s = secret.as_ref();
        if s.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret(s.as_bytes().into()))
    }

    /// A secret as stored in a file or variable: one trailing newline (`\n` or `\r\n`) is not part
    /// of it, everything else is. `None` when nothing is left.
    pub fn from_text(text: &str) -> Option<Self> {
        let t = text
            .strip_suffix('\n')
            .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
        Secret::new(t).ok()
    }

    /// The secret held by the environment variable `name`, whose value the caller read (the core
    /// reads no environment): `Secret::from_var("DIDIT_WEBHOOK_SECRET", std::env::var(..).ok())`.
    /// The error names the variable, so a service that refuses to start says what to set.
    pub fn from_var(name: &str, value: Option<String>) -> Result<Self, SecretError> {
        match value {
            None => Err(SecretError::Unset(name.to_owned())),
            Some(v) => {
                Secret::from_text(&v).ok_or_else(|| SecretError::EmptyVariable(name.to_owned()))
            }
        }
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
        let s = Secret::new("wh_test_secret_9f2c4b8e1a7d").expect("not empty");
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

    #[test]
    fn an_empty_key_is_refused_and_a_variable_is_named() {
        assert_eq!(Secret::new("").err(), Some(SecretError::Empty));
        let unset = Secret::from_var("DIDIT_WEBHOOK_SECRET", None).err();
        assert_eq!(
            unset,
            Some(SecretError::Unset("DIDIT_WEBHOOK_SECRET".into()))
        );
        let empty = Secret::from_var("X_SECRET", Some("\n".into()))
            .err()
            .map(|e| e.to_string());
        assert!(empty.is_some_and(|m| m.starts_with("X_SECRET is empty")));
        let ok = Secret::from_var("X_SECRET", Some("k\n".into())).map(|s| s.expose().to_vec());
        assert_eq!(ok, Ok(b"k".to_vec()));
    }
}

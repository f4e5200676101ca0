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
    /// The file that should hold the secret cannot be read.
    #[error("cannot read the secret file {path}: {reason}")]
    File { path: String, reason: String },
    /// The file that should hold the secret is empty (or only a newline).
    #[error("the secret file {0} is empty: write the destination's secret_shared_key into it")]
    EmptyFile(String),
}

/// The variable a tool reads its secret from when no secret file is named.
pub const SECRET_VAR: &str = "DIDIT_WEBHOOK_SECRET";

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

    /// The one rule every tool here loads its secret by: the contents of `file` when one is
    /// named, else the value of [`SECRET_VAR`]; one trailing newline goes; never empty; an error
    /// that says what to set. The caller does the reading (this crate does no I/O):
    /// `Secret::load(path, |p| std::fs::read_to_string(p), |v| std::env::var(v).ok())`.
    pub fn load(
        file: Option<&std::path::Path>,
        read_file: impl FnOnce(&std::path::Path) -> std::io::Result<String>,
        read_var: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Self, SecretError> {
        let Some(path) = file else {
            return Secret::from_var(SECRET_VAR, read_var(SECRET_VAR));
        };
        let shown = path.display().to_string();
        let text = read_file(path).map_err(|e| SecretError::File {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Secret::from_text(&text).ok_or(SecretError::EmptyFile(shown))
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

    #[test]
    fn a_secret_file_is_named_and_the_variable_is_the_fallback() {
        let path = std::path::Path::new("/run/secrets/didit");
        let file = |text: std::io::Result<String>| {
            Secret::load(Some(path), |_| text, |_| panic!("the variable is not read"))
        };
        assert_eq!(
            file(Ok(" k \n".into())).map(|s| s.expose().to_vec()),
            Ok(b" k ".to_vec())
        );
        assert_eq!(
            file(Ok("\r\n".into())).err(),
            Some(SecretError::EmptyFile("/run/secrets/didit".into()))
        );
        let missing = file(Err(std::io::ErrorKind::NotFound.into()))
            .err()
            .map(|e| e.to_string());
        assert!(
            missing
                .is_some_and(|m| m.starts_with("cannot read the secret file /run/secrets/didit")),
        );
        let var = |value: Option<&str>| {
            Secret::load(
                None,
                |_| panic!("no file is read"),
                |name| {
                    assert_eq!(name, SECRET_VAR);
                    value.map(str::to_owned)
                },
            )
        };
        assert_eq!(var(None).err(), Some(SecretError::Unset(SECRET_VAR.into())));
        assert_eq!(
            var(Some("k")).map(|s| s.expose().to_vec()),
            Ok(b"k".to_vec())
        );
    }
}

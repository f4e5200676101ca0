//! The core's errors that belong to no one module: the ground floor every module may import.

/// A backend or policy name that this build does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of: {}", .known.join(", "))]
pub struct UnknownBackend {
    what: &'static str,
    given: String,
    known: Vec<&'static str>,
}

impl UnknownBackend {
    pub(crate) fn new(what: &'static str, given: &str, known: Vec<&'static str>) -> Self {
        UnknownBackend {
            what,
            given: given.to_owned(),
            known,
        }
    }
}

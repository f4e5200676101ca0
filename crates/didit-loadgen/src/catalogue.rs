//! The payload catalogue: every payload kind's variants, encoded once into the [`Templates`] the
//! generator renders from.
//!
//! The payloads are data, in `payloads/<kind>.json` (compiled in, so the binary needs no files
//! beside it but the console sample): each file is a JSON array of variants written as Didit
//! sends them, with markers where a value is not fixed:
//!
//! - `{{session_id}}`, `{{event_id}}`, `{{vendor_data}}`, `{{timestamp}}`, `{{created_at}}`, as a
//!   whole string or inside one (`"txn-{{event_id}}"`): the per-delivery values, filled by
//!   [`crate::template`] for every delivery.
//! - `"decision": "{{decision}}"`: the sample's decision, cut to what a typical KYC flow fills
//!   (its scalars, `id_verifications`, `liveness_checks`, `face_matches`), with the payload's
//!   `status` and the session's ids; the variant is repeated once per name in [`NAMES`].
//!
//! Those parts are code because they are derived from the console sample, which lives in the
//! shared fixtures and is not ours to copy: a template holds where they go, not what they are.
//! For the same reason `full_sample` and `aml_heavy` are `sample.json` laid over the sample (20 KB,
//! or with its AML hits repeated to 200 KB, as `didit-fixtures` sizes it): objects are merged key
//! by key, other values replaced.

use didit_fixtures::{PayloadSize, payload};
use didit_webhook::canon::{CanonError, Map, Value};

use crate::labels::PayloadKind;
use crate::template::{Slot, Template, TemplateError};

/// Why the payload templates could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error(transparent)]
    Fixture(#[from] didit_fixtures::FixtureError),
    #[error("payload file {file}: {source}")]
    Parse {
        file: &'static str,
        source: CanonError,
    },
    #[error("payload file {file}: not an array of JSON objects")]
    Shape { file: &'static str },
    #[error("payload file {file}: unknown marker `{marker}`")]
    UnknownMarker { file: &'static str, marker: String },
    #[error("payload kind {kind}: {source}")]
    Template {
        kind: &'static str,
        source: TemplateError,
    },
}

/// Names on identity documents, with accents, CJK, Cyrillic and emoji: their `\uXXXX` wire
/// escapes make X-Signature and V2 differ.
const NAMES: [(&str, &str); 6] = [
    ("John", "Doe Smith"),
    ("José María", "Núñez Peña"),
    ("Zoë", "Ångström-Øster"),
    ("太郎", "山田"),
    ("Ana 🌟", "López"),
    ("Фёдор", "Достоевский"),
];

/// The markers of per-delivery values, as template files write them.
const SLOTS: [(&str, Slot); 5] = [
    ("{{session_id}}", Slot::SessionId),
    ("{{event_id}}", Slot::EventId),
    ("{{vendor_data}}", Slot::VendorData),
    ("{{timestamp}}", Slot::Timestamp),
    ("{{created_at}}", Slot::CreatedAt),
];

/// The marker of the sample-derived decision.
const DECISION: &str = "{{decision}}";

/// One kind's template file, and the sample it is laid over, if any.
struct Source {
    file: &'static str,
    text: &'static str,
    base: Option<PayloadSize>,
}

macro_rules! source {
    ($name:literal) => {
        source!($name, None)
    };
    ($name:literal, $base:expr) => {
        Source {
            file: concat!("payloads/", $name, ".json"),
            text: include_str!(concat!("../payloads/", $name, ".json")),
            base: $base,
        }
    };
}

fn source(kind: PayloadKind) -> Source {
    match kind {
        PayloadKind::NotStarted => source!("not_started"),
        PayloadKind::InProgress => source!("in_progress"),
        PayloadKind::Approved => source!("approved"),
        PayloadKind::Declined => source!("declined"),
        PayloadKind::InReview => source!("in_review"),
        PayloadKind::Abandoned => source!("abandoned"),
        PayloadKind::Resubmitted => source!("resubmitted"),
        PayloadKind::DataUpdated => source!("data_updated"),
        PayloadKind::UserEvent => source!("user_event"),
        PayloadKind::BusinessEvent => source!("business_event"),
        PayloadKind::TransactionEvent => source!("transaction_event"),
        PayloadKind::FullSample => source!("sample", Some(PayloadSize::Sample20K)),
        PayloadKind::AmlHeavy => source!("sample", Some(PayloadSize::Aml200K)),
    }
}

fn marker(slot: Slot) -> Value {
    Value::from(slot.marker())
}

/// The sample's decision as a typical KYC flow fills it, for a payload of `status`, with the
/// first identity document's holder called `names`.
fn decision(sample: &Value, status: &str, names: (&str, &str)) -> Value {
    let src = sample
        .as_object()
        .and_then(|m| m.get("decision"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut d = Map::default();
    for (k, v) in src.iter() {
        let keep = !matches!(v, Value::Array(_))
            || matches!(k, "id_verifications" | "liveness_checks" | "face_matches");
        if keep {
            d.insert(k, v.clone());
        }
    }
    d.insert("session_id", marker(Slot::SessionId));
    d.insert(
        "session_url",
        Value::from(format!(
            "https://verify.didit.me/session/{}",
            Slot::SessionId.marker()
        )),
    );
    d.insert("status", Value::from(status));
    d.insert("vendor_data", marker(Slot::VendorData));
    if let Some(Value::Array(ids)) = d.get_mut("id_verifications")
        && let Some(first) = ids.first_mut().and_then(Value::as_object_mut)
    {
        first.insert("first_name", Value::from(names.0));
        first.insert("last_name", Value::from(names.1));
        first.insert("full_name", Value::from(format!("{} {}", names.0, names.1)));
        first.insert("status", Value::from(status));
    }
    Value::Object(d)
}

/// Replaces every slot marker in the strings of `v` by the template's own marker.
fn fill_slots(v: &mut Value, file: &'static str) -> Result<(), CatalogueError> {
    match v {
        Value::String(s) if s.contains("{{") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(at) = rest.find("{{") {
                out.push_str(&rest[..at]);
                let tail = &rest[at..];
                let Some((name, slot)) = SLOTS.iter().find(|(name, _)| tail.starts_with(name))
                else {
                    let end = tail.find("}}").map_or(tail.len(), |e| e + 2);
                    return Err(CatalogueError::UnknownMarker {
                        file,
                        marker: tail[..end].to_owned(),
                    });
                };
                out.push_str(&slot.marker());
                rest = &tail[name.len()..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => {
            for item in items {
                fill_slots(item, file)?;
            }
        }
        Value::Object(m) => fill_slots_in(m, file)?,
        _ => {}
    }
    Ok(())
}

fn fill_slots_in(m: &mut Map, file: &'static str) -> Result<(), CatalogueError> {
    let keys: Vec<String> = m.iter().map(|(k, _)| k.to_owned()).collect();
    for k in keys {
        if let Some(item) = m.get_mut(&k) {
            fill_slots(item, file)?;
        }
    }
    Ok(())
}

/// Lays `over` on `base`: objects merged key by key, anything else replaced.
fn overlay(base: &mut Map, over: &Map) {
    for (k, v) in over.iter() {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => overlay(b, o),
            _ => base.insert(k, v.clone()),
        }
    }
}

/// The payload values (with slot markers) of one kind, in all its variants.
fn payloads_of(kind: PayloadKind, sample: &Value) -> Result<Vec<Value>, CatalogueError> {
    let Source { file, text, base } = source(kind);
    let parsed =
        Value::parse(text.as_bytes()).map_err(|source| CatalogueError::Parse { file, source })?;
    let Value::Array(variants) = parsed else {
        return Err(CatalogueError::Shape { file });
    };
    let mut out = Vec::new();
    for variant in variants {
        let Value::Object(mut m) = variant else {
            return Err(CatalogueError::Shape { file });
        };
        let with_decision = m.get("decision").and_then(Value::as_str) == Some(DECISION);
        if with_decision {
            m.remove("decision");
        }
        fill_slots_in(&mut m, file)?;
        if let Some(size) = base {
            let mut b = match payload(size, sample, 0, 0) {
                Value::Object(b) => b,
                _ => Map::default(),
            };
            overlay(&mut b, &m);
            m = b;
        }
        if with_decision {
            let status = m
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            for names in NAMES {
                let mut p = m.clone();
                p.insert("decision", decision(sample, &status, names));
                out.push(Value::Object(p));
            }
        } else {
            out.push(Value::Object(m));
        }
    }
    Ok(out)
}

/// Templates of every kind, immutable and shared by all connections.
#[derive(Debug)]
pub struct Templates {
    templates: Vec<Template>,
    /// Template indices per kind (index = position in `PayloadKind::ALL`).
    by_kind: Vec<Vec<usize>>,
    kinds: Vec<PayloadKind>,
}

impl Templates {
    /// Builds every kind from the console sample.
    pub fn from_sample(sample: &Value) -> Result<Templates, CatalogueError> {
        let mut templates = Vec::new();
        let mut by_kind = Vec::new();
        let mut kinds = Vec::new();
        for kind in PayloadKind::ALL {
            let mut idx = Vec::new();
            for p in payloads_of(kind, sample)? {
                let t = Template::new(&p).map_err(|source| CatalogueError::Template {
                    kind: kind.key(),
                    source,
                })?;
                idx.push(templates.len());
                templates.push(t);
                kinds.push(kind);
            }
            by_kind.push(idx);
        }
        Ok(Templates {
            templates,
            by_kind,
            kinds,
        })
    }

    /// Loads the sample from the shared fixtures and builds the templates.
    pub fn load() -> Result<Templates, CatalogueError> {
        Templates::from_sample(&didit_fixtures::sample_value()?)
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    pub fn get(&self, idx: usize) -> &Template {
        &self.templates[idx]
    }

    pub fn kind_of(&self, idx: usize) -> PayloadKind {
        self.kinds[idx]
    }

    pub fn of_kind(&self, kind: PayloadKind) -> &[usize] {
        let i = PayloadKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default();
        &self.by_kind[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_file_that_builds_even_without_a_sample() {
        let t = Templates::from_sample(&Value::Object(Map::default())).expect("templates");
        for kind in PayloadKind::ALL {
            assert!(!t.of_kind(kind).is_empty(), "{}", kind.key());
        }
        assert_eq!(t.of_kind(PayloadKind::Approved).len(), NAMES.len());
    }

    #[test]
    fn markers_become_slots_and_unknown_ones_are_refused() {
        let mut v = Value::from("txn-{{event_id}}-{{vendor_data}}");
        fill_slots(&mut v, "t.json").expect("known markers");
        let want = format!(
            "txn-{}-{}",
            Slot::EventId.marker(),
            Slot::VendorData.marker()
        );
        assert_eq!(v.as_str(), Some(want.as_str()));
        let mut v = Value::Array(vec![Value::from("a {{decision}} b")]);
        match fill_slots(&mut v, "t.json") {
            Err(CatalogueError::UnknownMarker { marker, .. }) => assert_eq!(marker, "{{decision}}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_sample_overlay_merges_objects_and_replaces_the_rest() {
        let mut base = match Value::parse(br#"{"a":1,"d":{"x":1,"y":2}}"#) {
            Ok(Value::Object(m)) => m,
            other => panic!("{other:?}"),
        };
        let over = match Value::parse(br#"{"a":{"n":1},"d":{"y":3}}"#) {
            Ok(Value::Object(m)) => m,
            other => panic!("{other:?}"),
        };
        overlay(&mut base, &over);
        let want = Value::parse(br#"{"a":{"n":1},"d":{"x":1,"y":3}}"#).expect("json");
        assert_eq!(Value::Object(base), want);
    }
}

//! The payload catalogue: every payload kind's variants, with slot markers for the per-delivery
//! values, encoded once into the [`Templates`] the generator renders from.

use didit_fixtures::{PayloadSize, payload};
use didit_webhook::canon::{Map, Value};

use crate::labels::PayloadKind;
use crate::template::{Slot, Template, TemplateError};

/// Why the payload templates could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error(transparent)]
    Fixture(#[from] didit_fixtures::FixtureError),
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

fn marker(slot: Slot) -> Value {
    Value::from(slot.marker())
}

fn set(m: &mut Map, k: &str, v: impl Into<Value>) {
    m.insert(k, v.into());
}

/// The current v3 envelope, with slot markers for the per-delivery values.
fn session_envelope(m: &mut Map, status: &str, webhook_type: &str) {
    set(m, "application_id", "8d6c1b0e-5a4f-4e3d-9c2b-1a0f9e8d7c6b");
    m.insert("created_at", marker(Slot::CreatedAt));
    set(m, "environment", "live");
    m.insert("event_id", marker(Slot::EventId));
    m.insert("session_id", marker(Slot::SessionId));
    set(m, "status", status);
    m.insert("timestamp", marker(Slot::Timestamp));
    m.insert("vendor_data", marker(Slot::VendorData));
    set(m, "webhook_type", webhook_type);
    set(m, "workflow_id", "f0e1d2c3-b4a5-6789-0123-456789abcdef");
    m.insert("workflow_version", Value::int(3));
}

fn decision(sample: &Value, status: &str, names: (&str, &str), full: bool) -> Value {
    let src = sample
        .as_object()
        .and_then(|m| m.get("decision"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut d = Map::default();
    for (k, v) in src.iter() {
        // Scalars, plus the arrays a typical KYC flow fills; `full` keeps everything.
        let keep = full
            || !matches!(v, Value::Array(_))
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
    set(&mut d, "status", status);
    d.insert("vendor_data", marker(Slot::VendorData));
    if let Some(Value::Array(ids)) = d.get_mut("id_verifications")
        && let Some(first) = ids.first_mut().and_then(Value::as_object_mut)
    {
        set(first, "first_name", names.0);
        set(first, "last_name", names.1);
        set(first, "full_name", format!("{} {}", names.0, names.1));
        set(first, "status", status);
    }
    Value::Object(d)
}

fn entity(webhook_type: &str, status: &str, extra: &[(&str, Value)]) -> Value {
    let mut m = Map::default();
    set(
        &mut m,
        "application_id",
        "8d6c1b0e-5a4f-4e3d-9c2b-1a0f9e8d7c6b",
    );
    m.insert("created_at", marker(Slot::CreatedAt));
    set(&mut m, "environment", "live");
    m.insert("event_id", marker(Slot::EventId));
    set(&mut m, "status", status);
    m.insert("timestamp", marker(Slot::Timestamp));
    m.insert("vendor_data", marker(Slot::VendorData));
    set(&mut m, "webhook_type", webhook_type);
    for (k, v) in extra {
        m.insert(*k, v.clone());
    }
    Value::Object(m)
}

fn obj(entries: &[(&str, Value)]) -> Value {
    Value::Object(Map::from_entries(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    ))
}

/// The payload values (with slot markers) of one kind, in several variants.
fn payloads_of(kind: PayloadKind, sample: &Value) -> Vec<Value> {
    let session = |status: &str, webhook_type: &str, extra: Option<(&str, Value)>| {
        let mut m = Map::default();
        session_envelope(&mut m, status, webhook_type);
        if let Some((k, v)) = extra {
            m.insert(k, v);
        }
        Value::Object(m)
    };
    let with_decision = |status: &str, webhook_type: &str| {
        NAMES
            .iter()
            .map(|n| {
                session(
                    status,
                    webhook_type,
                    Some(("decision", decision(sample, status, *n, false))),
                )
            })
            .collect::<Vec<_>>()
    };
    match kind {
        PayloadKind::NotStarted => vec![session("Not Started", "status.updated", None)],
        PayloadKind::InProgress => vec![session("In Progress", "status.updated", None)],
        PayloadKind::Approved => with_decision("Approved", "status.updated"),
        PayloadKind::Declined => with_decision("Declined", "status.updated"),
        PayloadKind::InReview => with_decision("In Review", "status.updated"),
        PayloadKind::Abandoned => with_decision("Abandoned", "status.updated"),
        PayloadKind::DataUpdated => {
            let mut v = with_decision("In Review", "data.updated");
            for p in &mut v {
                if let Some(m) = p.as_object_mut() {
                    set(m, "trigger", "review_updated");
                }
            }
            v
        }
        PayloadKind::Resubmitted => vec![session(
            "Resubmitted",
            "status.updated",
            Some((
                "resubmit_info",
                obj(&[
                    (
                        "nodes_to_resubmit",
                        Value::Array(vec![Value::from("id_verification_1")]),
                    ),
                    (
                        "reasons",
                        obj(&[(
                            "id_verification_1",
                            Value::from("La foto del documento está borrosa"),
                        )]),
                    ),
                ]),
            )),
        )],
        PayloadKind::UserEvent => vec![
            entity(
                "user.status.updated",
                "FLAGGED",
                &[("previous_status", Value::from("ACTIVE"))],
            ),
            entity(
                "user.data.updated",
                "ACTIVE",
                &[
                    (
                        "changed_fields",
                        Value::Array(vec![Value::from("full_name")]),
                    ),
                    (
                        "changes",
                        obj(&[(
                            "full_name",
                            obj(&[
                                ("current", Value::from("Zoë Ångström")),
                                ("previous", Value::from("Zoe Angstrom")),
                            ]),
                        )]),
                    ),
                ],
            ),
        ],
        PayloadKind::BusinessEvent => vec![
            entity(
                "business.status.updated",
                "ACTIVE",
                &[
                    ("previous_status", Value::from("FLAGGED")),
                    (
                        "vendor_business_id",
                        Value::from(format!("biz-{}", Slot::VendorData.marker())),
                    ),
                ],
            ),
            entity(
                "business.data.updated",
                "ACTIVE",
                &[
                    (
                        "changed_fields",
                        Value::Array(vec![Value::from("legal_name")]),
                    ),
                    (
                        "changes",
                        obj(&[(
                            "legal_name",
                            obj(&[
                                ("current", Value::from("Café Zürich 株式会社 GmbH")),
                                ("previous", Value::from("Cafe Zurich GmbH")),
                            ]),
                        )]),
                    ),
                    (
                        "vendor_business_id",
                        Value::from(format!("biz-{}", Slot::VendorData.marker())),
                    ),
                ],
            ),
        ],
        PayloadKind::TransactionEvent => vec![
            entity(
                "transaction.created",
                "APPROVED",
                &[
                    ("action_required", Value::Null),
                    ("amount", Value::from(1250.5)),
                    ("currency", Value::from("EUR")),
                    ("direction", Value::from("OUTBOUND")),
                    (
                        "transaction_id",
                        Value::from(format!("txn-{}", Slot::EventId.marker())),
                    ),
                ],
            ),
            entity(
                "transaction.status.updated",
                "IN_REVIEW",
                &[
                    (
                        "action_required",
                        obj(&[
                            ("reason", Value::from("Large transfer to a new beneficiary")),
                            ("type", Value::from("MANUAL_REVIEW")),
                        ]),
                    ),
                    ("amount", Value::from(98000.0)),
                    ("currency", Value::from("USD")),
                    ("direction", Value::from("INBOUND")),
                    ("previous_status", Value::from("APPROVED")),
                    (
                        "transaction_id",
                        Value::from(format!("txn-{}", Slot::EventId.marker())),
                    ),
                ],
            ),
        ],
        PayloadKind::FullSample | PayloadKind::AmlHeavy => {
            let size = if kind == PayloadKind::FullSample {
                PayloadSize::Sample20K
            } else {
                PayloadSize::Aml200K
            };
            let mut p = payload(size, sample, 0, 0);
            if let Some(m) = p.as_object_mut() {
                session_envelope(m, "Approved", "status.updated");
                if let Some(d) = m.get_mut("decision").and_then(Value::as_object_mut) {
                    d.insert("session_id", marker(Slot::SessionId));
                    d.insert("vendor_data", marker(Slot::VendorData));
                }
            }
            vec![p]
        }
    }
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
            for p in payloads_of(kind, sample) {
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

//! The Didit v3 payload model: the flat envelope every receiver needs, and the full event for
//! consumers that read the decision.
//!
//! The envelope borrows its strings from the body ([`Text`]) and skips `decision`, `metadata` and
//! the other nested parts without building them, so routing a delivery costs one pass and no
//! allocation for escape-free strings. Unknown keys are ignored (Didit adds fields), and unknown
//! status or event names are kept as `Other` rather than failing, for the same reason.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize};

/// A JSON string borrowed from the body when it holds no escapes, owned otherwise.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

struct CowVisitor;

impl<'de> Visitor<'de> for CowVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowVisitor).map(Text)
    }
}

/// A key that may be absent, `null`, or present. Python's `str()` tells the three apart in the
/// `X-Signature-Simple` message (`""`, `"None"`, the value), so the envelope keeps the difference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Nullable<T> {
    #[default]
    Missing,
    Null,
    Present(T),
}

impl<T> Nullable<T> {
    pub fn as_option(&self) -> Option<&T> {
        match self {
            Nullable::Present(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_present(&self) -> bool {
        matches!(self, Nullable::Present(_))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Nullable::Present(v),
            None => Nullable::Null,
        })
    }
}

macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name<'a> {
            $($(#[$vdoc])* $variant,)*
            /// A value this version does not know; kept, not rejected.
            Other(Cow<'a, str>),
        }

        impl<'a> $name<'a> {
            /// Every known value, in the order the contract lists them.
            pub const KNOWN: &'static [$name<'static>] = &[$($name::$variant,)*];

            pub fn parse(s: Cow<'a, str>) -> Self {
                match &*s {
                    $($text => $name::$variant,)*
                    _ => $name::Other(s),
                }
            }

            /// The exact string Didit sends.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }

            pub fn into_owned(self) -> $name<'static> {
                match self {
                    $($name::$variant => $name::$variant,)*
                    $name::Other(s) => $name::Other(Cow::Owned(s.into_owned())),
                }
            }
        }

        impl<'de: 'a, 'a> Deserialize<'de> for $name<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(CowVisitor).map($name::parse)
            }
        }

        impl Serialize for $name<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum! {
    /// A session, entity or transaction status, case-sensitive as Didit sends it (contract §4.3).
    Status {
        NotStarted = "Not Started",
        InProgress = "In Progress",
        Approved = "Approved",
        Declined = "Declined",
        InReview = "In Review",
        /// KYB only.
        AwaitingUser = "Awaiting User",
        Resubmitted = "Resubmitted",
        Expired = "Expired",
        Abandoned = "Abandoned",
        /// `Kyc`, not `KYC`.
        KycExpired = "Kyc Expired",
        /// Entity (user/business) statuses.
        Active = "ACTIVE",
        Flagged = "FLAGGED",
        Blocked = "BLOCKED",
    }
}

impl Status<'_> {
    /// Whether a session in this status carries a `decision` object (contract §4.1).
    pub fn has_decision(&self) -> bool {
        matches!(
            self,
            Status::Approved | Status::Declined | Status::InReview | Status::Abandoned
        )
    }
}

open_enum! {
    /// The `webhook_type` to route on (contract §4.4).
    WebhookType {
        StatusUpdated = "status.updated",
        DataUpdated = "data.updated",
        UserStatusUpdated = "user.status.updated",
        UserDataUpdated = "user.data.updated",
        BusinessStatusUpdated = "business.status.updated",
        BusinessDataUpdated = "business.data.updated",
        /// Subscribable, but not delivered for live traffic.
        ActivityCreated = "activity.created",
        TransactionCreated = "transaction.created",
        TransactionStatusUpdated = "transaction.status.updated",
        TravelRuleStatusUpdated = "travel_rule.status.updated",
        TransactionRuleSuggestionsCreated = "transaction_rule_suggestions.created",
    }
}

open_enum! {
    /// The application environment.
    Environment {
        Live = "live",
        Sandbox = "sandbox",
    }
}

/// The body's `timestamp`: an integer number of Unix seconds, or something that is not one.
/// Kept apart from a parse failure so that the verifier can name the problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamp {
    Seconds(i64),
    /// A float, string, overflowing or otherwise non-integer value.
    Invalid,
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Unix seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(i64::try_from(v).map_or(Timestamp::Invalid, Timestamp::Seconds))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Timestamp, E> {
                Ok(i64::try_from(v).map_or(Timestamp::Invalid, Timestamp::Seconds))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Timestamp, E> {
                Ok(i64::try_from(v).map_or(Timestamp::Invalid, Timestamp::Seconds))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Timestamp, E> {
                Ok(Timestamp::Invalid)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Timestamp, E> {
                Ok(Timestamp::Invalid)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Timestamp, E> {
                Ok(Timestamp::Invalid)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Timestamp, E> {
                Ok(Timestamp::Invalid)
            }
            fn visit_none<E: de::Error>(self) -> Result<Timestamp, E> {
                Ok(Timestamp::Invalid)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Timestamp, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Timestamp::Invalid)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Timestamp, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Timestamp::Invalid)
            }
        }
        d.deserialize_any(V)
    }
}

/// The flat v3 envelope: what a receiver needs to authenticate freshness, de-duplicate and route.
///
/// Nested parts (`decision`, `metadata`, `resubmit_info`, `changes`, `action_required`) are skipped,
/// only their presence is recorded; parse the body into [`Event`] to read them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Envelope<'a> {
    /// Stable across retries and resends: the de-duplication key. Absent on legacy/test payloads.
    #[serde(borrow)]
    pub event_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub webhook_type: Nullable<WebhookType<'a>>,
    /// The signed send time; freshness is checked on this, not on the unsigned header.
    #[serde(default)]
    pub timestamp: Nullable<Timestamp>,
    pub created_at: Option<i64>,
    #[serde(borrow, default)]
    pub session_id: Nullable<Text<'a>>,
    #[serde(borrow, default)]
    pub status: Nullable<Status<'a>>,
    /// Entity `*.status.updated` events.
    #[serde(borrow)]
    pub previous_status: Option<Status<'a>>,
    #[serde(borrow)]
    pub workflow_id: Option<Text<'a>>,
    pub workflow_version: Option<i64>,
    #[serde(borrow)]
    pub vendor_data: Option<Text<'a>>,
    #[serde(borrow)]
    pub application_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub environment: Option<Environment<'a>>,
    /// KYB: `"business"`.
    #[serde(borrow)]
    pub session_kind: Option<Text<'a>>,
    #[serde(borrow)]
    pub business_session_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub vendor_business_id: Option<Text<'a>>,
    /// `data.updated`: why it fired.
    #[serde(borrow)]
    pub trigger: Option<Text<'a>>,
    #[serde(default, rename = "decision", deserialize_with = "present")]
    pub has_decision: bool,
    #[serde(default, rename = "metadata", deserialize_with = "present")]
    pub has_metadata: bool,
    #[serde(default, rename = "resubmit_info", deserialize_with = "present")]
    pub has_resubmit_info: bool,
}

/// `true` when the key is there with a non-null value; walks the value without building it.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<IgnoredAny>::deserialize(d)?.is_some())
}

impl Envelope<'_> {
    /// The body timestamp in seconds, if it is a valid integer.
    pub fn timestamp_secs(&self) -> Option<i64> {
        match self.timestamp {
            Nullable::Present(Timestamp::Seconds(s)) => Some(s),
            _ => None,
        }
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_option().map(Text::as_str)
    }

    pub fn status(&self) -> Option<&Status<'_>> {
        self.status.as_option()
    }

    pub fn webhook_type(&self) -> Option<&WebhookType<'_>> {
        self.webhook_type.as_option()
    }

    pub fn into_owned(self) -> Envelope<'static> {
        fn t(x: Option<Text<'_>>) -> Option<Text<'static>> {
            x.map(Text::into_owned)
        }
        fn n<T, U>(x: Nullable<T>, f: impl FnOnce(T) -> U) -> Nullable<U> {
            match x {
                Nullable::Missing => Nullable::Missing,
                Nullable::Null => Nullable::Null,
                Nullable::Present(v) => Nullable::Present(f(v)),
            }
        }
        Envelope {
            event_id: t(self.event_id),
            webhook_type: n(self.webhook_type, WebhookType::into_owned),
            timestamp: self.timestamp,
            created_at: self.created_at,
            session_id: n(self.session_id, Text::into_owned),
            status: n(self.status, Status::into_owned),
            previous_status: self.previous_status.map(Status::into_owned),
            workflow_id: t(self.workflow_id),
            workflow_version: self.workflow_version,
            vendor_data: t(self.vendor_data),
            application_id: t(self.application_id),
            environment: self.environment.map(Environment::into_owned),
            session_kind: t(self.session_kind),
            business_session_id: t(self.business_session_id),
            vendor_business_id: t(self.vendor_business_id),
            trigger: t(self.trigger),
            has_decision: self.has_decision,
            has_metadata: self.has_metadata,
            has_resubmit_info: self.has_resubmit_info,
        }
    }
}

/// The `decision` object of a session event: the same shape as `GET /v3/session/{id}/decision/`.
///
/// Per-feature results are kept as JSON values indexed by position (each has its `node_id`):
/// their shapes are large, evolve often, and differ between KYC and KYB.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Decision {
    pub session_id: Option<String>,
    pub session_number: Option<i64>,
    pub session_url: Option<String>,
    pub status: Option<String>,
    pub workflow_id: Option<String>,
    pub vendor_data: Option<String>,
    pub features: Option<serde_json::Value>,
    pub callback: Option<String>,
    pub contact_details: Option<serde_json::Value>,
    pub expected_details: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
    /// ISO-8601, unlike the envelope's Unix-seconds `created_at`.
    pub created_at: Option<String>,
    #[serde(default)]
    pub id_verifications: Vec<serde_json::Value>,
    #[serde(default)]
    pub nfc_verifications: Vec<serde_json::Value>,
    #[serde(default)]
    pub liveness_checks: Vec<serde_json::Value>,
    #[serde(default)]
    pub face_matches: Vec<serde_json::Value>,
    #[serde(default)]
    pub phone_verifications: Vec<serde_json::Value>,
    #[serde(default)]
    pub email_verifications: Vec<serde_json::Value>,
    #[serde(default)]
    pub poa_verifications: Vec<serde_json::Value>,
    #[serde(default)]
    pub aml_screenings: Vec<serde_json::Value>,
    #[serde(default)]
    pub ip_analyses: Vec<serde_json::Value>,
    #[serde(default)]
    pub database_validations: Vec<serde_json::Value>,
    #[serde(default)]
    pub reviews: Vec<serde_json::Value>,
    #[serde(default)]
    pub questionnaire_responses: Vec<serde_json::Value>,
    /// KYB.
    #[serde(default)]
    pub registry_checks: Vec<serde_json::Value>,
    #[serde(default)]
    pub key_people_checks: Vec<serde_json::Value>,
    #[serde(default)]
    pub document_verifications: Vec<serde_json::Value>,
    /// Keys this version does not model (including the legacy v2 singular ones).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `resubmit_info`, carried by `Resubmitted` instead of a decision.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct ResubmitInfo {
    #[serde(default)]
    pub nodes_to_resubmit: Vec<serde_json::Value>,
    #[serde(default)]
    pub reasons: serde_json::Map<String, serde_json::Value>,
}

/// A whole v3 event, owned, for consumers that act on the decision or on entity changes.
/// Parse it from a body the [`Verifier`](crate::Verifier) accepted; it is not on the hot path.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub envelope: Envelope<'static>,
    pub decision: Option<Decision>,
    pub metadata: Option<serde_json::Value>,
    pub resubmit_info: Option<ResubmitInfo>,
    /// Entity `*.data.updated`.
    pub changed_fields: Option<Vec<String>>,
    pub changes: Option<serde_json::Map<String, serde_json::Value>>,
    /// Transaction events.
    pub action_required: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Nested {
    decision: Option<Decision>,
    metadata: Option<serde_json::Value>,
    resubmit_info: Option<ResubmitInfo>,
    changed_fields: Option<Vec<String>>,
    changes: Option<serde_json::Map<String, serde_json::Value>>,
    action_required: Option<serde_json::Value>,
}

impl Event {
    pub fn from_slice(body: &[u8]) -> Result<Event, serde_json::Error> {
        let envelope: Envelope<'_> = serde_json::from_slice(body)?;
        let n: Nested = serde_json::from_slice(body)?;
        Ok(Event {
            envelope: envelope.into_owned(),
            decision: n.decision,
            metadata: n.metadata,
            resubmit_info: n.resubmit_info,
            changed_fields: n.changed_fields,
            changes: n.changes,
            action_required: n.action_required,
        })
    }
}

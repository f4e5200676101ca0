//! Benchmark payloads in four sizes (300 B, 4 KB, the 20 KB sample, 200 KB), derived from the real console sample.

use didit_webhook::canon::{Escaping, Map, Value, write_value};

/// The payload sizes used across the benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadSize {
    /// A `Not Started` event: envelope only, about 300 bytes on the wire.
    NotStarted300B,
    /// An `Approved` event with a decision trimmed to at most 4 KiB on the wire.
    Approved4K,
    /// The full console sample (about 20 KB), with a current envelope.
    Sample20K,
    /// The sample with its AML screening hits repeated to at least 200 KB.
    Aml200K,
}

impl PayloadSize {
    pub const ALL: [PayloadSize; 4] = [
        PayloadSize::NotStarted300B,
        PayloadSize::Approved4K,
        PayloadSize::Sample20K,
        PayloadSize::Aml200K,
    ];

    /// The label used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            PayloadSize::NotStarted300B => "300B",
            PayloadSize::Approved4K => "4KB",
            PayloadSize::Sample20K => "20KB",
            PayloadSize::Aml200K => "200KB",
        }
    }
}

fn wire_len(v: &Value) -> usize {
    let mut out = Vec::new();
    write_value(v, Escaping::Ascii, &mut out);
    out.len()
}

/// A deterministic UUID-shaped id, so benchmark inputs are identical between runs.
fn uuid(kind: u32, seq: u64) -> String {
    format!(
        "{kind:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (seq >> 48) & 0xffff,
        (seq >> 36) & 0xfff,
        (seq >> 24) & 0xfff,
        seq & 0xffff_ffff_ffff
    )
}

fn envelope(m: &mut Map, status: &str, ts: i64, seq: u64) {
    m.insert("application_id", Value::from(uuid(0xa11, 1)));
    m.insert("created_at", Value::int(ts));
    m.insert("environment", Value::from("live"));
    m.insert("event_id", Value::from(uuid(0xe7e, seq)));
    m.insert("session_id", Value::from(uuid(0x5e5, seq)));
    m.insert("status", Value::from(status));
    m.insert("timestamp", Value::int(ts));
    m.insert("vendor_data", Value::from(format!("user-{seq}")));
    m.insert("webhook_type", Value::from("status.updated"));
    m.insert("workflow_id", Value::from(uuid(0x3f1, 7)));
    m.insert("workflow_version", Value::int(3));
}

/// Builds the payload of `size` from the sample, for send time `ts` and delivery number `seq`.
pub fn payload(size: PayloadSize, sample: &Value, ts: i64, seq: u64) -> Value {
    let sample_decision = sample
        .as_object()
        .and_then(|m| m.get("decision"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut m = Map::default();
    match size {
        PayloadSize::NotStarted300B => envelope(&mut m, "Not Started", ts, seq),
        PayloadSize::Approved4K => {
            envelope(&mut m, "Approved", ts, seq);
            let mut d = Map::default();
            for (k, v) in sample_decision.iter() {
                if !matches!(v, Value::Array(_)) {
                    d.insert(k, v.clone());
                }
            }
            // Add whole feature arrays, smallest-first order of a typical KYC flow, while under 4 KiB.
            for key in [
                "liveness_checks",
                "face_matches",
                "ip_analyses",
                "email_verifications",
                "database_validations",
                "phone_verifications",
                "features",
                "reviews",
                "id_verifications",
            ] {
                if let Some(v) = sample_decision.get(key) {
                    let mut trial = m.clone();
                    let mut td = d.clone();
                    td.insert(key, v.clone());
                    trial.insert("decision", Value::Object(td.clone()));
                    if wire_len(&Value::Object(trial)) <= 4096 {
                        d = td;
                    }
                }
            }
            m.insert("decision", Value::Object(d));
        }
        PayloadSize::Sample20K | PayloadSize::Aml200K => {
            if let Some(s) = sample.as_object() {
                m = s.clone();
            }
            envelope(&mut m, "Approved", ts, seq);
            if size == PayloadSize::Aml200K {
                grow_aml_hits(&mut m, 200 * 1024);
            }
        }
    }
    Value::Object(m)
}

fn grow_aml_hits(m: &mut Map, target: usize) {
    let hit = m
        .get("decision")
        .and_then(|d| d.as_object()?.get("aml_screenings"))
        .and_then(|a| match a {
            Value::Array(items) => items.first()?.as_object()?.get("hits").cloned(),
            _ => None,
        });
    let Some(Value::Array(hits)) = hit else {
        return;
    };
    let Some(one) = hits.first().cloned() else {
        return;
    };
    let per_hit = wire_len(&one) + 1;
    let have = wire_len(&Value::Object(m.clone()));
    let n = hits.len() + target.saturating_sub(have).div_ceil(per_hit);
    let grown = Value::Array(vec![one; n]);
    if let Some(Value::Array(screenings)) = m
        .get_mut("decision")
        .and_then(Value::as_object_mut)
        .and_then(|d| d.get_mut("aml_screenings"))
        && let Some(first) = screenings.first_mut().and_then(Value::as_object_mut)
    {
        first.insert("hits", grown);
        first.insert("total_hits", Value::int(n as i64));
    }
}

//! The processing stage's contract, below every store: what a submit answers ([`Submit`]), the
//! [`Processor`] trait the app calls, and a delivery's identity in the stores ([`dedup_key`]);
//! the recent-deliveries window that de-duplicates Didit's retries is the core's. The stores
//! themselves are in [`store`](crate::store).

use didit_webhook::{Envelope, Verified};

pub(crate) use crate::ticket::Ack;
use crate::ticket::Ticket;

/// What became of a submitted event: settled at once, or once the store has kept it.
#[derive(Debug)]
pub(crate) enum Submit {
    Done(Ack),
    /// Answer when the ticket settles (a durable store acknowledging after its commit).
    Pending(Ticket),
}

impl Submit {
    pub(crate) const ACCEPTED: Submit = Submit::Done(Ack::Accepted);
    pub(crate) const DUPLICATE: Submit = Submit::Done(Ack::Duplicate);
    pub(crate) const SATURATED: Submit = Submit::Done(Ack::Saturated);

    /// The settled answer, if there is one yet.
    #[cfg(test)]
    pub(crate) fn done(&self) -> Option<Ack> {
        match self {
            Submit::Done(a) => Some(*a),
            Submit::Pending(_) => None,
        }
    }
}

/// The stage that takes verified events. Implementations decide durability; the contract is:
/// `Accepted` means the event will be processed (or, for durable stores, is stored as the store's
/// acknowledgement mode promises), `Duplicate` that an identical delivery was kept before,
/// `Saturated` that nothing was kept. `body` is the raw body the signature covered.
pub(crate) trait Processor: Send + Sync + 'static {
    fn submit(&self, event: &Verified<Envelope<'_>>, body: &[u8], now_unix: i64) -> Submit;

    /// Events waiting to be applied.
    fn queue_depth(&self) -> usize;

    /// Stops taking events and applies everything queued; called once at shutdown.
    fn drain(&self);
}

pub(crate) use didit_webhook::dedup::{
    Fingerprint, Fingerprint as DedupKey, FingerprintMap, Window as RecentSet, fingerprint,
};

/// A delivery's identity in the stores: the fingerprint of its `event_id`, or of the matched
/// signature when there is none (the stores keep the text, [`dedup_text`]). The same
/// fingerprint as the core's `DedupKey::EventId` for an `event_id`.
pub(crate) fn dedup_key(event: &Verified<Envelope<'_>>) -> DedupKey {
    match &event.event_id {
        Some(id) => fingerprint(b'e', id.as_str().as_bytes()),
        None => fingerprint(b's', event.signature()),
    }
}

/// The key as stored: `e:<event_id>` or `s:<hex signature>`, so the two kinds never collide.
pub(crate) fn dedup_text(event: &Verified<Envelope<'_>>) -> String {
    match &event.event_id {
        Some(id) => format!("e:{}", id.as_str()),
        None => format!(
            "s:{}",
            didit_webhook::HexTag::new(event.signature()).as_str()
        ),
    }
}

/// The latest known state of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub timestamp: i64,
    pub status: String,
    pub webhook_type: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use didit_webhook::canon::Value;
    use didit_webhook::{
        FixedClock, Mac, RingMac, Scratch, Secret, SerdeJson, SignatureHeaders, Signer, Verifier,
        VerifyConfig,
    };

    pub(crate) const NOW: i64 = 1_780_000_000;

    /// Signs and verifies an event so the processor gets a real `Verified` value.
    pub(crate) fn with_event<R>(
        event_id: Option<&str>,
        session: &str,
        status: &str,
        ts: i64,
        f: impl FnOnce(&Verified<Envelope<'_>>) -> R,
    ) -> R {
        let secret = Secret::new("k").expect("not empty");
        let mut text = format!(
            r#"{{"webhook_type":"status.updated","timestamp":{ts},"session_id":"{session}","status":"{status}""#
        );
        if let Some(id) = event_id {
            text.push_str(&format!(r#","event_id":"{id}""#));
        }
        text.push('}');
        let v = Value::parse(text.as_bytes()).expect("valid");
        let d = Signer::<RingMac>::new(&secret).sign(&v).expect("signable");
        let verifier = Verifier::with_parts(
            RingMac::new(&secret),
            SerdeJson,
            FixedClock(NOW),
            VerifyConfig::default(),
        );
        let h = SignatureHeaders {
            signature: Some(d.signature.as_bytes()),
            ..SignatureHeaders::default()
        };
        let mut scratch = Scratch::new();
        let ok = verifier
            .verify(&h, &d.body, &mut scratch)
            .expect("verifies");
        f(&ok)
    }
}

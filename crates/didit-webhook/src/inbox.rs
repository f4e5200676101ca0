//! A webhook endpoint's whole contract short of HTTP: one or more secrets (rotation), the
//! verifier, the de-duplication store and the body timeout, and the step that turns a body and
//! its headers into a [`Delivery`] to handle or an [`Outcome`] to answer. The framework
//! integrations (`didit-webhook-axum`, `didit-webhook-actix`) read the body and call
//! [`Inbox::receive`]; nothing here waits on a socket or a clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::dedup::{Dedup, DedupKey, MemoryDedup, Reservation};
use crate::json::JsonBackend;
use crate::mac::Mac;
use crate::payload::Envelope;
use crate::reply::Outcome;
use crate::secret::Secret;
use crate::verify::{Rejection, Scratch, SignatureHeaders, Verified, Verifier, VerifyConfig};

/// How long a body may take to arrive once its head has (Didit's own timeout is 5 s).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The receiving side of one Didit destination. Cheap to share: put it in an `Arc` (the
/// integrations' state types do).
#[derive(Debug)]
pub struct Inbox<M, J, D = MemoryDedup> {
    /// The current secret first, then any being rotated out.
    keys: Vec<Verifier<M, J>>,
    dedup: Arc<D>,
    body_timeout: Duration,
}

impl<M: Mac, J: JsonBackend + Default> Inbox<M, J, MemoryDedup> {
    /// An inbox for `secret`, de-duplicating in memory for twice the freshness tolerance.
    pub fn new(secret: &Secret, cfg: VerifyConfig) -> Self {
        let window = i64::try_from(cfg.tolerance_secs).unwrap_or(i64::MAX / 4) * 2;
        Inbox {
            keys: vec![Verifier::new(secret, cfg)],
            dedup: Arc::new(MemoryDedup::new(window)),
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

impl<M: Mac, J: JsonBackend + Default, D: Dedup> Inbox<M, J, D> {
    /// Also accepts deliveries signed with `previous`, for the overlap while Didit's
    /// `secret_shared_key` is rotated: add the new secret as current, keep the old one here until
    /// every destination signs with the new one, then drop it. A delivery is tried against the
    /// current secret first; another secret is tried only when its signature does not match.
    pub fn also_accepting(mut self, previous: &Secret) -> Self {
        let cfg = *self.keys[0].config();
        self.keys.push(Verifier::new(previous, cfg));
        self
    }
}

impl<M: Mac, J: JsonBackend, D: Dedup> Inbox<M, J, D> {
    /// The same inbox keeping exactly once in `dedup` (the service's own database, say), or in
    /// nothing ([`NoDedup`](crate::dedup::NoDedup)) where a store downstream de-duplicates.
    pub fn with_dedup<D2: Dedup>(self, dedup: D2) -> Inbox<M, J, D2> {
        Inbox {
            keys: self.keys,
            dedup: Arc::new(dedup),
            body_timeout: self.body_timeout,
        }
    }

    /// How long a body may take to arrive (default [`DEFAULT_BODY_TIMEOUT`]).
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// The largest body accepted.
    pub fn max_body(&self) -> usize {
        self.keys[0].config().max_body
    }

    /// The verifier of the current secret, for a server that verifies with a scratch of its own.
    pub fn verifier(&self) -> &Verifier<M, J> {
        &self.keys[0]
    }

    pub fn dedup(&self) -> &D {
        &self.dedup
    }

    /// Verifies a delivery against each secret in turn (see [`Inbox::also_accepting`]).
    pub fn verify(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
    ) -> Result<Verified<Envelope<'static>>, Rejection> {
        Scratch::with_thread_local(|scratch| {
            let mut result = Err(Rejection::InvalidSignature);
            for key in &self.keys {
                result = key.verify(headers, body, scratch).map(Verified::into_owned);
                // Only a signature that does not match can match under another secret: a stale,
                // malformed or oversized delivery is the same under every key.
                if !matches!(result, Err(Rejection::InvalidSignature)) {
                    break;
                }
            }
            result
        })
    }

    /// Verifies a delivery and reserves its key: a [`Delivery`] to handle, or the outcome to
    /// answer at once (a rejection, `Duplicate`, `InFlight`, or `Failed` when the
    /// de-duplication store failed; such a store logs its own errors).
    pub async fn receive(
        &self,
        headers: &SignatureHeaders<'_>,
        body: Bytes,
    ) -> Result<Delivery<D>, Outcome> {
        let event = self.verify(headers, &body).map_err(Outcome::Rejected)?;
        let reserved = self
            .dedup
            .reserve(&DedupKey::of(&event), event.verified_at())
            .await;
        match reserved {
            Ok(Reservation::Fresh) => Ok(Delivery {
                event,
                body,
                dedup: Some(Arc::clone(&self.dedup)),
            }),
            Ok(Reservation::Duplicate) => Err(Outcome::Duplicate),
            Ok(Reservation::InFlight) => Err(Outcome::InFlight),
            Err(_) => Err(Outcome::Failed),
        }
    }
}

/// A verified delivery whose key is reserved: handle it, then [`Delivery::commit`]. Dropped
/// without a commit (the handler failed, returned early, panicked or was cancelled), it releases
/// the key, so Didit's retry is handled rather than taken for a duplicate.
#[derive(Debug)]
pub struct Delivery<D: Dedup> {
    event: Verified<Envelope<'static>>,
    body: Bytes,
    /// `None` once committed or released.
    dedup: Option<Arc<D>>,
}

impl<D: Dedup> Delivery<D> {
    /// The verified envelope: `event_id`, `session_id()`, `status()`, `webhook_type()`, ...
    pub fn event(&self) -> &Verified<Envelope<'static>> {
        &self.event
    }

    /// The raw body the signature covered, to store or to parse in full
    /// ([`Event::from_slice`](crate::payload::Event::from_slice)).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Records the delivery as handled: every later copy is answered 200 `duplicate`. Call it
    /// once the handler's effects are done. On an error the key is released, and the caller
    /// answers 503 ([`Outcome::Failed`]) so that Didit retries.
    pub async fn commit(mut self) -> Result<(), D::Error> {
        let Some(dedup) = self.dedup.take() else {
            return Ok(());
        };
        let key = DedupKey::of(&self.event);
        let committed = dedup.commit(&key, self.event.verified_at()).await;
        if committed.is_err() {
            dedup.release(&key);
        }
        committed
    }
}

impl<D: Dedup> Drop for Delivery<D> {
    fn drop(&mut self) {
        if let Some(dedup) = self.dedup.take() {
            dedup.release(&DedupKey::of(&self.event));
        }
    }
}

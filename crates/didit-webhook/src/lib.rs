//! The Didit v3 webhook contract, exact and fast, with no I/O.
//!
//! Didit signs each delivery three ways (contract: `shared/didit-webhook-contract.md`):
//! `X-Signature` is HMAC-SHA256 over the raw body, `X-Signature-V2` over a canonical
//! re-serialisation that Python's `json.dumps` defines, and `X-Signature-Simple` over four fields.
//! This crate reproduces all three byte for byte ([`canon`], [`Signer`]) and verifies them
//! ([`Verifier`]) in the order that keeps a public endpoint cheap to defend: size and header syntax
//! first, constant-time signature checks next, and the JSON parse only once a signature holds.
//!
//! Design:
//! - **No I/O.** No sockets, no runtime, no files; time comes from an injected [`Clock`]. Servers,
//!   the load generator and the benchmark runner sit on top.
//! - **Narrow traits, static dispatch.** [`Mac`] and [`JsonBackend`] each have a handful of
//!   implementations (ring, RustCrypto, AWS-LC; serde_json, simd-json, sonic-rs) plus a null one
//!   that measures harness overhead. [`Verifier`] is generic over both, so every combination is its
//!   own monomorphised hot path; [`MacKind`]/[`JsonKind`] pick one at start-up, through the one
//!   dispatch, [`with_backends`].
//! - **Unverified data cannot get through.** Only [`Verifier::verify`] constructs [`Verified`].
//! - **Exactly once.** [`Inbox`] verifies with one or more secrets (rotation) and reserves each
//!   delivery's [`DedupKey`] in a [`Dedup`] store before the handler runs; the [`Delivery`] it
//!   hands out commits on success and releases on failure ([`dedup`] states the rule).
//! - **Rejections are data.** [`Rejection`] is a `Copy` enum with its HTTP status, so every
//!   receiver answers the same way and nothing allocates on the reject path.

pub mod backend;
pub mod body;
pub mod canon;
mod clock;
pub mod dedup;
mod error;
mod hex;
mod inbox;
pub mod json;
pub mod mac;
pub mod payload;
pub mod reply;
mod secret;
mod sign;
mod verify;

pub use backend::{WithBackends, real_pairs, with_backends};
pub use clock::{Clock, FixedClock, SystemClock};
pub use dedup::{Dedup, DedupKey, MemoryDedup, NoDedup, Reservation};
pub use error::UnknownBackend;
pub use hex::{HexTag, Tag, parse_tag};
pub use inbox::{DEFAULT_BODY_TIMEOUT, Delivery, Inbox};
#[cfg(feature = "simd-json")]
pub use json::SimdJson;
#[cfg(feature = "sonic")]
pub use json::SonicJson;
pub use json::{JsonBackend, JsonError, JsonKind, NullJson, SerdeJson};
#[cfg(feature = "aws-lc")]
pub use mac::AwsLcMac;
#[cfg(feature = "ring")]
pub use mac::RingMac;
#[cfg(feature = "rustcrypto")]
pub use mac::RustCryptoMac;
pub use mac::{Mac, MacKind, NullMac};
pub use payload::{Envelope, Environment, Event, Nullable, Status, Text, Timestamp, WebhookType};
pub use reply::{Outcome, Reply};
pub use secret::{SECRET_VAR, Secret, SecretError};
pub use sign::{
    CONTENT_TYPE, Reencoding, SignError, SignedDelivery, Signer, USER_AGENT, reencode,
    simple_message_from, simple_message_of,
};
pub use verify::{
    HEADER_SIGNATURE, HEADER_SIGNATURE_SIMPLE, HEADER_SIGNATURE_V2, HEADER_TIMESTAMP, Rejection,
    Scheme, Scratch, SignatureHeaders, SignaturePolicy, Verified, Verifier, VerifyConfig,
    simple_message,
};

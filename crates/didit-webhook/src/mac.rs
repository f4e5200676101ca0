//! HMAC-SHA256 backends behind one narrow trait.
//!
//! A receiver is generic over `M: Mac` and picks one implementation at start-up, so the hot path is
//! monomorphised: no `dyn`, no branch on the backend per request.

use crate::hex::Tag;
use crate::secret::Secret;

/// HMAC-SHA256 keyed once with the destination's secret.
///
/// Contract for implementers: `sign` returns the 32-byte HMAC-SHA256 of `msg` under the key given to
/// `new`; `verify` returns whether `tag` equals that HMAC and must take time independent of where
/// the two differ (constant-time compare). Callers may share one instance across threads.
pub trait Mac: Send + Sync + Sized + 'static {
    /// The name used on command lines and in benchmark ids.
    const NAME: &'static str;

    fn new(secret: &Secret) -> Self;

    fn sign(&self, msg: &[u8]) -> Tag;

    /// Constant-time check of `tag` against the HMAC of `msg`.
    fn verify(&self, msg: &[u8], tag: &Tag) -> bool;
}

/// `ring`'s HMAC (BoringSSL assembly, SHA-NI where the CPU has it).
#[cfg(feature = "ring")]
#[derive(Debug)]
pub struct RingMac(ring::hmac::Key);

#[cfg(feature = "ring")]
impl Mac for RingMac {
    const NAME: &'static str = "ring";

    fn new(secret: &Secret) -> Self {
        RingMac(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            secret.expose(),
        ))
    }

    fn sign(&self, msg: &[u8]) -> Tag {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::hmac::sign(&self.0, msg).as_ref());
        out
    }

    fn verify(&self, msg: &[u8], tag: &Tag) -> bool {
        // ring compares in constant time.
        ring::hmac::verify(&self.0, msg, tag).is_ok()
    }
}

/// RustCrypto `hmac` + `sha2` (pure Rust; `sha2` detects SHA-NI at run time).
#[cfg(feature = "rustcrypto")]
#[derive(Clone, Debug)]
pub struct RustCryptoMac(hmac::Hmac<sha2::Sha256>);

#[cfg(feature = "rustcrypto")]
impl Mac for RustCryptoMac {
    const NAME: &'static str = "rustcrypto";

    fn new(secret: &Secret) -> Self {
        use hmac::Mac as _;
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        RustCryptoMac(mac)
    }

    fn sign(&self, msg: &[u8]) -> Tag {
        use hmac::Mac as _;
        // Cloning the keyed state skips re-hashing the key for every message.
        let mut m = self.0.clone();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    fn verify(&self, msg: &[u8], tag: &Tag) -> bool {
        use hmac::Mac as _;
        let mut m = self.0.clone();
        m.update(msg);
        // `verify_slice` compares with `subtle`, in constant time.
        m.verify_slice(tag).is_ok()
    }
}

/// AWS-LC's HMAC through `aws-lc-rs` (ring's API over AWS's BoringSSL fork).
#[cfg(feature = "aws-lc")]
#[derive(Debug)]
pub struct AwsLcMac(aws_lc_rs::hmac::Key);

#[cfg(feature = "aws-lc")]
impl Mac for AwsLcMac {
    const NAME: &'static str = "aws-lc";

    fn new(secret: &Secret) -> Self {
        AwsLcMac(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            secret.expose(),
        ))
    }

    fn sign(&self, msg: &[u8]) -> Tag {
        let mut out = [0u8; 32];
        out.copy_from_slice(aws_lc_rs::hmac::sign(&self.0, msg).as_ref());
        out
    }

    fn verify(&self, msg: &[u8], tag: &Tag) -> bool {
        // aws-lc compares with `CRYPTO_memcmp`, an OR of XORs with no data-dependent branch (the
        // same code as ring's).
        aws_lc_rs::hmac::verify(&self.0, msg, tag).is_ok()
    }
}

/// No MAC at all: `sign` returns zeros and `verify` accepts everything.
///
/// It exists only to measure what a receiver costs without cryptography. Never deploy it: a
/// receiver using it authenticates nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullMac;

impl Mac for NullMac {
    const NAME: &'static str = "null";

    fn new(_secret: &Secret) -> Self {
        NullMac
    }

    fn sign(&self, _msg: &[u8]) -> Tag {
        [0; 32]
    }

    fn verify(&self, _msg: &[u8], _tag: &Tag) -> bool {
        true
    }
}

/// The MAC backends built into this crate, for command-line selection. A receiver matches on it
/// once at start-up and runs the monomorphised instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacKind {
    #[cfg(feature = "ring")]
    Ring,
    #[cfg(feature = "rustcrypto")]
    RustCrypto,
    #[cfg(feature = "aws-lc")]
    AwsLc,
    Null,
}

impl MacKind {
    /// Every real (non-null) backend compiled in.
    pub const REAL: &'static [MacKind] = &[
        #[cfg(feature = "ring")]
        MacKind::Ring,
        #[cfg(feature = "rustcrypto")]
        MacKind::RustCrypto,
        #[cfg(feature = "aws-lc")]
        MacKind::AwsLc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "ring")]
            MacKind::Ring => RingMac::NAME,
            #[cfg(feature = "rustcrypto")]
            MacKind::RustCrypto => RustCryptoMac::NAME,
            #[cfg(feature = "aws-lc")]
            MacKind::AwsLc => AwsLcMac::NAME,
            MacKind::Null => NullMac::NAME,
        }
    }
}

impl std::str::FromStr for MacKind {
    type Err = crate::error::UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = || MacKind::REAL.iter().copied().chain([MacKind::Null]);
        all().find(|k| k.name() == s).ok_or_else(|| {
            crate::error::UnknownBackend::new("HMAC backend", s, all().map(MacKind::name).collect())
        })
    }
}

impl std::fmt::Display for MacKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

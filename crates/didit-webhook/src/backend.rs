//! The one place where a backend chosen by name ([`MacKind`] × [`JsonKind`]) meets the types
//! that implement it. A receiver, a benchmark or a test writes what it does once, generic over
//! `M: Mac, J: JsonBackend`, and [`with_backends`] runs the monomorphised instance for the pair
//! picked at run time. A new backend is a variant here and in its `*Kind`; nothing else changes.
//!
//! The `cfg(feature)` checks run in this crate, with this crate's features: a caller never
//! names a backend type its build of the core does not have.

use crate::json::{JsonBackend, JsonKind, NullJson, SerdeJson};
use crate::mac::{Mac, MacKind, NullMac};

/// Work generic over one MAC and one JSON backend, run by [`with_backends`].
pub trait WithBackends {
    type Output;

    fn run<M: Mac, J: JsonBackend + Default>(self) -> Self::Output;
}

/// Runs `work` with the types `mac` and `json` name.
pub fn with_backends<W: WithBackends>(mac: MacKind, json: JsonKind, work: W) -> W::Output {
    match mac {
        #[cfg(feature = "ring")]
        MacKind::Ring => with_json::<crate::mac::RingMac, W>(json, work),
        #[cfg(feature = "rustcrypto")]
        MacKind::RustCrypto => with_json::<crate::mac::RustCryptoMac, W>(json, work),
        #[cfg(feature = "aws-lc")]
        MacKind::AwsLc => with_json::<crate::mac::AwsLcMac, W>(json, work),
        MacKind::Null => with_json::<NullMac, W>(json, work),
    }
}

fn with_json<M: Mac, W: WithBackends>(json: JsonKind, work: W) -> W::Output {
    match json {
        JsonKind::Serde => work.run::<M, SerdeJson>(),
        #[cfg(feature = "simd-json")]
        JsonKind::Simd => work.run::<M, crate::json::SimdJson>(),
        #[cfg(feature = "sonic")]
        JsonKind::Sonic => work.run::<M, crate::json::SonicJson>(),
        JsonKind::Null => work.run::<M, NullJson>(),
    }
}

/// Every real (non-null) MAC × JSON pair this build has, MAC-major: what "every backend" means
/// to the tests, the fuzz targets and the benchmarks.
pub fn real_pairs() -> impl Iterator<Item = (MacKind, JsonKind)> {
    MacKind::REAL
        .iter()
        .flat_map(|m| JsonKind::REAL.iter().map(move |j| (*m, *j)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;

    impl WithBackends for Names {
        type Output = (&'static str, &'static str);

        fn run<M: Mac, J: JsonBackend + Default>(self) -> Self::Output {
            (M::NAME, J::NAME)
        }
    }

    #[test]
    fn each_kind_runs_the_type_it_names() {
        let kinds = real_pairs().chain([(MacKind::Null, JsonKind::Null)]);
        for (m, j) in kinds {
            assert_eq!(with_backends(m, j, Names), (m.name(), j.name()));
        }
    }
}

//! The whole verify pipeline (headers, signature, limits, envelope parse, freshness), by scheme.
//!
//! Each backend is varied with the other held fixed (MACs with serde_json, parsers with ring), plus
//! the null pair that measures the pipeline without cryptography or parsing.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use didit_webhook::{
    AwsLcMac, FixedClock, JsonBackend, Mac, NullJson, NullMac, RingMac, RustCryptoMac, Scratch,
    Secret, SerdeJson, SignatureHeaders, SignaturePolicy, SimdJson, SonicJson, Verifier,
    VerifyConfig,
};
use std::hint::black_box;

fn bench_one<M: Mac, J: JsonBackend + Default>(c: &mut Criterion, policy: SignaturePolicy) {
    let cfg = VerifyConfig {
        policy,
        ..VerifyConfig::default()
    };
    let v = Verifier::with_parts(
        M::new(&Secret::new(super::SECRET).expect("a non-empty secret")),
        J::default(),
        FixedClock(super::NOW),
        cfg,
    );
    let mut g = c.benchmark_group(format!("verify_{}", policy.name()));
    for input in super::inputs() {
        let d = &input.delivery;
        let h = SignatureHeaders {
            signature: (policy == SignaturePolicy::Raw).then_some(d.signature.as_bytes()),
            signature_v2: (policy == SignaturePolicy::V2).then_some(d.signature_v2.as_bytes()),
            signature_simple: None,
            timestamp: Some(d.timestamp.as_bytes()),
        };
        let mut scratch = Scratch::new();
        // A benchmark of a failing path would measure the wrong thing.
        assert!(
            v.verify(&h, &d.body, &mut scratch).is_ok(),
            "{} {}",
            M::NAME,
            J::NAME
        );
        g.throughput(Throughput::Bytes(d.body.len() as u64));
        let id = BenchmarkId::new(format!("{}+{}", M::NAME, J::NAME), input.size.name());
        g.bench_with_input(id, &d.body, |b, body| {
            b.iter(|| {
                let ok = v.verify(&h, black_box(body), &mut scratch);
                black_box(ok.map(|e| e.timestamp_secs()).ok())
            })
        });
    }
    g.finish();
}

fn verify(c: &mut Criterion) {
    for policy in [SignaturePolicy::Raw, SignaturePolicy::V2] {
        bench_one::<RingMac, SerdeJson>(c, policy);
        bench_one::<RustCryptoMac, SerdeJson>(c, policy);
        bench_one::<AwsLcMac, SerdeJson>(c, policy);
        bench_one::<RingMac, SimdJson>(c, policy);
        bench_one::<RingMac, SonicJson>(c, policy);
    }
    bench_one::<NullMac, NullJson>(c, SignaturePolicy::Raw);
}

criterion_group! { name = benches; config = super::config(); targets = verify }

//! The whole verify pipeline (headers, signature, limits, envelope parse, freshness), by scheme.
//!
//! Each backend is varied with the other held fixed (MACs with serde_json, parsers with ring), plus
//! the null pair that measures the pipeline without cryptography or parsing.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use didit_webhook::{
    FixedClock, JsonBackend, JsonKind, Mac, MacKind, Scratch, Secret, SignatureHeaders,
    SignaturePolicy, Verifier, VerifyConfig, WithBackends, with_backends,
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

/// One pair's benchmarks, run through the core's dispatch from kinds to types.
struct Bench<'a> {
    c: &'a mut Criterion,
    policy: SignaturePolicy,
}

impl WithBackends for Bench<'_> {
    type Output = ();

    fn run<M: Mac, J: JsonBackend + Default>(self) {
        bench_one::<M, J>(self.c, self.policy)
    }
}

fn verify(c: &mut Criterion) {
    let macs = MacKind::REAL.iter().map(|m| (*m, JsonKind::Serde));
    let parsers = JsonKind::REAL
        .iter()
        .filter(|j| **j != JsonKind::Serde)
        .map(|j| (MacKind::Ring, *j));
    let pairs: Vec<_> = macs.chain(parsers).collect();
    for policy in [SignaturePolicy::Raw, SignaturePolicy::V2] {
        for (m, j) in &pairs {
            with_backends(*m, *j, Bench { c, policy });
        }
    }
    let policy = SignaturePolicy::Raw;
    with_backends(MacKind::Null, JsonKind::Null, Bench { c, policy });
}

criterion_group! { name = benches; config = super::config(); targets = verify }

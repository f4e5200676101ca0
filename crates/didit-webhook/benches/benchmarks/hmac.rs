//! HMAC-SHA256 over the wire body, per backend.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use didit_webhook::{AwsLcMac, Mac, RingMac, RustCryptoMac, Secret};
use std::hint::black_box;

fn bench_one<M: Mac>(c: &mut Criterion) {
    let mac = M::new(&Secret::new(super::SECRET).expect("a non-empty secret"));
    let mut g = c.benchmark_group("hmac");
    for input in super::inputs() {
        let body = &input.delivery.body;
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(M::NAME, input.size.name()),
            body,
            |b, body| b.iter(|| mac.sign(black_box(body))),
        );
    }
    g.finish();
}

fn hmac(c: &mut Criterion) {
    bench_one::<RingMac>(c);
    bench_one::<RustCryptoMac>(c);
    bench_one::<AwsLcMac>(c);
}

criterion_group! { name = benches; config = super::config(); targets = hmac }

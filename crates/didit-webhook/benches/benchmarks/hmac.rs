//! HMAC-SHA256 over the wire body, per backend.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use didit_webhook::{JsonBackend, JsonKind, Mac, MacKind, Secret, WithBackends, with_backends};
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

/// One MAC's benchmarks, run through the core's dispatch from kinds to types.
struct Bench<'a>(&'a mut Criterion);

impl WithBackends for Bench<'_> {
    type Output = ();

    fn run<M: Mac, J: JsonBackend + Default>(self) {
        bench_one::<M>(self.0)
    }
}

fn hmac(c: &mut Criterion) {
    for m in MacKind::REAL {
        with_backends(*m, JsonKind::Serde, Bench(c));
    }
}

criterion_group! { name = benches; config = super::config(); targets = hmac }

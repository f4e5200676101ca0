//! The envelope parse alone, per JSON backend.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use didit_webhook::{JsonBackend, SerdeJson, SimdJson, SonicJson};
use std::hint::black_box;

fn bench_one<J: JsonBackend + Default>(c: &mut Criterion) {
    let json = J::default();
    let mut g = c.benchmark_group("parse_envelope");
    for input in super::inputs() {
        let body = &input.delivery.body;
        let mut scratch = Vec::new();
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(J::NAME, input.size.name()),
            body,
            |b, body| {
                b.iter(|| {
                    let env = json.parse_envelope(black_box(body), &mut scratch);
                    black_box(env.map(|e| e.timestamp_secs()).ok())
                })
            },
        );
    }
    g.finish();
}

fn parse(c: &mut Criterion) {
    bench_one::<SerdeJson>(c);
    bench_one::<SimdJson>(c);
    bench_one::<SonicJson>(c);
}

criterion_group! { name = benches; config = super::config(); targets = parse }

//! The envelope parse alone, per JSON backend.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use didit_webhook::{JsonBackend, JsonKind, Mac, MacKind, WithBackends, with_backends};
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

/// One parser's benchmarks, run through the core's dispatch from kinds to types.
struct Bench<'a>(&'a mut Criterion);

impl WithBackends for Bench<'_> {
    type Output = ();

    fn run<M: Mac, J: JsonBackend + Default>(self) {
        bench_one::<J>(self.0)
    }
}

fn parse(c: &mut Criterion) {
    for j in JsonKind::REAL {
        with_backends(MacKind::Ring, *j, Bench(c));
    }
}

criterion_group! { name = benches; config = super::config(); targets = parse }

//! Producing the V2 message from a wire body: the streaming path and the full re-serialisation.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use didit_webhook::canon::{self, Escaping};
use std::hint::black_box;

fn canonicalize(c: &mut Criterion) {
    let mut g = c.benchmark_group("canonicalize_v2");
    for input in super::inputs() {
        let body = &input.delivery.body;
        g.throughput(Throughput::Bytes(body.len() as u64));
        let mut out = Vec::new();
        g.bench_with_input(
            BenchmarkId::new("streaming", input.size.name()),
            body,
            |b, body| {
                b.iter(|| {
                    out.clear();
                    black_box(canon::v2_from_wire(black_box(body), &mut out))
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("tree", input.size.name()),
            body,
            |b, body| {
                b.iter(|| {
                    out.clear();
                    black_box(canon::canonicalize(
                        black_box(body),
                        Escaping::Unicode,
                        &mut out,
                    ))
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("limits", input.size.name()),
            body,
            |b, body| b.iter(|| black_box(canon::exceeds_limits(black_box(body)))),
        );
    }
    g.finish();
}

criterion_group! { name = benches; config = super::config(); targets = canonicalize }

//! What one delivery costs the generator: the incremental template signer against signing each
//! payload in full with the core crate's `Signer`, for the 4 KB Approved kind and the typical mix.
//! Run: `cargo bench -p didit-loadgen --bench generate`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use didit_loadgen::scenario::Scenario;
use didit_loadgen::{Acked, Class, Generator, Templates};
use didit_webhook::{RingMac, Secret, Signer};

fn scenario(payloads: &str) -> Scenario {
    let text = format!("name = \"bench\"\n[load]\nshape = \"max\"\n[payloads]\n{payloads}\n");
    Scenario::parse(&text, Path::new("bench.toml")).expect("valid")
}

fn generate(c: &mut Criterion) {
    let templates = Arc::new(Templates::load().expect("fixtures"));
    let secret = Secret::new("bench-secret").expect("a non-empty secret");
    let now = 1_800_000_000;
    let mut g = c.benchmark_group("generate");
    for (name, payloads) in [
        ("approved", "approved = 1"),
        (
            "typical-mix",
            "not_started = 15\nin_progress = 15\napproved = 30\ndeclined = 8\nin_review = 5\nuser_event = 6\ntransaction_event = 6",
        ),
    ] {
        let s = scenario(payloads);
        let mut gen_ = Generator::new(templates.clone(), &s, &secret, Acked::shared(), 1);
        g.bench_function(format!("template/{name}"), |b| {
            b.iter(|| black_box(gen_.make(Class::Valid, now)))
        });
        // The alternative: build the payload value and sign it in full, as the core Signer does.
        let signer = Signer::<RingMac>::new(&secret);
        let mut gen2 = Generator::new(templates.clone(), &s, &secret, Acked::shared(), 1);
        let values: Vec<_> = (0..64)
            .map(|_| {
                let d = gen2.make(Class::Valid, now);
                let o = d.origin.expect("origin");
                templates
                    .get(o.template)
                    .value(&didit_loadgen::template::Fill {
                        session_id: &o.session_id,
                        event_id: &o.event_id,
                        vendor_data: &o.vendor_data,
                        timestamp: o.timestamp,
                    })
            })
            .collect();
        let mut i = 0;
        g.bench_function(format!("full-signer/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % values.len();
                black_box(signer.sign(&values[i]).expect("signable"))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);

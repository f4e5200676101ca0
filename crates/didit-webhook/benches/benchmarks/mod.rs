//! Shared inputs: the four payload sizes, signed as Didit signs them.

pub mod canon;
pub mod hmac;
pub mod parse;
pub mod verify;

use std::time::Duration;

use criterion::Criterion;
use didit_fixtures::PayloadSize;
use didit_webhook::{RingMac, Secret, SignedDelivery, Signer};

pub const SECRET: &str = "bench-secret-not-a-real-key";
pub const NOW: i64 = 1_780_000_000;

/// Short but stable settings: the whole suite stays within a few minutes on two cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
        .configure_from_args()
}

pub struct Input {
    pub size: PayloadSize,
    pub delivery: SignedDelivery,
}

/// One signed delivery per payload size.
pub fn inputs() -> Vec<Input> {
    let sample = didit_fixtures::sample_value().unwrap_or_else(|e| panic!("{e}"));
    let signer = Signer::<RingMac>::new(&Secret::new(SECRET).expect("a non-empty secret"));
    PayloadSize::ALL
        .into_iter()
        .map(|size| {
            let payload = didit_fixtures::payload(size, &sample, NOW, 42);
            let delivery = signer.sign(&payload).unwrap_or_else(|e| panic!("{e}"));
            Input { size, delivery }
        })
        .collect()
}

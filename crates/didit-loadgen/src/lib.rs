//! The Didit webhook load generator.
//!
//! One traffic model ([`model`]: payload templates from the real console sample, good and bad
//! traffic classes, each delivery labelled with the answer a correct receiver gives) drives two
//! engines: [`goose_engine`] (goose's users, reports and baselines) and [`open_loop`] (a
//! constant-arrival-rate schedule with coordinated-omission-corrected microsecond latency, for
//! ceilings and tails). Scenarios are TOML files ([`scenario`]); a run ends in a [`report`].
//!
//! Signing is incremental ([`template`]): the HMAC state after the constant prefix of each
//! template is cached per second, so a delivery costs a few hundred hashed bytes.

pub mod cli;
pub mod cpu;
pub mod goose_engine;
pub mod model;
pub mod open_loop;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod target;
pub mod template;

pub use cli::{Options, run};
pub use model::{
    Acked, Class, Delivery, Expect, Generator, Label, PayloadKind, Templates, Verdict,
};
pub use report::Report;
pub use scenario::{EngineKind, LoadShape, Scenario, ScenarioError};
pub use target::{Target, TargetError};

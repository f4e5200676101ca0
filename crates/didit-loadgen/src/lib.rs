//! The Didit webhook load generator.
//!
//! One traffic model, in three modules that each depend only on those before it: [`labels`]
//! (payload kinds, good and bad traffic classes, the answer a correct receiver gives and how
//! answers are judged), [`catalogue`] (the payload templates, built from the real console sample
//! and the template files in `payloads/`) and [`generator`] (draws, renders, signs and labels each
//! delivery). It drives two engines: [`goose_engine`] (goose's users, reports and baselines) and
//! [`open_loop`] (a constant-arrival-rate schedule with coordinated-omission-corrected microsecond latency, for
//! ceilings and tails). Scenarios are TOML files ([`scenario`]); a run ends in a [`report`].
//!
//! Signing is incremental ([`template`]): the HMAC state after the constant prefix of each
//! template is cached per second, so a delivery costs a few hundred hashed bytes.
//!
//! Targets are `http://` or `https://` ([`target`], [`tls`]: rustls, the system's roots, or any
//! certificate with `--insecure`).

pub mod catalogue;
pub mod cli;
pub mod cpu;
pub mod generator;
pub mod goose_engine;
pub mod labels;
pub mod open_loop;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod target;
pub mod template;
pub mod tls;

pub use catalogue::{CatalogueError, Templates};
pub use cli::{Options, run};
pub use generator::{Acked, Delivery, Generator, Origin};
pub use labels::{Class, Expect, Judge, Label, PayloadKind, Verdict};
pub use report::Report;
pub use scenario::{EngineKind, LoadShape, Scenario, ScenarioError, ShapeKind};
pub use target::{Target, TargetError};
pub use tls::{TlsClient, TlsError, Trust};

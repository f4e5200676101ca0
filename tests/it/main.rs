//! The end-to-end suite, one test binary: every module drives the real binaries
//! (`didit-receiver`, `didit-loadgen`, `webhook-bench`) as processes on loopback ports they open
//! themselves, bounded in time. `tests/README.md` says what each module covers and how to run one.

mod support;

mod bench_runner;
mod conformance;
mod durability;
mod examples;
mod installed;
mod limits;
mod loadgen;
mod peers;
mod real_clients;
mod tls;
mod verify;

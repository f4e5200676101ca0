//! The server variants. Each takes a shared [`App`](crate::app::App) and runs until SIGTERM.

pub mod actix;
pub mod axum;
pub mod http1;
pub mod hyper;
pub mod may;
pub mod naive;

//! The server variants. Each takes a shared [`App`](crate::app::App) and runs until SIGTERM.

pub(crate) mod actix;
pub(crate) mod axum;
pub(crate) mod hyper;
pub(crate) mod may;
pub(crate) mod naive;

//! What the framework integrations ([`axum_ext`](crate::axum_ext),
//! [`actix_ext`](crate::actix_ext)) share: where an extractor finds its verifier.

use std::sync::Arc;
use std::time::Duration;

use didit_webhook::{JsonBackend, Mac, Secret, Verifier, VerifyConfig};

/// What an extractor needs from the app state.
pub trait VerifierSource<M, J>: Send + Sync {
    fn verifier(&self) -> &Verifier<M, J>;

    /// Time allowed for the body to arrive.
    fn body_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

impl<M, J, T: VerifierSource<M, J>> VerifierSource<M, J> for Arc<T> {
    fn verifier(&self) -> &Verifier<M, J> {
        (**self).verifier()
    }

    fn body_timeout(&self) -> Duration {
        (**self).body_timeout()
    }
}

/// A ready-made state holding one verifier.
#[derive(Debug)]
pub struct DiditVerifier<M, J>(Arc<Verifier<M, J>>);

impl<M, J> Clone for DiditVerifier<M, J> {
    fn clone(&self) -> Self {
        DiditVerifier(Arc::clone(&self.0))
    }
}

impl<M: Mac, J: JsonBackend + Default> DiditVerifier<M, J> {
    pub fn new(secret: &Secret, cfg: VerifyConfig) -> Self {
        DiditVerifier(Arc::new(Verifier::new(secret, cfg)))
    }
}

impl<M: Mac, J: JsonBackend> VerifierSource<M, J> for DiditVerifier<M, J> {
    fn verifier(&self) -> &Verifier<M, J> {
        &self.0
    }
}

impl<M: Mac, J: JsonBackend, P: crate::process::Processor> VerifierSource<M, J>
    for crate::app::App<M, J, P>
{
    fn verifier(&self) -> &Verifier<M, J> {
        crate::app::App::verifier(self)
    }

    fn body_timeout(&self) -> Duration {
        self.limits().body_timeout
    }
}

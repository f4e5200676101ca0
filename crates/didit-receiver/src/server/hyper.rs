//! The hyper variant: a `service_fn` straight over the shared [`App`], no framework in between.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::app::{App, Handled, Route, ack_reply, early_reply};
use crate::wire::http1::{read_body, signature_headers, to_response};
use didit_webhook::{JsonBackend, Mac, Scratch};

/// Handles one request.
pub(crate) async fn handle<M: Mac, J: JsonBackend>(
    app: Arc<App<M, J>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let route = app.route(req.method().as_str(), req.uri().path());
    let reply = match route {
        Route::Webhook | Route::Null => {
            let _in_flight = app.metrics().start();
            let (parts, body) = req.into_parts();
            let limits = app.limits();
            match read_body(&parts.headers, body, limits.max_body, limits.body_timeout).await {
                Ok(body) if route == Route::Webhook => {
                    let headers = signature_headers(&parts.headers);
                    match Scratch::with_thread_local(|s| app.webhook(&headers, &body, s)) {
                        Handled::Ready(reply) => reply,
                        Handled::Pending(ticket) => ack_reply(ticket.await),
                    }
                }
                Ok(_) => app.simple_route(Route::Null),
                Err(outcome) => early_reply(outcome),
            }
        }
        other => app.simple_route(other),
    };
    app.finish(&reply, started);
    Ok(to_response(reply))
}

/// Runs the hyper variant until SIGTERM.
pub(crate) fn run<M: Mac, J: JsonBackend>(
    app: Arc<App<M, J>>,
    listen: std::net::SocketAddr,
    workers: usize,
) -> anyhow::Result<()> {
    let svc_app = Arc::clone(&app);
    let service = hyper::service::service_fn(move |req| handle(Arc::clone(&svc_app), req));
    crate::wire::http1::run(listen, workers, *app.limits(), service)?;
    app.shutdown();
    Ok(())
}

//! The axum variant: a Router whose webhook route uses the published [`DiditWebhook`] extractor
//! (`didit-webhook-axum`), served by the shared HTTP/1.1 connection layer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::post;
use didit_webhook::{Inbox, JsonBackend, Mac, NoDedup};
use didit_webhook_axum::{DiditWebhook, read_body};

use crate::app::{App, NULL_PATH, Route, WEBHOOK_PATH, ack_reply, early_reply};
use crate::metrics::Outcome;
use crate::wire::axum::reply_response;

/// The router's state: the app, whose inbox the extractor finds through `FromRef`.
pub(crate) struct AppState<M, J>(Arc<App<M, J>>);

impl<M, J> Clone for AppState<M, J> {
    fn clone(&self) -> Self {
        AppState(Arc::clone(&self.0))
    }
}

impl<M: Mac, J: JsonBackend> FromRef<AppState<M, J>> for Arc<Inbox<M, J, NoDedup>> {
    fn from_ref(state: &AppState<M, J>) -> Self {
        Arc::clone(state.0.inbox())
    }
}

async fn webhook<M: Mac, J: JsonBackend>(
    State(AppState(app)): State<AppState<M, J>>,
    hook: DiditWebhook<M, J, NoDedup>,
) -> Response {
    // The store de-duplicates (the inbox has no window of its own), so nothing to commit.
    reply_response(ack_reply(app.process(hook.event(), hook.body()).await))
}

async fn null<M: Mac, J: JsonBackend>(
    State(AppState(app)): State<AppState<M, J>>,
    req: Request,
) -> Response {
    if app.route("POST", NULL_PATH) != Route::Null {
        return reply_response(app.simple_route(Route::NotFound));
    }
    let (parts, body) = req.into_parts();
    let limits = app.limits();
    match read_body(&parts.headers, body, limits.max_body, limits.body_timeout).await {
        Ok(_) => reply_response(app.simple_route(Route::Null)),
        Err(o) => reply_response(early_reply(o)),
    }
}

/// Everything that is not a POST to a webhook path: health, metrics, 404 and 405.
pub(crate) async fn other<M: Mac, J: JsonBackend>(
    State(AppState(app)): State<AppState<M, J>>,
    method: Method,
    uri: Uri,
) -> Response {
    reply_response(app.simple_route(app.route(method.as_str(), uri.path())))
}

/// Counts webhook outcomes (attached by handlers and rejections) and requests in flight.
pub(crate) async fn track<M: Mac, J: JsonBackend>(
    State(AppState(app)): State<AppState<M, J>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = app.metrics().start();
    let resp = next.run(req).await;
    if let Some(o) = resp.extensions().get::<Outcome>() {
        app.metrics().record(*o, started.elapsed());
    }
    resp
}

pub(crate) fn router<M: Mac, J: JsonBackend>(app: Arc<App<M, J>>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(webhook::<M, J>).fallback(other::<M, J>))
        .route(NULL_PATH, post(null::<M, J>).fallback(other::<M, J>))
        .fallback(other::<M, J>)
        .layer(from_fn_with_state(
            AppState(Arc::clone(&app)),
            track::<M, J>,
        ))
        .with_state(AppState(app))
}

/// Runs the axum variant until SIGTERM.
pub(crate) fn run<M: Mac, J: JsonBackend>(
    app: Arc<App<M, J>>,
    listen: std::net::SocketAddr,
    workers: usize,
) -> anyhow::Result<()> {
    let service = hyper_util::service::TowerToHyperService::new(router(Arc::clone(&app)));
    crate::wire::http1::run(listen, workers, *app.limits(), service)?;
    app.shutdown();
    Ok(())
}

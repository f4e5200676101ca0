//! The actix-web variant: an actix `App` whose webhook route uses the published [`DiditWebhook`]
//! extractor (`didit-webhook-actix`), on actix's own server (one
//! single-threaded runtime per worker thread, not the shared tokio connection layer: actix-web is
//! compared as teams run it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use didit_webhook::{JsonBackend, Mac, NoDedup};
use didit_webhook_actix::{DiditWebhook, read_body};
use futures_util::future::{Either, FutureExt, LocalBoxFuture};

use crate::app::{App, NULL_PATH, Route, WEBHOOK_PATH, ack_reply, early_reply};
use crate::metrics::Outcome;
use crate::wire::MAX_HEAD;
use crate::wire::actix::reply_response;

/// Longest wait for in-flight requests after a shutdown signal, as for the other servers.
const SHUTDOWN_GRACE_SECS: u64 = 20;

async fn webhook<M: Mac, J: JsonBackend>(
    app: web::Data<App<M, J>>,
    hook: DiditWebhook<M, J, NoDedup>,
) -> HttpResponse {
    // The store de-duplicates (the inbox has no window of its own), so nothing to commit.
    reply_response(ack_reply(app.process(hook.event(), hook.body()).await))
}

async fn null<M: Mac, J: JsonBackend>(
    app: web::Data<App<M, J>>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    if app.route("POST", NULL_PATH) != Route::Null {
        return reply_response(app.simple_route(Route::NotFound));
    }
    let limits = app.limits();
    let mut payload = payload.into_inner();
    match read_body(
        req.headers(),
        &mut payload,
        limits.max_body,
        limits.body_timeout,
    )
    .await
    {
        Ok(_) => reply_response(app.simple_route(Route::Null)),
        Err(o) => reply_response(early_reply(o)),
    }
}

/// Everything that is not a POST to a webhook path: health, metrics, 404 and 405.
async fn other<M: Mac, J: JsonBackend>(
    app: web::Data<App<M, J>>,
    req: HttpRequest,
) -> HttpResponse {
    reply_response(app.simple_route(app.route(req.method().as_str(), req.path())))
}

/// The status for a head over [`MAX_HEAD`], which actix (a 128 KiB buffer) lets through: 414 for
/// the target, 431 for the header fields, as the other variants answer.
fn refuse_head(req: &ServiceRequest) -> Option<u16> {
    let target = req.uri().path().len() + req.uri().query().map_or(0, str::len);
    if target > MAX_HEAD {
        return Some(414);
    }
    let fields: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (target + fields > MAX_HEAD).then_some(431)
}

type Served = Result<ServiceResponse<BoxBody>, actix_web::Error>;

/// Refuses oversized heads, counts requests in flight and records each webhook outcome.
fn track<M: Mac, J: JsonBackend, S>(
    app: &Arc<App<M, J>>,
    req: ServiceRequest,
    srv: &S,
) -> Either<std::future::Ready<Served>, LocalBoxFuture<'static, Served>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    if let Some(status) = refuse_head(&req) {
        tracing::debug!(status, "request head refused");
        let resp = HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
        )
        .content_type(crate::app::CONTENT_TYPE_JSON)
        .force_close()
        .body(if status == 414 {
            crate::app::BODY_URI_TOO_LONG
        } else {
            crate::app::BODY_HEAD_TOO_LARGE
        });
        return Either::Left(std::future::ready(Ok(req.into_response(resp))));
    }
    let app = Arc::clone(app);
    let started = Instant::now();
    let call = srv.call(req);
    Either::Right(
        async move {
            let _in_flight = app.metrics().start();
            let res = call.await?;
            if let Some(o) = res.response().extensions().get::<Outcome>() {
                app.metrics().record(*o, started.elapsed());
            }
            Ok(res)
        }
        .boxed_local(),
    )
}

/// Runs the actix-web variant until SIGTERM or SIGINT.
pub(crate) fn run<M: Mac, J: JsonBackend>(
    app: Arc<App<M, J>>,
    listen: SocketAddr,
    workers: usize,
) -> anyhow::Result<()> {
    let served = actix_web::rt::System::new().block_on(serve(Arc::clone(&app), listen, workers));
    app.shutdown();
    served
}

async fn serve<M: Mac, J: JsonBackend>(
    app: Arc<App<M, J>>,
    listen: SocketAddr,
    workers: usize,
) -> anyhow::Result<()> {
    let limits = *app.limits();
    let workers = workers.max(1);
    // The same socket set-up (deep accept queue) and ready line as the other tokio variants.
    let listener = crate::wire::http1::bind(listen)
        .await?
        .into_std()
        .context("handing the listener to actix")?;
    let data = web::Data::from(Arc::clone(&app));
    let inbox = web::Data::from(Arc::clone(app.inbox()));
    let server = HttpServer::new(move || {
        let tracked = Arc::clone(&app);
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(inbox.clone())
            .wrap_fn(move |req, srv| track(&tracked, req, srv))
            .service(
                web::resource(WEBHOOK_PATH)
                    .route(web::post().to(webhook::<M, J>))
                    .default_service(web::to(other::<M, J>)),
            )
            .service(
                web::resource(NULL_PATH)
                    .route(web::post().to(null::<M, J>))
                    .default_service(web::to(other::<M, J>)),
            )
            .default_service(web::to(other::<M, J>))
    })
    .workers(workers)
    // actix counts connections per worker.
    .max_connections(limits.max_connections.div_ceil(workers).max(1))
    .client_request_timeout(limits.header_timeout)
    // An idle kept-alive connection is closed as the tokio variants close it: when no request
    // head arrives within the header timeout.
    .keep_alive(limits.header_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .shutdown_timeout(SHUTDOWN_GRACE_SECS)
    // SIGTERM and SIGINT both drain, as in every variant (actix stops at once on SIGINT).
    .disable_signals()
    .listen(listener)
    .context("starting actix-web")?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        crate::wire::http1::shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await.context("actix-web server")
}

//! Reference Didit webhook receivers: one HTTP contract on hyper, may_minihttp, axum and
//! actix-web, plus the naive axum peer that stands for what tutorials produce.
//!
//! The contract (routes, statuses, bodies, metrics) lives in `app`, independent of any server;
//! each variant in `server` only translates requests and replies, over what `wire` shares. The
//! MAC and JSON backends are chosen once in [`run`] and reach the request path monomorphised:
//! `App<M, J>` is generic over both. The axum and actix-web variants verify through the published
//! extractors a team drops into its own app (`didit-webhook-axum`, `didit-webhook-actix`).
//! [`store`] is where verified events go.

#![warn(unreachable_pub)]

mod app;
mod framing;
pub mod metrics;
mod options;
mod process;
mod server;
pub mod store;
mod ticket;
mod wire;

use std::sync::Arc;

use anyhow::Context;
use didit_webhook::{JsonBackend, JsonKind, Mac, MacKind, VerifyConfig};

pub use options::{Options, ServerKind};

use crate::app::{App, Limits};

/// Raises the soft open-file limit to the hard one, as servers do (a distribution's soft default
/// of 1,024 would refuse connections long before `--max-connections`), and warns when even the
/// hard limit is below what `max_connections` needs.
fn raise_open_file_limit(max_connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        let raised = Rlimit {
            current: Some(max),
            maximum: Some(max),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            lim = raised;
        }
    }
    // Room for the store, the log and the listener besides the connections; None is unlimited.
    let needed = max_connections as u64 + 64;
    if let Some(cur) = lim.current
        && cur < needed
    {
        tracing::warn!(
            open_files = cur,
            max_connections,
            "the open-file limit is below --max-connections: raise it (ulimit -n, LimitNOFILE) or lower --max-connections"
        );
    }
}

/// Runs a receiver until SIGTERM or SIGINT (or the `consume` subcommand).
pub fn run(opts: Options) -> anyhow::Result<()> {
    if let Some(options::Command::Consume(c)) = &opts.command {
        return store::consume(c);
    }
    if opts.list_backends {
        println!("{}", options::backends_json());
        return Ok(());
    }
    let secret = options::load_secret(&opts)?;
    let cfg = VerifyConfig {
        tolerance_secs: opts.tolerance.as_secs(),
        policy: opts.signature,
        accept_simple: opts.accept_simple,
        max_body: opts.max_body,
    };
    let limits = Limits {
        max_body: opts.max_body,
        header_timeout: opts.header_timeout,
        body_timeout: opts.body_timeout,
        max_connections: opts.max_connections,
        extra_work: opts.extra_work,
    };
    raise_open_file_limit(opts.max_connections);
    if matches!(opts.hmac, MacKind::Null) || matches!(opts.json, JsonKind::Null) {
        tracing::warn!("a null backend is selected: this receiver is for measurement only");
    }
    let Some(server) = Verifying::of(opts.server) else {
        if opts.store_spec() != store::StoreSpec::Memory {
            anyhow::bail!(
                "axum-naive keeps its state in memory, as the tutorials it stands for do; drop --store or pick another --server"
            );
        }
        // The naive peer is fixed to hmac+sha2 and serde_json::Value by definition.
        let st = Arc::new(server::naive::Naive::new(
            &secret,
            cfg,
            limits,
            opts.enable_null_endpoint,
        ));
        return server::naive::run(st, opts.listen, opts.workers()).context("axum-naive server");
    };
    didit_webhook::with_backends(
        opts.hmac,
        opts.json,
        Serve {
            server,
            opts: &opts,
            secret: &secret,
            cfg,
            limits,
        },
    )
}

/// The servers that run the contract through the core's `Verifier` (every one but the naive
/// peer, which has its own code): what the generic dispatch below can serve, and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verifying {
    Hyper,
    Axum,
    May,
    Actix,
}

impl Verifying {
    fn of(kind: ServerKind) -> Option<Verifying> {
        match kind {
            ServerKind::Hyper => Some(Verifying::Hyper),
            ServerKind::Axum => Some(Verifying::Axum),
            ServerKind::May => Some(Verifying::May),
            ServerKind::Actix => Some(Verifying::Actix),
            ServerKind::AxumNaive => None,
        }
    }
}

/// The receiver for the MAC × JSON pair the options name, monomorphised by the core's one
/// dispatch.
struct Serve<'a> {
    server: Verifying,
    opts: &'a Options,
    secret: &'a didit_webhook::Secret,
    cfg: VerifyConfig,
    limits: Limits,
}

impl didit_webhook::WithBackends for Serve<'_> {
    type Output = anyhow::Result<()>;

    fn run<M: Mac, J: JsonBackend + Default>(self) -> anyhow::Result<()> {
        let Serve {
            server,
            opts,
            secret,
            cfg,
            limits,
        } = self;
        let window = i64::try_from(cfg.tolerance_secs).unwrap_or(i64::MAX / 4) * 2;
        let spec = opts.store_spec();
        let store = store::Store::open(&spec, opts.ack, opts.queue_capacity, window)
            .with_context(|| format!("opening the store {spec}"))?;
        let app = Arc::new(App::<M, J>::new(
            secret,
            cfg,
            limits,
            opts.enable_null_endpoint,
            store,
        ));
        let workers = opts.workers();
        tracing::info!(
            server = opts.server.name(),
            hmac = M::NAME,
            json = J::NAME,
            workers,
            "starting"
        );
        match server {
            Verifying::Hyper => {
                server::hyper::run(app, opts.listen, workers).context("hyper server")
            }
            Verifying::Axum => server::axum::run(app, opts.listen, workers).context("axum server"),
            Verifying::May => server::may::run(app, opts.listen, workers).context("may server"),
            Verifying::Actix => {
                server::actix::run(app, opts.listen, workers).context("actix server")
            }
        }
    }
}

/// Logs to stderr; `RUST_LOG` sets the level (default `info`, with may's per-socket notices and
/// may_minihttp's "read closed" errors, logged for every client that hangs up, silenced, and
/// lapin's warning on a returned message off: it prints the whole message, a KYC body included;
/// the store logs the event itself).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,may=warn,may_minihttp=off,lapin::returned_messages=off",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

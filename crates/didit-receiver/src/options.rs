//! Command-line options of `didit-receiver`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use didit_webhook::{JsonKind, MacKind, Secret, SecretError, SignaturePolicy};

use crate::store::{AckMode, DEFAULT_SQLITE_PATH, StoreSpec};

/// Which HTTP server runs the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum ServerKind {
    /// hyper 1.x on a multi-threaded tokio runtime.
    Hyper,
    /// may_minihttp on stackful coroutines.
    May,
    /// axum with the reusable `DiditWebhook` extractor (what a team adopting the results runs).
    Axum,
    /// The tutorial-style peer: whole body into `serde_json::Value`, `hmac`+`sha2`, hex-string compare.
    AxumNaive,
    /// actix-web with the reusable `DiditWebhook` extractor, on actix's own server.
    Actix,
}

impl ServerKind {
    pub const ALL: [ServerKind; 5] = [
        ServerKind::Hyper,
        ServerKind::May,
        ServerKind::Axum,
        ServerKind::AxumNaive,
        ServerKind::Actix,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Hyper => "hyper",
            ServerKind::May => "may",
            ServerKind::Axum => "axum",
            ServerKind::AxumNaive => "axum-naive",
            ServerKind::Actix => "actix",
        }
    }
}

/// Receives Didit v3 webhooks: verifies them, de-duplicates retries and hands them to processing.
///
/// The shared secret is read from DIDIT_WEBHOOK_SECRET, or from --secret-file; never from a flag,
/// and it is never logged. Once the socket accepts connections the receiver prints one line,
/// `listening on <addr>`, to stdout (with the real port when --listen asks for port 0).
#[derive(Clone, Debug, Parser)]
#[command(
    name = "didit-receiver",
    version,
    max_term_width = 100,
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
pub struct Options {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Print the servers, HMAC and JSON backends this build has, as one JSON object
    /// (`{"servers":[…],"hmac":[…],"json":[…]}`), and exit: how the benchmark runner learns
    /// which variants this binary can run.
    #[arg(long)]
    pub list_backends: bool,

    /// HTTP server implementation.
    #[arg(long, value_enum, default_value = "hyper")]
    pub server: ServerKind,

    /// HMAC-SHA256 backend: ring, rustcrypto, aws-lc (null: measurement only, verifies nothing).
    #[arg(long, default_value = "ring")]
    pub hmac: MacKind,

    /// JSON backend for the envelope: serde, simd, sonic (null: measurement only).
    #[arg(long, default_value = "serde")]
    pub json: JsonKind,

    /// Signatures that authenticate a delivery: any (X-Signature or X-Signature-V2), raw, v2.
    #[arg(long, default_value = "any")]
    pub signature: SignaturePolicy,

    /// Also accept X-Signature-Simple, which authenticates only four body fields.
    #[arg(long)]
    pub accept_simple: bool,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    pub workers: Option<usize>,

    /// Largest accepted body, e.g. 1MiB, 256KiB, 65536.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Largest accepted clock difference with the signed timestamp, in either direction.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub tolerance: Duration,

    /// Serve POST /webhooks/null: reads the body and answers 200 without verifying (baseline).
    #[arg(long)]
    pub enable_null_endpoint: bool,

    /// Read the secret from this file (one trailing newline is removed) instead of the environment.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,

    /// Where verified events go: sqlite[:PATH] (durable, the default, file didit-webhooks.db in
    /// the working directory), nats://HOST:PORT (JetStream, for more than one receiver),
    /// amqp://[USER:PASS@]HOST:PORT/VHOST (a durable RabbitMQ queue; credentials from the URL or
    /// DIDIT_AMQP_USER / DIDIT_AMQP_PASSWORD), kafka://HOST:PORT/TOPIC (an idempotent producer,
    /// acks=all; the topic is created when missing), memory (lost at exit) or null (keeps nothing,
    /// for measuring what processing costs). axum-naive always keeps
    /// its state in memory.
    #[arg(long)]
    pub(crate) store: Option<StoreSpec>,

    /// When a durable store answers Didit: after-commit (200 once stored and synced, or confirmed
    /// by JetStream, RabbitMQ or Kafka) or after-enqueue (200 once queued: faster, and what is queued is lost if the
    /// process dies).
    #[arg(long, value_enum, default_value = "after-commit")]
    pub ack: AckMode,

    /// Capacity of the queue in front of processing; a full queue answers 503 with Retry-After.
    #[arg(long, default_value_t = 8192)]
    pub queue_capacity: usize,

    /// Time a client has to send a request's headers, and the longest a kept-alive connection may idle.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Time a client has to send a request's body.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// Most simultaneous connections; more wait in the kernel's backlog.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,

    /// Benchmark self-test only: burn this much CPU per verified delivery (e.g. 200us), so the
    /// runner's regression gate can be shown to catch a slowed variant.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub extra_work: Duration,
}

/// Work other than receiving.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Apply the JetStream stream (--store nats://...), RabbitMQ queue (--store amqp://...) or
    /// Kafka topic (--store kafka://...) that receivers publish to to a SQLite store.
    Consume(crate::store::ConsumeOptions),
}

/// What `--list-backends` prints: the real (non-null) backends compiled into this binary.
pub(crate) fn backends_json() -> String {
    serde_json::json!({
        "servers": ServerKind::ALL.map(ServerKind::name),
        "hmac": MacKind::REAL.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "json": JsonKind::REAL.iter().map(|j| j.name()).collect::<Vec<_>>(),
    })
    .to_string()
}

impl Options {
    /// The store to run with: `--store`, else SQLite at its default path (memory for axum-naive).
    pub(crate) fn store_spec(&self) -> StoreSpec {
        match (&self.store, self.server) {
            (Some(s), _) => s.clone(),
            (None, ServerKind::AxumNaive) => StoreSpec::Memory,
            (None, _) => StoreSpec::Sqlite(DEFAULT_SQLITE_PATH.into()),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}

pub(crate) use didit_webhook::body::parse_size;

/// Reads the secret: `--secret-file` if given, else `DIDIT_WEBHOOK_SECRET`, by the core's one
/// rule (Didit keys the HMAC with the UTF-8 bytes of the string; one trailing newline goes).
pub(crate) fn load_secret(opts: &Options) -> Result<Secret, SecretError> {
    Secret::load(
        opts.secret_file.as_deref(),
        |p| std::fs::read_to_string(p),
        |v| std::env::var(v).ok(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("2kB"), Ok(2000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn secret_files() {
        let dir = std::env::temp_dir().join(format!("didit-secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let with = |name: &str, content: Option<&str>| {
            let path = dir.join(name);
            if let Some(c) = content {
                std::fs::write(&path, c).expect("write");
            }
            let mut o = Options::parse_from(["didit-receiver"]);
            o.secret_file = Some(path);
            load_secret(&o)
        };
        // One trailing newline goes; everything else is the key, verbatim.
        let s = with("lf", Some(" a-b_c \n")).expect("loads");
        assert_eq!(s.expose(), b" a-b_c ");
        let s = with("crlf", Some("k\r\n")).expect("loads");
        assert_eq!(s.expose(), b"k");
        assert!(matches!(
            with("empty", Some("\n")),
            Err(SecretError::EmptyFile(_))
        ));
        assert!(matches!(
            with("missing", None),
            Err(SecretError::File { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn defaults_parse() {
        let o = Options::parse_from(["didit-receiver"]);
        assert_eq!(o.server, ServerKind::Hyper);
        assert_eq!(o.max_body, 1 << 20);
        assert_eq!(o.tolerance, Duration::from_secs(300));
        let o = Options::parse_from([
            "didit-receiver",
            "--server",
            "axum-naive",
            "--hmac",
            "aws-lc",
            "--json",
            "simd",
            "--signature",
            "v2",
        ]);
        assert_eq!(o.server, ServerKind::AxumNaive);
        assert_eq!(o.hmac, MacKind::AwsLc);
        assert_eq!(o.json, JsonKind::Simd);
        assert_eq!(o.signature, SignaturePolicy::V2);
        assert!(Options::try_parse_from(["didit-receiver", "--hmac", "md5"]).is_err());
        assert_eq!(
            o.store_spec(),
            StoreSpec::Memory,
            "the naive peer keeps state in memory"
        );
        let o = Options::parse_from(["didit-receiver"]);
        assert_eq!(
            o.store_spec(),
            StoreSpec::Sqlite(DEFAULT_SQLITE_PATH.into())
        );
        assert_eq!(o.ack, AckMode::AfterCommit);
        let o = Options::parse_from([
            "didit-receiver",
            "--store",
            "memory",
            "--ack",
            "after-enqueue",
        ]);
        assert_eq!(
            (o.store_spec(), o.ack),
            (StoreSpec::Memory, AckMode::AfterEnqueue)
        );
        assert!(Options::try_parse_from(["didit-receiver", "--store", "redis://x"]).is_err());
        let o = Options::parse_from(["didit-receiver", "consume", "--from", "nats://127.0.0.1:1"]);
        assert!(matches!(o.command, Some(Command::Consume(_))));
    }
}

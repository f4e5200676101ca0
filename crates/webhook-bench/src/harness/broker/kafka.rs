//! A Kafka-protocol broker: `tansu`, with its SQLite storage engine (durable on local disk), or
//! its in-memory engine (not durable), which splits the Kafka store's cost into the client and
//! protocol and tansu's storage.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::free_port;
use super::super::process::{Launch, Log, Process, Ready};
use super::{Broker, probe_connection};

/// The `tansu` release the Kafka store is tested against (`scripts/kafka-install.sh`).
pub const TANSU_VERSION: &str = "0.6.0";

/// The `tansu` binary: on `PATH`, else in Cargo's bin folder (`$CARGO_HOME/bin`, default
/// `~/.cargo/bin`), where `scripts/kafka-install.sh` puts it.
pub fn tansu_bin() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin"));
    on_path
        .into_iter()
        .chain(cargo_bin)
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("tansu is not installed; `bash scripts/kafka-install.sh` builds tansu {TANSU_VERSION} with cargo (scripts/test.sh and scripts/bench.sh do)")
        })
}

/// Where a build of `tansu` with its in-memory engine is kept (the `dynostore` feature, a second
/// build, so apart from the SQLite-only one): `$DIDIT_TANSU_MEMORY_ROOT/bin/tansu`, default
/// `~/.cache/didit-webhook-bench/tansu-memory/bin/tansu` (`scripts/kafka-install.sh --memory`).
pub fn tansu_memory_bin() -> Result<PathBuf, String> {
    let root = std::env::var_os("DIDIT_TANSU_MEMORY_ROOT")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/didit-webhook-bench/tansu-memory"))
        })
        .ok_or("neither DIDIT_TANSU_MEMORY_ROOT nor HOME is set")?;
    let bin = root.join("bin").join("tansu");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "tansu with its in-memory engine is not installed at {}; `bash scripts/kafka-install.sh --memory` builds it (scripts/bench.sh does for a kafka-memory variant)",
            bin.display()
        ))
    }
}

/// tansu's storage engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite://tansu.db` in the broker's folder: durable on local disk.
    Sqlite,
    /// `memory://tansu/`: nothing survives the broker; for measuring only.
    Memory,
}

/// A running `tansu` broker (Apache Kafka protocol), killed (as a crash) when dropped.
#[derive(Debug)]
pub struct Kafka {
    process: Option<Process>,
    port: u16,
    dir: PathBuf,
    cpus: Option<String>,
    engine: Engine,
}

impl Kafka {
    /// Starts `tansu broker` in `dir` (created; it must hold nothing but an earlier run of this
    /// broker: tansu reads a `.env` from its working directory, and its SQLite path is relative
    /// to it) on a free loopback port, pinned to the core list `cpus` when given; returns once it answers a
    /// Kafka `ApiVersions` request (at most 10 s).
    pub fn start(dir: &Path, cpus: Option<String>) -> Result<Kafka, String> {
        Kafka::start_with(Engine::Sqlite, dir, cpus)
    }

    /// The same with the given storage engine.
    pub fn start_with(engine: Engine, dir: &Path, cpus: Option<String>) -> Result<Kafka, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut k = Kafka {
            process: None,
            port: free_port()?,
            dir: dir.to_owned(),
            cpus,
            engine,
        };
        k.boot()?;
        Ok(k)
    }

    /// `kafka://127.0.0.1:<port>/<topic>`, the receivers' `--store` and `consume --from`.
    pub fn url_of(&self, topic: &str) -> String {
        format!("kafka://127.0.0.1:{}/{topic}", self.port)
    }
}

impl Broker for Kafka {
    /// The topic the receivers publish to by default, `didit.webhooks`.
    fn url(&self) -> String {
        self.url_of("didit.webhooks")
    }

    fn boot(&mut self) -> Result<(), String> {
        let (bin, storage) = match self.engine {
            Engine::Sqlite => (tansu_bin()?, "sqlite://tansu.db"),
            Engine::Memory => (tansu_memory_bin()?, "memory://tansu/"),
        };
        // Advertise 127.0.0.1, not localhost: librdkafka may resolve localhost to ::1, where
        // nothing listens.
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.dir.join("tansu.log"))
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let process = Launch::new("tansu", &bin)
            .dir(&self.dir)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", storage])
            // Its settings come from these flags only, not from the caller's environment.
            .env_remove("CLUSTER_ID")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("DATA_LAKE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("RUST_LOG", "warn")
            .cpus(self.cpus.clone())
            .log(Log::File(log))
            .ready(
                Ready::Answers(self.port, kafka_answers),
                Duration::from_secs(10),
            )
            .start()
            .map_err(|e| format!("{e}; see {}", self.dir.join("tansu.log").display()))?;
        self.process = Some(process);
        Ok(())
    }

    fn running(&self) -> Option<&Process> {
        self.process.as_ref()
    }

    fn take_running(&mut self) -> Option<Process> {
        self.process.take()
    }

    fn deduplicates(&self) -> bool {
        false
    }
}

/// Whether something on `port` answers a Kafka `ApiVersions` (v0) request with a response of the
/// same correlation id (a bare TCP accept is not proof that the broker is serving).
fn kafka_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Some(mut s) = probe_connection(port) else {
        return false;
    };
    let client = b"didit-bench";
    let mut req = Vec::new();
    req.extend_from_slice(&18i16.to_be_bytes()); // api_key: ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // api_version
    req.extend_from_slice(&7i32.to_be_bytes()); // correlation_id
    req.extend_from_slice(&(client.len() as i16).to_be_bytes());
    req.extend_from_slice(client);
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    if s.write_all(&frame).is_err() {
        return false;
    }
    // Size, correlation id, error code.
    let mut head = [0u8; 10];
    s.read_exact(&mut head).is_ok()
        && i32::from_be_bytes([head[4], head[5], head[6], head[7]]) == 7
        && head[8..10] == [0, 0]
}

//! Throwaway brokers on loopback, for the benchmark runner and the tests: a JetStream
//! `nats-server` (alone, or a cluster of routed nodes), a RabbitMQ node and a Kafka-protocol
//! broker (`tansu`), each on its own free ports with its own data folder, so they never meet the
//! system's broker or another run's. `nats-server` and RabbitMQ come from Debian's packages,
//! `tansu` from crates.io (`scripts/bench.sh` and `scripts/test.sh` install them). Each runs as
//! a [`Process`] of the harness: pinned, probed until it serves, killed as a crash when dropped.
//! A RabbitMQ node takes a few seconds to boot; its own node name, ports (AMQP, Erlang
//! distribution, epmd) keep it apart.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::process::{Launch, Log, Process, Ready};
use super::{command, free_port, free_ports};

/// How long a node may take to boot before it counts as failed.
const BOOT_LIMIT: Duration = Duration::from_secs(60);

/// Where Debian puts the scripts that run the node as the calling user (`/usr/sbin`'s wrapper
/// switches to the `rabbitmq` user and drops the environment this module sets).
const SCRIPT_DIRS: [&str; 2] = ["/usr/lib/rabbitmq/bin", "/usr/local/lib/rabbitmq/bin"];

/// A running JetStream `nats-server`, killed (as a crash) when dropped.
#[derive(Debug)]
pub struct Nats {
    process: Process,
    port: u16,
    dir: PathBuf,
    cpus: Option<String>,
}

/// What to do when `nats-server` cannot be started.
const NATS_HINT: &str = "is nats-server installed? `apt-get install nats-server` (scripts/bench.sh and scripts/test.sh do)";

impl Nats {
    /// Starts `nats-server -js` with its storage in `dir`, on `port` (default: a free one),
    /// pinned to the `taskset -c` list `cpus` when given; returns once it accepts connections
    /// (at most 10 s).
    pub fn start(dir: &Path, port: Option<u16>, cpus: Option<String>) -> Result<Nats, String> {
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let process = Launch::new("nats-server", "nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .cpus(cpus.clone())
            .ready(Ready::Port(port), Duration::from_secs(10))
            .install_hint(NATS_HINT)
            .start()?;
        Ok(Nats {
            process,
            port,
            dir: dir.to_owned(),
            cpus,
        })
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    /// SIGKILL, then, after `down_for`, a new server on the same port and storage.
    pub fn crash_and_restart(mut self, down_for: Duration) -> Result<Nats, String> {
        self.process.kill();
        std::thread::sleep(down_for);
        Nats::start(&self.dir, Some(self.port), self.cpus.take())
    }
}

/// A JetStream cluster of `nats-server` nodes on loopback, routed to each other, each with its
/// own client, cluster and monitoring port and its own storage: the scale-out deployment, on one
/// machine. Every node is killed (as a crash) when dropped.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

#[derive(Debug)]
struct Node {
    process: Option<Process>,
    client: u16,
    route: u16,
    monitor: u16,
}

impl NatsCluster {
    /// Starts `n` nodes named `n0`, `n1`, … in `dir` and waits (at most 30 s) until JetStream
    /// has a meta leader, so that a stream can be created. A start that fails (a port taken by a
    /// parallel test between choosing and binding it, or no leader in time) is retried on fresh
    /// ports, with `dir` emptied first, up to three times; the error holds each attempt's reason
    /// and every node's last log lines.
    pub fn start(dir: &Path, n: usize) -> Result<NatsCluster, String> {
        const ATTEMPTS: usize = 3;
        let mut failures = Vec::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // The failed attempt's half-made cluster state must not greet the next one.
                let _ = std::fs::remove_dir_all(dir);
            }
            match Self::try_start(dir, n) {
                Ok(c) => return Ok(c),
                Err(why) => failures.push(why),
            }
        }
        Err(format!(
            "the {n}-node NATS cluster did not start in {ATTEMPTS} attempts: {}",
            failures.join("; then ")
        ))
    }

    fn try_start(dir: &Path, n: usize) -> Result<NatsCluster, String> {
        let ports = free_ports(3 * n)?;
        let mut c = NatsCluster {
            nodes: ports
                .chunks(3)
                .map(|p| Node {
                    process: None,
                    client: p[0],
                    route: p[1],
                    monitor: p[2],
                })
                .collect(),
            dir: dir.to_owned(),
        };
        for i in 0..n {
            if let Err(why) = c.spawn(i) {
                return Err(format!("{why}{}", c.logs()));
            }
        }
        if !c.wait_for(Duration::from_secs(30), |c| c.meta_leader().is_some()) {
            return Err(format!("no JetStream meta leader within 30 s{}", c.logs()));
        }
        Ok(c)
    }

    /// Every running node's last log lines, for an error message.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, n.process.as_ref()?.log_tail(3))))
            .map(|(i, log)| format!("; n{i}'s log: {log}"))
            .collect()
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.route))
            .collect();
        let node = &self.nodes[i];
        let process = Launch::new(format!("nats-server n{i}"), "nats-server")
            .args(["-js", "-a", "127.0.0.1", "-n", &format!("n{i}")])
            .args([
                "-p",
                &node.client.to_string(),
                "-m",
                &node.monitor.to_string(),
            ])
            .args(["--cluster_name", "didit"])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", node.route)])
            .args(["--routes", &routes.join(",")])
            .arg("-sd")
            .arg(self.dir.join(format!("n{i}")))
            .ready(Ready::Port(node.client), Duration::from_secs(10))
            .install_hint(NATS_HINT)
            .start()?;
        self.nodes[i].process = Some(process);
        Ok(())
    }

    /// The client URL listing every node, as a receiver's `--store` takes it.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILL of node `i`: no shutdown, as in a crash.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            p.kill();
        }
    }

    /// Starts node `i` again on its ports and its storage.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.kill(i);
        self.spawn(i)
    }

    /// `/jsz` of the first node that answers, with its accounts' streams.
    fn jsz(&self) -> Option<serde_json::Value> {
        self.nodes
            .iter()
            .filter(|n| n.process.is_some())
            .find_map(|n| http_get_json(n.monitor, "/jsz?accounts=true&streams=true"))
    }

    fn meta_leader(&self) -> Option<String> {
        let v = self.jsz()?;
        v["meta_cluster"]["leader"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The node that leads `stream`'s replicas, if one does.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let v = self.jsz()?;
        let accounts = v["account_details"].as_array()?;
        let leader = accounts.iter().find_map(|a| {
            a["stream_detail"].as_array()?.iter().find_map(|s| {
                (s["name"] == stream).then(|| s["cluster"]["leader"].as_str().map(str::to_owned))?
            })
        })?;
        leader.strip_prefix('n')?.parse().ok()
    }

    /// Waits until `ok` holds, at most `within`; whether it did.
    pub fn wait_for(&self, within: Duration, ok: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if ok(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// `GET path` on a loopback monitoring port, its body as JSON.
fn http_get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut s = probe_connection(port)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    serde_json::from_slice(&buf[at..]).ok()
}

/// A running RabbitMQ node.
#[derive(Debug)]
pub struct RabbitMq {
    process: Option<Process>,
    port: u16,
    dist_port: u16,
    epmd_port: u16,
    dir: PathBuf,
    node: String,
    cpus: Option<String>,
}

fn script() -> Result<PathBuf, String> {
    SCRIPT_DIRS
        .iter()
        .map(|d| Path::new(d).join("rabbitmq-server"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            "rabbitmq-server is not installed; `apt-get install rabbitmq-server` (scripts/test.sh and scripts/bench.sh do)".into()
        })
}

impl RabbitMq {
    /// Boots a node keeping its data in `dir`, pinned to the core list `cpus` when given, and waits until it
    /// accepts AMQP connections.
    pub fn start(dir: &Path, cpus: Option<String>) -> Result<RabbitMq, String> {
        static NODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let node = format!("didit-{}-{n}@localhost", std::process::id());
        let [port, dist_port, epmd_port] = free_ports(3)?[..] else {
            unreachable!("free_ports returns as many ports as asked")
        };
        let mut mq = RabbitMq {
            process: None,
            port,
            dist_port,
            epmd_port,
            dir: dir.to_owned(),
            node,
            cpus,
        };
        mq.boot()?;
        Ok(mq)
    }

    /// The running node (its script and Erlang VM, one process group), if it is up.
    pub fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }

    /// `amqp://127.0.0.1:<port>/%2f` (the default vhost; guest/guest works from loopback).
    pub fn url(&self) -> String {
        format!("amqp://127.0.0.1:{}/%2f", self.port)
    }

    /// The environment that names this node, for the server and for `rabbitmqctl`.
    fn node_env(&self) -> Vec<(&'static str, OsString)> {
        let d = &self.dir;
        let path = |p: PathBuf| p.into_os_string();
        vec![
            ("HOME", path(d.clone())),
            ("RABBITMQ_NODENAME", self.node.clone().into()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT", self.port.to_string().into()),
            ("RABBITMQ_DIST_PORT", self.dist_port.to_string().into()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            ("ERL_EPMD_PORT", self.epmd_port.to_string().into()),
            // Lets `epmd -kill` stop the port mapper at the end even if it still lists the node.
            ("ERL_EPMD_RELAXED_COMMAND_CHECK", "1".into()),
            ("RABBITMQ_MNESIA_BASE", path(d.join("mnesia"))),
            ("RABBITMQ_LOG_BASE", path(d.join("log"))),
            ("RABBITMQ_LOGS", path(d.join("log").join("rabbit.log"))),
            ("RABBITMQ_GENERATED_CONFIG_DIR", path(d.join("config"))),
            (
                "RABBITMQ_CONFIG_FILE",
                path(d.join("config").join("rabbitmq")),
            ),
            ("RABBITMQ_CONF_ENV_FILE", path(d.join("rabbitmq-env.conf"))),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                path(d.join("enabled_plugins")),
            ),
            ("RABBITMQ_PID_FILE", path(d.join("rabbit.pid"))),
            // A killed VM may leave a crash dump: in its folder, not the caller's working directory.
            ("ERL_CRASH_DUMP", path(d.join("erl_crash.dump"))),
        ]
    }

    /// Runs `rabbitmqctl ARGS` against this node (an Erlang VM of its own: a second or two).
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let ctl = script()?.with_file_name("rabbitmqctl");
        let out = command(&ctl)
            .envs(self.node_env())
            .args(["-n", &self.node])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", ctl.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "rabbitmqctl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn boot(&mut self) -> Result<(), String> {
        let script = script()?;
        let d = &self.dir.clone();
        for sub in ["mnesia", "log", "config"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        // No plugins (no management UI): less to boot, nothing else listening.
        std::fs::write(d.join("enabled_plugins"), "[].\n")
            .map_err(|e| format!("{}: {e}", d.display()))?;
        let mut launch = Launch::new("rabbitmq-server", &script)
            // Its own process group: the script starts the Erlang VM as a child, and a crash
            // test must kill both at once.
            .group()
            .cpus(self.cpus.clone())
            .ready(Ready::Answers(self.port, amqp_answers), BOOT_LIMIT);
        for (k, v) in self.node_env() {
            launch = launch.env(k, v);
        }
        if self.cpus.is_some() {
            // One scheduler on the one core it gets, as the other brokers get.
            launch = launch.env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "+S 1:1");
        }
        let process = launch
            .start()
            .map_err(|e| format!("{e}; see {}", d.join("log").display()))?;
        self.process = Some(process);
        Ok(())
    }

    /// SIGKILL to the node and its script, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// A crash, `down_for` without a broker, then the same node on the same ports and data.
    pub fn crash_and_restart(&mut self, down_for: Duration) -> Result<(), String> {
        self.kill9();
        std::thread::sleep(down_for);
        self.boot()
    }
}

/// Whether something on `port` answers an AMQP 0-9-1 protocol header with `connection.start`
/// (RabbitMQ opens its listener late in boot, but a bare TCP accept is not proof enough).
fn amqp_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Some(mut s) = probe_connection(port) else {
        return false;
    };
    if s.write_all(b"AMQP\x00\x00\x09\x01").is_err() {
        return false;
    }
    let mut frame = [0u8; 8];
    // A method frame (type 1) on channel 0.
    s.read_exact(&mut frame).is_ok() && frame[0] == 1 && frame[1..3] == [0, 0]
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.kill9();
        // The Erlang port mapper the node started on its own port outlives the node.
        let _ = command("epmd")
            .args(["-port", &self.epmd_port.to_string(), "-kill"])
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

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

/// A running `tansu` broker (Apache Kafka protocol, SQLite storage engine), killed (as a crash)
/// when dropped.
#[derive(Debug)]
pub struct Kafka {
    process: Option<Process>,
    port: u16,
    dir: PathBuf,
    cpus: Option<String>,
}

impl Kafka {
    /// Starts `tansu broker` in `dir` (created; it must hold nothing but an earlier run of this
    /// broker: tansu reads a `.env` from its working directory, and its SQLite path is relative
    /// to it) on a free loopback port, pinned to the core list `cpus` when given; returns once it answers a
    /// Kafka `ApiVersions` request (at most 10 s).
    pub fn start(dir: &Path, cpus: Option<String>) -> Result<Kafka, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut k = Kafka {
            process: None,
            port: free_port()?,
            dir: dir.to_owned(),
            cpus,
        };
        k.boot()?;
        Ok(k)
    }

    /// The running broker, if it is up.
    pub fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }

    /// `kafka://127.0.0.1:<port>/<topic>`, the receivers' `--store` and `consume --from`.
    pub fn url(&self, topic: &str) -> String {
        format!("kafka://127.0.0.1:{}/{topic}", self.port)
    }

    fn boot(&mut self) -> Result<(), String> {
        let bin = tansu_bin()?;
        // Advertise 127.0.0.1, not localhost: librdkafka may resolve localhost to ::1, where
        // nothing listens.
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.dir.join("tansu.log"))
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let process = Launch::new("tansu", &bin)
            .dir(&self.dir)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
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

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// A crash, `down_for` without a broker, then a new one on the same port and storage.
    pub fn crash_and_restart(&mut self, down_for: Duration) -> Result<(), String> {
        self.kill9();
        std::thread::sleep(down_for);
        self.boot()
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

/// A loopback connection for a readiness probe, whose answer may take at most 2 s.
fn probe_connection(port: u16) -> Option<std::net::TcpStream> {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    Some(s)
}

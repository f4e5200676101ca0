//! RabbitMQ: one node. It takes a few seconds to boot; its own node name and ports (AMQP, Erlang
//! distribution, epmd) keep it apart.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::super::process::{Launch, Process, Ready};
use super::super::{command, free_ports};
use super::{Broker, probe_connection};

/// How long a node may take to boot before it counts as failed.
const BOOT_LIMIT: Duration = Duration::from_secs(60);

/// Where Debian puts the scripts that run the node as the calling user (`/usr/sbin`'s wrapper
/// switches to the `rabbitmq` user and drops the environment this module sets).
const SCRIPT_DIRS: [&str; 2] = ["/usr/lib/rabbitmq/bin", "/usr/local/lib/rabbitmq/bin"];

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
}

impl Broker for RabbitMq {
    /// `amqp://127.0.0.1:<port>/%2f` (the default vhost; guest/guest works from loopback).
    fn url(&self) -> String {
        format!("amqp://127.0.0.1:{}/%2f", self.port)
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

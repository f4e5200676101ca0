//! JetStream: one `nats-server`, or a cluster of routed nodes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::process::{Launch, Process, Ready};
use super::super::{free_port, free_ports};
use super::{Broker, probe_connection};

/// A running JetStream `nats-server`, killed (as a crash) when dropped.
#[derive(Debug)]
pub struct Nats {
    process: Option<Process>,
    port: u16,
    dir: PathBuf,
    cpus: Option<String>,
}

/// What to do when `nats-server` cannot be started.
const NATS_HINT: &str = "is nats-server installed? `apt-get install nats-server` (scripts/bench.sh and scripts/test.sh do)";

impl Nats {
    /// Starts `nats-server -js` with its storage in `dir` on a free port, pinned to the
    /// `taskset -c` list `cpus` when given; returns once it accepts connections (at most 10 s).
    pub fn start(dir: &Path, cpus: Option<String>) -> Result<Nats, String> {
        let mut n = Nats {
            process: None,
            port: free_port()?,
            dir: dir.to_owned(),
            cpus,
        };
        n.boot()?;
        Ok(n)
    }
}

impl Broker for Nats {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn boot(&mut self) -> Result<(), String> {
        let process = Launch::new("nats-server", "nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .cpus(self.cpus.clone())
            .ready(Ready::Port(self.port), Duration::from_secs(10))
            .install_hint(NATS_HINT)
            .start()?;
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
        true
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

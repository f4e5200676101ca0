//! A receiver under test, whichever kind: a built-in variant (the `didit-receiver` binary with
//! the variant's flags, and a fresh broker or SQLite file when its store is one), a command
//! written elsewhere (`--receiver NAME=CMD`), or one that is already running (`--target`).

use std::path::PathBuf;
use std::time::Duration;

use super::broker::Broker;
use super::process::{Launch, Process, Ready};
use super::{CpuSet, free_port};
use crate::matrix::{Backends, StoreKind, Variant};

/// The secret every receiver the harness starts is given (in `DIDIT_WEBHOOK_SECRET`).
pub const SECRET: &str = "webhook-bench-secret-not-a-real-key";

/// What the harness needs to start receivers: where the binaries are, which cores they get.
#[derive(Clone, Debug)]
pub struct Harness {
    /// The folder with `didit-receiver` (and `didit-loadgen`).
    pub bin_dir: PathBuf,
    /// `taskset -c` list for the receiver (unpinned if `None`).
    pub cpus: Option<String>,
    /// `taskset -c` list for the broker a receiver publishes to: cores of its own when the
    /// machine has them to spare, else (`None`) the receiver's.
    pub broker_cpus: Option<String>,
    /// Worker threads (ours: `--workers`) or processes (an external command's `{workers}`): the
    /// size of the receiver's core set.
    pub workers: usize,
    /// More `didit-receiver` flags, after the variant's own (the soak passes `--tolerance`).
    pub receiver_args: Vec<String>,
    /// A program and its flags that our receiver runs under (`valgrind --tool=callgrind …`
    /// to count its instructions); empty: none.
    pub wrap: Vec<String>,
}

/// A started (or already running) receiver, with the broker it publishes to when its store is
/// one. Stopping it stops the broker and removes the store's files.
#[derive(Debug)]
pub struct Receiver {
    process: Option<Process>,
    pub addr: String,
    /// Written elsewhere: its answers are judged by status code only, its bodies being its own.
    pub foreign: bool,
    /// The broker it publishes to, started for it; dropped (killed) with it.
    broker: Option<Box<dyn Broker>>,
    /// Store files and folders to remove after the run.
    scratch: Option<PathBuf>,
}

/// What the `didit-receiver` in `bin_dir` can run, as it says itself (`--list-backends`).
pub fn backends(bin_dir: &std::path::Path) -> Result<Backends, String> {
    let bin = bin_dir.join("didit-receiver");
    let out = super::command(&bin)
        .arg("--list-backends")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --list-backends failed ({}): {}; is it this version's receiver?",
            bin.display(),
            out.status,
            super::last_lines(&String::from_utf8_lossy(&out.stderr), 3)
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{} --list-backends: {e}", bin.display()))
}

impl Harness {
    /// What this harness's receiver binary can run.
    pub fn backends(&self) -> Result<Backends, String> {
        backends(&self.bin_dir)
    }

    /// Unpinned, one worker, no extra flags.
    pub fn new(bin_dir: PathBuf) -> Harness {
        Harness {
            bin_dir,
            cpus: None,
            broker_cpus: None,
            workers: 1,
            receiver_args: Vec::new(),
            wrap: Vec::new(),
        }
    }

    /// Pinned for a measurement: the receiver to `receiver` (one worker per core), its broker
    /// to the cores neither it nor the `generator` uses, or to the receiver's when none are left.
    pub fn pinned(bin_dir: PathBuf, receiver: &CpuSet, generator: &CpuSet) -> Harness {
        Harness {
            bin_dir,
            cpus: Some(receiver.to_string()),
            broker_cpus: CpuSet::spare(super::machine_cores(), &[receiver, generator])
                .map(|c| c.to_string()),
            workers: receiver.len(),
            receiver_args: Vec::new(),
            wrap: Vec::new(),
        }
    }

    /// Starts `v`: ours, or its external command; ready when it announces its address (ours) or
    /// accepts connections (an external one).
    pub fn start(&self, v: &Variant) -> Result<Receiver, String> {
        match &v.external {
            Some(ext) => self.start_external(&v.name, &ext.cmd),
            None => self.start_builtin(v),
        }
    }

    /// `sh -c CMD` with `{port}` replaced by a free loopback port and `{workers}` by the worker
    /// count, the secret in
    /// `DIDIT_WEBHOOK_SECRET` (and the port in `PORT`), pinned with everything it starts, in a
    /// process group of its own.
    pub fn start_external(&self, name: &str, cmd: &str) -> Result<Receiver, String> {
        let port = free_port()?;
        let cmd = cmd
            .replace("{port}", &port.to_string())
            .replace("{workers}", &self.workers.max(1).to_string());
        let process = Launch::shell(name, &cmd)
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .env("PORT", port.to_string())
            .cpus(self.cpus.clone())
            .group()
            .ready(Ready::Port(port), Duration::from_secs(30))
            .start()
            .map_err(|e| format!("{e} (command: `{cmd}`)"))?;
        Ok(Receiver {
            addr: process.addr.to_string(),
            process: Some(process),
            foreign: true,
            broker: None,
            scratch: None,
        })
    }

    fn start_builtin(&self, v: &Variant) -> Result<Receiver, String> {
        let bin = self.bin_dir.join("didit-receiver");
        let (store, broker, scratch) = self.prepare_store(v)?;
        let mut rx = Receiver {
            process: None,
            addr: String::new(),
            foreign: false,
            broker,
            scratch,
        };
        let label = format!("receiver {}", v.name);
        let launch = match self.wrap.split_first() {
            // Valgrind takes seconds to load the binary and its debug info.
            Some((program, flags)) => Launch::new(label, program)
                .args(flags)
                .arg(bin)
                .ready(Ready::Announced, Duration::from_secs(120)),
            None => Launch::new(label, bin),
        };
        let process = launch
            .args(v.args(&store))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--workers",
                &self.workers.max(1).to_string(),
                "--enable-null-endpoint",
                "--queue-capacity",
                "1048576",
            ])
            .args(&self.receiver_args)
            .env("DIDIT_WEBHOOK_SECRET", SECRET)
            .env("RUST_LOG", "warn,may_minihttp=off")
            .cpus(self.cpus.clone())
            .start()?; // on error, dropping `rx` stops the broker and removes the store
        rx.addr = process.addr.to_string();
        rx.process = Some(process);
        Ok(rx)
    }

    /// Fresh store state for every receiver start: a new SQLite file, or a new `nats-server`,
    /// RabbitMQ node or `tansu` Kafka broker (on the broker's cores, or the receiver's when there are none to spare)
    /// with empty storage, so no run inherits another's backlog.
    #[allow(clippy::type_complexity)]
    fn prepare_store(
        &self,
        v: &Variant,
    ) -> Result<(String, Option<Box<dyn Broker>>, Option<PathBuf>), String> {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("webhook-bench-{}-{n}", std::process::id()));
        let cpus = self.broker_cpus.clone().or_else(|| self.cpus.clone());
        let clean = |e: String| {
            let _ = std::fs::remove_dir_all(&dir);
            e
        };
        match v.store {
            StoreKind::Memory => Ok(("memory".into(), None, None)),
            StoreKind::Null => Ok(("null".into(), None, None)),
            StoreKind::Sqlite | StoreKind::SqliteEnqueue => {
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let url = format!("sqlite:{}", dir.join("store.db").display());
                Ok((url, None, Some(dir)))
            }
            // Every other store publishes to a broker, started for this receiver alone.
            _ => match super::broker::start(v.store, &dir, cpus) {
                Some(Ok(b)) => Ok((b.url(), Some(b), Some(dir))),
                Some(Err(e)) => Err(clean(e)),
                None => Err(clean(format!("{}: no broker to start", v.name))),
            },
        }
    }
}

impl Receiver {
    /// The pids of the broker it publishes to (its whole process group for RabbitMQ), for
    /// accounting the broker's CPU beside the receiver's; empty without one.
    pub fn broker_pids(&self) -> Vec<u32> {
        self.broker.as_ref().map(|b| b.pids()).unwrap_or_default()
    }

    /// One that already runs (`verify --target`): nothing to start, pin or stop.
    pub fn running(addr: impl Into<String>) -> Receiver {
        Receiver {
            process: None,
            addr: addr.into(),
            foreign: true,
            broker: None,
            scratch: None,
        }
    }

    /// The process the harness started, if it started one.
    pub fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }

    /// How the generator is told whose CPU to account: the process, or its whole group.
    pub fn cpu_args(&self) -> Vec<String> {
        match &self.process {
            Some(p) if p.is_group() => vec!["--receiver-pgid".into(), p.pid().to_string()],
            Some(p) => vec!["--receiver-pid".into(), p.pid().to_string()],
            None => Vec::new(),
        }
    }

    /// How the generator judges its answers (`didit-loadgen --judge`).
    pub fn judge(&self) -> &'static str {
        if self.foreign {
            "status"
        } else {
            "status-and-body"
        }
    }

    /// `Err` if the receiver the harness started is no longer running.
    pub fn alive(&mut self) -> Result<(), String> {
        match &mut self.process {
            Some(p) => p.check_alive(),
            None => Ok(()),
        }
    }

    /// Peak RSS in KiB: of the process, or summed over its group's processes.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.process.as_ref().and_then(Process::peak_rss_kib)
    }

    /// SIGTERM (to the group of an external one), SIGKILL after 20 s; then its broker and files.
    pub fn stop(mut self) {
        if let Some(p) = self.process.take() {
            p.stop(Duration::from_secs(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.process.take());
        // Dropping a broker kills it (and RabbitMQ's port mapper).
        drop(self.broker.take());
        if let Some(d) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

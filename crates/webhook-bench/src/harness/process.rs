//! Spawning, readiness, pinning and teardown of one process under test: a receiver of ours, a
//! peer, a receiver written elsewhere, a deliberately broken one in a test.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A command for a program that is run to completion (`output()`, `status()`): a tool such as
/// `kill`, `rabbitmqctl` or `prlimit`, or one of our binaries doing a bounded job. What keeps
/// running while something else happens is started with [`Launch`], which waits until it is
/// ready and stops it.
#[allow(
    clippy::disallowed_methods,
    reason = "the harness is where processes start (clippy.toml)"
)]
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::new(program)
}

/// When a started process counts as ready.
#[derive(Clone, Copy, Debug)]
pub enum Ready {
    /// It prints `listening on <addr>` as its first stdout line (ours, the peers, test doubles).
    Announced,
    /// It accepts TCP connections on this loopback port (a receiver written elsewhere).
    Port(u16),
    /// It answers the probe on this loopback port: a broker, for which an accepted connection
    /// is not proof that it serves (RabbitMQ listens before it has booted).
    Answers(u16, fn(u16) -> bool),
}

/// Where a process's stderr goes.
#[derive(Debug)]
pub enum Log {
    /// A file of its own in the temporary folder: its last lines explain a failed start, and
    /// a chatty process can never block on a full pipe.
    Temp,
    /// The caller's stderr (tests, whose output the test harness captures).
    Inherit,
    /// A file the caller opened.
    File(std::fs::File),
}

/// A process to start: the program and arguments, the secret, the core set, readiness.
#[derive(Debug)]
pub struct Launch {
    label: String,
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cpus: Option<String>,
    group: bool,
    dir: Option<PathBuf>,
    ready: Ready,
    within: Duration,
    log: Log,
    install_hint: Option<String>,
}

impl Launch {
    /// `program`, labelled `label` in every message; ready when it announces its address.
    pub fn new(label: impl Into<String>, program: impl Into<OsString>) -> Launch {
        Launch {
            label: label.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cpus: None,
            group: false,
            dir: None,
            ready: Ready::Announced,
            within: Duration::from_secs(20),
            log: Log::Temp,
            install_hint: None,
        }
    }

    /// `sh -c CMD`: a command line written by a person (`--receiver NAME=CMD`).
    pub fn shell(label: impl Into<String>, cmd: &str) -> Launch {
        Launch::new(label, "sh").args(["-c", cmd])
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Launch {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Launch {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Launch {
        self.env.push((k.into(), Some(v.into())));
        self
    }

    pub fn env_remove(mut self, k: impl Into<OsString>) -> Launch {
        self.env.push((k.into(), None));
        self
    }

    /// Pins it, and every process it starts, to a `taskset -c` core list such as `0` or `0-3`.
    pub fn cpus(mut self, list: Option<String>) -> Launch {
        self.cpus = list;
        self
    }

    /// Runs it in a process group of its own, measured and stopped as a whole (a shell, a
    /// Node cluster, uvicorn workers).
    pub fn group(mut self) -> Launch {
        self.group = true;
        self
    }

    /// Runs it in `dir` (a broker that reads its settings or keeps its data relative to it).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Launch {
        self.dir = Some(dir.into());
        self
    }

    pub fn ready(mut self, ready: Ready, within: Duration) -> Launch {
        self.ready = ready;
        self.within = within;
        self
    }

    pub fn log(mut self, log: Log) -> Launch {
        self.log = log;
        self
    }

    /// What to tell the user when the program cannot be run at all (not when it runs and
    /// fails: then its own log says why).
    pub fn install_hint(mut self, hint: impl Into<String>) -> Launch {
        self.install_hint = Some(hint.into());
        self
    }

    /// Starts it and waits until it is ready; `Err` says why not, with its last log lines.
    pub fn start(self) -> Result<Process, String> {
        use std::os::unix::process::CommandExt;
        let mut cmd = match &self.cpus {
            Some(list) => {
                let mut c = command("taskset");
                c.args(["-c", list]).arg(&self.program);
                c
            }
            None => command(&self.program),
        };
        cmd.args(&self.args).stdin(Stdio::null());
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdout(match self.ready {
            Ready::Announced => Stdio::piped(),
            Ready::Port(_) | Ready::Answers(..) => Stdio::null(),
        });
        let log_path = match self.log {
            Log::Temp => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir()
                    .join(format!("webhook-bench-{}-{n}.log", std::process::id()));
                let f = std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                cmd.stderr(f);
                Some(p)
            }
            Log::Inherit => {
                cmd.stderr(Stdio::inherit());
                None
            }
            Log::File(f) => {
                cmd.stderr(f);
                None
            }
        };
        if self.group {
            cmd.process_group(0);
        }
        let what = |program: &OsString| {
            if self.cpus.is_some() {
                format!("{} under taskset", program.to_string_lossy())
            } else {
                program.to_string_lossy().into_owned()
            }
        };
        let child = cmd.spawn().map_err(|e| {
            let hint = self
                .install_hint
                .as_ref()
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            format!(
                "{}: cannot start {}: {e}{hint}",
                self.label,
                what(&self.program)
            )
        })?;
        let mut p = Process {
            child,
            group: self.group,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            label: self.label,
            log: log_path,
        };
        match p.wait_ready(self.ready, self.within) {
            Ok(addr) => {
                p.addr = addr;
                Ok(p)
            }
            Err(why) => {
                p.kill();
                let log = p.log_tail(3);
                Err(format!(
                    "{}: {why}{}",
                    p.label,
                    if log.is_empty() {
                        String::new()
                    } else {
                        format!("; its log: {log}")
                    }
                ))
            }
        }
    }
}

/// A started process, killed (with its group) when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    group: bool,
    /// The address it listens on.
    pub addr: SocketAddr,
    pub label: String,
    log: Option<PathBuf>,
}

impl Process {
    fn wait_ready(&mut self, ready: Ready, within: Duration) -> Result<SocketAddr, String> {
        match ready {
            Ready::Announced => {
                let stdout = self.child.stdout.take().ok_or("no stdout")?;
                match super::announced_addr(stdout, within) {
                    Ok(a) => a
                        .parse()
                        .map_err(|_| format!("announced an address that is not one: {a:?}")),
                    Err(line) => Err(match self.child.try_wait().ok().flatten() {
                        Some(status) => format!("exited ({status}) without a `listening on` line"),
                        None if line.is_empty() => {
                            format!("no `listening on` line within {} s", within.as_secs_f64())
                        }
                        None => format!("printed {:?} instead of `listening on ADDR`", line.trim()),
                    }),
                }
            }
            Ready::Port(port) => self.wait_until(port, within, "accepting connections", |p| {
                std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
            }),
            Ready::Answers(port, probe) => self.wait_until(port, within, "answering", probe),
        }
    }

    /// Polls `ok(port)` until it holds, the process exits, or `within` passes.
    fn wait_until(
        &mut self,
        port: u16,
        within: Duration,
        doing: &str,
        ok: impl Fn(u16) -> bool,
    ) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + within;
        loop {
            if ok(port) {
                return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
            }
            if let Some(status) = self.child.try_wait().ok().flatten() {
                return Err(format!("exited ({status}) without {doing} on port {port}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "ran {} s without {doing} on port {port}",
                    within.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid (with `taskset`, which execs the program, the same process). With [`Launch::group`]
    /// it is also the process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it runs in a process group of its own.
    pub fn is_group(&self) -> bool {
        self.group
    }

    /// The pids to account: the process, or every process of its group.
    pub fn pids(&self) -> Vec<u32> {
        if self.group {
            didit_loadgen::cpu::group_pids(self.pid())
        } else {
            vec![self.pid()]
        }
    }

    /// Whether the process still runs (not exited, not a zombie awaiting `wait`); read from
    /// `/proc`, so that a shared reference can ask while the process is being measured.
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            })
            .unwrap_or(false)
    }

    /// `Err` with its exit status when it has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("{} exited during the run ({status})", self.label)),
            _ => Ok(()),
        }
    }

    /// Peak RSS in KiB: of the process, or summed over its group's processes.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.pids()
            .into_iter()
            .filter_map(|p| didit_loadgen::cpu::peak_rss_kib(Some(p)))
            .reduce(|a, b| a + b)
    }

    /// Sends `sig` (`TERM`, `KILL`, …) to the process, or to its whole group.
    pub fn signal(&self, sig: &str) {
        let target = if self.group {
            format!("-{}", self.pid())
        } else {
            self.pid().to_string()
        };
        let _ = command("kill")
            .args([&format!("-{sig}"), "--", &target])
            .stderr(Stdio::null())
            .status();
    }

    /// SIGTERM, then up to `grace` for it to exit on its own: `Some` with its status if it did.
    /// A group's leftovers (workers of a shell or a cluster that exited first) are killed after.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.signal("TERM");
        let deadline = Instant::now() + grace;
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.group {
            self.signal("KILL");
        }
        status
    }

    /// SIGTERM, and SIGKILL after `grace` if it is still running.
    pub fn stop(mut self, grace: Duration) {
        if self.terminate(grace).is_none() {
            self.kill();
        }
    }

    /// SIGKILL (the group's too) and reap: no shutdown code runs, as in a crash.
    pub fn kill(&mut self) {
        if self.group {
            self.signal("KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last `n` non-empty lines of its log, when it has a file of its own.
    pub fn log_tail(&self, n: usize) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|s| last_lines(&s, n))
            .unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if let Some(p) = self.log.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The last `n` non-empty lines of `s`, joined by ` | `.
pub fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HINT: &str = "install it with `apt-get install it`";

    #[test]
    fn the_install_hint_follows_a_program_that_cannot_be_run() {
        let err = Launch::new("missing", "/nonexistent/didit-no-such-program")
            .install_hint(HINT)
            .start()
            .expect_err("no such program");
        assert!(err.contains("missing: cannot start"), "{err}");
        assert!(err.ends_with(HINT), "{err}");
    }

    #[test]
    fn the_install_hint_stays_out_when_the_program_ran_and_exited() {
        let port = crate::harness::free_port().expect("a free loopback port");
        let err = Launch::shell("exits", "echo refused >&2; exit 3")
            .ready(Ready::Port(port), Duration::from_secs(5))
            .install_hint(HINT)
            .start()
            .expect_err("it exits before accepting");
        assert!(err.contains("refused"), "its own log says why: {err}");
        assert!(!err.contains(HINT), "{err}");
    }
}

//! Slow and numerous clients, for every server: the receiver cuts off clients that dawdle over
//! their headers or body, closes idle kept-alive connections, and keeps serving while hundreds
//! of connections sit open. Loopback only, bounded counts, every wait has a deadline.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Receiver, send};
use webhook_bench::harness::command;

const SERVERS: [&str; 5] = ["hyper", "axum", "axum-naive", "actix", "may"];

/// Waits for the server to close `s` (EOF, a reset, or a complete error answer), up to `limit`.
/// Returns how long it took and what was read.
fn wait_for_close(s: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some((started.elapsed(), got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some((started.elapsed(), got)),
        }
    }
    None
}

fn healthy(rx: &Receiver) -> bool {
    send(rx.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").is_ok_and(|r| r.status == 200)
}

#[test]
fn slow_headers_are_cut_off() {
    for server in SERVERS {
        let rx = Receiver::start(server, "ring", "serde", &[]);
        let mut s = TcpStream::connect(rx.addr).expect("connect");
        s.write_all(b"POST /webhooks/didit HTTP/1.1\r\nHost: x\r\n")
            .expect("write");
        // --header-timeout is 1 s in the test profile.
        let closed = wait_for_close(&mut s, Duration::from_secs(5));
        assert!(
            closed.is_some(),
            "{server}: a client stuck in its headers was not cut off"
        );
        assert!(
            healthy(&rx),
            "{server}: not serving after cutting a client off"
        );
        rx.stop();
    }
}

#[test]
fn slow_bodies_get_408() {
    for server in SERVERS {
        let rx = Receiver::start(server, "ring", "serde", &[]);
        let mut s = TcpStream::connect(rx.addr).expect("connect");
        s.write_all(
            b"POST /webhooks/didit HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .expect("write");
        let (after, answer) = wait_for_close(&mut s, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{server}: a stalled body was not cut off"));
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 408"),
            "{server}: answered {text:?}"
        );
        assert!(
            text.contains(r#"{"error":"body_timeout"}"#),
            "{server}: answered {text:?}"
        );
        assert!(
            after >= Duration::from_millis(900),
            "{server}: cut off after {after:?}, before the 1 s body timeout"
        );
        rx.stop();
    }
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    for server in SERVERS {
        let rx = Receiver::start(server, "ring", "serde", &[]);
        let mut s = TcpStream::connect(rx.addr).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut reader = std::io::BufReader::new(s.try_clone().expect("clone"));
        let r = support::read_response(&mut reader).expect("an answer");
        assert_eq!(r.status, 200);
        // Then nothing: the connection must not be held open forever.
        let closed = wait_for_close(&mut s, Duration::from_secs(6));
        assert!(
            closed.is_some(),
            "{server}: an idle kept-alive connection stayed open"
        );
        rx.stop();
    }
}

#[test]
fn hundreds_of_idle_connections_do_not_stop_service() {
    for server in SERVERS {
        let rx = Receiver::start(server, "ring", "serde", &["--header-timeout", "30s"]);
        let idle: Vec<TcpStream> = (0..400)
            .filter_map(|_| TcpStream::connect(rx.addr).ok())
            .collect();
        assert!(
            idle.len() >= 350,
            "{server}: only {} connections opened",
            idle.len()
        );
        let started = Instant::now();
        assert!(
            healthy(&rx),
            "{server}: not serving with {} idle connections",
            idle.len()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{server}: took {:?}",
            started.elapsed()
        );
        drop(idle);
        rx.stop();
    }
}

#[test]
fn may_keeps_serving_beside_a_stalled_client() {
    let rx = Receiver::start("may", "ring", "serde", &[]);
    let mut stalled = TcpStream::connect(rx.addr).expect("connect");
    stalled
        .write_all(b"POST /webhooks/didit HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")
        .expect("write");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        healthy(&rx),
        "may stopped serving while one client stalls mid-body"
    );
    drop(stalled);
    rx.stop();
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Raises this test process's soft open-file limit (and so its children's) to `want`, with
/// util-linux's prlimit on our own pid: the tests below hold thousands of sockets.
fn raise_own_open_files(want: u64) {
    let soft = || -> u64 {
        std::fs::read_to_string("/proc/self/limits")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // Never lower it: tests run in parallel in this one process.
    if soft() < want {
        let pid = std::process::id().to_string();
        let _ = command("prlimit")
            .args(["--pid", &pid, &format!("--nofile={want}:")])
            .status();
    }
    let now = soft();
    assert!(
        now >= want,
        "this test needs {want} open files and the soft limit is {now}: raise the hard limit \
         (ulimit -Hn) or install util-linux's prlimit (scripts/test.sh does)"
    );
}

/// Latencies of `n` good deliveries, each on a new connection, in order.
fn good_latencies(rx: &Receiver, n: usize) -> Vec<Duration> {
    let signer = didit_webhook::Signer::<didit_webhook::RingMac>::new(
        &didit_webhook::Secret::new(support::SECRET).expect("a non-empty secret"),
    );
    (0..n)
        .map(|i| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let body = format!(
                r#"{{"event_id":"limits-{}-{i}","session_id":"s-{i}","status":"Approved","timestamp":{now},"webhook_type":"status.updated"}}"#,
                std::process::id()
            );
            let value = didit_webhook::canon::Value::parse(body.as_bytes()).expect("JSON");
            let d = signer.sign(&value).expect("signable");
            let mut req = format!(
                "POST /webhooks/didit HTTP/1.1\r\nHost: x\r\nX-Signature: {}\r\nX-Timestamp: {}\r\nContent-Length: {}\r\n\r\n",
                d.signature,
                d.timestamp,
                d.body.len()
            )
            .into_bytes();
            req.extend_from_slice(&d.body);
            let started = Instant::now();
            let r = send(rx.addr, &req).unwrap_or_else(|e| panic!("{}: {e}", rx.label));
            assert_eq!(r.status, 200, "{}: a good delivery got {}", rx.label, r.status);
            started.elapsed()
        })
        .collect()
}

/// The latency budget for a good delivery while hostile clients are connected. Generous: these
/// machines are shared and noisy; what it catches is a server that stops serving (seconds).
const BUDGET: Duration = Duration::from_millis(1500);

fn worst(l: &[Duration]) -> Duration {
    l.iter().copied().max().unwrap_or_default()
}

#[test]
fn five_thousand_idle_connections_keep_memory_bounded() {
    const IDLE: usize = 5000;
    // Measured on this project's 2-core VM (debug build): hyper 11.6 KiB, axum 10.7, axum-naive
    // 10.8, may 22.8 per idle connection (receiver README). The bound leaves room for noise.
    const PER_CONNECTION_KIB: u64 = 40;
    raise_own_open_files(2 * IDLE as u64 + 512);
    for server in SERVERS {
        let rx = Receiver::start(
            server,
            "ring",
            "serde",
            &["--header-timeout", "120s", "--max-connections", "8192"],
        );
        good_latencies(&rx, 20);
        let before = rss_kib(rx.pid());
        let t0 = Instant::now();
        let idle: Vec<TcpStream> = (0..IDLE)
            .map(|i| {
                TcpStream::connect(rx.addr)
                    .unwrap_or_else(|e| panic!("{server}: connection {i} of {IDLE}: {e}"))
            })
            .collect();
        eprintln!("{server}: opened {IDLE} in {:?}", t0.elapsed());
        // Let the server accept them all, then it must still answer promptly.
        std::thread::sleep(Duration::from_millis(500));
        let lat = good_latencies(&rx, 50);
        let after = rss_kib(rx.pid());
        let growth = after.saturating_sub(before);
        eprintln!(
            "{server}: {IDLE} idle connections: RSS {before} -> {after} KiB ({:.1} KiB each); \
             worst good delivery {:?}",
            growth as f64 / IDLE as f64,
            worst(&lat)
        );
        assert!(
            worst(&lat) < BUDGET,
            "{server}: a good delivery took {:?} beside {IDLE} idle connections",
            worst(&lat)
        );
        assert!(
            growth < PER_CONNECTION_KIB * IDLE as u64,
            "{server}: RSS grew by {growth} KiB for {IDLE} idle connections"
        );
        assert!(rx.alive(), "{server} died");
        drop(idle);
        let t1 = Instant::now();
        rx.stop();
        eprintln!("{server}: stopped in {:?}", t1.elapsed());
    }
}

/// Slowloris: clients that send their headers one byte per second, and clients that send their
/// body one byte per second. Every server cuts both off at its timeouts (1 s in the test
/// profile; 408 for the body), and serves everyone else on time meanwhile.
#[test]
fn slowloris_and_slow_bodies_do_not_stop_service() {
    const SLOW: usize = 50;
    raise_own_open_files(4 * SLOW as u64 + 512);
    for server in SERVERS {
        let rx = Receiver::start(server, "ring", "serde", &[]);
        let before = rss_kib(rx.pid());
        let head =
            b"POST /webhooks/didit HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n";
        let body_head = b"POST /webhooks/didit HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n";
        let mut loris: Vec<TcpStream> = Vec::new();
        let mut bodies: Vec<TcpStream> = Vec::new();
        for _ in 0..SLOW {
            let s = TcpStream::connect(rx.addr).expect("connect");
            s.set_nonblocking(true).expect("nonblocking");
            loris.push(s);
            let mut b = TcpStream::connect(rx.addr).expect("connect");
            b.write_all(body_head).expect("write");
            b.set_nonblocking(true).expect("nonblocking");
            bodies.push(b);
        }
        // Trickle one byte per second on every slow connection for 4 s, serving good clients
        // in between.
        let mut lat = Vec::new();
        for second in 0..4 {
            for s in &mut loris {
                let _ = s.write(&head[second..second + 1]);
            }
            for b in &mut bodies {
                let _ = b.write(b"x");
            }
            let tick = Instant::now();
            lat.extend(good_latencies(&rx, 5));
            std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
        }
        assert!(
            worst(&lat) < BUDGET,
            "{server}: a good delivery took {:?} beside {} slow clients",
            worst(&lat),
            2 * SLOW
        );
        // Every slow connection must have been closed by now (timeouts are 1 s).
        let open = loris
            .iter()
            .chain(bodies.iter())
            .filter(|s| {
                let mut s: &TcpStream = s;
                let mut buf = [0u8; 512];
                let mut total = 0;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => return false,
                        Ok(n) => total += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            return total == 0;
                        }
                        Err(_) => return false,
                    }
                }
            })
            .count();
        assert_eq!(
            open,
            0,
            "{server}: {open} of {} slow clients were not cut off after 4 s",
            2 * SLOW
        );
        let after = rss_kib(rx.pid());
        eprintln!(
            "{server}: {} slow clients: RSS {before} -> {after} KiB; worst good delivery {:?}",
            2 * SLOW,
            worst(&lat)
        );
        assert!(rx.alive(), "{server} died");
        drop((loris, bodies));
        rx.stop();
    }
}

/// A client that never ends its request head: every server refuses it once the head passes
/// 64 KiB, instead of buffering whatever it sends (may_minihttp did, unbounded, until the patch
/// in vendor/may_minihttp). After the refusal a server may linger, reading and discarding input
/// so that the client can read the answer, but only for a bounded time and amount (16 MiB here,
/// twice the test profile's body limit at least), never holding what it reads.
#[test]
fn endless_headers_are_cut_off() {
    const LIMIT: usize = 64 << 20;
    for server in SERVERS {
        let rx = Receiver::start(server, "ring", "serde", &["--header-timeout", "30s"]);
        // One request first: a worker's first connection costs it its allocator arena and
        // buffers (actix: +4 MiB), which is not what this measures.
        assert!(healthy(&rx), "{server}: not serving");
        let before = rss_kib(rx.pid());
        let mut s = TcpStream::connect(rx.addr).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"POST /webhooks/didit HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            .expect("write");
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < LIMIT {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        let after = rss_kib(rx.pid());
        assert!(
            sent < LIMIT,
            "{server}: accepted {} MiB of one header without closing",
            sent >> 20
        );
        assert!(
            after.saturating_sub(before) < 4 * 1024,
            "{server}: RSS grew {} KiB for one endless header",
            after.saturating_sub(before)
        );
        assert!(healthy(&rx), "{server}: not serving afterwards");
        rx.stop();
    }
}

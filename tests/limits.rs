//! Slow and numerous clients, for every server: the receiver cuts off clients that dawdle over
//! their headers or body, closes idle kept-alive connections, and keeps serving while hundreds
//! of connections sit open. Loopback only, bounded counts, every wait has a deadline.
//!
//! may_minihttp exposes no socket timeouts, so the may variant is held to what it can do: a slow
//! client must not stop it from serving everyone else.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Receiver, send};

const TOKIO_SERVERS: [&str; 3] = ["hyper", "axum", "axum-naive"];

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
    for server in TOKIO_SERVERS {
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
    for server in TOKIO_SERVERS {
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
    for server in TOKIO_SERVERS {
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
    for server in ["hyper", "axum", "axum-naive", "may"] {
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

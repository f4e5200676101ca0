//! `https://` targets: a real `didit-receiver` behind a TLS-terminating proxy started here
//! (tokio-rustls, a self-signed certificate made with rcgen for 127.0.0.1), loaded by
//! `didit-loadgen` with both engines and both open-loop clients, and graded by
//! `webhook-bench verify`, each with `--insecure`; without it, both refuse the certificate with
//! a clear message and exit 2. Loopback only; every run lasts a few seconds and every wait is
//! bounded.

use crate::support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use support::{Receiver, SECRET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhook_bench::harness::command;

/// Accepts TLS on a loopback port it picks and passes the plain bytes to `backend`. When the
/// receiver stops reading (it answered early, e.g. 413, and closed), what the client still sends
/// is read and dropped, so the answer reaches the client before any reset, as a terminating
/// proxy's lingering close does. Stops when dropped.
struct TlsProxy {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsProxy {
    fn start(backend: SocketAddr) -> TlsProxy {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("a self-signed certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("the certificate and its key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("its address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let accept = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let handshake =
                                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                            // A client that refuses the certificate ends here.
                            if let Ok(Ok(tls)) = handshake.await {
                                let _ = tokio::time::timeout(
                                    Duration::from_secs(60),
                                    relay(tls, backend),
                                )
                                .await;
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        TlsProxy {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn relay(tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>, backend: SocketAddr) {
    let Ok(up) = tokio::net::TcpStream::connect(backend).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = tokio::io::split(tls);
    let (mut up_rx, mut up_tx) = up.into_split();
    let to_receiver = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut forwarding = true;
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if forwarding && up_tx.write_all(&buf[..n]).await.is_err() {
                forwarding = false;
            }
        }
        let _ = up_tx.shutdown().await;
    };
    let to_client = async {
        let _ = tokio::io::copy(&mut up_rx, &mut client_tx).await;
        // close_notify, then the TCP half-close.
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(to_receiver, to_client);
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tls-tests");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(format!("{}-{name}", std::process::id()))
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An empty working folder: the tools must not need the checkout's files (the shipped scenario is
/// taken by name).
fn empty_cwd() -> std::path::PathBuf {
    crate::support::empty_dir("tls-cwd")
}

fn loadgen(args: &[&str]) -> Output {
    command(crate::support::bin("didit-loadgen"))
        .args(["--scenario", "smoke"])
        .args(args)
        .current_dir(empty_cwd())
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .env_remove("DIDIT_SHARED_DIR")
        .output()
        .expect("didit-loadgen runs")
}

/// The smoke scenario over TLS with `--insecure`: every answer matches its label, no transport
/// error, and valid deliveries get their 200s.
fn smoke_over_tls(engine_args: &[&str], name: &str) {
    let rx = Receiver::start("hyper", "ring", "serde", &["--max-body", "1MiB"]);
    let proxy = TlsProxy::start(rx.addr);
    let rep = tmp(&format!("{name}.json"));
    let mut args = vec![
        "--target",
        &proxy.url(),
        "--insecure",
        "--duration",
        "2s",
        "--warmup",
        "1s",
        "--quiet",
        "--report",
        rep.to_str().expect("utf-8 path"),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    args.extend(engine_args.iter().map(|a| (*a).to_owned()));
    let out = loadgen(&args.iter().map(String::as_str).collect::<Vec<_>>());
    drop(proxy);
    rx.stop();
    assert!(out.status.success(), "{name}: {}", text(&out));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rep).expect("the report")).expect("JSON");
    assert!(
        r["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{r}"
    );
    assert_eq!(r["requests"]["mismatches"], 0, "{name}: {}", text(&out));
    assert_eq!(
        r["requests"]["transport_errors"],
        0,
        "{name}: {}",
        text(&out)
    );
    let ok_200: u64 = r["by_label"]
        .as_array()
        .expect("by_label")
        .iter()
        .map(|l| l["statuses"]["200"].as_u64().unwrap_or(0))
        .sum();
    assert!(ok_200 > 50, "{name}: only {ok_200} answers were 200: {r}");
}

#[test]
fn loadgen_open_loop_hyper_client_over_tls() {
    smoke_over_tls(&["--rate", "150", "--http", "hyper"], "hyper");
}

#[test]
fn loadgen_open_loop_raw_client_over_tls() {
    smoke_over_tls(&["--rate", "150", "--http", "raw"], "raw");
}

#[test]
fn loadgen_goose_over_tls() {
    smoke_over_tls(&["--engine", "goose"], "goose");
}

/// Without `--insecure` the self-signed certificate is refused before any load: exit 2 and a
/// message that says why and names the flag, for both engines.
#[test]
fn loadgen_refuses_an_untrusted_certificate_clearly() {
    let rx = Receiver::start("hyper", "ring", "serde", &[]);
    let proxy = TlsProxy::start(rx.addr);
    for engine in ["open-loop", "goose"] {
        let out = loadgen(&[
            "--target",
            &proxy.url(),
            "--engine",
            engine,
            "--duration",
            "1s",
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{engine}: {}", text(&out));
        assert!(
            stderr.contains("certificate is not trusted") && stderr.contains("--insecure"),
            "{engine}: {}",
            text(&out)
        );
        assert!(!stderr.contains("panicked"), "{engine}: {}", text(&out));
    }
    drop(proxy);
    rx.stop();
}

fn verify(args: &[&str]) -> Output {
    command(crate::support::bin("webhook-bench"))
        .arg("verify")
        .args(args)
        .current_dir(empty_cwd())
        .env_remove("DIDIT_SHARED_DIR")
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .output()
        .expect("run webhook-bench verify")
}

/// The report card over TLS: every required case passes; the raw-TCP framing corpus is skipped
/// with its reason (the contract's framing cases still run). Without `--insecure`: exit 2, the certificate named.
#[test]
fn verify_passes_our_receiver_behind_tls() {
    let rx = Receiver::start("hyper", "ring", "serde", &["--max-body", "1MiB"]);
    let proxy = TlsProxy::start(rx.addr);
    let url = format!("{}/webhooks/didit", proxy.url());
    let out = verify(&["--insecure", "--target", &url]);
    let refused = verify(&["--target", &url]);
    drop(proxy);
    rx.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout.lines().any(|l| l.starts_with("verdict: PASS")),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("the raw-TCP corpus skipped: an https target"),
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        stderr.contains("certificate is not trusted") && stderr.contains("--insecure"),
        "{}",
        text(&refused)
    );
}

//! HTTP/1.1 over a plain TCP socket, or TLS for an `https://` target: requests written byte for
//! byte (framing cases no client library would send), answers read with a timeout. Loopback or
//! any address the user names.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

use didit_loadgen::TlsClient;
use didit_loadgen::tls::BlockingStream;

/// The longest wait for a connection or an answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-case names; the last value of a repeated header.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// The bytes of a `POST path` carrying the generator's delivery `d`: its headers as Didit sends
/// them, `Host` and `Content-Length` written here.
pub fn request(path: &str, host: &str, d: &didit_loadgen::Delivery) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n",
        d.body.len()
    )
    .into_bytes();
    for (n, v) in &d.headers {
        if n.as_str() == "content-length" || n.as_str() == "host" {
            continue;
        }
        req.extend_from_slice(n.as_str().as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&d.body);
    req
}

/// Writes `bytes` on a new plain TCP connection and reads one answer.
pub fn send(addr: SocketAddr, bytes: &[u8]) -> Result<Response, String> {
    send_over(addr, None, bytes)
}

/// [`send`], through TLS when `tls` is given.
pub fn send_over(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    bytes: &[u8],
) -> Result<Response, String> {
    send_within(addr, tls, bytes, IO_TIMEOUT)
}

/// [`send_over`] with another timeout.
pub fn send_within(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    bytes: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    let mut s = BlockingStream::connect(addr, tls, timeout).map_err(|e| e.to_string())?;
    // A server may answer before it has read everything (413); a failed write is not the answer.
    let _ = s.write_all(bytes).and_then(|()| s.flush());
    read_response(&mut BufReader::new(s))
}

/// Reads one response head and its `Content-Length` body.
pub fn read_response(r: &mut impl BufRead) -> Result<Response, String> {
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("status line: {e}"))?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            if line.is_empty() {
                "the connection closed without an answer".to_owned()
            } else {
                format!("bad status line {line:?}")
            }
        })?;
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).map_err(|e| format!("header: {e}"))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

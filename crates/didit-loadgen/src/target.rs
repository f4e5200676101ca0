//! The receiver under test: address, `Host` header, path, TLS for an `https://` target, and a
//! check that it answers.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use hyper::Uri;
use hyper::http::HeaderValue;

use crate::tls::{BlockingStream, ConnectError, TlsClient, TlsError, Trust};

/// Why a target cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target `{0}` is not a URL like http://127.0.0.1:8080")]
    Url(String),
    #[error("target `{0}`: only http:// and https:// are supported")]
    Scheme(String),
    #[error("target `{0}` does not resolve to an address")]
    Resolve(String),
    #[error(
        "target {0} does not answer ({1}); start a receiver first, e.g. `didit-receiver --listen {0}`, or pass the right --target"
    )]
    NoAnswer(SocketAddr, String),
    #[error("target {0}: {1}")]
    Tls(String, TlsError),
}

/// A resolved target.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    pub host_header: HeaderValue,
    /// The path deliveries are posted to.
    pub path_uri: Uri,
    /// For an `https://` target: the TLS client every connection goes through.
    pub tls: Option<TlsClient>,
}

impl Target {
    /// Parses `url` (scheme, host, port; a path in it is ignored) and the delivery `path`; an
    /// `https://` target's certificate must chain to the system's roots.
    pub fn parse(url: &str, path: &str) -> Result<Target, TargetError> {
        Target::parse_with(url, path, Trust::SystemRoots)
    }

    /// [`Target::parse`], with the certificates an `https://` target may show.
    pub fn parse_with(url: &str, path: &str, trust: Trust) -> Result<Target, TargetError> {
        let uri: Uri = url.parse().map_err(|_| TargetError::Url(url.into()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(TargetError::Scheme(url.into())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| TargetError::Url(url.into()))?;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let tls = https
            .then(|| TlsClient::new(host, trust))
            .transpose()
            .map_err(|e| TargetError::Tls(url.into(), e))?;
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|_| TargetError::Resolve(url.into()))?
            .next()
            .ok_or_else(|| TargetError::Resolve(url.into()))?;
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            addr,
            host_header: HeaderValue::from_str(authority.as_str())
                .map_err(|_| TargetError::Url(url.into()))?,
            path_uri: path.parse().map_err(|_| TargetError::Url(path.into()))?,
            tls,
        })
    }

    /// An `https://` target whose certificate is not checked (`--insecure`).
    pub fn insecure(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.trust() == Trust::AnyCertificate)
    }

    /// A loopback address (the only kind the project's own tests and scripts load).
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }

    /// Connects (through TLS for an `https://` target) and sends `GET /healthz`; any HTTP
    /// answer within `timeout` counts as alive. A certificate that is not trusted is an error of
    /// its own, which names `--insecure`.
    pub fn preflight(&self, timeout: Duration) -> Result<(), TargetError> {
        use std::io::{Read, Write};
        let fail = |e: String| TargetError::NoAnswer(self.addr, e);
        let mut s = match BlockingStream::connect(self.addr, self.tls.as_ref(), timeout) {
            Ok(s) => s,
            Err(ConnectError::Tcp(e)) => return Err(fail(e.to_string())),
            Err(ConnectError::Tls(e)) => return Err(TargetError::Tls(self.url.clone(), e)),
        };
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host_header.to_str().unwrap_or("localhost")
        )
        .map_err(|e| fail(e.to_string()))?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)
            .map_err(|e| fail(format!("no HTTP answer: {e}")))?;
        if head.starts_with(b"HTTP/1.") {
            Ok(())
        } else {
            Err(fail("the answer is not HTTP/1.x".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let t = Target::parse("http://127.0.0.1:8080", "/webhooks/didit").expect("valid");
        assert_eq!(t.addr.port(), 8080);
        assert!(t.is_loopback());
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert!(t.tls.is_none());
        let https = Target::parse_with("https://127.0.0.1", "/", Trust::AnyCertificate)
            .expect("https is a target");
        assert_eq!(https.addr.port(), 443);
        assert!(https.insecure());
        let e = Target::parse("ftp://127.0.0.1:1", "/").expect_err("ftp is not");
        assert!(matches!(e, TargetError::Scheme(_)), "{e}");
        assert!(e.to_string().contains("http:// and https://"), "{e}");
        assert!(matches!(
            Target::parse("not a url", "/"),
            Err(TargetError::Url(_))
        ));
        let v6 = Target::parse("http://[::1]:9000", "/").expect("ipv6");
        assert!(v6.is_loopback());
    }

    #[test]
    fn dead_target_gets_a_clear_error() {
        // Bind then drop to get a port that is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let t = Target::parse(&format!("http://127.0.0.1:{port}"), "/").expect("valid");
        let e = t
            .preflight(Duration::from_millis(500))
            .expect_err("nothing listens");
        assert!(e.to_string().contains("start a receiver"), "{e}");
    }
}

//! TLS for `https://` targets: one rustls client set-up (ring, HTTP/1.1 by ALPN) that checks the
//! server's certificate against the system's roots, or accepts any certificate (`--insecure`).
//! The open-loop engine connects through it with tokio; the preflight and `webhook-bench verify`
//! through its blocking stream.
//!
//! Didit delivers only to HTTPS URLs, so a staging endpoint is usually behind TLS; a load test
//! through TLS measures the TLS stack too, which is the point there. The roots come from the
//! platform (`rustls-platform-verifier`), never from a bundled list.

use std::io::{self, Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// Which server certificates are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// A certificate for the target's host name that chains to one of the system's roots.
    #[default]
    SystemRoots,
    /// Any certificate (`--insecure`): for a self-signed staging certificate. The handshake's
    /// signatures are still checked, but nothing says the server is the one named.
    AnyCertificate,
}

/// Why a TLS connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "the server's TLS certificate is not trusted ({0}); for a self-signed staging certificate pass --insecure"
    )]
    Certificate(rustls::Error),
    #[error("TLS handshake failed ({0}); does the target serve https on that port?")]
    Handshake(io::Error),
    #[error("`{0}` is not a host name or address TLS can check a certificate for")]
    ServerName(String),
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

impl TlsError {
    /// Sorts an I/O error from a handshake: a rejected certificate says so.
    fn from_io(e: io::Error) -> TlsError {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(c)) => {
                TlsError::Certificate(rustls::Error::InvalidCertificate(c.clone()))
            }
            _ => TlsError::Handshake(e),
        }
    }

    /// The server's certificate was rejected (and `--insecure` would accept it).
    pub fn is_certificate(&self) -> bool {
        matches!(self, TlsError::Certificate(_))
    }
}

/// A TLS client for one host: the configuration and the name certificates are checked against.
/// Cheap to clone (the configuration is shared).
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    trust: Trust,
}

impl TlsClient {
    /// A client for `host` (a DNS name or an IP address, without port or brackets).
    pub fn new(host: &str, trust: Trust) -> Result<TlsClient, TlsError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsError::ServerName(host.to_owned()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?;
        let builder = match trust {
            Trust::SystemRoots => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder.with_platform_verifier().map_err(TlsError::Setup)?
            }
            Trust::AnyCertificate => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))),
        };
        let mut config = builder.with_no_client_auth();
        // Both clients speak HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
            trust,
        })
    }

    pub fn trust(&self) -> Trust {
        self.trust
    }

    /// The TLS handshake over a connected tokio socket.
    pub async fn connect(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, TlsError> {
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(TlsError::from_io)
    }

    /// The TLS handshake over a connected blocking socket (its timeouts apply).
    pub fn connect_blocking(&self, mut tcp: StdTcpStream) -> Result<BlockingStream, TlsError> {
        let mut conn = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(TlsError::Setup)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(TlsError::from_io)?;
        }
        Ok(BlockingStream::Tls(Box::new(TlsSocket { conn, tcp })))
    }
}

/// A blocking connection, plain or TLS: reads and writes application bytes.
#[derive(Debug)]
pub enum BlockingStream {
    Plain(StdTcpStream),
    Tls(Box<TlsSocket>),
}

/// A blocking TLS connection after its handshake.
#[derive(Debug)]
pub struct TlsSocket {
    conn: ClientConnection,
    tcp: StdTcpStream,
}

impl BlockingStream {
    /// Opens a connection to `addr` within `timeout`, through TLS when `tls` is given; reads and
    /// writes then time out after `timeout` too.
    pub fn connect(
        addr: std::net::SocketAddr,
        tls: Option<&TlsClient>,
        timeout: std::time::Duration,
    ) -> Result<BlockingStream, ConnectError> {
        let tcp = StdTcpStream::connect_timeout(&addr, timeout).map_err(ConnectError::Tcp)?;
        tcp.set_read_timeout(Some(timeout))
            .map_err(ConnectError::Tcp)?;
        tcp.set_write_timeout(Some(timeout))
            .map_err(ConnectError::Tcp)?;
        match tls {
            None => Ok(BlockingStream::Plain(tcp)),
            Some(t) => t.connect_blocking(tcp).map_err(ConnectError::Tls),
        }
    }
}

/// Why a blocking connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect: {0}")]
    Tcp(io::Error),
    #[error(transparent)]
    Tls(TlsError),
}

impl TlsSocket {
    fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }
}

impl Read for BlockingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = match self {
            BlockingStream::Plain(s) => return s.read(buf),
            BlockingStream::Tls(t) => t,
        };
        // Only reads: a server that answered early and closed (413) must still be heard, even
        // when some of the request could not be written (rustls's own stream writes first).
        loop {
            match t.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A close without `close_notify` is an end of stream to an HTTP/1.1 client that
                // frames answers by their length.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                r => return r,
            }
            if t.conn.read_tls(&mut t.tcp)? == 0 {
                t.conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return match t.conn.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(_) => Ok(0),
                };
            }
            t.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl Write for BlockingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BlockingStream::Plain(s) => s.write(buf),
            BlockingStream::Tls(t) => {
                let n = t.conn.writer().write(buf)?;
                t.flush_tls()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BlockingStream::Plain(s) => s.flush(),
            BlockingStream::Tls(t) => t.flush_tls(),
        }
    }
}

/// `--insecure`: accepts whatever certificate the server shows, but still checks that the
/// handshake is signed by the key in it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

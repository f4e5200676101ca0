//! What every server and both extractors share, below all of them: the head limit, the
//! "listening on" line, and each HTTP stack's body reading and reply mapping.

pub(crate) mod actix;
pub(crate) mod axum;
pub(crate) mod http1;

use std::io::Write;

/// The largest request head (target and header fields) any variant accepts, as may's and hyper's
/// buffers allow. hyper caps its read buffer, not the head, so a head just over it can still parse.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Prints the one line that tells scripts and tests the receiver is ready.
pub(crate) fn announce(addr: std::net::SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

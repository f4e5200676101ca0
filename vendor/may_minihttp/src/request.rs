use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

pub(crate) const MAX_HEADERS: usize = 16;
/// PATCHED (didit-webhook-bench): the largest request head buffered while waiting for its end;
/// the same 64 KiB the receivers' other servers allow.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

use bytes::{Buf, BufMut, BytesMut};
use may::net::TcpStream;

/// PATCHED (didit-webhook-bench): a request refused before the service sees it. It is answered
/// with this status and `Connection: close`, after the answers already queued (RFC 9112 §2.2,
/// §6.3: after a framing error the rest of the stream cannot be trusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: usize,
    pub(crate) reason: &'static str,
}

impl Refusal {
    pub(crate) const BAD_REQUEST: Refusal = Refusal {
        code: 400,
        reason: "Bad Request",
    };
    pub(crate) const URI_TOO_LONG: Refusal = Refusal {
        code: 414,
        reason: "URI Too Long",
    };
    pub(crate) const HEAD_TOO_LARGE: Refusal = Refusal {
        code: 431,
        reason: "Request Header Fields Too Large",
    };
}

/// PATCHED (didit-webhook-bench): what the connection loop, a request and its body reader share:
/// the current request's framing (set by `decode`) and the connection's read deadlines.
pub(crate) struct Conn {
    /// Answers encoded but not written yet; flushed before a `100 Continue` to keep the order.
    pub(crate) rsp_buf: BytesMut,
    /// Bytes of the current request's body not read (or skipped) yet.
    pub(crate) body_left: usize,
    /// The body is chunked, which this server does not decode: it is never read, and the
    /// connection closes after the answer.
    pub(crate) chunked: bool,
    /// The connection may carry another request after this one (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    pub(crate) keep_alive: bool,
    pub(crate) http10: bool,
    /// `Expect: 100-continue` not yet answered.
    pub(crate) expect_continue: bool,
    /// A body read ran into the body deadline: the connection closes after the answer.
    pub(crate) timed_out: bool,
    pub(crate) body_timeout: Option<Duration>,
    body_deadline: Option<Instant>,
    /// The socket's read timeout as last set: setting it is a system call, so only on change.
    read_timeout: Option<Duration>,
}

impl Conn {
    pub(crate) fn new(rsp_buf: BytesMut, body_timeout: Option<Duration>) -> Self {
        Conn {
            rsp_buf,
            body_left: 0,
            chunked: false,
            keep_alive: true,
            http10: false,
            expect_continue: false,
            timed_out: false,
            body_timeout,
            body_deadline: None,
            read_timeout: None,
        }
    }

    /// A read that waits at most `wait` (None: without limit); `TimedOut` past it. may arms a
    /// timer only when the read has to park, so a read that finds data costs no timer.
    pub(crate) fn read_within(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut [u8],
        wait: Option<Duration>,
    ) -> io::Result<usize> {
        if self.read_timeout != wait {
            stream.set_read_timeout(wait)?;
            self.read_timeout = wait;
        }
        stream.read(buf)
    }

    /// After the service answered: skips a body left unread when it is all buffered already,
    /// and says whether the connection must close (the body is unread, or cannot be read, or
    /// the request asked for it).
    pub(crate) fn must_close(&mut self, req_buf: &mut BytesMut) -> bool {
        if self.body_left > 0 && self.body_left <= req_buf.len() {
            req_buf.advance(self.body_left);
            self.body_left = 0;
        }
        !self.keep_alive || self.chunked || self.timed_out || self.body_left > 0
    }
}

/// PATCHED (didit-webhook-bench): the time left until `deadline`, rounded up to 10 ms so that
/// may's timer list, which keeps one queue per distinct duration, sees few of them; None once
/// it has passed.
pub(crate) fn remaining(deadline: Instant, now: Instant) -> Option<Duration> {
    const STEP: u128 = 10_000_000;
    let left = deadline.checked_duration_since(now)?.as_nanos();
    if left == 0 {
        return None;
    }
    let rounded = left.div_ceil(STEP) * STEP;
    Some(Duration::from_nanos(
        u64::try_from(rounded).unwrap_or(u64::MAX),
    ))
}

pub struct BodyReader<'buf, 'stream> {
    // remaining bytes for body
    req_buf: &'buf mut BytesMut,
    // used to read extra body bytes
    stream: &'stream mut TcpStream,
    // PATCHED (didit-webhook-bench): the body's length, deadline and `Expect` state
    conn: &'stream mut Conn,
}

impl<'buf, 'stream> BodyReader<'buf, 'stream> {
    fn read_more_data(&mut self) -> io::Result<usize> {
        // PATCHED (didit-webhook-bench): the client waits for `100 Continue` before it sends the
        // body (RFC 9110 §10.1.1); the answers queued before it go first, so the order holds.
        if self.conn.expect_continue {
            self.conn.expect_continue = false;
            self.stream.write_all(&self.conn.rsp_buf)?;
            self.conn.rsp_buf.clear();
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        crate::http_server::reserve_buf(self.req_buf);
        let read_buf: &mut [u8] = unsafe { std::mem::transmute(self.req_buf.chunk_mut()) };
        // PATCHED (didit-webhook-bench): the body timeout is one deadline for the whole body,
        // started by the first read that has to wait, so a trickling client cannot extend it.
        let wait = match self.conn.body_timeout {
            None => None,
            Some(t) => {
                let now = Instant::now();
                let deadline = *self.conn.body_deadline.get_or_insert(now + t);
                match remaining(deadline, now) {
                    Some(w) => Some(w),
                    None => return Err(self.timed_out()),
                }
            }
        };
        let n = match self.conn.read_within(self.stream, read_buf, wait) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(self.timed_out()),
            Err(e) => return Err(e),
        };
        unsafe { self.req_buf.advance_mut(n) };
        Ok(n)
    }

    #[cold]
    fn timed_out(&mut self) -> io::Error {
        self.conn.timed_out = true;
        io::Error::new(io::ErrorKind::TimedOut, "request body timed out")
    }

    /// PATCHED (didit-webhook-bench): a chunked body is not decoded, and never handed out as
    /// if it were the content.
    fn readable(&self) -> io::Result<()> {
        if self.conn.chunked {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "chunked request bodies are not supported",
            ));
        }
        Ok(())
    }
}

impl<'buf, 'stream> Read for BodyReader<'buf, 'stream> {
    // the user should control the body reading, don't exceeds the body!
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.readable()?;
        if self.conn.body_left == 0 {
            return Ok(0);
        }

        loop {
            if !self.req_buf.is_empty() {
                let min_len = buf.len().min(self.conn.body_left);
                let n = self.req_buf.reader().read(&mut buf[..min_len])?;
                self.conn.body_left -= n;
                return Ok(n);
            }

            if self.read_more_data()? == 0 {
                return Ok(0);
            }
        }
    }
}

impl<'buf, 'stream> BufRead for BodyReader<'buf, 'stream> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.readable()?;
        let remain = self.conn.body_left;
        if remain == 0 {
            return Ok(&[]);
        }
        if self.req_buf.is_empty() {
            self.read_more_data()?;
        }
        let n = self.req_buf.len().min(remain);
        Ok(&self.req_buf.chunk()[0..n])
    }

    fn consume(&mut self, amt: usize) {
        assert!(amt <= self.conn.body_left);
        assert!(amt <= self.req_buf.len());
        self.conn.body_left -= amt;
        self.req_buf.advance(amt)
    }
}

// PATCHED (didit-webhook-bench): dropping a BodyReader no longer reads the rest of the body
// from the socket. That read had no bound in time or size (a client declaring a huge length,
// or waiting for `100 Continue`, held the connection); the connection loop now skips a rest
// that is already buffered and otherwise closes the connection after the answer.

// we should hold the mut ref of req_buf
// before into body, this req_buf is only for holding headers
// after into body, this req_buf is mutable to read extra body bytes
// and the headers buf can be reused
pub struct Request<'buf, 'header, 'stream> {
    req: httparse::Request<'header, 'buf>,
    req_buf: &'buf mut BytesMut,
    stream: &'stream mut TcpStream,
    conn: &'stream mut Conn,
}

impl<'buf, 'header, 'stream> Request<'buf, 'header, 'stream> {
    pub fn method(&self) -> &str {
        self.req.method.unwrap()
    }

    pub fn path(&self) -> &str {
        self.req.path.unwrap()
    }

    pub fn version(&self) -> u8 {
        self.req.version.unwrap()
    }

    pub fn headers(&self) -> &[httparse::Header<'_>] {
        self.req.headers
    }

    pub fn body(self) -> BodyReader<'buf, 'stream> {
        BodyReader {
            stream: self.stream,
            req_buf: self.req_buf,
            conn: self.conn,
        }
    }
}

impl<'buf, 'header, 'stream> fmt::Debug for Request<'buf, 'header, 'stream> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "<HTTP Request {} {}>", self.method(), self.path())
    }
}

/// PATCHED (didit-webhook-bench): a `Content-Length` value: digits only, no overflow.
/// Upstream parsed the first one with `unwrap` (a panic on `12abc`) and ignored the others.
fn parse_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0usize, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        } else {
            None
        }
    })
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

/// PATCHED (didit-webhook-bench): the framing of a request, decided from its head before the
/// service runs (RFC 9112 §6.3, §9.3). Only four field names are compared, by length first.
fn framing(req: &httparse::Request<'_, '_>, conn: &mut Conn) -> Result<(), Refusal> {
    let mut length: Option<usize> = None;
    let mut coded = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut expect = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                // Invalid or disagreeing lengths are unrecoverable: 400 and close.
                let n = parse_length(h.value).ok_or(Refusal::BAD_REQUEST)?;
                if length.is_some_and(|m| m != n) {
                    return Err(Refusal::BAD_REQUEST);
                }
                length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // Only a final `chunked` frames the body; a later field appends codings.
                coded = true;
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = trim(last).eq_ignore_ascii_case(b"chunked");
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for option in h.value.split(|&b| b == b',') {
                    let option = trim(option);
                    close |= option.eq_ignore_ascii_case(b"close");
                    keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                expect = trim(h.value).eq_ignore_ascii_case(b"100-continue");
            }
            _ => {}
        }
    }
    if coded && !chunked {
        return Err(Refusal::BAD_REQUEST);
    }
    let http10 = req.version == Some(0);
    conn.http10 = http10;
    conn.keep_alive = !close && (!http10 || keep_alive);
    // With Transfer-Encoding the length is ignored, and the connection closes (chunked).
    conn.chunked = coded;
    conn.body_left = if coded { 0 } else { length.unwrap_or(0) };
    // An HTTP/1.0 client cannot know 100 Continue (RFC 9110 §10.1.1).
    conn.expect_continue = expect && !http10;
    conn.timed_out = false;
    conn.body_deadline = None;
    Ok(())
}

pub(crate) fn decode<'header, 'buf, 'stream>(
    headers: &'header mut [MaybeUninit<httparse::Header<'buf>>; MAX_HEADERS],
    req_buf: &'buf mut BytesMut,
    stream: &'stream mut TcpStream,
    conn: &'stream mut Conn,
) -> Result<Option<Request<'buf, 'header, 'stream>>, Refusal> {
    let mut req = httparse::Request::new(&mut []);
    // safety: don't hold the reference of req_buf
    // so we can transfer the mutable reference to Request
    let buf: &[u8] = unsafe { std::mem::transmute(req_buf.chunk()) };
    let status = match req.parse_with_uninit_headers(buf, headers) {
        Ok(s) => s,
        // PATCHED (didit-webhook-bench): a request that does not parse is answered (400, or
        // 431 for more header fields than MAX_HEADERS) instead of ending the connection
        // silently; logged at debug level, as the client decides how often it happens.
        Err(e) => {
            debug!("failed to parse http request: {e:?}");
            return Err(match e {
                httparse::Error::TooManyHeaders => Refusal::HEAD_TOO_LARGE,
                _ => Refusal::BAD_REQUEST,
            });
        }
    };

    let len = match status {
        httparse::Status::Complete(amt) => amt,
        // PATCHED (didit-webhook-bench): a head still incomplete after MAX_HEAD bytes ends the
        // connection (414 while the request line is unfinished, else 431). Upstream buffers it
        // without limit, so one client sending an endless header grows the process by as much
        // as it sends.
        httparse::Status::Partial if buf.len() > MAX_HEAD => {
            return Err(if buf.contains(&b'\n') {
                Refusal::HEAD_TOO_LARGE
            } else {
                Refusal::URI_TOO_LONG
            });
        }
        httparse::Status::Partial => return Ok(None),
    };
    framing(&req, conn)?;
    req_buf.advance(len);

    // println!("req: {:?}", std::str::from_utf8(req_buf).unwrap());
    Ok(Some(Request {
        req,
        req_buf,
        stream,
        conn,
    }))
}

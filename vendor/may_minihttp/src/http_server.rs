//! http server implementation on top of `MAY`

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use crate::request::{self, Conn, Request};
use crate::response::{self, Response};

#[cfg(unix)]
use bytes::Buf;
use bytes::{BufMut, BytesMut};
#[cfg(unix)]
use may::io::WaitIo;
use may::net::{TcpListener, TcpStream};
use may::{coroutine, go};

macro_rules! t_c {
    ($e: expr) => {
        match $e {
            Ok(val) => val,
            Err(err) => {
                error!("call = {:?}\nerr = {:?}", stringify!($e), err);
                continue;
            }
        }
    };
}

/// the http service trait
/// user code should supply a type that impl the `call` method for the http server
///
pub trait HttpService {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()>;
}

pub trait HttpServiceFactory: Send + Sized + 'static {
    type Service: HttpService + Send;
    // create a new http service for each connection
    fn new_service(&self, id: usize) -> Self::Service;

    /// PATCHED (didit-webhook-bench): the longest a connection may take to deliver a request
    /// head, counted from when the server starts waiting for it (the connection's start, or the
    /// previous answer: so it is also the keep-alive idle timeout). Past it the connection is
    /// closed without an answer. None (the default): no limit, as upstream.
    fn header_timeout(&self) -> Option<Duration> {
        None
    }

    /// PATCHED (didit-webhook-bench): the longest reading a request body may take, counted from
    /// the first body read that has to wait for the client. Past it the body reader's `read`
    /// fails with `io::ErrorKind::TimedOut`, and the connection closes after the service's
    /// answer. None (the default): no limit, as upstream.
    fn body_timeout(&self) -> Option<Duration> {
        None
    }

    /// Spawns the http service, binding to the given address
    /// return a coroutine that you can cancel it when need to stop the service
    fn start<L: ToSocketAddrs>(self, addr: L) -> io::Result<coroutine::JoinHandle<()>> {
        let listener = TcpListener::bind(addr)?;
        let timeouts = Timeouts {
            header: self.header_timeout(),
            body: self.body_timeout(),
        };
        go!(
            coroutine::Builder::new().name("TcpServerFac".to_owned()),
            move || {
                #[cfg(unix)]
                use std::os::fd::AsRawFd;
                #[cfg(windows)]
                use std::os::windows::io::AsRawSocket;
                for stream in listener.incoming() {
                    let mut stream = t_c!(stream);
                    #[cfg(unix)]
                    let id = stream.as_raw_fd() as usize;
                    #[cfg(windows)]
                    let id = stream.as_raw_socket() as usize;
                    // t_c!(stream.set_nodelay(true));
                    let service = self.new_service(id);
                    let builder = may::coroutine::Builder::new().id(id);
                    go!(builder, move || if let Err(e) =
                        each_connection_loop(&mut stream, service, timeouts)
                    {
                        error!("service err = {:?}", e);
                        stream.shutdown(std::net::Shutdown::Both).ok();
                    })
                    .unwrap();
                }
            }
        )
    }
}

#[inline]
#[cold]
pub(crate) fn err<T>(e: io::Error) -> io::Result<T> {
    Err(e)
}

#[cfg(unix)]
#[inline]
fn nonblock_read(stream: &mut impl Read, req_buf: &mut BytesMut) -> io::Result<bool> {
    reserve_buf(req_buf);
    let read_buf: &mut [u8] = unsafe { std::mem::transmute(req_buf.chunk_mut()) };
    let len = read_buf.len();

    let mut read_cnt = 0;
    while read_cnt < len {
        match stream.read(unsafe { read_buf.get_unchecked_mut(read_cnt..) }) {
            // PATCHED (didit-webhook-bench): a client that half-closes right after its request
            // still gets the answer: the end is reported by the next read, after the requests
            // read here are served (upstream dropped them).
            Ok(0) if read_cnt > 0 => break,
            Ok(0) => return err(io::Error::new(io::ErrorKind::BrokenPipe, "read closed")),
            Ok(n) => read_cnt += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return err(e),
        }
    }

    unsafe { req_buf.advance_mut(read_cnt) };
    Ok(read_cnt < len)
}

#[cfg(unix)]
#[inline]
fn nonblock_write(stream: &mut impl Write, rsp_buf: &mut BytesMut) -> io::Result<usize> {
    let write_buf = rsp_buf.chunk();
    let len = write_buf.len();
    let mut write_cnt = 0;
    while write_cnt < len {
        match stream.write(unsafe { write_buf.get_unchecked(write_cnt..) }) {
            Ok(0) => return err(io::Error::new(io::ErrorKind::BrokenPipe, "write closed")),
            Ok(n) => write_cnt += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return err(e),
        }
    }
    rsp_buf.advance(write_cnt);
    Ok(write_cnt)
}

const BUF_LEN: usize = 4096 * 8;
#[inline]
pub(crate) fn reserve_buf(buf: &mut BytesMut) {
    let rem = buf.capacity() - buf.len();
    if rem < 1024 {
        buf.reserve(BUF_LEN - rem);
    }
}

/// this is the generic type http server
/// with a type parameter that impl `HttpService` trait
///
pub struct HttpServer<T>(pub T);

/// PATCHED (didit-webhook-bench): the read deadlines a connection runs with (see
/// `HttpServiceFactory::header_timeout` and `body_timeout`).
#[derive(Clone, Copy, Default)]
struct Timeouts {
    header: Option<Duration>,
    body: Option<Duration>,
}

/// PATCHED (didit-webhook-bench): how long a closing connection keeps reading and discarding
/// the client's input (never past the body timeout), and how much of it at most.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 << 20;

/// PATCHED (didit-webhook-bench): how much input to discard when closing after an answer: what
/// the client may still send of the body (all of a chunked one, up to the cap) and one more
/// head. After a refused head it is only one more head, so an endless header ends promptly.
fn linger_bytes(conn: &Conn) -> usize {
    if conn.chunked {
        LINGER_BYTES
    } else {
        conn.body_left
            .saturating_add(request::MAX_HEAD)
            .min(LINGER_BYTES)
    }
}

/// PATCHED (didit-webhook-bench): closes a connection that may still have unread input, as
/// nginx's `lingering_close` does. Closing a socket with unread input makes the kernel send a
/// reset, which can destroy the answer before the client reads it (a client that writes its
/// whole request before reading, such as Python's http.client, then sees a reset instead of the
/// 413 and retries). So: write the answers out, shut down the write side (the client sees the
/// end of the answer), then read and discard until the client closes, within a time and a
/// size (`limit`) bound.
#[cold]
fn close_lingering(
    stream: &mut TcpStream,
    conn: &mut Conn,
    req_buf: &mut BytesMut,
    limit: usize,
) -> io::Result<()> {
    let linger = conn
        .body_timeout
        .map_or(LINGER_TIME, |t| t.min(LINGER_TIME));
    let deadline = Instant::now() + linger;
    stream.set_write_timeout(Some(linger))?;
    stream.write_all(&conn.rsp_buf)?;
    conn.rsp_buf.clear();
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut discarded = 0;
    req_buf.clear();
    reserve_buf(req_buf);
    let buf: &mut [u8] = unsafe { std::mem::transmute(req_buf.chunk_mut()) };
    while discarded < limit {
        let Some(wait) = request::remaining(deadline, Instant::now()) else {
            break;
        };
        match conn.read_within(stream, buf, Some(wait)) {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
    Ok(())
}

#[cfg(unix)]
fn each_connection_loop<T: HttpService>(
    stream: &mut TcpStream,
    mut service: T,
    timeouts: Timeouts,
) -> io::Result<()> {
    let mut req_buf = BytesMut::with_capacity(BUF_LEN);
    let mut body_buf = BytesMut::with_capacity(4096);
    let mut conn = Conn::new(BytesMut::with_capacity(BUF_LEN), timeouts.body);
    // PATCHED (didit-webhook-bench): when the wait for the current request head began (None:
    // not waiting yet), and whether req_buf was just filled by the waiting read below.
    let mut head_since: Option<Instant> = None;
    let mut just_read: Option<bool> = None;
    let mut write_timeout_set = false;

    loop {
        let read_blocked = match just_read.take() {
            Some(blocked) => blocked,
            None => nonblock_read(stream.inner_mut(), &mut req_buf)?,
        };

        // prepare the requests, we should make sure the request is fully read
        let mut close = false;
        let mut refused = false;
        loop {
            reserve_buf(&mut conn.rsp_buf);
            let mut headers = [MaybeUninit::uninit(); request::MAX_HEADERS];
            let req = match request::decode(&mut headers, &mut req_buf, stream, &mut conn) {
                Ok(Some(req)) => req,
                Ok(None) => break,
                // PATCHED (didit-webhook-bench): answered after the queued answers, then closed.
                Err(refusal) => {
                    response::encode_refusal(refusal, &mut conn.rsp_buf);
                    refused = true;
                    break;
                }
            };
            head_since = None;
            let mut rsp = Response::new(&mut body_buf);
            let result = service.call(req, &mut rsp);
            // PATCHED (didit-webhook-bench): close after this answer when the request asks
            // for it, its body is left unread, or the service says so (`Connection: close`).
            let must_close = conn.must_close(&mut req_buf);
            close = match result {
                Ok(()) => response::encode(rsp, &mut conn.rsp_buf, must_close, conn.http10),
                Err(e) => {
                    eprintln!("service err = {:?}", e);
                    response::encode_error(e, &mut conn.rsp_buf);
                    true
                }
            };
            if close {
                break;
            }
            // here need to use no_delay tcp option
            // nonblock_write(stream.inner_mut(), &mut rsp_buf)?;
        }
        if refused {
            return close_lingering(stream, &mut conn, &mut req_buf, request::MAX_HEAD);
        }
        if close {
            let limit = linger_bytes(&conn);
            return close_lingering(stream, &mut conn, &mut req_buf, limit);
        }

        // write out the responses
        nonblock_write(stream.inner_mut(), &mut conn.rsp_buf)?;

        if !read_blocked {
            continue;
        }
        if !conn.rsp_buf.is_empty() {
            // Answers still to write: wait for the socket to take more (or for input).
            let Some(t) = timeouts.header else {
                stream.wait_io();
                continue;
            };
            // PATCHED (didit-webhook-bench): a client that stops reading its answers is cut
            // off after the header timeout too, instead of holding the connection forever.
            if !write_timeout_set {
                stream.set_write_timeout(Some(t))?;
                write_timeout_set = true;
            }
            match stream.write_all(&conn.rsp_buf) {
                Ok(()) => conn.rsp_buf.clear(),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
                Err(e) => return err(e),
            }
            continue;
        }
        // PATCHED (didit-webhook-bench): wait for input by reading, within the header timeout
        // (upstream: `wait_io`, without a limit). On the keep-alive path this is the same
        // system calls as before, plus a may timer while parked.
        let wait = match timeouts.header {
            None => None,
            Some(t) => {
                let now = Instant::now();
                let since = *head_since.get_or_insert(now);
                match request::remaining(since + t, now) {
                    Some(w) => Some(w),
                    None => return Ok(()),
                }
            }
        };
        reserve_buf(&mut req_buf);
        let read_buf: &mut [u8] = unsafe { std::mem::transmute(req_buf.chunk_mut()) };
        let space = read_buf.len();
        match conn.read_within(stream, read_buf, wait) {
            Ok(0) => return err(io::Error::new(io::ErrorKind::BrokenPipe, "read closed")),
            Ok(n) => {
                unsafe { req_buf.advance_mut(n) };
                just_read = Some(n < space);
            }
            // The header timeout: close without an answer, as hyper does.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
            Err(e) => return err(e),
        }
    }
}

#[cfg(not(unix))]
fn each_connection_loop<T: HttpService>(
    stream: &mut TcpStream,
    mut service: T,
    timeouts: Timeouts,
) -> io::Result<()> {
    // PATCHED (didit-webhook-bench): the framing and close decisions as on unix; the timeouts
    // are not implemented here.
    let _ = timeouts;
    let mut req_buf = BytesMut::with_capacity(BUF_LEN);
    let mut body_buf = BytesMut::with_capacity(BUF_LEN);
    let mut conn = Conn::new(BytesMut::with_capacity(BUF_LEN), None);
    loop {
        // read the socket for requests
        reserve_buf(&mut req_buf);
        let read_buf: &mut [u8] = unsafe { std::mem::transmute(&mut *req_buf.chunk_mut()) };
        let read_cnt = stream.read(read_buf)?;
        if read_cnt == 0 {
            //connection was closed
            return err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
        }
        unsafe { req_buf.advance_mut(read_cnt) };

        // prepare the requests
        let mut close = false;
        let mut refused = false;
        if read_cnt > 0 {
            loop {
                let mut headers = [MaybeUninit::uninit(); request::MAX_HEADERS];
                let req = match request::decode(&mut headers, &mut req_buf, stream, &mut conn) {
                    Ok(Some(req)) => req,
                    Ok(None) => break,
                    Err(refusal) => {
                        response::encode_refusal(refusal, &mut conn.rsp_buf);
                        refused = true;
                        break;
                    }
                };
                let mut rsp = Response::new(&mut body_buf);
                let result = service.call(req, &mut rsp);
                let must_close = conn.must_close(&mut req_buf);
                close = match result {
                    Ok(()) => response::encode(rsp, &mut conn.rsp_buf, must_close, conn.http10),
                    Err(e) => {
                        eprintln!("service err = {:?}", e);
                        response::encode_error(e, &mut conn.rsp_buf);
                        true
                    }
                };
                if close {
                    break;
                }
            }
        }
        if refused {
            return close_lingering(stream, &mut conn, &mut req_buf, request::MAX_HEAD);
        }
        if close {
            let limit = linger_bytes(&conn);
            return close_lingering(stream, &mut conn, &mut req_buf, limit);
        }

        // send the result back to client
        stream.write_all(&conn.rsp_buf)?;
        conn.rsp_buf.clear();
    }
}

impl<T: HttpService + Clone + Send + Sync + 'static> HttpServer<T> {
    /// Spawns the http service, binding to the given address
    /// return a coroutine that you can cancel it when need to stop the service
    pub fn start<L: ToSocketAddrs>(self, addr: L) -> io::Result<coroutine::JoinHandle<()>> {
        let listener = TcpListener::bind(addr)?;
        let service = self.0;
        go!(
            coroutine::Builder::new().name("TcpServer".to_owned()),
            move || {
                for stream in listener.incoming() {
                    let mut stream = t_c!(stream);
                    // t_c!(stream.set_nodelay(true));
                    let service = service.clone();
                    go!(move || if let Err(e) =
                        each_connection_loop(&mut stream, service, Timeouts::default())
                    {
                        error!("service err = {:?}", e);
                        stream.shutdown(std::net::Shutdown::Both).ok();
                    });
                }
            }
        )
    }
}

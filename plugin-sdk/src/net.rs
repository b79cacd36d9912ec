//! TCP connections through the host, for plugins that speak a binary protocol.
//!
//! The host resolves the name, applies its egress policy to every address and does TLS, so a
//! plugin needs no socket and no TLS stack of its own.
//!
//! [`TcpStream`] implements [`std::io::Read`] and [`std::io::Write`], so the usual adapters apply:
//! wrap it in a [`std::io::BufReader`] to read frames and write requests through
//! [`std::io::BufReader::get_mut`]. Give it a read timeout ([`TcpStream::set_read_timeout`]) so a
//! peer that accepts the connection and then goes quiet becomes a retryable error of the plugin's
//! own, well before the host's per-call deadline.

use std::io;
use std::time::{Duration, Instant};

use crate::bindings::pushrail::destination::net::{self, ConnectOptions, NetError};
use crate::bindings::wasi::clocks::monotonic_clock;
use crate::bindings::wasi::io::poll;
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};
use crate::Failure;

pub struct TcpStream {
    input: InputStream,
    output: OutputStream,
    read_timeout: Option<Duration>,
}

impl TcpStream {
    /// Reads what has arrived into `chunk`; a closed connection or a failed read is a retryable
    /// failure described by `doing`. For codecs that buffer until a whole frame is there.
    pub fn read_chunk(&mut self, doing: &str, chunk: &mut [u8]) -> Result<usize, Failure> {
        match io::Read::read(self, chunk) {
            Ok(0) => Err(io_failure(
                doing,
                &io::Error::from(io::ErrorKind::UnexpectedEof),
            )),
            Ok(n) => Ok(n),
            Err(e) => Err(io_failure(doing, &e)),
        }
    }

    /// Connects with the host's connect timeout; `tls` asks the host to wrap the connection in
    /// TLS (certificate verified for `host`) before any byte is exchanged.
    pub fn connect(host: &str, port: u16, tls: bool) -> Result<Self, NetError> {
        Self::open(host, port, tls, None)
    }

    /// Like [`TcpStream::connect`] with a connect timeout of the plugin's (the host caps it).
    pub fn connect_timeout(
        host: &str,
        port: u16,
        tls: bool,
        timeout: Duration,
    ) -> Result<Self, NetError> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        Self::open(host, port, tls, Some(ms.max(1)))
    }

    fn open(host: &str, port: u16, tls: bool, timeout_ms: Option<u32>) -> Result<Self, NetError> {
        let options = ConnectOptions { tls, timeout_ms };
        let (input, output) = net::connect(host, port, options)?;
        Ok(Self {
            input,
            output,
            read_timeout: None,
        })
    }

    /// Bounds how long one `read` waits for data; past it the read fails with
    /// [`io::ErrorKind::TimedOut`]. `None` (the default) waits until the host's deadline.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    fn read_until(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            match self.input.read(buf.len() as u64) {
                Ok(chunk) if !chunk.is_empty() => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    return Ok(chunk.len());
                }
                Ok(_) => {}
                Err(e) => return closed_or_failed(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out waiting for the peer",
                ));
            }
            let readable = self.input.subscribe();
            let timer = monotonic_clock::subscribe_duration(
                u64::try_from(left.as_nanos()).unwrap_or(u64::MAX),
            );
            poll::poll(&[&readable, &timer]);
        }
    }
}

impl io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(timeout) = self.read_timeout {
            return self.read_until(buf, Instant::now() + timeout);
        }
        match self.input.blocking_read(buf.len() as u64) {
            Ok(chunk) => {
                buf[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
            Err(e) => closed_or_failed(e),
        }
    }
}

fn closed_or_failed(e: StreamError) -> io::Result<usize> {
    match e {
        StreamError::Closed => Ok(0),
        StreamError::LastOperationFailed(e) => Err(io::Error::other(e.to_debug_string())),
    }
}

impl io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(4096);
        self.output
            .blocking_write_and_flush(&buf[..n])
            .map_err(stream_error)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.blocking_flush().map_err(stream_error)
    }
}

fn stream_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::from(io::ErrorKind::BrokenPipe),
        StreamError::LastOperationFailed(e) => io::Error::other(e.to_debug_string()),
    }
}

/// A sentence for the delivery log (the generated `Display` only prints the variant).
pub fn describe(error: &NetError) -> String {
    match error {
        NetError::Denied(m) => format!("egress policy refused the connection: {m}"),
        NetError::Unresolved(m) => format!("name did not resolve: {m}"),
        NetError::Unreachable(m) => format!("unreachable: {m}"),
        NetError::Timeout => "connect timed out".to_owned(),
        NetError::Tls(m) => format!("TLS failed: {m}"),
        NetError::LimitReached => "connection limit reached".to_owned(),
    }
}

impl From<NetError> for Failure {
    /// A refused or misconfigured connection will be refused again; the rest may heal.
    fn from(error: NetError) -> Self {
        match error {
            NetError::Denied(_) | NetError::Tls(_) => Failure::permanent(describe(&error)),
            _ => Failure::retryable(describe(&error)),
        }
    }
}

/// The failure for an I/O error on an open connection, with `context` saying what was being
/// done. Always retryable: the peer closed or reset the connection, or went quiet past the read
/// timeout, none of which says the next attempt will fail too.
pub fn io_failure(context: &str, error: &io::Error) -> Failure {
    let what = match error.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => {
            "the server closed the connection".to_owned()
        }
        io::ErrorKind::TimedOut => "timed out waiting for the server".to_owned(),
        _ => error.to_string(),
    };
    Failure::retryable(format!("{context}: {what}"))
}

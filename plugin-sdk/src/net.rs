//! TCP connections through the host, for plugins that speak a binary protocol.
//!
//! The host resolves the name, applies its egress policy to every address and does TLS, so a
//! plugin needs no socket and no TLS stack of its own.

use std::io;

use crate::bindings::pushrail::destination::net::{self, ConnectOptions, NetError};
use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};
use crate::Failure;

pub struct TcpStream {
    input: InputStream,
    output: OutputStream,
}

impl TcpStream {
    pub fn connect(host: &str, port: u16, tls: bool) -> Result<Self, NetError> {
        let options = ConnectOptions {
            tls,
            timeout_ms: None,
        };
        let (input, output) = net::connect(host, port, options)?;
        Ok(Self { input, output })
    }
}

impl io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.input.blocking_read(buf.len() as u64) {
            Ok(chunk) => {
                buf[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
            Err(StreamError::Closed) => Ok(0),
            Err(StreamError::LastOperationFailed(e)) => Err(io::Error::other(e.to_debug_string())),
        }
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

//! A small blocking HTTP client over `wasi:http`.
//!
//! The host sends the request: it resolves the name, applies the egress policy, pools
//! connections and bounds every timeout. Plugins never see a socket.

use std::time::Duration;

use crate::bindings::wasi::clocks::monotonic_clock;
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use crate::bindings::wasi::io::poll::{poll, Pollable};
use crate::bindings::wasi::io::streams::StreamError;
use crate::{Delivered, Failure};

/// Responses larger than this are cut; plugins only need status, headers and an excerpt.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
const EXCERPT_CHARS: usize = 512;
const WRITE_CHUNK: usize = 4096;

#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: url::Url,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug, Clone)]
pub struct Error {
    /// Whether trying again later may succeed.
    pub retryable: bool,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        if error.retryable {
            Failure::retryable(error.message)
        } else {
            Failure::permanent(error.message)
        }
    }
}

impl Request {
    pub fn new(method: Method, url: &str) -> Result<Self, Error> {
        let url =
            url::Url::parse(url).map_err(|e| Error::permanent(format!("invalid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::permanent(format!(
                "unsupported URL scheme {:?}",
                url.scheme()
            )));
        }
        Ok(Self {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(30),
        })
    }

    pub fn post(url: &str) -> Result<Self, Error> {
        Self::new(Method::Post, url)
    }

    pub fn put(url: &str) -> Result<Self, Error> {
        Self::new(Method::Put, url)
    }

    pub fn get(url: &str) -> Result<Self, Error> {
        Self::new(Method::Get, url)
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn json_body(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    /// How long to wait for the response to start (default 30 s); the host bounds the rest.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request and waits for the response.
    pub fn send(self) -> Result<Response, Error> {
        let deadline = deadline_after(self.timeout);
        let pending = self.start()?;
        let timer = monotonic_clock::subscribe_instant(deadline);
        let ready = {
            let response = pending.subscribe();
            poll(&[&response, &timer])
        };
        if !ready.contains(&0) {
            // Dropping the pending response makes the host abandon the request.
            return Err(Error::timed_out());
        }
        finish(pending)
    }

    /// Hands the request to the host and returns at once; the host sends it in the background.
    ///
    /// No `request-options`: wasmtime-wasi-http 48 keeps each request's options in the
    /// instance's resource table after `handle` has taken them, so a warm session would fill its
    /// table. The plugin enforces its timeout itself instead (dropping the pending response
    /// abandons the request), and the host bounds connect and total time.
    fn start(self) -> Result<FutureIncomingResponse, Error> {
        let headers = Fields::new();
        for (name, value) in &self.headers {
            headers
                .append(name, value)
                .map_err(|e| Error::permanent(format!("header {name:?} refused: {e:?}")))?;
        }
        let request = OutgoingRequest::new(headers);
        let scheme = if self.url.scheme() == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let authority = match (self.url.host_str(), self.url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(Error::permanent("URL has no host")),
        };
        let path = match self.url.query() {
            Some(query) => format!("{}?{query}", self.url.path()),
            None => self.url.path().to_owned(),
        };
        let refused = |what: &str| Error::permanent(format!("request {what} refused by the host"));
        request
            .set_method(&self.method)
            .map_err(|()| refused("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| refused("scheme"))?;
        request
            .set_authority(Some(&authority))
            .map_err(|()| refused("authority"))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| refused("path"))?;

        let body = request.body().map_err(|()| refused("body"))?;
        let pending = outgoing_handler::handle(request, None).map_err(Error::from_code)?;
        {
            let stream = body.write().map_err(|()| refused("body stream"))?;
            for chunk in self.body.chunks(WRITE_CHUNK) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error::retryable(format!("sending the body failed: {e:?}")))?;
            }
        }
        OutgoingBody::finish(body, None).map_err(Error::from_code)?;
        Ok(pending)
    }
}

/// Sends every request, at most `max_in_flight` at a time, and answers for each in the order
/// given. The host runs them concurrently; the plugin waits on whichever finishes first, and
/// gives up on a request whose timeout has passed.
pub fn send_all(
    requests: Vec<Result<Request, Error>>,
    max_in_flight: usize,
) -> Vec<Result<Response, Error>> {
    struct Running {
        index: usize,
        deadline: monotonic_clock::Instant,
        pollable: Pollable,
        pending: FutureIncomingResponse,
    }
    let mut results: Vec<Option<Result<Response, Error>>> =
        (0..requests.len()).map(|_| None).collect();
    let mut queue = requests.into_iter().enumerate();
    let mut running: Vec<Running> = Vec::new();
    loop {
        while running.len() < max_in_flight.max(1) {
            let Some((index, request)) = queue.next() else {
                break;
            };
            let started = request.and_then(|request| {
                let deadline = deadline_after(request.timeout);
                request.start().map(|pending| (deadline, pending))
            });
            match started {
                Ok((deadline, pending)) => running.push(Running {
                    index,
                    deadline,
                    pollable: pending.subscribe(),
                    pending,
                }),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        let Some(earliest) = running.iter().map(|r| r.deadline).min() else {
            break;
        };
        let timer = monotonic_clock::subscribe_instant(earliest);
        let ready: Vec<usize> = {
            let mut pollables: Vec<&Pollable> = running.iter().map(|r| &r.pollable).collect();
            pollables.push(&timer);
            poll(&pollables).into_iter().map(|i| i as usize).collect()
        };
        let now = monotonic_clock::now();
        // Highest position first, so each swap_remove moves in an entry already looked at.
        for position in (0..running.len()).rev() {
            let done = ready.contains(&position);
            let late = running[position].deadline <= now;
            if !done && !late {
                continue;
            }
            let Running {
                index,
                pollable,
                pending,
                ..
            } = running.swap_remove(position);
            drop(pollable);
            // A request past its timeout is dropped unanswered: the host abandons it.
            results[index] = Some(if done {
                finish(pending)
            } else {
                Err(Error::timed_out())
            });
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::retryable("the request was not sent"))))
        .collect()
}

/// The monotonic instant `timeout` from now.
fn deadline_after(timeout: Duration) -> monotonic_clock::Instant {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    monotonic_clock::now().saturating_add(nanos)
}

/// Reads the response of a request, waiting for it when it is not there yet.
fn finish(pending: FutureIncomingResponse) -> Result<Response, Error> {
    let answer = match pending.get() {
        Some(answer) => Some(answer),
        None => {
            pending.subscribe().block();
            pending.get()
        }
    };
    let response = match answer {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(Error::from_code(code)),
        Some(Err(())) | None => return Err(Error::retryable("the response was lost")),
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| Error::retryable("no response body"))?;
    let body = read_body(&incoming)?;
    IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, Error> {
    let stream = incoming
        .stream()
        .map_err(|()| Error::retryable("no response body"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room == 0 {
                    break;
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(Error::retryable(format!(
                    "reading the response failed: {}",
                    e.to_debug_string()
                )))
            }
        }
    }
    Ok(body)
}

impl Error {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }

    fn timed_out() -> Self {
        Self::retryable("timed out waiting for the response")
    }

    fn from_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::DestinationIpProhibited | ErrorCode::HttpRequestDenied => {
                Self::permanent("egress policy refused the destination address")
            }
            ErrorCode::DnsError(e) => Self::retryable(format!(
                "name resolution failed{}",
                e.rcode.map(|r| format!(": {r}")).unwrap_or_default()
            )),
            ErrorCode::ConnectionRefused => Self::retryable("connection refused"),
            ErrorCode::ConnectionTimeout => Self::retryable("connect timed out"),
            ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
                Self::retryable("timed out waiting for the response")
            }
            ErrorCode::TlsCertificateError => Self::permanent("TLS certificate rejected"),
            ErrorCode::HttpRequestUriInvalid => Self::permanent("invalid request URI"),
            ErrorCode::InternalError(Some(message)) => Self::retryable(message),
            other => Self::retryable(format!("request failed: {other:?}")),
        }
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body as text, for the delivery log.
    pub fn excerpt(&self) -> Option<String> {
        if self.body.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.body);
        Some(text.chars().take(EXCERPT_CHARS).collect())
    }

    /// `Retry-After` in milliseconds, when given in seconds (the HTTP-date form is rare on APIs).
    pub fn retry_after_ms(&self) -> Option<u64> {
        let seconds: u64 = self.header("retry-after")?.trim().parse().ok()?;
        Some(seconds.saturating_mul(1000))
    }

    /// The usual HTTP classification: 2xx delivered; 408, 429 and 5xx retryable (honouring
    /// `Retry-After`); every other status permanent.
    pub fn into_result(self) -> Result<Delivered, Failure> {
        let excerpt = self.excerpt();
        if self.is_success() {
            return Ok(Delivered {
                status_code: Some(self.status),
                response_excerpt: excerpt,
            });
        }
        let message = format!("HTTP {}", self.status);
        let failure = if matches!(self.status, 408 | 429) || self.status >= 500 {
            Failure::retryable(message).with_retry_after_ms(self.retry_after_ms())
        } else {
            Failure::permanent(message)
        };
        Err(failure.with_status(self.status).with_excerpt(excerpt))
    }
}

//! A small blocking HTTP client, sent by the host through `http-batch`.
//!
//! The host sends the requests: it resolves names, applies the egress policy, pools connections
//! and bounds every timeout. Plugins never see a socket. A batch of requests ([`send_all`]) is
//! one host call, whatever its size.

use std::time::Duration;

use crate::bindings::pushrail::destination::http_batch;
use crate::{Delivered, Failure};

/// Responses larger than this are cut; plugins only need status, headers and an excerpt.
const MAX_RESPONSE_BYTES: u32 = 1024 * 1024;
const EXCERPT_CHARS: usize = 512;

#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: url::Url,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The start of the body (at most 1 MiB).
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
    /// A request with `method` (`POST`, `PUT`, ...) to an absolute `http` or `https` URL.
    pub fn new(method: &str, url: &str) -> Result<Self, Error> {
        let url =
            url::Url::parse(url).map_err(|e| Error::permanent(format!("invalid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::permanent(format!(
                "unsupported URL scheme {:?}",
                url.scheme()
            )));
        }
        if url.host_str().is_none() {
            return Err(Error::permanent("URL has no host"));
        }
        Ok(Self {
            method: method.to_owned(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(30),
        })
    }

    pub fn post(url: &str) -> Result<Self, Error> {
        Self::new("POST", url)
    }

    pub fn put(url: &str) -> Result<Self, Error> {
        Self::new("PUT", url)
    }

    pub fn get(url: &str) -> Result<Self, Error> {
        Self::new("GET", url)
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

    /// How long to wait for the answer (default 30 s); the host caps it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The method, as given to [`Request::new`].
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The absolute URL the request goes to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The headers set so far, names in lower case, in the order set.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The first value of header `name` (any case), when it is text.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body set so far.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Sends the request and waits for the response.
    pub fn send(self) -> Result<Response, Error> {
        send_all(vec![Ok(self)], 1)
            .pop()
            .unwrap_or_else(|| Err(Error::retryable("the request was not sent")))
    }

    fn into_wit(self) -> http_batch::Request {
        http_batch::Request {
            method: self.method,
            url: self.url.into(),
            headers: self.headers,
            body: self.body,
            timeout_ms: u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX),
        }
    }
}

/// Sends every request, at most `max_in_flight` at a time, and answers for each in the order
/// given: one host call for the whole set. An `Err` given in place of a request is answered
/// with itself.
pub fn send_all(
    requests: Vec<Result<Request, Error>>,
    max_in_flight: usize,
) -> Vec<Result<Response, Error>> {
    let mut to_send = Vec::new();
    let mut answers: Vec<Option<Result<Response, Error>>> = Vec::with_capacity(requests.len());
    for request in requests {
        match request {
            Ok(request) => {
                to_send.push(request.into_wit());
                answers.push(None);
            }
            Err(error) => answers.push(Some(Err(error))),
        }
    }
    let in_flight = u32::try_from(max_in_flight.max(1)).unwrap_or(u32::MAX);
    let mut sent = if to_send.is_empty() {
        Vec::new()
    } else {
        http_batch::send(&to_send, in_flight, MAX_RESPONSE_BYTES)
    }
    .into_iter();
    answers
        .into_iter()
        .map(|answer| match answer {
            Some(error) => error,
            None => match sent.next() {
                Some(Ok(response)) => Ok(Response {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                }),
                Some(Err(error)) => Err(Error::from_wit(error)),
                None => Err(Error::retryable("the host gave no answer for the request")),
            },
        })
        .collect()
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

    fn from_wit(error: http_batch::Error) -> Self {
        use http_batch::Error as E;
        match error {
            E::Denied => Self::permanent("egress policy refused the destination address"),
            E::Unresolved(name) => Self::retryable(format!("name resolution failed: {name}")),
            E::ConnectionRefused => Self::retryable("connection refused"),
            E::ConnectTimeout => Self::retryable("connect timed out"),
            E::ResponseTimeout => Self::retryable("timed out waiting for the response"),
            E::Tls(message) => Self::permanent(format!("TLS failed: {message}")),
            E::InvalidRequest(message) => Self::permanent(format!("invalid request: {message}")),
            E::BodyTooLarge => Self::permanent("the request body is larger than the host sends"),
            E::LimitReached => Self::retryable("the host's cap on requests per call was reached"),
            E::Other(message) => Self::retryable(message),
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

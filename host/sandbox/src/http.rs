//! Outgoing HTTP for plugins: the `send_request` hook of wasmtime-wasi-http, and the
//! `http-batch` import (a set of requests in one call), both through [`HttpEgress::fetch`].
//!
//! Every request goes through one pooled client shared by all invocations (connections are
//! reused across deliveries; a pooled connection carries no sub-tenant state beyond the peer it is
//! connected to). Its resolver is the egress policy, IP literals are checked here, redirects are
//! never followed (a plugin that follows one makes a new request, checked again), and the host
//! bounds every timeout and the size of both bodies.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiHttpHooks};

use crate::egress::{Denied, EgressPolicy, NetLimits, PolicyResolver, ResolveError};

type WasiBody = wasmtime_wasi_http::WasiBody;
type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
const MAX_RESPONSE_BODY: usize = 8 * 1024 * 1024;
/// Outgoing requests one invocation may make.
const MAX_REQUESTS_PER_INVOCATION: u32 = 256;

/// The shared client and policy; cheap to clone into each invocation.
#[derive(Clone)]
pub struct HttpEgress {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
    limits: NetLimits,
}

impl HttpEgress {
    pub fn new(policy: Arc<EgressPolicy>, limits: NetLimits) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            // Proxies from the environment would dial for us, past the policy.
            .no_proxy()
            .connect_timeout(limits.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .user_agent(concat!("Pushrail/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            policy,
            limits,
        })
    }

    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    pub fn limits(&self) -> NetLimits {
        self.limits
    }

    pub fn hooks(&self) -> Hooks {
        Hooks {
            egress: self.clone(),
            requests_left: MAX_REQUESTS_PER_INVOCATION,
        }
    }

    async fn send(
        self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
        let (parts, body) = request.into_parts();
        let body: Bytes = Limited::new(body, MAX_REQUEST_BODY)
            .collect()
            .await
            .map_err(|_| HttpError::HttpRequestBodySize(None))?
            .to_bytes();
        let timeout = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(self.limits.max_request_timeout);
        let response = self
            .fetch(
                parts.method,
                &parts.uri.to_string(),
                &parts.headers,
                body,
                timeout,
            )
            .await?;
        let response: http::Response<reqwest::Body> = response.into();
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BODY)
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    HttpError::HttpResponseBodySize(None)
                } else {
                    HttpError::HttpResponseIncomplete
                }
            })
            .boxed_unsync();
        let io: IoFuture = Box::new(async { Ok(()) });
        Ok((http::Response::from_parts(parts, body), io))
    }
}

impl HttpEgress {
    /// Sends one request through the policy. Parses the URL once, with the same parser the
    /// client uses, and judges what it will dial: the url crate turns spellings such as
    /// `2130706433` or `0x7f.1` into 127.0.0.1, and a literal address never reaches the resolver.
    async fn fetch(
        &self,
        method: http::Method,
        uri: &str,
        headers: &http::HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<reqwest::Response, HttpError> {
        let url = url::Url::parse(uri).map_err(|_| HttpError::HttpRequestUriInvalid)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::HttpRequestUriInvalid);
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(HttpError::HttpRequestUriInvalid),
        };
        if literal.is_some_and(|ip| !self.policy.permits(ip)) {
            return Err(HttpError::DestinationIpProhibited);
        }
        let mut builder = self
            .client
            .request(method, url)
            .timeout(timeout.min(self.limits.max_request_timeout))
            .body(body);
        for (name, value) in headers {
            if name != http::header::HOST {
                builder = builder.header(name, value);
            }
        }
        builder.send().await.map_err(classify)
    }

    /// `http-batch`: every request through [`HttpEgress::fetch`], `max_in_flight` at a time,
    /// answered in order, each body read up to `max_body` bytes.
    pub(crate) async fn send_batch(
        &self,
        requests: Vec<BatchRequest>,
        max_in_flight: usize,
        max_body: usize,
    ) -> Vec<Result<BatchResponse, BatchError>> {
        use futures::StreamExt as _;
        futures::stream::iter(requests)
            .map(|request| self.fetch_one(request, max_body))
            .buffered(max_in_flight.clamp(1, MAX_BATCH_IN_FLIGHT))
            .collect()
            .await
    }

    async fn fetch_one(
        &self,
        request: BatchRequest,
        max_body: usize,
    ) -> Result<BatchResponse, BatchError> {
        let method = http::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| BatchError::InvalidRequest(format!("method {:?}", request.method)))?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in request.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BatchError::InvalidRequest(format!("header name {name:?}")))?;
            let value = http::HeaderValue::from_bytes(&value)
                .map_err(|_| BatchError::InvalidRequest(format!("value of header {name}")))?;
            headers.append(name, value);
        }
        if request.body.len() > MAX_REQUEST_BODY {
            return Err(BatchError::BodyTooLarge);
        }
        let mut response = self
            .fetch(
                method,
                &request.url,
                &headers,
                Bytes::from(request.body),
                request.timeout,
            )
            .await
            .map_err(BatchError::from)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        let limit = max_body.min(MAX_BATCH_RESPONSE_BODY);
        let mut body = Vec::new();
        while body.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(error) => return Err(BatchError::from(classify(error))),
            }
        }
        Ok(BatchResponse {
            status,
            headers,
            body,
        })
    }
}

/// Most requests of one `http-batch` call in flight at once.
const MAX_BATCH_IN_FLIGHT: usize = 64;
/// Most of a response body an `http-batch` answer carries.
const MAX_BATCH_RESPONSE_BODY: usize = 1024 * 1024;

/// One request of an `http-batch` call, in the host's own terms.
pub(crate) struct BatchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

pub(crate) struct BatchResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Why an `http-batch` request got no answer.
pub(crate) enum BatchError {
    Denied,
    Unresolved(String),
    ConnectionRefused,
    ConnectTimeout,
    ResponseTimeout,
    Tls(String),
    InvalidRequest(String),
    BodyTooLarge,
    LimitReached,
    Other(String),
}

impl From<HttpError> for BatchError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::DestinationIpProhibited => Self::Denied,
            HttpError::DnsError { rcode, .. } => Self::Unresolved(rcode.unwrap_or_default()),
            HttpError::ConnectionRefused => Self::ConnectionRefused,
            HttpError::ConnectionTimeout => Self::ConnectTimeout,
            HttpError::HttpResponseTimeout => Self::ResponseTimeout,
            HttpError::TlsCertificateError => Self::Tls("certificate rejected".into()),
            HttpError::HttpRequestUriInvalid => Self::InvalidRequest("URL".into()),
            HttpError::InternalError(Some(message)) => Self::Other(message),
            other => Self::Other(format!("request failed: {other:?}")),
        }
    }
}

/// Per-invocation view of [`HttpEgress`], counting requests.
pub struct Hooks {
    egress: HttpEgress,
    requests_left: u32,
}

impl Hooks {
    /// Takes up to `n` requests from the call's budget; how many it got.
    pub(crate) fn take(&mut self, n: usize) -> usize {
        let granted = n.min(self.requests_left as usize);
        self.requests_left -= granted as u32;
        granted
    }

    pub(crate) fn egress(&self) -> &HttpEgress {
        &self.egress
    }
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        if self.requests_left == 0 {
            return Box::new(async { Err(HttpError::ConnectionLimitReached) });
        }
        self.requests_left -= 1;
        Box::new(self.egress.clone().send(request, options))
    }
}

fn classify(error: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if cause.is::<Denied>()
            || matches!(
                cause.downcast_ref::<ResolveError>(),
                Some(ResolveError::Denied(_))
            )
        {
            return HttpError::DestinationIpProhibited;
        }
        if let Some(ResolveError::Unresolved(name)) = cause.downcast_ref::<ResolveError>() {
            return HttpError::DnsError {
                rcode: Some(name.clone()),
                info_code: None,
            };
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return if error.is_connect() {
            HttpError::ConnectionTimeout
        } else {
            HttpError::HttpResponseTimeout
        };
    }
    if error.is_connect() {
        return HttpError::ConnectionRefused;
    }
    HttpError::InternalError(Some(error.without_url().to_string()))
}

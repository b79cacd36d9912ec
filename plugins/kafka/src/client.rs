//! One connection to one Kafka broker: size-prefixed request/response framing with
//! `kafka-protocol`'s messages, API version negotiation (`ApiVersions`) and SASL.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, InitProducerIdRequest, InitProducerIdResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::Failure;

use crate::scram;

/// Responses larger than this are refused (metadata of one topic and produce acks are small).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
const CLIENT_ID: &str = "pushrail";

/// A request this client sends, paired with its response. (`kafka-protocol` has this pairing
/// as its `Request` trait only with its `broker` feature, which would compile the broker half of
/// every message into the plugin.)
pub trait Api: Encodable + Message {
    const KEY: ApiKey;
    type Response: Decodable;
}

macro_rules! api {
    ($($request:ty => $response:ty, $key:ident;)*) => {
        $(impl Api for $request {
            const KEY: ApiKey = ApiKey::$key;
            type Response = $response;
        })*
    };
}

api! {
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    MetadataRequest => MetadataResponse, Metadata;
    InitProducerIdRequest => InitProducerIdResponse, InitProducerId;
    ProduceRequest => ProduceResponse, Produce;
}

/// How to log in to the brokers.
pub enum Sasl {
    None,
    Plain {
        username: String,
        password: String,
    },
    Scram {
        mechanism: scram::Mechanism,
        username: String,
        password: String,
    },
}

impl Sasl {
    fn mechanism(&self) -> Option<&'static str> {
        match self {
            Sasl::None => None,
            Sasl::Plain { .. } => Some("PLAIN"),
            Sasl::Scram { mechanism, .. } => Some(mechanism.name()),
        }
    }
}

pub struct Broker {
    pub address: String,
    /// Kept from an earlier batch: the broker may have closed it while it sat idle.
    pub reused: bool,
    stream: TcpStream,
    correlation_id: i32,
    /// The broker's version range per API key.
    versions: HashMap<i16, (i16, i16)>,
}

impl Broker {
    pub fn connect(
        host: &str,
        port: u16,
        tls: bool,
        timeout: Duration,
        sasl: &Sasl,
    ) -> Result<Self, Failure> {
        let mut stream = TcpStream::connect_timeout(host, port, tls, timeout).map_err(|e| {
            let failure = Failure::from(e);
            Failure {
                message: format!("{host}:{port}: {}", failure.message),
                ..failure
            }
        })?;
        stream.set_read_timeout(Some(timeout));
        let mut broker = Broker {
            address: format!("{host}:{port}"),
            reused: false,
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
        };
        broker.negotiate()?;
        broker.authenticate(sasl)?;
        Ok(broker)
    }

    /// The highest version of `R` both sides speak, capped at `cap` (versions above it change
    /// shapes this client does not fill in).
    pub fn version<R: Api>(&self, cap: i16) -> Result<i16, Failure> {
        self.try_version::<R>(cap).ok_or_else(|| {
            Failure::permanent(format!(
                "the broker {} does not support a usable version of {:?}",
                self.address,
                R::KEY
            ))
        })
    }

    pub fn try_version<R: Api>(&self, cap: i16) -> Option<i16> {
        let (min, max) = *self.versions.get(&(R::KEY as i16))?;
        let ours = R::VERSIONS;
        let high = max.min(ours.max).min(cap);
        let low = min.max(ours.min);
        (low <= high).then_some(high)
    }

    /// Sends one request and reads its response.
    pub fn call<R: Api>(&mut self, request: &R, version: i16) -> Result<R::Response, Failure> {
        let doing = format!("{:?} to {}", R::KEY, self.address);
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::KEY.request_header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| Failure::permanent(format!("{doing}: encoding: {e:#}")))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        self.stream
            .write_all(&frame)
            .and_then(|()| self.stream.flush())
            .map_err(|e| io_failure(&doing, &e))?;

        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| io_failure(&doing, &e))?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > MAX_RESPONSE {
            return Err(Failure::permanent(format!(
                "{doing}: a response of {size} bytes: is this a Kafka port?"
            )));
        }
        let mut response = vec![0u8; size];
        self.stream
            .read_exact(&mut response)
            .map_err(|e| io_failure(&doing, &e))?;
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, R::KEY.response_header_version(version))
            .map_err(|e| Failure::permanent(format!("{doing}: decoding: {e:#}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(Failure::retryable(format!(
                "{doing}: the response is for another request"
            )));
        }
        let decoded = R::Response::decode(&mut response, version)
            .map_err(|e| Failure::permanent(format!("{doing}: decoding: {e:#}")))?;
        if response.has_remaining() {
            log_trailing(&doing, response.remaining());
        }
        Ok(decoded)
    }

    /// `ApiVersions` v0, which every broker answers, tells which versions it speaks.
    fn negotiate(&mut self) -> Result<(), Failure> {
        // Known to every broker: answer it before anything else is known.
        self.versions.insert(ApiKey::ApiVersions as i16, (0, 0));
        let response = self.call(&ApiVersionsRequest::default(), 0)?;
        if response.error_code != 0 {
            return Err(error_failure(
                "negotiating API versions",
                response.error_code,
                None,
            ));
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    fn authenticate(&mut self, sasl: &Sasl) -> Result<(), Failure> {
        let Some(mechanism) = sasl.mechanism() else {
            return Ok(());
        };
        // SaslHandshake v1: the exchange continues in SaslAuthenticate requests (KIP-152).
        let version = self
            .try_version::<SaslHandshakeRequest>(1)
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "the broker {} does not offer SASL authentication (SaslHandshake v1)",
                    self.address
                ))
            })?;
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let response = self.call(&handshake, version)?;
        if response.error_code != 0 {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(Failure::permanent(format!(
                "the broker refused SASL mechanism {mechanism} (it offers {offered:?}): {}",
                describe(response.error_code)
            )));
        }
        match sasl {
            Sasl::None => Ok(()),
            Sasl::Plain { username, password } => {
                let mut token = Vec::with_capacity(username.len() + password.len() + 2);
                token.push(0);
                token.extend_from_slice(username.as_bytes());
                token.push(0);
                token.extend_from_slice(password.as_bytes());
                self.sasl_step(token).map(|_| ())
            }
            Sasl::Scram {
                mechanism,
                username,
                password,
            } => {
                let mut client = scram::Client::new(*mechanism, username, password, &nonce());
                let server_first = self.sasl_step(client.client_first().into_bytes())?;
                let server_first = String::from_utf8_lossy(&server_first).into_owned();
                let last = client
                    .client_final(&server_first)
                    .map_err(|e| Failure::permanent(format!("SCRAM: {e}")))?;
                let server_final = self.sasl_step(last.into_bytes())?;
                client
                    .verify_server_final(&String::from_utf8_lossy(&server_final))
                    .map_err(|e| Failure::permanent(format!("SCRAM: {e}")))
            }
        }
    }

    fn sasl_step(&mut self, token: Vec<u8>) -> Result<Bytes, Failure> {
        let version = self.version::<SaslAuthenticateRequest>(2)?;
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = self.call(&request, version)?;
        if response.error_code != 0 {
            return Err(error_failure(
                "authenticating",
                response.error_code,
                response.error_message.as_ref().map(|m| m.as_str()),
            ));
        }
        Ok(response.auth_bytes)
    }
}

fn log_trailing(doing: &str, n: usize) {
    pushrail_plugin_sdk::log::debug(&format!("{doing}: {n} bytes after the response ignored"));
}

/// A random SCRAM nonce: printable, no commas.
fn nonce() -> String {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The name and meaning of a Kafka error code.
pub fn describe(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code}): {e}"),
        None => format!("error code {code}"),
    }
}

/// A failure for a Kafka error code: retryable exactly when Kafka says the error is.
pub fn error_failure(doing: &str, code: i16, message: Option<&str>) -> Failure {
    let text = match message {
        Some(m) if !m.is_empty() => format!("{doing}: {} ({m})", describe(code)),
        _ => format!("{doing}: {}", describe(code)),
    };
    match ResponseError::try_from_code(code) {
        Some(e) if e.is_retriable() => Failure::retryable(text),
        _ => Failure::permanent(text),
    }
}

//! The `mqtt` destination: one `PUBLISH` per event, at QoS 1 (each `PUBACK` answers for its
//! event) or QoS 0.
//!
//! The session keeps one connection between batches: `CONNECT`/`CONNACK` once per connection,
//! with a clean session and a random client id unless the config sets one, and QoS 1 packet ids
//! that count on across the connection's batches. MQTT 5 by default: the event id and type travel
//! as user properties. MQTT 3.1.1 has no properties and carries the payload alone. Packets are
//! encoded and decoded with `mqttbytes`.

use std::collections::{HashMap, VecDeque};
use std::io::Write;

use bytes::BytesMut;
use mqttbytes::{v4, v5, QoS};
use pushrail_plugin_sdk::credential::kinds::Basic;
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::settings;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default)]
    tls: bool,
    topic: String,
    #[serde(default = "default_qos")]
    qos: u8,
    #[serde(default)]
    retain: bool,
    #[serde(default = "default_version")]
    protocol_version: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

fn default_port() -> u16 {
    1883
}

fn default_qos() -> u8 {
    1
}

fn default_version() -> String {
    "5".to_owned()
}

/// Packets from the broker larger than this are refused (acks are a few bytes).
const MAX_PACKET: usize = 1024 * 1024;
const KEEP_ALIVE_SECS: u16 = 60;

struct Mqtt {
    config: Config,
    login: Option<Basic>,
    broker: Warm<Broker<TcpStream>>,
}

impl Destination for Mqtt {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "mqtt",
            "MQTT",
            "Publishes each event to an MQTT topic, at QoS 1 (the broker acknowledges every message) or QoS 0",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["host", "topic"],
            "additionalProperties": false,
            "properties": {
                "host": {
                    "type": "string", "title": "Host", "minLength": 1, "maxLength": 253,
                    "pattern": "^[^\\s/]+$"
                },
                "port": {
                    "type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 1883,
                    "description": "1883 for MQTT, usually 8883 for MQTT over TLS."
                },
                "tls": { "type": "boolean", "title": "TLS", "default": false,
                         "description": "Connect with TLS (mqtts); the server certificate is verified." },
                "topic": {
                    "type": "string", "title": "Topic", "minLength": 1, "maxLength": 65535,
                    "description": "e.g. acme/events (no wildcards)."
                },
                "qos": {
                    "type": "integer", "title": "QoS", "enum": [0, 1], "default": 1,
                    "description": "1: the broker acknowledges each message (at least once). 0: fire and forget."
                },
                "retain": { "type": "boolean", "title": "Retain", "default": false },
                "protocol_version": {
                    "type": "string", "title": "Protocol version", "enum": ["5", "3.1.1"], "default": "5",
                    "description": "MQTT 5 carries the event id and type as user properties; 3.1.1 carries the payload only."
                },
                "client_id": {
                    "type": "string", "title": "Client id", "minLength": 1, "maxLength": 128,
                    "description": "Leave out for a random id per connection (recommended: two connections with one id take each other over)."
                },
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(
            &["basic"],
            json!({
                "type": "object",
                "required": ["username", "password"],
                "additionalProperties": false,
                "properties": {
                    "username": { "type": "string", "title": "Username", "minLength": 1 },
                    "password": { "type": "string", "title": "Password", "minLength": 1 }
                }
            }),
            false,
        )
        .max_batch_size(100)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !valid_topic(&config.topic) {
            errors.push(FieldError::new(
                "topic",
                "must be a topic name without wildcards (+, #) or NUL characters",
            ));
        }
        if config.qos > 1 {
            errors.push(FieldError::new("qos", "must be 0 or 1"));
        }
        if !matches!(config.protocol_version.as_str(), "5" | "3.1.1") {
            errors.push(FieldError::new("protocol_version", "must be 5 or 3.1.1"));
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        if !Self::validate(&config).is_empty() {
            return Err(Failure::permanent("the config is not valid"));
        }
        let login = match &credential {
            None => None,
            Some(c) if c.kind == "basic" => Some(c.secret::<Basic>()?),
            Some(c) => {
                return Err(Failure::permanent(format!(
                    "credential kind {} is not supported",
                    c.kind
                )))
            }
        };
        Ok(Self {
            config,
            login,
            broker: Warm::new(),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let Self {
            config,
            login,
            broker,
        } = self;
        broker.deliver(
            events,
            || dial(config, login.as_ref()),
            |broker, results| broker.publish(config, events, results),
        )
    }
}

impl Drop for Mqtt {
    /// Closes the kept connection with a `DISCONNECT` (best effort: two bytes, no answer awaited),
    /// so the broker ends the session at once instead of waiting out the keep alive.
    fn drop(&mut self) {
        if let Some(mut broker) = self.broker.take() {
            broker.disconnect();
        }
    }
}

/// Opens a connection and logs in.
fn dial(config: &Config, login: Option<&Basic>) -> Result<Broker<TcpStream>, Failure> {
    let timeout = settings::timeout(config.timeout_ms);
    let mut stream = TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
    stream.set_read_timeout(Some(timeout));
    let client_id = config.client_id.clone().unwrap_or_else(random_client_id);
    Broker::open(stream, config, &client_id, login)
}

/// A topic name a client may publish to: non-empty, no wildcards, no NUL.
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

fn random_client_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        bytes = nanos.to_be_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("pushrail-{hex}")
}

/// The packet id after `id`: 1..=65535, wrapping past 65535 (0 is not a valid id).
fn next_packet_id(id: u16) -> u16 {
    id.checked_add(1).unwrap_or(1)
}

/// What the codec needs of a connection: a `TcpStream`, or a scripted broker in the tests.
trait Link: Write {
    /// Reads what has arrived; a closed connection or a failed read is a retryable failure.
    fn read_chunk(&mut self, doing: &str, chunk: &mut [u8]) -> Result<usize, Failure>;
}

impl Link for TcpStream {
    fn read_chunk(&mut self, doing: &str, chunk: &mut [u8]) -> Result<usize, Failure> {
        TcpStream::read_chunk(self, doing, chunk)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V311,
    V5,
}

/// A connection the broker accepted, with what its `CONNACK` said.
struct Broker<S> {
    stream: S,
    buf: BytesMut,
    version: Version,
    /// 0 or 1.
    qos: u8,
    /// At most this many QoS 1 messages unacknowledged at once: the broker's Receive Maximum.
    window: usize,
    /// The largest packet the broker accepts (MQTT 5 Maximum Packet Size).
    max_packet: usize,
    /// The id of the next QoS 1 `PUBLISH`. It counts on across batches, so a late `PUBACK` of an
    /// earlier batch is never taken for another message's.
    next_pkid: u16,
}

/// A packet as far as the delivery needs to know.
enum Incoming<P> {
    Packet(P),
    /// MQTT 5 `DISCONNECT` without a reason code (mqttbytes wants a payload for it).
    BareDisconnect,
}

/// What the broker said during a batch, either version.
enum Reply {
    PubAck {
        pkid: u16,
        answer: Result<(), Failure>,
    },
    PingResp,
    Other,
}

impl<S: Link> Broker<S> {
    /// `CONNECT` and `CONNACK` on a fresh connection.
    fn open(
        stream: S,
        config: &Config,
        client_id: &str,
        login: Option<&Basic>,
    ) -> Result<Self, Failure> {
        let version = if config.protocol_version == "3.1.1" {
            Version::V311
        } else {
            Version::V5
        };
        let mut broker = Self {
            stream,
            buf: BytesMut::new(),
            version,
            qos: config.qos.min(1),
            window: usize::from(u16::MAX),
            max_packet: usize::MAX,
            next_pkid: 1,
        };
        match version {
            Version::V5 => broker.connect_v5(config, client_id, login)?,
            Version::V311 => broker.connect_v4(client_id, login)?,
        }
        Ok(broker)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| io_failure("sending to the broker", &e))
    }

    /// Reads the next packet with `read` (the v4 or v5 decoder).
    fn next<P>(
        &mut self,
        doing: &str,
        read: fn(&mut BytesMut, usize) -> Result<P, mqttbytes::Error>,
    ) -> Result<Incoming<P>, Failure> {
        loop {
            if self.buf.len() >= 2 && self.buf[0] == 0xE0 && self.buf[1] == 0 {
                let _ = self.buf.split_to(2);
                return Ok(Incoming::BareDisconnect);
            }
            match read(&mut self.buf, MAX_PACKET) {
                Ok(packet) => return Ok(Incoming::Packet(packet)),
                Err(mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => {
                    return Err(Failure::permanent(format!(
                        "{doing}: the broker sent a packet that is not MQTT: {e:?}"
                    )))
                }
            }
            let mut chunk = [0u8; 8 * 1024];
            let n = self.stream.read_chunk(doing, &mut chunk)?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn connect_v5(
        &mut self,
        config: &Config,
        client_id: &str,
        login: Option<&Basic>,
    ) -> Result<(), Failure> {
        let mut connect = v5::Connect::new(client_id);
        connect.keep_alive = KEEP_ALIVE_SECS;
        connect.clean_session = true;
        if let Some(login) = login {
            connect.set_login(login.username.as_str(), login.password.as_str());
        }
        let mut out = BytesMut::new();
        connect.write(&mut out).map_err(encode_error)?;
        self.send(&out)?;

        let connack = match self.next("connecting", v5::read)? {
            Incoming::Packet(v5::Packet::ConnAck(connack)) => connack,
            Incoming::Packet(v5::Packet::Disconnect(d)) => {
                return Err(disconnect_failure(d.reason_code as u8))
            }
            Incoming::BareDisconnect => return Err(disconnect_failure(0)),
            Incoming::Packet(other) => {
                return Err(Failure::permanent(format!(
                    "connecting: expected CONNACK, got {other:?}"
                )))
            }
        };
        if connack.code != v5::ConnectReturnCode::Success {
            return Err(connack_failure_v5(connack.code as u8));
        }
        let properties = connack
            .properties
            .unwrap_or_else(v5::ConnAckProperties::new);
        if properties.max_qos == Some(0) && self.qos == 1 {
            return Err(Failure::permanent(
                "the broker accepts only QoS 0 messages: set qos to 0",
            ));
        }
        if config.retain && properties.retain_available == Some(0) {
            return Err(Failure::permanent(
                "the broker does not support retained messages: turn retain off",
            ));
        }
        self.window = usize::from(properties.receive_max.unwrap_or(u16::MAX).max(1));
        self.max_packet = properties
            .max_packet_size
            .map_or(usize::MAX, |m| m as usize);
        Ok(())
    }

    fn connect_v4(&mut self, client_id: &str, login: Option<&Basic>) -> Result<(), Failure> {
        let mut connect = v4::Connect::new(client_id);
        connect.keep_alive = KEEP_ALIVE_SECS;
        connect.clean_session = true;
        if let Some(login) = login {
            connect.set_login(login.username.as_str(), login.password.as_str());
        }
        let mut out = BytesMut::new();
        connect.write(&mut out).map_err(encode_error)?;
        self.send(&out)?;
        // mqttbytes refuses unknown return codes; a refused login closes the connection.
        match self.next("connecting", v4::read)? {
            Incoming::Packet(v4::Packet::ConnAck(connack)) => {
                if connack.code != v4::ConnectReturnCode::Success {
                    return Err(connack_failure_v4(connack.code as u8));
                }
                Ok(())
            }
            Incoming::BareDisconnect => Err(Failure::retryable("the broker disconnected")),
            Incoming::Packet(other) => Err(Failure::permanent(format!(
                "connecting: expected CONNACK, got {other:?}"
            ))),
        }
    }

    /// The next packet of the broker's that a delivery cares about; a `DISCONNECT` ends the
    /// connection.
    fn reply(&mut self, doing: &str) -> Result<Reply, Failure> {
        Ok(match self.version {
            Version::V5 => match self.next(doing, v5::read)? {
                Incoming::Packet(v5::Packet::PubAck(ack)) => Reply::PubAck {
                    pkid: ack.pkid,
                    answer: check_puback_v5(ack.reason as u8, &ack),
                },
                Incoming::Packet(v5::Packet::PingResp) => Reply::PingResp,
                Incoming::Packet(v5::Packet::Disconnect(d)) => {
                    return Err(disconnect_failure(d.reason_code as u8))
                }
                Incoming::BareDisconnect => return Err(disconnect_failure(0)),
                Incoming::Packet(_) => Reply::Other,
            },
            Version::V311 => match self.next(doing, v4::read)? {
                Incoming::Packet(v4::Packet::PubAck(ack)) => Reply::PubAck {
                    pkid: ack.pkid,
                    answer: Ok(()),
                },
                Incoming::Packet(v4::Packet::PingResp) => Reply::PingResp,
                Incoming::BareDisconnect => {
                    return Err(Failure::retryable("the broker disconnected"))
                }
                Incoming::Packet(_) => Reply::Other,
            },
        })
    }

    /// The `PUBLISH` of one event (`pkid` is ignored at QoS 0).
    fn encode(&self, config: &Config, event: &Event, pkid: u16) -> Result<BytesMut, Failure> {
        let qos = if self.qos == 1 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        let pkid = if self.qos == 1 { pkid } else { 0 };
        let mut out = BytesMut::new();
        match self.version {
            Version::V5 => {
                let mut user_properties = vec![
                    ("pushrail-event-id".to_owned(), event.id.clone()),
                    ("pushrail-event-type".to_owned(), event.event_type.clone()),
                    (
                        "pushrail-occurred-at".to_owned(),
                        event.occurred_at.to_string(),
                    ),
                ];
                user_properties.extend(event.attributes.iter().cloned());
                let mut packet =
                    v5::Publish::new(config.topic.as_str(), qos, event.payload.clone());
                packet.retain = config.retain;
                packet.pkid = pkid;
                packet.properties = Some(v5::PublishProperties {
                    payload_format_indicator: Some(1),
                    message_expiry_interval: None,
                    topic_alias: None,
                    response_topic: None,
                    correlation_data: None,
                    user_properties,
                    subscription_identifiers: Vec::new(),
                    content_type: Some("application/json".to_owned()),
                });
                let size = packet.write(&mut out).map_err(encode_error)?;
                if size > self.max_packet {
                    return Err(Failure::permanent(format!(
                        "event {} makes a packet of {size} bytes; the broker accepts at most {}",
                        event.id, self.max_packet
                    )));
                }
            }
            Version::V311 => {
                let mut packet =
                    v4::Publish::new(config.topic.as_str(), qos, event.payload.clone());
                packet.retain = config.retain;
                packet.pkid = pkid;
                packet.write(&mut out).map_err(encode_error)?;
            }
        }
        Ok(out)
    }

    /// Publishes the events and records each one's answer in `results`. An `Err` is a failure
    /// of the connection: the answer of every event still without one.
    fn publish(
        &mut self,
        config: &Config,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        if self.qos == 1 {
            self.publish_qos1(config, events, results)
        } else {
            self.publish_qos0(config, events, results)
        }
    }

    /// Each `PUBACK` answers for its own event; at most `window` messages are unacknowledged at
    /// once, as the broker's Receive Maximum asks.
    fn publish_qos1(
        &mut self,
        config: &Config,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        let doing = match self.version {
            Version::V5 => "waiting for PUBACK",
            Version::V311 => "waiting for the broker",
        };
        let mut pending: VecDeque<usize> = (0..events.len()).collect();
        // Packet id -> event index, for the messages not acknowledged yet.
        let mut in_flight = HashMap::new();
        loop {
            let mut out = BytesMut::new();
            while in_flight.len() < self.window {
                let Some(i) = pending.pop_front() else { break };
                let pkid = self.next_pkid;
                match self.encode(config, &events[i], pkid) {
                    Ok(packet) => {
                        out.extend_from_slice(&packet);
                        in_flight.insert(pkid, i);
                        self.next_pkid = next_packet_id(pkid);
                    }
                    Err(failure) => results[i] = Some(Err(failure)),
                }
            }
            if !out.is_empty() {
                self.send(&out)?;
            }
            if in_flight.is_empty() {
                return Ok(());
            }
            if let Reply::PubAck { pkid, answer } = self.reply(doing)? {
                if let Some(i) = in_flight.remove(&pkid) {
                    results[i] = Some(answer.map(|()| acknowledged(&config.topic)));
                }
            }
        }
    }

    /// QoS 0 has no acknowledgement: a `PINGREQ` after the messages, answered by `PINGRESP`,
    /// shows the broker read them all (and that a kept connection is still open); every event
    /// sent succeeds then.
    fn publish_qos0(
        &mut self,
        config: &Config,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        let mut out = BytesMut::new();
        let mut sent = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match self.encode(config, event, 0) {
                Ok(packet) => {
                    out.extend_from_slice(&packet);
                    sent.push(i);
                }
                Err(failure) => results[i] = Some(Err(failure)),
            }
        }
        if sent.is_empty() {
            return Ok(());
        }
        match self.version {
            Version::V5 => v5::PingReq.write(&mut out),
            Version::V311 => v4::PingReq.write(&mut out),
        }
        .map_err(encode_error)?;
        self.send(&out)?;
        while !matches!(self.reply("waiting for the broker")?, Reply::PingResp) {}
        for i in sent {
            results[i] = Some(Ok(sent_at_qos0(&config.topic)));
        }
        Ok(())
    }

    /// A normal `DISCONNECT`, best effort.
    fn disconnect(&mut self) {
        let mut out = BytesMut::new();
        let written = match self.version {
            Version::V5 => v5::Disconnect::new().write(&mut out),
            Version::V311 => v4::Disconnect.write(&mut out),
        };
        if written.is_ok() {
            let _ = self.send(&out);
        }
    }
}

fn encode_error(e: mqttbytes::Error) -> Failure {
    Failure::permanent(format!("encoding a packet: {e:?}"))
}

fn acknowledged(topic: &str) -> Delivered {
    Delivered {
        status_code: None,
        response_excerpt: Some(format!(
            "message acknowledged by the broker (QoS 1) on {topic}"
        )),
    }
}

fn sent_at_qos0(topic: &str) -> Delivered {
    Delivered {
        status_code: None,
        response_excerpt: Some(format!(
            "message sent at QoS 0 on {topic}, read by the broker before its PINGRESP"
        )),
    }
}

fn check_puback_v5(reason: u8, ack: &v5::PubAck) -> Result<(), Failure> {
    // 0 success, 0x10 no matching subscribers: the broker took the message either way.
    if reason == 0 || reason == 0x10 {
        return Ok(());
    }
    let text = ack
        .properties
        .as_ref()
        .and_then(|p| p.reason_string.clone())
        .unwrap_or_default();
    let message = format!(
        "the broker refused a message: {} {text}",
        reason_name(reason)
    );
    Err(match reason {
        // not authorized, topic name invalid, payload format invalid
        0x87 | 0x90 | 0x99 => Failure::permanent(message),
        _ => Failure::retryable(message),
    })
}

fn connack_failure_v5(code: u8) -> Failure {
    let message = format!("the broker refused the connection: {}", reason_name(code));
    match code {
        // server unavailable, server busy, quota exceeded, connection rate exceeded,
        // use another server, server moved
        0x88 | 0x89 | 0x97 | 0x9F | 0x9C | 0x9D => Failure::retryable(message),
        _ => Failure::permanent(message),
    }
}

fn connack_failure_v4(code: u8) -> Failure {
    match code {
        3 => Failure::retryable("the broker refused the connection: server unavailable"),
        4 => Failure::permanent("the broker refused the connection: bad user name or password"),
        5 => Failure::permanent("the broker refused the connection: not authorized"),
        2 => Failure::permanent("the broker refused the connection: client identifier rejected"),
        1 => Failure::permanent("the broker refused the connection: it does not speak MQTT 3.1.1"),
        other => Failure::permanent(format!(
            "the broker refused the connection: return code {other}"
        )),
    }
}

fn disconnect_failure(code: u8) -> Failure {
    let message = format!("the broker disconnected: {}", reason_name(code));
    match code {
        // not authorized, topic name invalid, packet too large, payload format invalid,
        // retain or QoS not supported
        0x87 | 0x90 | 0x95 | 0x99 | 0x9A | 0x9B => Failure::permanent(message),
        _ => Failure::retryable(message),
    }
}

/// The MQTT 5 reason code names of the specification (section 2.4).
fn reason_name(code: u8) -> String {
    let name = match code {
        0x00 => "normal disconnection",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8A => "banned",
        0x8B => "server shutting down",
        0x8C => "bad authentication method",
        0x8D => "keep alive timeout",
        0x8E => "session taken over",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x93 => "receive maximum exceeded",
        0x95 => "packet too large",
        0x96 => "message rate too high",
        0x97 => "quota exceeded",
        0x98 => "administrative action",
        0x99 => "payload format invalid",
        0x9A => "retain not supported",
        0x9B => "QoS not supported",
        0x9C => "use another server",
        0x9D => "server moved",
        0x9F => "connection rate exceeded",
        _ => "",
    };
    if name.is_empty() {
        format!("reason code 0x{code:02X}")
    } else {
        format!("{name} (0x{code:02X})")
    }
}

export_destination!(Mqtt);

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use pushrail_plugin_sdk::FailureKind::{Permanent, Retryable};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn event(id: &str, payload: &[u8]) -> Event {
        Event {
            id: id.into(),
            event_type: "order.created".into(),
            occurred_at: 5,
            payload: payload.to_vec(),
            attributes: Vec::new(),
        }
    }

    fn config(qos: u8, version: &str) -> Config {
        serde_json::from_value(json!({
            "host": "127.0.0.1", "topic": "acme/events", "qos": qos, "protocol_version": version
        }))
        .unwrap()
    }

    /// A broker played from a script. It decodes what the client writes and answers `CONNECT`
    /// with `CONNACK` (MQTT 5: with `receive_max`, `max_packet_size` and `max_qos`) and `PINGREQ` with
    /// `PINGRESP` at once, but holds `PUBACK`s back until the client reads, one per read, so the
    /// client can run ahead up to its window. A payload of `"refuse"` gets "not authorized".
    struct FakeBroker {
        version: Version,
        receive_max: u16,
        max_packet_size: u32,
        max_qos: Option<u8>,
        to_client: Vec<u8>,
        from_client: BytesMut,
        /// Packet ids of the QoS 1 `PUBLISH`es received, and their payloads.
        received: Vec<(u16, Vec<u8>)>,
        unacked: VecDeque<(u16, bool)>,
        most_unacked: usize,
        connects: usize,
        disconnected: bool,
        /// How many more `PUBACK`s before the connection closes (`None`: no limit).
        acks_left: Option<usize>,
    }

    impl FakeBroker {
        fn new(version: Version) -> Self {
            Self {
                version,
                receive_max: 2,
                max_packet_size: 200,
                max_qos: None,
                to_client: Vec::new(),
                from_client: BytesMut::new(),
                received: Vec::new(),
                unacked: VecDeque::new(),
                most_unacked: 0,
                connects: 0,
                disconnected: false,
                acks_left: None,
            }
        }

        fn serve(&mut self) {
            loop {
                if self.from_client.starts_with(&[0xE0, 0]) {
                    let _ = self.from_client.split_to(2);
                    self.disconnected = true;
                    continue;
                }
                let mut out = BytesMut::new();
                match self.version {
                    Version::V5 => match v5::read(&mut self.from_client, MAX_PACKET) {
                        Ok(v5::Packet::Connect(_)) => {
                            self.connects += 1;
                            let mut connack =
                                v5::ConnAck::new(v5::ConnectReturnCode::Success, false);
                            let mut properties = v5::ConnAckProperties::new();
                            properties.receive_max = Some(self.receive_max);
                            properties.max_packet_size = Some(self.max_packet_size);
                            properties.max_qos = self.max_qos;
                            connack.properties = Some(properties);
                            connack.write(&mut out).unwrap();
                        }
                        Ok(v5::Packet::Publish(p)) => self.publish(p.pkid, &p.payload),
                        Ok(v5::Packet::PingReq) => {
                            v5::PingResp.write(&mut out).unwrap();
                        }
                        Ok(other) => panic!("unexpected {other:?}"),
                        Err(mqttbytes::Error::InsufficientBytes(_)) => return,
                        Err(e) => panic!("{e:?}"),
                    },
                    Version::V311 => match v4::read(&mut self.from_client, MAX_PACKET) {
                        Ok(v4::Packet::Connect(_)) => {
                            self.connects += 1;
                            v4::ConnAck::new(v4::ConnectReturnCode::Success, false)
                                .write(&mut out)
                                .unwrap();
                        }
                        Ok(v4::Packet::Publish(p)) => self.publish(p.pkid, &p.payload),
                        Ok(v4::Packet::PingReq) => {
                            v4::PingResp.write(&mut out).unwrap();
                        }
                        Ok(other) => panic!("unexpected {other:?}"),
                        Err(mqttbytes::Error::InsufficientBytes(_)) => return,
                        Err(e) => panic!("{e:?}"),
                    },
                }
                self.to_client.extend_from_slice(&out);
            }
        }

        fn publish(&mut self, pkid: u16, payload: &[u8]) {
            if pkid == 0 {
                return;
            }
            self.received.push((pkid, payload.to_vec()));
            self.unacked.push_back((pkid, payload == b"\"refuse\""));
            self.most_unacked = self.most_unacked.max(self.unacked.len());
        }

        fn ack_one(&mut self) {
            let Some((pkid, refuse)) = self.unacked.pop_front() else {
                return;
            };
            let mut out = BytesMut::new();
            match self.version {
                Version::V5 => {
                    let mut ack = v5::PubAck::new(pkid);
                    if refuse {
                        ack.reason = v5::PubAckReason::NotAuthorized;
                    }
                    ack.write(&mut out).unwrap();
                }
                Version::V311 => {
                    v4::PubAck::new(pkid).write(&mut out).unwrap();
                }
            }
            self.to_client.extend_from_slice(&out);
        }
    }

    impl Write for FakeBroker {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.from_client.extend_from_slice(buf);
            self.serve();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Link for FakeBroker {
        fn read_chunk(&mut self, doing: &str, chunk: &mut [u8]) -> Result<usize, Failure> {
            if self.to_client.is_empty() && !self.unacked.is_empty() {
                match self.acks_left {
                    Some(0) => {
                        let closed = io::Error::from(io::ErrorKind::UnexpectedEof);
                        return Err(io_failure(doing, &closed));
                    }
                    Some(n) => self.acks_left = Some(n - 1),
                    None => {}
                }
                self.ack_one();
            }
            if self.to_client.is_empty() {
                return Err(io_failure(doing, &io::ErrorKind::TimedOut.into()));
            }
            let n = chunk.len().min(self.to_client.len());
            chunk[..n].copy_from_slice(&self.to_client[..n]);
            self.to_client.drain(..n);
            Ok(n)
        }
    }

    fn connect(fake: FakeBroker, config: &Config) -> Broker<FakeBroker> {
        Broker::open(fake, config, "pushrail-test", None)
            .unwrap_or_else(|f| panic!("{}", f.message))
    }

    /// One batch the way a session delivers it, on a connection dialled for it.
    fn deliver(
        broker: &mut Broker<FakeBroker>,
        config: &Config,
        events: &[Event],
    ) -> Vec<DeliveryResult> {
        let mut dial = Some(broker);
        Warm::new().deliver(
            events,
            || {
                dial.take()
                    .ok_or_else(|| Failure::retryable("dialled twice"))
            },
            |broker, results| broker.publish(config, events, results),
        )
    }

    fn pkids(broker: &Broker<FakeBroker>) -> Vec<u16> {
        broker
            .stream
            .received
            .iter()
            .map(|(pkid, _)| *pkid)
            .collect()
    }

    #[test]
    fn each_puback_answers_for_its_event() {
        let config = config(1, "5");
        let mut broker = connect(FakeBroker::new(Version::V5), &config);
        assert_eq!((broker.window, broker.max_packet), (2, 200));
        let events = [
            event("a", b"{}"),
            event("b", b"\"refuse\""),
            event("c", &[b' '; 200]),
            event("d", b"{}"),
        ];
        let results = deliver(&mut broker, &config, &events);
        assert_eq!(
            results[0].as_ref().unwrap().response_excerpt.as_deref(),
            Some("message acknowledged by the broker (QoS 1) on acme/events")
        );
        let refused = results[1].as_ref().unwrap_err();
        assert_eq!(refused.kind, Permanent);
        assert!(
            refused.message.contains("not authorized (0x87)"),
            "{}",
            refused.message
        );
        let too_big = results[2].as_ref().unwrap_err();
        assert_eq!(too_big.kind, Permanent);
        assert!(
            too_big.message.contains("event c makes a packet of")
                && too_big.message.contains("at most 200"),
            "{}",
            too_big.message
        );
        assert!(results[3].is_ok());
        assert_eq!(pkids(&broker), [1, 2, 3], "the oversized event is not sent");
        assert_eq!(broker.stream.most_unacked, 2, "the Receive Maximum is kept");
    }

    #[test]
    fn packet_ids_count_on_across_batches_and_wrap() {
        let config = config(1, "5");
        let mut broker = connect(FakeBroker::new(Version::V5), &config);
        for _ in 0..2 {
            let results = deliver(
                &mut broker,
                &config,
                &[event("a", b"{}"), event("b", b"{}")],
            );
            assert!(results.iter().all(Result::is_ok));
        }
        broker.next_pkid = u16::MAX - 1;
        let results = deliver(
            &mut broker,
            &config,
            &[event("c", b"{}"), event("d", b"{}"), event("e", b"{}")],
        );
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(pkids(&broker), [1, 2, 3, 4, 65534, 65535, 1]);
        assert_eq!(broker.stream.connects, 1, "one CONNECT for the connection");
        assert_eq!(next_packet_id(1), 2);
        assert_eq!(next_packet_id(u16::MAX), 1);
    }

    #[test]
    fn mqtt_311_at_qos_1() {
        let config = config(1, "3.1.1");
        let mut broker = connect(FakeBroker::new(Version::V311), &config);
        for _ in 0..2 {
            let results = deliver(
                &mut broker,
                &config,
                &[event("a", b"{}"), event("b", b"{}")],
            );
            assert!(results.iter().all(Result::is_ok));
        }
        assert_eq!(pkids(&broker), [1, 2, 3, 4]);
    }

    #[test]
    fn qos_0_succeeds_on_the_pingresp() {
        let config = config(0, "5");
        let mut broker = connect(FakeBroker::new(Version::V5), &config);
        let results = deliver(
            &mut broker,
            &config,
            &[
                event("a", b"{}"),
                event("b", &[b' '; 200]),
                event("c", b"{}"),
            ],
        );
        assert_eq!(
            results[0].as_ref().unwrap().response_excerpt.as_deref(),
            Some("message sent at QoS 0 on acme/events, read by the broker before its PINGRESP")
        );
        assert_eq!(results[1].as_ref().unwrap_err().kind, Permanent);
        assert!(results[2].is_ok());
        assert!(broker.stream.received.is_empty(), "no packet ids at QoS 0");
    }

    #[test]
    fn a_connection_lost_mid_batch_fails_only_the_unacknowledged() {
        let config = config(1, "5");
        let mut fake = FakeBroker::new(Version::V5);
        fake.acks_left = Some(1);
        let mut broker = connect(fake, &config);
        let results = deliver(
            &mut broker,
            &config,
            &[event("a", b"{}"), event("b", b"{}")],
        );
        assert!(results[0].is_ok());
        let lost = results[1].as_ref().unwrap_err();
        assert_eq!(lost.kind, Retryable);
        assert!(
            lost.message.contains("closed the connection"),
            "{}",
            lost.message
        );
    }

    #[test]
    fn a_connection_closed_while_idle_is_replaced() {
        let config = config(1, "5");
        let mut warm = Warm::new();
        let batch = |warm: &mut Warm<Broker<FakeBroker>>, events: &[Event]| {
            warm.deliver(
                events,
                || Ok(connect(FakeBroker::new(Version::V5), &config)),
                |broker, results| broker.publish(&config, events, results),
            )
        };
        assert!(batch(&mut warm, &[event("a", b"{}")])[0].is_ok());
        let mut stale = warm.take().unwrap();
        stale.stream.acks_left = Some(0);
        let mut stale = Some(stale);
        warm.with(|| Ok(stale.take().unwrap()), |_| Ok(())).unwrap();

        let results = batch(&mut warm, &[event("b", b"{}"), event("c", b"{}")]);
        assert!(results.iter().all(Result::is_ok));
        let fresh = warm.take().unwrap();
        assert_eq!(pkids(&fresh), [1, 2], "a new connection counts from 1");
    }

    #[test]
    fn disconnect_says_goodbye() {
        for version in ["5", "3.1.1"] {
            let config = config(1, version);
            let fake = FakeBroker::new(if version == "5" {
                Version::V5
            } else {
                Version::V311
            });
            let mut broker = connect(fake, &config);
            broker.disconnect();
            assert!(broker.stream.disconnected, "{version}");
        }
    }

    #[test]
    fn a_broker_capped_at_qos_0_is_a_permanent_failure() {
        let mut fake = FakeBroker::new(Version::V5);
        fake.max_qos = Some(0);
        let failure = Broker::open(fake, &config(1, "5"), "c", None)
            .err()
            .unwrap();
        assert_eq!(failure.kind, Permanent);
        assert!(
            failure.message.contains("only QoS 0"),
            "{}",
            failure.message
        );
    }

    /// The packets the plugin sends, against the layouts of the MQTT 5 specification
    /// (sections 3.1 and 3.3): fixed header, variable header with properties, payload.
    #[test]
    fn connect_and_publish_bytes() {
        let mut connect = v5::Connect::new("c1");
        connect.keep_alive = 60;
        connect.set_login("u", "p");
        let mut out = BytesMut::new();
        connect.write(&mut out).unwrap();
        // 0x10, remaining length 21, "MQTT", version 5, flags (user, password, clean start),
        // keep alive 60, no properties, client id, user name, password.
        assert_eq!(
            hex(&out),
            "1015 00044d515454 05 c2 003c 00 00026331 000175 000170".replace(' ', "")
        );

        let mut publish = v5::Publish::new("t/1", QoS::AtLeastOnce, b"{}".to_vec());
        publish.pkid = 1;
        publish.properties = Some(v5::PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: None,
            topic_alias: None,
            response_topic: None,
            correlation_data: None,
            user_properties: vec![("k".into(), "v".into())],
            subscription_identifiers: Vec::new(),
            content_type: None,
        });
        let mut out = BytesMut::new();
        publish.write(&mut out).unwrap();
        // 0x32 (PUBLISH, QoS 1), remaining length 19, topic "t/1", packet id 1, properties
        // (length 9: payload format 1; user property k=v), payload "{}".
        assert_eq!(
            hex(&out),
            "3213 0003742f31 0001 09 0101 2600016b000176 7b7d".replace(' ', "")
        );
    }

    #[test]
    fn acks_and_refusals_are_classified() {
        let ok = v5::PubAck::new(1);
        assert!(check_puback_v5(0, &ok).is_ok());
        assert!(check_puback_v5(0x10, &ok).is_ok(), "no subscribers is fine");
        assert_eq!(check_puback_v5(0x87, &ok).unwrap_err().kind, Permanent);
        assert_eq!(check_puback_v5(0x97, &ok).unwrap_err().kind, Retryable);
        assert_eq!(connack_failure_v5(0x86).kind, Permanent);
        assert_eq!(connack_failure_v5(0x89).kind, Retryable);
        assert_eq!(connack_failure_v4(4).kind, Permanent);
        assert_eq!(connack_failure_v4(3).kind, Retryable);
        assert_eq!(disconnect_failure(0x8B).kind, Retryable);
        assert!(connack_failure_v5(0x86)
            .message
            .contains("bad user name or password"));
    }

    #[test]
    fn topics_and_client_ids() {
        assert!(valid_topic("a/b/c"));
        assert!(!valid_topic("a/+/c") && !valid_topic("a/#") && !valid_topic(""));
        assert!(random_client_id().starts_with("pushrail-"));
    }
}

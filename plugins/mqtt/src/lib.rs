//! The `mqtt` destination: one `PUBLISH` per event, at QoS 1 (waiting for each `PUBACK`) or 0.
//!
//! One connection per batch with a clean session and a random client id (so that concurrent
//! batches of one destination do not take each other's session over). MQTT 5 by default: the
//! event id and type travel as user properties. MQTT 3.1.1 has no properties and carries the
//! payload alone. Packets are encoded and decoded with `mqttbytes`.

use std::io::Write;
use std::time::Duration;

use bytes::BytesMut;
use mqttbytes::{v4, v5, QoS};
use pushrail_plugin_sdk::credential::kinds::Basic;
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
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
    #[serde(default = "default_timeout_ms")]
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

fn default_timeout_ms() -> u64 {
    10_000
}

/// Packets from the broker larger than this are refused (acks are a few bytes).
const MAX_PACKET: usize = 1024 * 1024;
const KEEP_ALIVE_SECS: u16 = 60;

struct Mqtt;

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
                "timeout_ms": {
                    "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000
                }
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
            errors.push(field(
                "topic",
                "must be a topic name without wildcards (+, #) or NUL characters",
            ));
        }
        if config.qos > 1 {
            errors.push(field("qos", "must be 0 or 1"));
        }
        if !matches!(config.protocol_version.as_str(), "5" | "3.1.1") {
            errors.push(field("protocol_version", "must be 5 or 3.1.1"));
        }
        errors
    }

    fn deliver(
        config: Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult {
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
        let client_id = config.client_id.clone().unwrap_or_else(random_client_id);
        let timeout = Duration::from_millis(config.timeout_ms.clamp(1000, 60_000));
        let mut stream =
            TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
        stream.set_read_timeout(Some(timeout));
        let mut broker = Broker {
            stream,
            buf: BytesMut::new(),
        };
        if config.protocol_version == "3.1.1" {
            deliver_v4(&mut broker, &config, &client_id, login.as_ref(), &events)
        } else {
            deliver_v5(&mut broker, &config, &client_id, login.as_ref(), &events)
        }
    }
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

struct Broker {
    stream: TcpStream,
    buf: BytesMut,
}

/// A packet as far as the delivery needs to know.
enum Incoming<P> {
    Packet(P),
    /// MQTT 5 `DISCONNECT` without a reason code (mqttbytes wants a payload for it).
    BareDisconnect,
}

impl Broker {
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
}

fn encode_error(e: mqttbytes::Error) -> Failure {
    Failure::permanent(format!("encoding a packet: {e:?}"))
}

fn deliver_v5(
    broker: &mut Broker,
    config: &Config,
    client_id: &str,
    login: Option<&Basic>,
    events: &[Event],
) -> DeliveryResult {
    let mut connect = v5::Connect::new(client_id);
    connect.keep_alive = KEEP_ALIVE_SECS;
    connect.clean_session = true;
    if let Some(login) = login {
        connect.set_login(login.username.as_str(), login.password.as_str());
    }
    let mut out = BytesMut::new();
    connect.write(&mut out).map_err(encode_error)?;
    broker.send(&out)?;

    let connack = match broker.next("connecting", v5::read) {
        Ok(Incoming::Packet(v5::Packet::ConnAck(connack))) => connack,
        Ok(Incoming::Packet(v5::Packet::Disconnect(d))) => {
            return Err(disconnect_failure(d.reason_code as u8))
        }
        Ok(Incoming::BareDisconnect) => return Err(disconnect_failure(0)),
        Ok(Incoming::Packet(other)) => {
            return Err(Failure::permanent(format!(
                "connecting: expected CONNACK, got {other:?}"
            )))
        }
        Err(e) => return Err(e),
    };
    if connack.code != v5::ConnectReturnCode::Success {
        return Err(connack_failure_v5(connack.code as u8));
    }
    let properties = connack
        .properties
        .unwrap_or_else(v5::ConnAckProperties::new);
    let mut qos = config.qos;
    if properties.max_qos == Some(0) && qos == 1 {
        return Err(Failure::permanent(
            "the broker accepts only QoS 0 messages: set qos to 0",
        ));
    }
    if config.retain && properties.retain_available == Some(0) {
        return Err(Failure::permanent(
            "the broker does not support retained messages: turn retain off",
        ));
    }
    if qos > 1 {
        qos = 1;
    }
    let window = usize::from(properties.receive_max.unwrap_or(u16::MAX).max(1));
    let max_packet = properties
        .max_packet_size
        .map_or(usize::MAX, |m| m as usize);

    let publish = |index: usize, event: &Event| -> Result<BytesMut, Failure> {
        let mut user_properties = vec![
            ("pushrail-event-id".to_owned(), event.id.clone()),
            ("pushrail-event-type".to_owned(), event.event_type.clone()),
            (
                "pushrail-occurred-at".to_owned(),
                event.occurred_at.to_string(),
            ),
        ];
        user_properties.extend(event.attributes.iter().cloned());
        let mut packet = v5::Publish::new(
            config.topic.as_str(),
            if qos == 1 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            },
            event.payload.clone(),
        );
        packet.retain = config.retain;
        packet.pkid = if qos == 1 { packet_id(index) } else { 0 };
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
        let mut out = BytesMut::new();
        let size = packet.write(&mut out).map_err(encode_error)?;
        if size > max_packet {
            return Err(Failure::permanent(format!(
                "event {} makes a packet of {size} bytes; the broker accepts at most {max_packet}",
                event.id
            )));
        }
        Ok(out)
    };

    if qos == 0 {
        let mut out = BytesMut::new();
        for (i, event) in events.iter().enumerate() {
            out.extend_from_slice(&publish(i, event)?);
        }
        v5::PingReq.write(&mut out).map_err(encode_error)?;
        broker.send(&out)?;
        loop {
            match broker.next("waiting for the broker", v5::read)? {
                Incoming::Packet(v5::Packet::PingResp) => break,
                Incoming::Packet(v5::Packet::Disconnect(d)) => {
                    return Err(disconnect_failure(d.reason_code as u8))
                }
                Incoming::BareDisconnect => return Err(disconnect_failure(0)),
                Incoming::Packet(_) => {}
            }
        }
    } else {
        // At most `window` unacknowledged messages, as the broker's Receive Maximum asks.
        let mut sent = 0;
        let mut acked = vec![false; events.len()];
        let mut open = 0;
        let mut done = 0;
        while done < events.len() {
            let mut out = BytesMut::new();
            while sent < events.len() && open < window {
                out.extend_from_slice(&publish(sent, &events[sent])?);
                sent += 1;
                open += 1;
            }
            if !out.is_empty() {
                broker.send(&out)?;
            }
            match broker.next("waiting for PUBACK", v5::read) {
                Ok(Incoming::Packet(v5::Packet::PubAck(ack))) => {
                    check_puback_v5(ack.reason as u8, &ack)?;
                    if let Some(i) = index_of(ack.pkid, sent) {
                        if !acked[i] {
                            acked[i] = true;
                            open -= 1;
                            done += 1;
                        }
                    }
                }
                Ok(Incoming::Packet(v5::Packet::Disconnect(d))) => {
                    return Err(disconnect_failure(d.reason_code as u8))
                }
                Ok(Incoming::BareDisconnect) => return Err(disconnect_failure(0)),
                Ok(Incoming::Packet(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let mut out = BytesMut::new();
    if v5::Disconnect::new().write(&mut out).is_ok() {
        let _ = broker.send(&out);
    }
    Ok(delivered(events.len(), qos, &config.topic))
}

fn deliver_v4(
    broker: &mut Broker,
    config: &Config,
    client_id: &str,
    login: Option<&Basic>,
    events: &[Event],
) -> DeliveryResult {
    let mut connect = v4::Connect::new(client_id);
    connect.keep_alive = KEEP_ALIVE_SECS;
    connect.clean_session = true;
    if let Some(login) = login {
        connect.set_login(login.username.as_str(), login.password.as_str());
    }
    let mut out = BytesMut::new();
    connect.write(&mut out).map_err(encode_error)?;
    broker.send(&out)?;
    match broker.next("connecting", v4::read) {
        Ok(Incoming::Packet(v4::Packet::ConnAck(connack))) => {
            if connack.code != v4::ConnectReturnCode::Success {
                return Err(connack_failure_v4(connack.code as u8));
            }
        }
        Ok(Incoming::BareDisconnect) => return Err(Failure::retryable("the broker disconnected")),
        Ok(Incoming::Packet(other)) => {
            return Err(Failure::permanent(format!(
                "connecting: expected CONNACK, got {other:?}"
            )))
        }
        Err(e) => {
            // mqttbytes refuses unknown return codes; a refused login closes the connection.
            return Err(e);
        }
    }
    let qos = config.qos.min(1);
    let mut out = BytesMut::new();
    for (i, event) in events.iter().enumerate() {
        let mut packet = v4::Publish::new(
            config.topic.as_str(),
            if qos == 1 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            },
            event.payload.clone(),
        );
        packet.retain = config.retain;
        packet.pkid = if qos == 1 { packet_id(i) } else { 0 };
        packet.write(&mut out).map_err(encode_error)?;
    }
    if qos == 0 {
        v4::PingReq.write(&mut out).map_err(encode_error)?;
    }
    broker.send(&out)?;
    let mut acked = vec![false; events.len()];
    let mut open = if qos == 1 { events.len() } else { 1 };
    while open > 0 {
        match broker.next("waiting for the broker", v4::read)? {
            Incoming::Packet(v4::Packet::PubAck(ack)) if qos == 1 => {
                if let Some(i) = index_of(ack.pkid, events.len()) {
                    if !acked[i] {
                        acked[i] = true;
                        open -= 1;
                    }
                }
            }
            Incoming::Packet(v4::Packet::PingResp) if qos == 0 => open = 0,
            Incoming::BareDisconnect => return Err(Failure::retryable("the broker disconnected")),
            Incoming::Packet(_) => {}
        }
    }
    let mut out = BytesMut::new();
    if v4::Disconnect.write(&mut out).is_ok() {
        let _ = broker.send(&out);
    }
    Ok(delivered(events.len(), qos, &config.topic))
}

/// Packet ids count from 1 (0 is not a valid id); a batch is far below 65535.
fn packet_id(index: usize) -> u16 {
    u16::try_from(index + 1).unwrap_or(u16::MAX)
}

fn index_of(pkid: u16, sent: usize) -> Option<usize> {
    let i = usize::from(pkid).checked_sub(1)?;
    (i < sent).then_some(i)
}

fn delivered(n: usize, qos: u8, topic: &str) -> Delivered {
    Delivered {
        status_code: None,
        response_excerpt: Some(if qos == 1 {
            format!("{n} messages acknowledged by the broker (QoS 1) on {topic}")
        } else {
            format!("{n} messages sent at QoS 0 on {topic}, read by the broker before its PINGRESP")
        }),
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

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.to_owned(),
    }
}

export_destination!(Mqtt);

#[cfg(test)]
mod tests {
    use super::*;
    use pushrail_plugin_sdk::FailureKind::{Permanent, Retryable};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fn packet_ids_and_topics() {
        assert_eq!(packet_id(0), 1);
        assert_eq!(index_of(1, 3), Some(0));
        assert_eq!(index_of(0, 3), None);
        assert_eq!(index_of(4, 3), None);
        assert!(valid_topic("a/b/c"));
        assert!(!valid_topic("a/+/c") && !valid_topic("a/#") && !valid_topic(""));
        assert!(random_client_id().starts_with("pushrail-"));
    }
}

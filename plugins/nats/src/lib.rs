//! The `nats` destination: JetStream publish with acknowledgement (or plain core NATS publish).
//!
//! One connection per batch: `INFO`, `CONNECT` and a `PING` answered by `PONG` (so a refused login
//! is known before anything is published), a subscription on a fresh reply inbox, then every event
//! as an `HPUB` with `Nats-Msg-Id: <event id>` and a reply subject of its own. JetStream answers
//! each on the inbox with a PubAck (`{"stream", "seq", "duplicate"?}`) or an API error; "no
//! responders" means no stream captures the subject.

mod proto;

use std::io::{BufReader, Write};
use std::time::Duration;

use pushrail_plugin_sdk::credential::kinds::{Basic, Token};
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::proto::{Msg, ReadError, ServerOp};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default)]
    tls: bool,
    subject: String,
    #[serde(default = "yes")]
    jetstream: bool,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_port() -> u16 {
    4222
}

fn yes() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Until the server's `INFO` says otherwise.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

struct Nats;

impl Destination for Nats {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "nats",
            "NATS JetStream",
            "Publishes each event to a NATS subject and waits for JetStream to store it (Nats-Msg-Id = event id, so JetStream deduplicates retries)",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["host", "subject"],
            "additionalProperties": false,
            "properties": {
                "host": {
                    "type": "string", "title": "Host", "minLength": 1, "maxLength": 253,
                    "pattern": "^[^\\s/]+$"
                },
                "port": { "type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 4222 },
                "tls": {
                    "type": "boolean", "title": "TLS", "default": false,
                    "description": "TLS from the first byte: the server must accept a TLS handshake first (NATS 2.10+, tls { handshake_first: true }) or sit behind a TLS proxy."
                },
                "subject": {
                    "type": "string", "title": "Subject", "minLength": 1, "maxLength": 1024,
                    "description": "A subject that a JetStream stream captures, e.g. events.orders (no wildcards)."
                },
                "jetstream": {
                    "type": "boolean", "title": "Wait for JetStream", "default": true,
                    "description": "Off: plain core NATS publish, delivered to whoever is subscribed at that moment, without acknowledgement."
                },
                "timeout_ms": {
                    "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000
                }
            }
        }))
        .credentials(
            &["nats_token", "basic"],
            json!({
                "oneOf": [
                    {
                        "title": "Token (nats_token)",
                        "type": "object", "required": ["token"], "additionalProperties": false,
                        "properties": { "token": { "type": "string", "title": "Token", "minLength": 1 } }
                    },
                    {
                        "title": "User and password (basic)",
                        "type": "object", "required": ["username", "password"], "additionalProperties": false,
                        "properties": {
                            "username": { "type": "string", "title": "Username", "minLength": 1 },
                            "password": { "type": "string", "title": "Password", "minLength": 1 }
                        }
                    }
                ]
            }),
            false,
        )
        .max_batch_size(100)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        if proto::valid_subject(&config.subject) {
            Vec::new()
        } else {
            vec![FieldError {
                field: "subject".into(),
                message: "must be dot-separated tokens without spaces or wildcards (* and >)"
                    .into(),
            }]
        }
    }

    fn deliver(
        config: Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult {
        if !proto::valid_subject(&config.subject) {
            return Err(Failure::permanent(
                "the subject is not a valid NATS subject",
            ));
        }
        let mut options = json!({
            "verbose": false,
            "pedantic": false,
            "tls_required": config.tls,
            "name": "pushrail",
            "lang": "rust",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "echo": false,
            "headers": true,
            "no_responders": true,
        });
        match &credential {
            None => {}
            Some(c) if c.kind == "nats_token" => {
                options["auth_token"] = Value::String(c.secret::<Token>()?.token);
            }
            Some(c) if c.kind == "basic" => {
                let basic: Basic = c.secret()?;
                options["user"] = Value::String(basic.username);
                options["pass"] = Value::String(basic.password);
            }
            Some(c) => {
                return Err(Failure::permanent(format!(
                    "credential kind {} is not supported",
                    c.kind
                )))
            }
        }

        let timeout = Duration::from_millis(config.timeout_ms.clamp(1000, 60_000));
        let mut stream =
            TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
        stream.set_read_timeout(Some(timeout));
        let mut nats = Connection {
            reader: BufReader::new(stream),
            max_payload: DEFAULT_MAX_PAYLOAD,
        };
        nats.handshake(&config, &options)?;
        let messages = events
            .iter()
            .map(|e| {
                let headers = headers(e).map_err(Failure::permanent)?;
                if headers.len() + e.payload.len() > nats.max_payload {
                    return Err(Failure::permanent(format!(
                        "event {} is larger than the server's max_payload of {} bytes",
                        e.id, nats.max_payload
                    )));
                }
                Ok((headers, &e.payload))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        if config.jetstream {
            nats.publish_jetstream(&config.subject, &messages)
        } else {
            nats.publish_core(&config.subject, &messages)
        }
    }
}

fn headers(event: &Event) -> Result<Vec<u8>, String> {
    let occurred_at = event.occurred_at.to_string();
    let mut headers = vec![
        ("Nats-Msg-Id", event.id.as_str()),
        ("Pushrail-Event-Type", event.event_type.as_str()),
        ("Pushrail-Occurred-At", occurred_at.as_str()),
        ("Content-Type", "application/json"),
    ];
    headers.extend(
        event
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    proto::header_block(&headers)
}

struct Connection {
    reader: BufReader<TcpStream>,
    max_payload: usize,
}

impl Connection {
    fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let stream = self.reader.get_mut();
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| io_failure("sending to NATS", &e))
    }

    /// The next operation that is not a keep-alive (server `PING`s are answered here).
    fn op(&mut self, doing: &str) -> Result<ServerOp, Failure> {
        loop {
            let op = proto::read_op(&mut self.reader, self.max_payload.max(DEFAULT_MAX_PAYLOAD))
                .map_err(|e| match e {
                    ReadError::Io(e) => io_failure(doing, &e),
                    other => Failure::permanent(format!("{doing}: {other}")),
                })?;
            match op {
                ServerOp::Ping => {
                    let mut out = Vec::new();
                    proto::pong(&mut out);
                    self.send(&out)?;
                }
                ServerOp::Ok => {}
                // Later INFOs announce cluster changes; nothing to do for one batch.
                ServerOp::Info(_) => {}
                other => return Ok(other),
            }
        }
    }

    fn handshake(&mut self, config: &Config, options: &Value) -> Result<(), Failure> {
        let info = match proto::read_op(&mut self.reader, DEFAULT_MAX_PAYLOAD) {
            Ok(ServerOp::Info(info)) => info,
            Ok(other) => {
                return Err(Failure::permanent(format!(
                    "expected INFO from the NATS server, got {other:?}"
                )))
            }
            Err(ReadError::Io(e)) => return Err(io_failure("connecting", &e)),
            Err(e) => return Err(Failure::permanent(format!("connecting: {e}"))),
        };
        if info["tls_required"] == true && !config.tls {
            return Err(Failure::permanent(
                "the NATS server requires TLS: set tls (the server must accept the TLS handshake first, NATS 2.10+ handshake_first)",
            ));
        }
        if info["headers"] != true {
            return Err(Failure::permanent(
                "the NATS server does not support message headers (NATS 2.2+ needed)",
            ));
        }
        if let Some(max) = info["max_payload"].as_u64() {
            self.max_payload = usize::try_from(max).unwrap_or(usize::MAX);
        }
        let mut out = Vec::new();
        proto::connect(&mut out, options);
        proto::ping(&mut out);
        self.send(&out)?;
        // A refused login is an -ERR (and a closed connection) instead of the PONG.
        match self.op("logging in")? {
            ServerOp::Pong => Ok(()),
            ServerOp::Err(e) => Err(server_error(&e)),
            other => Err(Failure::permanent(format!(
                "logging in: unexpected {other:?}"
            ))),
        }
    }

    fn publish_jetstream(
        &mut self,
        subject: &str,
        messages: &[(Vec<u8>, &Vec<u8>)],
    ) -> DeliveryResult {
        let inbox = format!("_INBOX.{}", nuid());
        let mut out = Vec::new();
        proto::sub(&mut out, &format!("{inbox}.*"), "1");
        for (i, (headers, payload)) in messages.iter().enumerate() {
            proto::hpub(
                &mut out,
                subject,
                Some(&format!("{inbox}.{i}")),
                headers,
                payload,
            );
        }
        self.send(&out)?;

        let mut acked = vec![false; messages.len()];
        let mut open = messages.len();
        let mut duplicates = 0;
        let mut stream = String::new();
        let (mut first_seq, mut last_seq) = (u64::MAX, 0);
        while open > 0 {
            let msg = match self.op("waiting for JetStream acknowledgements")? {
                ServerOp::Msg(msg) => msg,
                ServerOp::Err(e) => return Err(server_error(&e)),
                other => {
                    return Err(Failure::permanent(format!(
                        "waiting for JetStream acknowledgements: unexpected {other:?}"
                    )))
                }
            };
            let Some(i) = msg
                .subject
                .strip_prefix(&inbox)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|i| *i < acked.len())
            else {
                continue;
            };
            let ack = pub_ack(subject, &msg)?;
            if !acked[i] {
                acked[i] = true;
                open -= 1;
            }
            duplicates += usize::from(ack.duplicate);
            first_seq = first_seq.min(ack.seq);
            last_seq = last_seq.max(ack.seq);
            stream = ack.stream;
        }
        let n = messages.len();
        Ok(Delivered {
            status_code: None,
            response_excerpt: Some(format!(
                "{n} messages stored in stream {stream} (seq {first_seq}..{last_seq}{})",
                if duplicates > 0 {
                    format!(", {duplicates} already stored: deduplicated by Nats-Msg-Id")
                } else {
                    String::new()
                }
            )),
        })
    }

    /// Core NATS has no acknowledgement: a `PING` answered by `PONG` after the messages shows the
    /// server read them all without an error (a permissions violation comes back as `-ERR`).
    fn publish_core(&mut self, subject: &str, messages: &[(Vec<u8>, &Vec<u8>)]) -> DeliveryResult {
        let mut out = Vec::new();
        for (headers, payload) in messages {
            proto::hpub(&mut out, subject, None, headers, payload);
        }
        proto::ping(&mut out);
        self.send(&out)?;
        loop {
            match self.op("publishing")? {
                ServerOp::Pong => break,
                ServerOp::Err(e) => return Err(server_error(&e)),
                ServerOp::Msg(_) => {}
                other => {
                    return Err(Failure::permanent(format!(
                        "publishing: unexpected {other:?}"
                    )))
                }
            }
        }
        Ok(Delivered {
            status_code: None,
            response_excerpt: Some(format!(
                "{} messages published to {subject} (core NATS: no acknowledgement)",
                messages.len()
            )),
        })
    }
}

struct PubAck {
    stream: String,
    seq: u64,
    duplicate: bool,
}

/// What JetStream answered on an event's reply subject.
fn pub_ack(subject: &str, msg: &Msg) -> Result<PubAck, Failure> {
    if let Some(status) = msg.headers.as_deref().and_then(proto::status) {
        return Err(match status {
            503 => Failure::retryable(format!(
                "no JetStream stream captures the subject {subject} (no responders)"
            )),
            _ => Failure::retryable(format!("JetStream answered with status {status}")),
        });
    }
    let answer: Value = serde_json::from_slice(&msg.payload)
        .map_err(|e| Failure::retryable(format!("JetStream's acknowledgement is not JSON: {e}")))?;
    if let Some(error) = answer.get("error") {
        let code = error["code"].as_u64().unwrap_or(0);
        let message = format!(
            "JetStream refused the message: {} (code {code}, err_code {})",
            error["description"].as_str().unwrap_or("no description"),
            error["err_code"]
        );
        return Err(if code >= 500 || code == 429 || code == 408 {
            Failure::retryable(message)
        } else {
            Failure::permanent(message)
        });
    }
    match (answer["stream"].as_str(), answer["seq"].as_u64()) {
        (Some(stream), Some(seq)) => Ok(PubAck {
            stream: stream.to_owned(),
            seq,
            duplicate: answer["duplicate"] == true,
        }),
        _ => Err(Failure::retryable(format!(
            "unexpected JetStream acknowledgement: {answer}"
        ))),
    }
}

/// A `-ERR` from the server. Login and permission problems repeat; load-related ones may not.
fn server_error(error: &str) -> Failure {
    let message = format!("the NATS server refused: {error}");
    let lower = error.to_ascii_lowercase();
    let transient = [
        "maximum connections exceeded",
        "maximum account connections exceeded",
        "slow consumer",
        "stale connection",
        "authentication timeout",
    ]
    .iter()
    .any(|t| lower.contains(t));
    if transient {
        Failure::retryable(message)
    } else {
        Failure::permanent(message)
    }
}

/// A random inbox token: 22 base-62 characters.
fn nuid() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 22];
    if getrandom::fill(&mut bytes).is_err() {
        // Only uniqueness within this one connection matters: a clock-based token will do.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{nanos:x}");
    }
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

export_destination!(Nats);

#[cfg(test)]
mod tests {
    use super::*;
    use pushrail_plugin_sdk::FailureKind::{Permanent, Retryable};

    fn msg(headers: Option<&[u8]>, payload: &[u8]) -> Msg {
        Msg {
            subject: "_INBOX.x.0".into(),
            sid: "1".into(),
            reply_to: None,
            headers: headers.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn pub_acks_and_jetstream_errors() {
        let ack = pub_ack(
            "s",
            &msg(None, br#"{"stream":"EVENTS", "seq":7,"duplicate": true}"#),
        )
        .unwrap_or_else(|_| panic!());
        assert_eq!(
            (ack.stream.as_str(), ack.seq, ack.duplicate),
            ("EVENTS", 7, true)
        );
        let none = pub_ack("s", &msg(Some(b"NATS/1.0 503\r\n\r\n"), b""))
            .err()
            .unwrap();
        assert_eq!(none.kind, Retryable);
        let too_big = br#"{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"S","seq":0}"#;
        assert_eq!(
            pub_ack("s", &msg(None, too_big)).err().unwrap().kind,
            Permanent
        );
        let store = br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S","seq":0}"#;
        assert_eq!(
            pub_ack("s", &msg(None, store)).err().unwrap().kind,
            Retryable
        );
    }

    #[test]
    fn server_errors() {
        assert_eq!(server_error("Authorization Violation").kind, Permanent);
        assert_eq!(
            server_error("Permissions Violation for Publish to \"x\"").kind,
            Permanent
        );
        assert_eq!(server_error("Maximum Connections Exceeded").kind, Retryable);
    }

    #[test]
    fn headers_carry_the_event_id() {
        let event = Event {
            id: "evt_1".into(),
            event_type: "order.created".into(),
            occurred_at: 5,
            payload: b"{}".to_vec(),
            attributes: vec![("tenant".into(), "acme".into())],
        };
        assert_eq!(
            String::from_utf8(headers(&event).unwrap()).unwrap(),
            "NATS/1.0\r\nNats-Msg-Id: evt_1\r\nPushrail-Event-Type: order.created\r\n\
             Pushrail-Occurred-At: 5\r\nContent-Type: application/json\r\ntenant: acme\r\n\r\n"
        );
        assert_eq!(nuid().len(), 22);
    }
}

//! The `nats` destination: JetStream publish with acknowledgement (or plain core NATS publish).
//!
//! The session keeps one connection between batches. Once per connection: `INFO`, `CONNECT`
//! and a `PING` answered by `PONG` (so a refused login is known before anything is published)
//! and, with JetStream, a subscription on a reply inbox of the connection's own. Every event is
//! an `HPUB` with `Nats-Msg-Id: <event id>` and a reply subject of its own (`<inbox>.<n>`, `n`
//! counting on across batches). JetStream answers each on the inbox with a PubAck (`{"stream",
//! "seq", "duplicate"?}`) or an API error, which is that event's outcome alone; "no responders"
//! means no stream captures the subject. An event larger than the server's `max_payload` fails
//! alone, before anything is sent.

mod proto;

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};

use pushrail_plugin_sdk::credential::kinds::{Basic, Token};
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::settings;
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
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

fn default_port() -> u16 {
    4222
}

fn yes() -> bool {
    true
}

/// Until the server's `INFO` says otherwise.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// The sid of a connection's one subscription, the JetStream reply inbox.
const INBOX_SID: &str = "1";

struct Nats {
    config: Config,
    /// The `CONNECT` options, credentials included.
    options: Value,
    connection: Warm<Connection<TcpStream>>,
}

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
                "timeout_ms": settings::timeout_schema()
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
            vec![FieldError::new(
                "subject",
                "must be dot-separated tokens without spaces or wildcards (* and >)",
            )]
        }
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        if !proto::valid_subject(&config.subject) {
            return Err(Failure::permanent(
                "the subject is not a valid NATS subject",
            ));
        }
        let options = connect_options(&config, credential.as_ref())?;
        Ok(Self {
            config,
            options,
            connection: Warm::new(),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let Self {
            config,
            options,
            connection,
        } = self;
        connection.deliver(
            events,
            || dial(config, options),
            |nats, results| nats.publish(config, events, results),
        )
    }
}

/// The `CONNECT` options, with the credential's login.
fn connect_options(config: &Config, credential: Option<&Credential>) -> Result<Value, Failure> {
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
    match credential {
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
    Ok(options)
}

/// Opens a connection and logs in.
fn dial(config: &Config, options: &Value) -> Result<Connection<TcpStream>, Failure> {
    let timeout = settings::timeout(config.timeout_ms);
    let mut stream = TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
    stream.set_read_timeout(Some(timeout));
    Connection::open(stream, config, options)
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

/// An event's header block, if the event fits the server's `max_payload` (which counts the
/// headers and the payload together): a larger message would make the server close the
/// connection, failing its batch mates too.
fn message(event: &Event, max_payload: usize) -> Result<Vec<u8>, Failure> {
    let headers = headers(event).map_err(Failure::permanent)?;
    let size = headers.len() + event.payload.len();
    if size > max_payload {
        return Err(Failure::permanent(format!(
            "event {} is {size} bytes with its headers, larger than the server's max_payload of {max_payload} bytes",
            event.id
        )));
    }
    Ok(headers)
}

/// A logged-in connection (a `TcpStream`, or a scripted server in the tests).
struct Connection<S> {
    reader: BufReader<S>,
    max_payload: usize,
    /// `_INBOX.<random>`: with JetStream, `<inbox>.*` is subscribed once per connection.
    inbox: String,
    /// The next reply subject is `<inbox>.<next_reply>`. It counts on across batches, so a late
    /// answer to an earlier batch is never taken for another message's.
    next_reply: u64,
}

impl<S: Read + Write> Connection<S> {
    fn open(stream: S, config: &Config, options: &Value) -> Result<Self, Failure> {
        let mut nats = Self {
            reader: BufReader::new(stream),
            max_payload: DEFAULT_MAX_PAYLOAD,
            inbox: format!("_INBOX.{}", nuid()),
            next_reply: 0,
        };
        nats.handshake(config, options)?;
        Ok(nats)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let stream = self.reader.get_mut();
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| io_failure("sending to NATS", &e))
    }

    /// The next operation that is not a keep-alive. Server `PING`s are answered here, those
    /// that arrived while the connection sat idle between batches included.
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
                // Later INFOs announce cluster changes; nothing to do for a publisher.
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
        if config.jetstream {
            proto::sub(&mut out, &format!("{}.*", self.inbox), INBOX_SID);
        }
        proto::ping(&mut out);
        self.send(&out)?;
        // A refused login (or subscription) is an -ERR instead of the PONG.
        match self.op("logging in")? {
            ServerOp::Pong => Ok(()),
            ServerOp::Err(e) => Err(server_error(&e)),
            other => Err(Failure::permanent(format!(
                "logging in: unexpected {other:?}"
            ))),
        }
    }

    /// Publishes the events and records each one's answer in `results`. An `Err` is a failure
    /// of the connection: the answer of every event still without one.
    fn publish(
        &mut self,
        config: &Config,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        if config.jetstream {
            self.publish_jetstream(&config.subject, events, results)
        } else {
            self.publish_core(&config.subject, events, results)
        }
    }

    fn publish_jetstream(
        &mut self,
        subject: &str,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        let mut out = Vec::new();
        // Reply number -> event index, for the messages not answered yet.
        let mut waiting = BTreeMap::new();
        for (i, event) in events.iter().enumerate() {
            match message(event, self.max_payload) {
                Ok(headers) => {
                    let reply = self.next_reply;
                    self.next_reply += 1;
                    let reply_to = format!("{}.{reply}", self.inbox);
                    proto::hpub(&mut out, subject, Some(&reply_to), &headers, &event.payload);
                    waiting.insert(reply, i);
                }
                Err(failure) => results[i] = Some(Err(failure)),
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        self.send(&out)?;

        while !waiting.is_empty() {
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
                .strip_prefix(self.inbox.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse::<u64>().ok())
                .and_then(|reply| waiting.remove(&reply))
            else {
                continue;
            };
            results[i] = Some(pub_ack(subject, &msg).map(|ack| ack.delivered()));
        }
        Ok(())
    }

    /// Core NATS has no acknowledgement: a `PING` answered by `PONG` after the messages shows the
    /// server read them all without an error (a permissions violation comes back as `-ERR`).
    fn publish_core(
        &mut self,
        subject: &str,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match message(event, self.max_payload) {
                Ok(headers) => {
                    proto::hpub(&mut out, subject, None, &headers, &event.payload);
                    sent.push(i);
                }
                Err(failure) => results[i] = Some(Err(failure)),
            }
        }
        if sent.is_empty() {
            return Ok(());
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
        for i in sent {
            results[i] = Some(Ok(Delivered {
                status_code: None,
                response_excerpt: Some(format!(
                    "message published to {subject} (core NATS: no acknowledgement)"
                )),
            }));
        }
        Ok(())
    }
}

struct PubAck {
    stream: String,
    seq: u64,
    duplicate: bool,
}

impl PubAck {
    fn delivered(&self) -> Delivered {
        let (stream, seq) = (&self.stream, self.seq);
        Delivered {
            status_code: None,
            response_excerpt: Some(if self.duplicate {
                format!(
                    "message already stored in stream {stream} (seq {seq}): deduplicated by Nats-Msg-Id"
                )
            } else {
                format!("message stored in stream {stream} (seq {seq})")
            }),
        }
    }
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
    use std::collections::VecDeque;
    use std::io;

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

    fn event(id: &str, payload: &[u8]) -> Event {
        Event {
            id: id.into(),
            event_type: "order.created".into(),
            occurred_at: 5,
            payload: payload.to_vec(),
            attributes: Vec::new(),
        }
    }

    fn config(jetstream: bool) -> Config {
        serde_json::from_value(json!({
            "host": "127.0.0.1", "subject": "events.orders", "jetstream": jetstream
        }))
        .unwrap()
    }

    /// A NATS server played from a script: it reads what the client writes and answers as
    /// nats-server does (`PONG` for `PING`, a PubAck on the reply subject of each `HPUB`, a
    /// duplicate PubAck for a `Nats-Msg-Id` it has seen). A payload of `"refuse"` gets a
    /// JetStream API error. With nothing left to say, a read times out (or sees the connection
    /// closed, after `closed`).
    struct FakeServer {
        to_client: VecDeque<u8>,
        from_client: Vec<u8>,
        /// Control lines received, without their payloads.
        lines: Vec<String>,
        /// Message ids stored, by their sequence number - 1.
        stored: Vec<String>,
        /// How many more PubAcks to send before the connection closes (`None`: no limit).
        acks_left: Option<usize>,
        closed: bool,
    }

    impl FakeServer {
        fn new(max_payload: usize) -> Self {
            let info = format!(
                "INFO {{\"server_id\":\"fake\",\"version\":\"2.9.10\",\"proto\":1,\"headers\":true,\"max_payload\":{max_payload},\"jetstream\":true}}\r\n"
            );
            Self {
                to_client: info.into_bytes().into(),
                from_client: Vec::new(),
                lines: Vec::new(),
                stored: Vec::new(),
                acks_left: None,
                closed: false,
            }
        }

        fn say(&mut self, bytes: &[u8]) {
            self.to_client.extend(bytes);
        }

        /// Handles the complete operations the client has written.
        fn serve(&mut self) {
            while let Some(end) = self.from_client.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.from_client[..end].to_vec()).unwrap();
                let fields: Vec<&str> = line.split(' ').collect();
                let mut used = end + 2;
                if fields[0] == "HPUB" {
                    let (reply, header_len, total) = match fields[1..] {
                        [_, h, t] => (None, h, t),
                        [_, r, h, t] => (Some(r.to_owned()), h, t),
                        _ => panic!("bad HPUB line {line:?}"),
                    };
                    let (header_len, total): (usize, usize) =
                        (header_len.parse().unwrap(), total.parse().unwrap());
                    if self.from_client.len() < used + total + 2 {
                        return;
                    }
                    let body = self.from_client[used..used + total].to_vec();
                    used += total + 2;
                    self.publish(reply, &body[..header_len], &body[header_len..]);
                } else if fields[0] == "PING" {
                    self.say(b"PONG\r\n");
                }
                self.lines.push(line);
                self.from_client.drain(..used);
            }
        }

        fn publish(&mut self, reply: Option<String>, headers: &[u8], payload: &[u8]) {
            let Some(reply) = reply else { return };
            if self.acks_left == Some(0) {
                self.closed = true;
                return;
            }
            self.acks_left = self.acks_left.map(|n| n - 1);
            let headers = String::from_utf8(headers.to_vec()).unwrap();
            let id = headers
                .lines()
                .find_map(|h| h.strip_prefix("Nats-Msg-Id: "))
                .unwrap()
                .to_owned();
            let answer = if payload == b"\"refuse\"" {
                r#"{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"S","seq":0}"#.to_owned()
            } else if let Some(seq) = self.stored.iter().position(|s| *s == id) {
                format!(r#"{{"stream":"S", "seq":{},"duplicate": true}}"#, seq + 1)
            } else {
                self.stored.push(id);
                format!(r#"{{"stream":"S", "seq":{}}}"#, self.stored.len())
            };
            self.say(format!("MSG {reply} 1  {}\r\n{answer}\r\n", answer.len()).as_bytes());
        }
    }

    impl Read for FakeServer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.to_client.is_empty() {
                return if self.closed {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::TimedOut.into())
                };
            }
            let n = buf.len().min(self.to_client.len());
            for (slot, byte) in buf.iter_mut().zip(self.to_client.drain(..n)) {
                *slot = byte;
            }
            Ok(n)
        }
    }

    impl Write for FakeServer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.from_client.extend_from_slice(buf);
            self.serve();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn connect(server: FakeServer, config: &Config) -> Connection<FakeServer> {
        let options = connect_options(config, None).unwrap();
        Connection::open(server, config, &options).unwrap_or_else(|f| panic!("{}", f.message))
    }

    /// One batch the way a session delivers it, on a connection dialled for it.
    fn deliver(
        nats: &mut Connection<FakeServer>,
        config: &Config,
        events: &[Event],
    ) -> Vec<DeliveryResult> {
        let mut dial = Some(nats);
        Warm::new().deliver(
            events,
            || {
                dial.take()
                    .ok_or_else(|| Failure::retryable("dialled twice"))
            },
            |nats, results| nats.publish(config, events, results),
        )
    }

    fn excerpt(result: &DeliveryResult) -> &str {
        match result {
            Ok(delivered) => delivered.response_excerpt.as_deref().unwrap(),
            Err(failure) => panic!("{}", failure.message),
        }
    }

    #[test]
    fn an_oversized_or_refused_message_fails_alone() {
        let config = config(true);
        let mut nats = connect(FakeServer::new(200), &config);
        assert_eq!(nats.max_payload, 200);
        let events = [
            event("evt_1", b"{}"),
            event("evt_2", &[b' '; 200]),
            event("evt_3", b"\"refuse\""),
            event("evt_4", b"{}"),
        ];
        let results = deliver(&mut nats, &config, &events);
        assert_eq!(excerpt(&results[0]), "message stored in stream S (seq 1)");
        let too_big = results[1].as_ref().unwrap_err();
        assert_eq!(too_big.kind, Permanent);
        assert!(
            too_big.message.contains("event evt_2 is 325 bytes")
                && too_big.message.contains("max_payload of 200 bytes"),
            "{}",
            too_big.message
        );
        assert_eq!(results[2].as_ref().unwrap_err().kind, Permanent);
        assert_eq!(excerpt(&results[3]), "message stored in stream S (seq 2)");
        let server = nats.reader.get_ref();
        let hpubs = server
            .lines
            .iter()
            .filter(|l| l.starts_with("HPUB"))
            .count();
        assert_eq!(hpubs, 3, "the oversized message is not sent");
    }

    #[test]
    fn the_connection_serves_batch_after_batch() {
        let config = config(true);
        let mut nats = connect(FakeServer::new(1 << 20), &config);
        let first = deliver(&mut nats, &config, &[event("a", b"{}"), event("b", b"{}")]);
        assert!(first.iter().all(Result::is_ok));
        // The server pinged the idle connection between batches.
        nats.reader.get_mut().say(b"PING\r\n");
        let second = deliver(&mut nats, &config, &[event("c", b"{}"), event("a", b"{}")]);
        assert_eq!(excerpt(&second[0]), "message stored in stream S (seq 3)");
        assert_eq!(
            excerpt(&second[1]),
            "message already stored in stream S (seq 1): deduplicated by Nats-Msg-Id"
        );

        let lines = &nats.reader.get_ref().lines;
        let inbox = &nats.inbox;
        assert_eq!(lines[0].split(' ').next(), Some("CONNECT"));
        assert_eq!(lines[1..3], [format!("SUB {inbox}.* 1"), "PING".to_owned()]);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("SUB")).count(),
            1,
            "one subscription per connection"
        );
        assert!(
            lines.contains(&"PONG".to_owned()),
            "the server's PING was answered"
        );
        let replies: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("HPUB events.orders "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let expected: Vec<String> = (0..4).map(|n| format!("{inbox}.{n}")).collect();
        assert_eq!(replies, expected, "reply subjects count on across batches");
    }

    #[test]
    fn a_connection_lost_mid_batch_fails_only_the_unanswered() {
        let config = config(true);
        let mut server = FakeServer::new(1 << 20);
        server.acks_left = Some(1);
        let mut nats = connect(server, &config);
        let results = deliver(&mut nats, &config, &[event("a", b"{}"), event("b", b"{}")]);
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
        let config = config(true);
        let mut warm = Warm::new();
        let batch = |warm: &mut Warm<Connection<FakeServer>>, events: &[Event]| {
            warm.deliver(
                events,
                || Ok(connect(FakeServer::new(1 << 20), &config)),
                |nats, results| nats.publish(&config, events, results),
            )
        };
        assert!(batch(&mut warm, &[event("a", b"{}")])[0].is_ok());
        // The server went away while the connection sat in the session.
        let mut stale = warm.take().unwrap();
        stale.reader.get_mut().acks_left = Some(0);
        stale.reader.get_mut().closed = true;
        let inbox = stale.inbox.clone();
        let mut stale = Some(stale);
        warm.with(|| Ok(stale.take().unwrap()), |_| Ok(())).unwrap();

        let results = batch(&mut warm, &[event("b", b"{}"), event("c", b"{}")]);
        assert!(results.iter().all(Result::is_ok));
        let fresh = warm.take().unwrap();
        assert_ne!(fresh.inbox, inbox, "a new connection has a new inbox");
        assert_eq!(fresh.reader.get_ref().stored, ["b", "c"]);
    }

    #[test]
    fn core_nats_is_answered_by_the_pong() {
        let config = config(false);
        let mut nats = connect(FakeServer::new(200), &config);
        let results = deliver(
            &mut nats,
            &config,
            &[event("a", b"{}"), event("b", &[b' '; 200])],
        );
        assert_eq!(
            excerpt(&results[0]),
            "message published to events.orders (core NATS: no acknowledgement)"
        );
        assert_eq!(results[1].as_ref().unwrap_err().kind, Permanent);
        let lines = &nats.reader.get_ref().lines;
        assert!(!lines.iter().any(|l| l.starts_with("SUB")));
        assert_eq!(lines.iter().filter(|l| l.starts_with("HPUB")).count(), 1);

        // A permissions violation fails what the batch sent.
        nats.reader
            .get_mut()
            .say(b"-ERR 'Permissions Violation for Publish to \"events.orders\"'\r\n");
        let results = deliver(&mut nats, &config, &[event("c", b"{}")]);
        assert_eq!(results[0].as_ref().unwrap_err().kind, Permanent);
    }

    #[test]
    fn a_refused_login_fails_the_connection() {
        let mut server = FakeServer::new(1 << 20);
        server.say(b"-ERR 'Authorization Violation'\r\n");
        let config = config(true);
        let options = connect_options(&config, None).unwrap();
        let failure = Connection::open(server, &config, &options).err().unwrap();
        assert_eq!(failure.kind, Permanent);
        assert!(failure.message.contains("Authorization Violation"));
    }

    #[test]
    fn credentials_become_connect_options() {
        let config = config(true);
        let token = Credential {
            kind: "nats_token".into(),
            secret: r#"{"token":"t0k"}"#.into(),
        };
        assert_eq!(
            connect_options(&config, Some(&token)).unwrap()["auth_token"],
            "t0k"
        );
        let basic = Credential {
            kind: "basic".into(),
            secret: r#"{"username":"u","password":"p"}"#.into(),
        };
        let options = connect_options(&config, Some(&basic)).unwrap();
        assert_eq!(
            (&options["user"], &options["pass"]),
            (&json!("u"), &json!("p"))
        );
        let other = Credential {
            kind: "bearer".into(),
            secret: r#"{"token":"t"}"#.into(),
        };
        assert_eq!(
            connect_options(&config, Some(&other)).unwrap_err().kind,
            Permanent
        );
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
        assert!(none.message.contains("no responders"));
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

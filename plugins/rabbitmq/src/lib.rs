//! The `rabbitmq` destination: AMQP 0-9-1 `basic.publish` with publisher confirms.
//!
//! One connection per batch: handshake (PLAIN login), one channel in confirm mode, every event of
//! the batch published back to back, then the broker's `basic.ack`/`basic.nack` awaited for each.
//! The batch succeeds only when every message was confirmed and none was returned unroutable.

mod amqp;

use std::io::{BufReader, Write};
use std::time::Duration;

use pushrail_plugin_sdk::credential::kinds::Basic;
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::amqp::{Close, Frame, Method, Properties, ReadError, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default)]
    tls: bool,
    #[serde(default = "default_vhost")]
    vhost: String,
    #[serde(default)]
    exchange: String,
    /// `None`: each event's type is its routing key.
    #[serde(default)]
    routing_key: Option<String>,
    #[serde(default = "yes")]
    mandatory: bool,
    #[serde(default = "yes")]
    persistent: bool,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_port() -> u16 {
    5672
}

fn default_vhost() -> String {
    "/".to_owned()
}

fn yes() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Frames up to this size are offered in `tune-ok`; the broker may ask for less.
const FRAME_MAX: u32 = 128 * 1024;
const CHANNEL: u16 = 1;

struct RabbitMq;

impl Destination for RabbitMq {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "rabbitmq",
            "RabbitMQ",
            "Publishes each event to a RabbitMQ exchange (AMQP 0-9-1) and waits for the broker's publisher confirm",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["host"],
            "additionalProperties": false,
            "properties": {
                "host": {
                    "type": "string", "title": "Host", "minLength": 1, "maxLength": 253,
                    "pattern": "^[^\\s/]+$", "description": "Broker host name or IP address."
                },
                "port": {
                    "type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 5672,
                    "description": "5672 for AMQP, usually 5671 for AMQP over TLS."
                },
                "tls": { "type": "boolean", "title": "TLS", "default": false,
                         "description": "Connect with TLS (amqps); the server certificate is verified." },
                "vhost": { "type": "string", "title": "Virtual host", "maxLength": 255, "default": "/" },
                "exchange": {
                    "type": "string", "title": "Exchange", "maxLength": 255, "default": "",
                    "description": "Empty: the default exchange, which routes to the queue named by the routing key."
                },
                "routing_key": {
                    "type": "string", "title": "Routing key", "maxLength": 255,
                    "description": "Leave out to use each event's type as its routing key (for topic exchanges)."
                },
                "mandatory": {
                    "type": "boolean", "title": "Fail unroutable messages", "default": true,
                    "description": "A message no queue is bound for is returned by the broker and the delivery retried, instead of being dropped."
                },
                "persistent": { "type": "boolean", "title": "Persistent messages", "default": true },
                "timeout_ms": {
                    "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000,
                    "description": "Bounds connecting and each wait for the broker."
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
            true,
        )
        .max_batch_size(100)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (name, value) in [
            ("vhost", Some(&config.vhost)),
            ("exchange", Some(&config.exchange)),
            ("routing_key", config.routing_key.as_ref()),
        ] {
            if value.is_some_and(|v| v.len() > 255) {
                errors.push(field(name, "must be at most 255 bytes"));
            }
        }
        if config.vhost.is_empty() {
            errors.push(field("vhost", "must not be empty (the default is /)"));
        }
        errors
    }

    fn deliver(
        config: Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult {
        let login: Basic = match &credential {
            Some(c) if c.kind == "basic" => c.secret()?,
            Some(c) => {
                return Err(Failure::permanent(format!(
                    "credential kind {} is not supported",
                    c.kind
                )))
            }
            None => return Err(Failure::permanent("RabbitMQ needs a basic credential")),
        };
        let timeout = Duration::from_millis(config.timeout_ms.clamp(1000, 60_000));
        let mut stream =
            TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
        stream.set_read_timeout(Some(timeout));
        let mut connection = Connection {
            reader: BufReader::new(stream),
            max_payload: FRAME_MAX - amqp::FRAME_OVERHEAD,
        };
        connection.open(&config, &login)?;
        let result = connection.publish(&config, &events);
        if result.is_ok() {
            connection.close();
        }
        result
    }
}

struct Connection {
    reader: BufReader<TcpStream>,
    /// The largest frame payload either side may send.
    max_payload: u32,
}

impl Connection {
    fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let stream = self.reader.get_mut();
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| io_failure("sending to RabbitMQ", &e))
    }

    fn send_method(&mut self, channel: u16, payload: &[u8]) -> Result<(), Failure> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        amqp::write_frame(&mut out, amqp::FRAME_METHOD, channel, payload);
        self.send(&out)
    }

    fn frame(&mut self, doing: &str) -> Result<Frame, Failure> {
        amqp::read_frame(&mut self.reader, self.max_payload).map_err(|e| match e {
            ReadError::Io(e) => io_failure(doing, &e),
            other => Failure::permanent(format!("{doing}: {other}")),
        })
    }

    /// The next method frame, skipping heartbeats and content frames (of returned messages).
    fn method(&mut self, doing: &str) -> Result<(u16, Method), Failure> {
        loop {
            let frame = self.frame(doing)?;
            match frame.kind {
                amqp::FRAME_METHOD => {}
                amqp::FRAME_HEADER | amqp::FRAME_BODY | amqp::FRAME_HEARTBEAT => continue,
                other => {
                    return Err(Failure::permanent(format!(
                        "{doing}: unknown AMQP frame type {other}"
                    )))
                }
            }
            let method = amqp::decode_method(&frame.payload)
                .map_err(|e| Failure::permanent(format!("{doing}: {e}")))?;
            return Ok((frame.channel, method));
        }
    }

    /// A method that is not the one expected: a close says why, anything else is a protocol
    /// error.
    fn unexpected(&mut self, doing: &str, method: Method) -> Failure {
        match method {
            Method::ConnectionClose(close) => {
                let _ = self.send_method(0, &amqp::connection_close_ok());
                close_failure(doing, "connection", &close)
            }
            Method::ChannelClose(close) => {
                let _ = self.send_method(CHANNEL, &amqp::channel_close_ok());
                close_failure(doing, "channel", &close)
            }
            other => Failure::permanent(format!("{doing}: unexpected {other:?} from the broker")),
        }
    }

    fn open(&mut self, config: &Config, login: &Basic) -> Result<(), Failure> {
        self.send(amqp::PROTOCOL_HEADER)?;
        match self.method("opening the connection")? {
            (0, Method::ConnectionStart { mechanisms, .. }) => {
                if !mechanisms.split(' ').any(|m| m == "PLAIN") {
                    return Err(Failure::permanent(format!(
                        "the broker does not offer the PLAIN login (it offers {mechanisms})"
                    )));
                }
            }
            (_, other) => return Err(self.unexpected("opening the connection", other)),
        }
        let start_ok =
            amqp::connection_start_ok(&client_properties(), &login.username, &login.password)
                .permanent("logging in")?;
        self.send_method(0, &start_ok)?;
        let (channel_max, frame_max) = match amqp::read_frame(&mut self.reader, self.max_payload) {
            // AMQP 0-9-1 has a refused login close the socket; RabbitMQ first sends
            // connection.close (403) to clients that announce `authentication_failure_close`.
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(Failure::permanent(
                    "the broker closed the connection after the login: username or password refused",
                ))
            }
            Err(ReadError::Io(e)) => return Err(io_failure("logging in", &e)),
            Err(e) => return Err(Failure::permanent(format!("logging in: {e}"))),
            Ok(frame) => match amqp::decode_method(&frame.payload) {
                Ok(Method::ConnectionTune {
                    channel_max,
                    frame_max,
                    ..
                }) => (channel_max, frame_max),
                Ok(other) => return Err(self.unexpected("logging in", other)),
                Err(e) => return Err(Failure::permanent(format!("logging in: {e}"))),
            },
        };
        if channel_max != 0 && channel_max < CHANNEL {
            return Err(Failure::permanent("the broker allows no channel"));
        }
        let frame_max = match frame_max {
            0 => FRAME_MAX,
            n => n.min(FRAME_MAX),
        };
        if frame_max < 4096 {
            return Err(Failure::permanent(format!(
                "the broker's frame size of {frame_max} bytes is below AMQP's minimum"
            )));
        }
        self.max_payload = frame_max - amqp::FRAME_OVERHEAD;
        // Heartbeats off: a connection lives for one batch.
        self.send_method(0, &amqp::connection_tune_ok(CHANNEL, frame_max, 0))?;
        let open = amqp::connection_open(&config.vhost).permanent("opening the virtual host")?;
        self.send_method(0, &open)?;
        match self.method("opening the virtual host")? {
            (0, Method::ConnectionOpenOk) => {}
            (_, other) => return Err(self.unexpected("opening the virtual host", other)),
        }
        self.send_method(CHANNEL, &amqp::channel_open())?;
        match self.method("opening a channel")? {
            (CHANNEL, Method::ChannelOpenOk) => {}
            (_, other) => return Err(self.unexpected("opening a channel", other)),
        }
        self.send_method(CHANNEL, &amqp::confirm_select())?;
        match self.method("enabling publisher confirms")? {
            (CHANNEL, Method::ConfirmSelectOk) => Ok(()),
            (_, other) => Err(self.unexpected("enabling publisher confirms", other)),
        }
    }

    fn publish(&mut self, config: &Config, events: &[Event]) -> DeliveryResult {
        let mut out = Vec::new();
        let body_chunk = self.max_payload as usize;
        for event in events {
            let routing_key = config.routing_key.as_deref().unwrap_or(&event.event_type);
            let method = amqp::basic_publish(&config.exchange, routing_key, config.mandatory)
                .permanent("publishing")?;
            amqp::write_frame(&mut out, amqp::FRAME_METHOD, CHANNEL, &method);
            let header =
                amqp::content_header(event.payload.len() as u64, &properties(config, event))
                    .permanent("publishing")?;
            amqp::write_frame(&mut out, amqp::FRAME_HEADER, CHANNEL, &header);
            for chunk in event.payload.chunks(body_chunk) {
                amqp::write_frame(&mut out, amqp::FRAME_BODY, CHANNEL, chunk);
            }
        }
        self.send(&out)?;

        // Delivery tags count publishes on the channel from 1; a confirm may cover several.
        let mut confirmed = vec![None::<bool>; events.len()];
        let mut open = events.len();
        let mut returned: Vec<String> = Vec::new();
        while open > 0 {
            match self.method("waiting for publisher confirms")? {
                (
                    CHANNEL,
                    Method::BasicAck {
                        delivery_tag,
                        multiple,
                    },
                ) => open -= settle(&mut confirmed, delivery_tag, multiple, true),
                (
                    CHANNEL,
                    Method::BasicNack {
                        delivery_tag,
                        multiple,
                    },
                ) => open -= settle(&mut confirmed, delivery_tag, multiple, false),
                (
                    CHANNEL,
                    Method::BasicReturn {
                        reply_code,
                        reply_text,
                        exchange,
                        routing_key,
                    },
                ) => returned.push(format!(
                    "{reply_code} {reply_text} (exchange {exchange:?}, routing key {routing_key:?})"
                )),
                (_, Method::ConnectionBlocked(reason)) => {
                    log::warn(&format!("the broker blocked publishing: {reason}"));
                }
                (_, Method::ConnectionUnblocked) => {}
                (_, other) => return Err(self.unexpected("waiting for publisher confirms", other)),
            }
        }
        let nacked = confirmed.iter().filter(|c| **c == Some(false)).count();
        let n = events.len();
        if !returned.is_empty() {
            return Err(Failure::retryable(format!(
                "{} of {n} messages could not be routed to a queue: {}",
                returned.len(),
                returned[0]
            )));
        }
        if nacked > 0 {
            return Err(Failure::retryable(format!(
                "the broker refused (nack) {nacked} of {n} messages"
            )));
        }
        Ok(Delivered {
            status_code: None,
            response_excerpt: Some(format!("{n} messages confirmed by the broker")),
        })
    }

    /// Best effort: the messages are confirmed whatever happens here.
    fn close(&mut self) {
        if self
            .send_method(0, &amqp::connection_close(200, "batch delivered"))
            .is_err()
        {
            return;
        }
        self.reader
            .get_mut()
            .set_read_timeout(Some(Duration::from_secs(1)));
        for _ in 0..16 {
            match self.method("closing") {
                Ok((0, Method::ConnectionCloseOk)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Marks the publishes a confirm covers (`multiple`: every tag up to this one) and says how
/// many it settled that were still open. Tags count from 1.
fn settle(confirmed: &mut [Option<bool>], tag: u64, multiple: bool, ack: bool) -> usize {
    let tag = usize::try_from(tag)
        .unwrap_or(usize::MAX)
        .min(confirmed.len());
    let first = if multiple { 1 } else { tag.max(1) };
    let mut settled = 0;
    for slot in confirmed.iter_mut().take(tag).skip(first - 1) {
        if slot.is_none() {
            *slot = Some(ack);
            settled += 1;
        }
    }
    settled
}

fn close_failure(doing: &str, what: &str, close: &Close) -> Failure {
    let message = format!(
        "{doing}: the broker closed the {what}: {} {}",
        close.reply_code, close.reply_text
    );
    if amqp::is_transient(close.reply_code) {
        Failure::retryable(message)
    } else {
        Failure::permanent(message)
    }
}

fn client_properties() -> Vec<(String, Value)> {
    let text = |s: &str| Value::LongString(s.as_bytes().to_vec());
    let capabilities = [
        "authentication_failure_close",
        "basic.nack",
        "connection.blocked",
        "publisher_confirms",
    ]
    .iter()
    .map(|c| ((*c).to_owned(), Value::Bool(true)))
    .collect();
    vec![
        ("product".into(), text("Pushrail")),
        ("version".into(), text(env!("CARGO_PKG_VERSION"))),
        ("platform".into(), text("wasm32-wasip2")),
        ("connection_name".into(), text("pushrail delivery")),
        ("capabilities".into(), Value::Table(capabilities)),
    ]
}

fn properties(config: &Config, event: &Event) -> Properties {
    let headers = (!event.attributes.is_empty()).then(|| {
        event
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::LongString(v.as_bytes().to_vec())))
            .collect()
    });
    Properties {
        content_type: Some("application/json".into()),
        headers,
        delivery_mode: Some(if config.persistent { 2 } else { 1 }),
        message_id: Some(event.id.clone()),
        timestamp: Some(event.occurred_at / 1000),
        kind: Some(event.event_type.clone()),
        app_id: Some("pushrail".into()),
    }
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.to_owned(),
    }
}

export_destination!(RabbitMq);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirms_settle_single_and_multiple_tags() {
        let mut confirmed = vec![None; 5];
        assert_eq!(settle(&mut confirmed, 2, false, true), 1);
        assert_eq!(settle(&mut confirmed, 3, true, true), 2);
        assert_eq!(settle(&mut confirmed, 3, true, true), 0, "already settled");
        assert_eq!(settle(&mut confirmed, 5, false, false), 1);
        assert_eq!(settle(&mut confirmed, 0, false, true), 0, "tags start at 1");
        assert_eq!(
            settle(&mut confirmed, 99, true, true),
            1,
            "clamped to the batch"
        );
        assert_eq!(
            confirmed,
            vec![Some(true), Some(true), Some(true), Some(true), Some(false)]
        );
    }

    #[test]
    fn schema_defaults_match_the_config_defaults() {
        let config: Config = serde_json::from_str(r#"{"host":"h"}"#).unwrap();
        assert_eq!(
            (config.port, config.vhost.as_str(), config.exchange.as_str()),
            (5672, "/", "")
        );
        assert!(config.mandatory && config.persistent && !config.tls);
        assert!(RabbitMq::validate(&config).is_empty());
        let bad: Config = serde_json::from_str(&format!(
            r#"{{"host":"h","routing_key":"{}"}}"#,
            "é".repeat(200)
        ))
        .unwrap();
        assert_eq!(RabbitMq::validate(&bad)[0].field, "routing_key");
        assert!(serde_json::from_str::<Config>(r#"{"host":"h","nope":1}"#).is_err());
    }
}

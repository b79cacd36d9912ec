//! The `rabbitmq` destination: AMQP 0-9-1 `basic.publish` with publisher confirms.
//!
//! The session keeps one connection: handshake (PLAIN login), one channel in confirm mode, done
//! once per connection. Each batch's events are published back to back on that channel, then the
//! broker's `basic.ack`/`basic.nack` awaited for each, mapped to its event by delivery tag (the
//! channel's running publish count, which goes on across batches). Each event has its own
//! outcome: a nacked or returned (unroutable) message fails alone.

mod amqp;

use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};

use pushrail_plugin_sdk::credential::kinds::Basic;
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::settings;
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
    #[serde(default = "settings::default_timeout_ms")]
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

/// Frames up to this size are offered in `tune-ok`; the broker may ask for less.
const FRAME_MAX: u32 = 128 * 1024;
const CHANNEL: u16 = 1;

struct RabbitMq {
    config: Config,
    login: Basic,
    connection: Warm<Connection>,
}

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
                "timeout_ms": timeout_schema()
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
                errors.push(FieldError::new(name, "must be at most 255 bytes"));
            }
        }
        if config.vhost.is_empty() {
            errors.push(FieldError::new(
                "vhost",
                "must not be empty (the default is /)",
            ));
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
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
        Ok(Self {
            config,
            login,
            connection: Warm::new(),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let (config, login) = (&self.config, &self.login);
        publish_batch(
            &mut self.connection,
            || Connection::dial(config, login),
            config,
            events,
        )
    }
}

impl Drop for RabbitMq {
    /// The host drops the session: say goodbye to the broker (best effort, bounded).
    fn drop(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            connection.close("session closed");
        }
    }
}

/// The timeout setting, with what it bounds here.
fn timeout_schema() -> serde_json::Value {
    let mut schema = settings::timeout_schema();
    schema["description"] = json!("Bounds connecting and each wait for the broker.");
    schema
}

/// Publishes a batch on the kept connection (dialling one when there is none) and answers for
/// each event; see [`Warm::deliver`] for when a failed connection is dialled again.
fn publish_batch<S: Transport>(
    connection: &mut Warm<Connection<S>>,
    connect: impl FnMut() -> Result<Connection<S>, Failure>,
    config: &Config,
    events: &[Event],
) -> Vec<DeliveryResult> {
    connection.deliver(events, connect, |c, results| {
        c.publish(config, events, results)
    })
}

/// What a connection runs over: the host's TCP stream, or a scripted broker in the tests.
trait Transport: Read + Write {
    fn set_read_timeout(&mut self, timeout: Option<Duration>);
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        TcpStream::set_read_timeout(self, timeout);
    }
}

/// An open connection with channel [`CHANNEL`] in confirm mode.
struct Connection<S = TcpStream> {
    reader: BufReader<S>,
    /// The largest frame payload either side may send.
    max_payload: u32,
    /// The delivery tag of the channel's next publish: confirm mode counts publishes from 1
    /// for as long as the channel lives, across batches.
    next_tag: u64,
}

impl Connection {
    /// Connects, logs in, opens the channel and puts it in confirm mode.
    fn dial(config: &Config, login: &Basic) -> Result<Self, Failure> {
        let timeout = settings::timeout(config.timeout_ms);
        let mut stream =
            TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
        stream.set_read_timeout(Some(timeout));
        let mut connection = Connection::new(stream);
        connection.open(config, login)?;
        Ok(connection)
    }
}

impl<S: Transport> Connection<S> {
    fn new(stream: S) -> Self {
        Self {
            reader: BufReader::new(stream),
            max_payload: FRAME_MAX - amqp::FRAME_OVERHEAD,
            next_tag: 1,
        }
    }

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

    /// The next method frame, skipping heartbeats and content frames.
    fn method(&mut self, doing: &str) -> Result<(u16, Method), Failure> {
        loop {
            let frame = self.frame(doing)?;
            match frame.kind {
                amqp::FRAME_METHOD => {}
                amqp::FRAME_HEADER | amqp::FRAME_BODY | amqp::FRAME_HEARTBEAT => continue,
                other => return Err(unknown_frame(doing, other)),
            }
            return decode(doing, &frame).map(|method| (frame.channel, method));
        }
    }

    /// A method that is not the one expected: a close says why, anything else is a protocol
    /// error. After a channel close the connection is closed too: it is not used again.
    fn unexpected(&mut self, doing: &str, method: Method) -> Failure {
        match method {
            Method::ConnectionClose(close) => {
                let _ = self.send_method(0, &amqp::connection_close_ok());
                close_failure(doing, "connection", &close)
            }
            Method::ChannelClose(close) => {
                let _ = self.send_method(CHANNEL, &amqp::channel_close_ok());
                self.close("channel closed by the broker");
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
        // Heartbeats off: the plugin runs only during a call, so it could not answer them
        // between batches. A kept connection that died while idle fails at the next batch's
        // first write or read, and `Warm` dials a fresh one.
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
            (CHANNEL, Method::ConfirmSelectOk) => {
                self.next_tag = 1;
                Ok(())
            }
            (_, other) => Err(self.unexpected("enabling publisher confirms", other)),
        }
    }

    /// Publishes the events and waits for their confirms, writing each answer into `results`.
    /// `Err`: the connection failed; the events without an answer get the failure.
    fn publish(
        &mut self,
        config: &Config,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        let mut out = Vec::new();
        // The events published, in delivery tag order from `first_tag`.
        let mut published = Vec::new();
        for (index, event) in events.iter().enumerate() {
            match self.encode(config, event) {
                Ok(frames) => {
                    out.extend_from_slice(&frames);
                    published.push(index);
                }
                Err(failure) => results[index] = Some(Err(failure)),
            }
        }
        if published.is_empty() {
            return Ok(());
        }
        let first_tag = self.next_tag;
        self.next_tag += published.len() as u64;
        self.send(&out)?;

        let mut confirms = Confirms::new(first_tag, published.len());
        let outcome = self.await_confirms(events, &published, &mut confirms);
        for (slot, &index) in published.iter().enumerate() {
            if let Some(result) = confirms.result(slot) {
                results[index] = Some(result);
            }
        }
        outcome
    }

    /// The method, header and body frames of one event's `basic.publish`.
    fn encode(&self, config: &Config, event: &Event) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        let routing_key = config.routing_key.as_deref().unwrap_or(&event.event_type);
        let method = amqp::basic_publish(&config.exchange, routing_key, config.mandatory)
            .permanent("publishing")?;
        amqp::write_frame(&mut out, amqp::FRAME_METHOD, CHANNEL, &method);
        let header = amqp::content_header(event.payload.len() as u64, &properties(config, event))
            .permanent("publishing")?;
        amqp::write_frame(&mut out, amqp::FRAME_HEADER, CHANNEL, &header);
        for chunk in event.payload.chunks(self.max_payload as usize) {
            amqp::write_frame(&mut out, amqp::FRAME_BODY, CHANNEL, chunk);
        }
        Ok(out)
    }

    /// Reads the broker's answers until every published message is acked or nacked. A
    /// `basic.return` (unroutable, `mandatory`) comes before the message's ack, followed by the
    /// returned message's header, whose `message-id` says which event it was.
    fn await_confirms(
        &mut self,
        events: &[Event],
        published: &[usize],
        confirms: &mut Confirms,
    ) -> Result<(), Failure> {
        let doing = "waiting for publisher confirms";
        let mut returning: Option<String> = None;
        while confirms.open > 0 {
            let frame = self.frame(doing)?;
            match frame.kind {
                amqp::FRAME_METHOD => {}
                amqp::FRAME_HEADER => {
                    if let Some(reason) = returning.take() {
                        let id = amqp::header_message_id(&frame.payload)
                            .map_err(|e| Failure::permanent(format!("{doing}: {e}")))?;
                        let slot = id.and_then(|id| {
                            confirms.slot_of(|slot| events[published[slot]].id == id)
                        });
                        confirms.returned(slot, reason);
                    }
                    continue;
                }
                amqp::FRAME_BODY | amqp::FRAME_HEARTBEAT => continue,
                other => return Err(unknown_frame(doing, other)),
            }
            match (frame.channel, decode(doing, &frame)?) {
                (
                    CHANNEL,
                    Method::BasicAck {
                        delivery_tag,
                        multiple,
                    },
                ) => confirms.settle(delivery_tag, multiple, true),
                (
                    CHANNEL,
                    Method::BasicNack {
                        delivery_tag,
                        multiple,
                    },
                ) => confirms.settle(delivery_tag, multiple, false),
                (
                    CHANNEL,
                    Method::BasicReturn {
                        reply_code,
                        reply_text,
                        exchange,
                        routing_key,
                    },
                ) => {
                    returning = Some(format!(
                        "{reply_code} {reply_text} (exchange {exchange:?}, routing key {routing_key:?})"
                    ));
                }
                (_, Method::ConnectionBlocked(reason)) => {
                    log::warn(&format!("the broker blocked publishing: {reason}"));
                }
                (_, Method::ConnectionUnblocked) => {}
                (_, other) => return Err(self.unexpected(doing, other)),
            }
        }
        Ok(())
    }

    /// Best effort and bounded: sends connection.close and waits briefly for close-ok.
    fn close(&mut self, reason: &str) {
        if self
            .send_method(0, &amqp::connection_close(200, reason))
            .is_err()
        {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        self.reader
            .get_mut()
            .set_read_timeout(Some(Duration::from_secs(1)));
        while Instant::now() < deadline {
            match self.method("closing") {
                Ok((0, Method::ConnectionCloseOk)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// The confirms of one batch's messages, by delivery tag from `first_tag`.
struct Confirms {
    first_tag: u64,
    /// `Some(true)` acked, `Some(false)` nacked.
    confirmed: Vec<Option<bool>>,
    /// Why the broker returned the message, when it did.
    returned: Vec<Option<String>>,
    /// Messages neither acked nor nacked yet.
    open: usize,
}

impl Confirms {
    fn new(first_tag: u64, n: usize) -> Self {
        Self {
            first_tag,
            confirmed: vec![None; n],
            returned: vec![None; n],
            open: n,
        }
    }

    /// Marks the messages a confirm covers (`multiple`: every tag up to this one). Tags of
    /// earlier batches on the channel were all settled before this batch was published.
    fn settle(&mut self, tag: u64, multiple: bool, ack: bool) {
        let Some(offset) = tag.checked_sub(self.first_tag) else {
            return;
        };
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let slots = if multiple {
            0..offset.saturating_add(1).min(self.confirmed.len())
        } else if offset < self.confirmed.len() {
            offset..offset + 1
        } else {
            return;
        };
        for slot in &mut self.confirmed[slots] {
            if slot.is_none() {
                *slot = Some(ack);
                self.open -= 1;
            }
        }
    }

    /// The first message `matches` picks, preferring one not confirmed yet (a return comes
    /// before its message's confirm).
    fn slot_of(&self, matches: impl Fn(usize) -> bool) -> Option<usize> {
        let candidates = || (0..self.confirmed.len()).filter(|&slot| matches(slot));
        candidates()
            .find(|&slot| self.confirmed[slot].is_none() && self.returned[slot].is_none())
            .or_else(|| candidates().next())
    }

    /// Records a returned message. One whose event cannot be told (no message id this batch
    /// published) fails every message not confirmed yet: retried, rather than lost.
    fn returned(&mut self, slot: Option<usize>, reason: String) {
        match slot {
            Some(slot) => self.returned[slot] = Some(reason),
            None => {
                for slot in 0..self.confirmed.len() {
                    if self.confirmed[slot].is_none() && self.returned[slot].is_none() {
                        self.returned[slot] = Some(reason.clone());
                    }
                }
            }
        }
    }

    /// The outcome of one message, once the broker has answered for it.
    fn result(&self, slot: usize) -> Option<DeliveryResult> {
        if let Some(reason) = &self.returned[slot] {
            return Some(Err(Failure::retryable(format!(
                "the message could not be routed to a queue: {reason}"
            ))));
        }
        self.confirmed[slot].map(|ack| {
            if ack {
                Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some("message confirmed by the broker".to_owned()),
                })
            } else {
                Err(Failure::retryable("the broker refused (nack) the message"))
            }
        })
    }
}

fn decode(doing: &str, frame: &Frame) -> Result<Method, Failure> {
    amqp::decode_method(&frame.payload).map_err(|e| Failure::permanent(format!("{doing}: {e}")))
}

fn unknown_frame(doing: &str, kind: u8) -> Failure {
    Failure::permanent(format!("{doing}: unknown AMQP frame type {kind}"))
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

export_destination!(RabbitMq);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io;
    use std::rc::Rc;

    use super::*;

    /// A broker that answers from a script and records what it was sent.
    struct Broker {
        replies: io::Cursor<Vec<u8>>,
        written: Rc<RefCell<Vec<u8>>>,
    }

    impl Read for Broker {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl Write for Broker {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Broker {
        fn set_read_timeout(&mut self, _: Option<Duration>) {}
    }

    /// A connection past the handshake (channel 1 in confirm mode, tags from 1) whose broker
    /// answers with `replies` and then closes the socket.
    fn connection(replies: Vec<u8>) -> (Connection<Broker>, Rc<RefCell<Vec<u8>>>) {
        let written = Rc::new(RefCell::new(Vec::new()));
        let broker = Broker {
            replies: io::Cursor::new(replies),
            written: Rc::clone(&written),
        };
        (Connection::new(broker), written)
    }

    /// Dials the given connections in turn, then fails.
    fn dials(
        connections: Vec<Connection<Broker>>,
    ) -> impl FnMut() -> Result<Connection<Broker>, Failure> {
        let mut connections = connections.into_iter();
        move || {
            connections
                .next()
                .ok_or_else(|| Failure::retryable("dialled once too often"))
        }
    }

    fn method(channel: u16, class: u16, id: u16, args: &[u8]) -> Vec<u8> {
        let mut payload = [class.to_be_bytes(), id.to_be_bytes()].concat();
        payload.extend_from_slice(args);
        let mut out = Vec::new();
        amqp::write_frame(&mut out, amqp::FRAME_METHOD, channel, &payload);
        out
    }

    fn confirm(id: u16, tag: u64, multiple: bool) -> Vec<u8> {
        let mut args = tag.to_be_bytes().to_vec();
        args.push(u8::from(multiple));
        method(CHANNEL, 60, id, &args)
    }

    fn ack(tag: u64, multiple: bool) -> Vec<u8> {
        confirm(80, tag, multiple)
    }

    fn nack(tag: u64, multiple: bool) -> Vec<u8> {
        confirm(120, tag, multiple)
    }

    fn short(s: &str) -> Vec<u8> {
        [&[s.len() as u8][..], s.as_bytes()].concat()
    }

    /// basic.return of the message with this message id, with its header and body frames.
    fn returned(message_id: &str) -> Vec<u8> {
        let args = [
            &312u16.to_be_bytes()[..],
            &short("NO_ROUTE"),
            &short(""),
            &short("q"),
        ]
        .concat();
        let mut out = method(CHANNEL, 60, 50, &args);
        let properties = Properties {
            content_type: Some("application/json".into()),
            message_id: Some(message_id.into()),
            ..Properties::default()
        };
        let header = amqp::content_header(2, &properties).unwrap();
        amqp::write_frame(&mut out, amqp::FRAME_HEADER, CHANNEL, &header);
        amqp::write_frame(&mut out, amqp::FRAME_BODY, CHANNEL, b"{}");
        out
    }

    fn close(class: u16, channel: u16, code: u16, text: &str) -> Vec<u8> {
        let args = [&code.to_be_bytes()[..], &short(text), &[0, 60, 0, 40]].concat();
        method(channel, class, if class == 10 { 50 } else { 40 }, &args)
    }

    fn events(ids: &[&str]) -> Vec<Event> {
        ids.iter()
            .map(|id| Event {
                id: (*id).to_owned(),
                event_type: "order.created".into(),
                occurred_at: 1_700_000_000_000,
                payload: b"{}".to_vec(),
                attributes: Vec::new(),
            })
            .collect()
    }

    fn config() -> Config {
        serde_json::from_str(r#"{"host":"h","routing_key":"q"}"#).unwrap()
    }

    /// How many basic.publish methods were sent.
    fn publishes(written: &[u8]) -> usize {
        let mut reader = written;
        let mut n = 0;
        while !reader.is_empty() {
            let frame = amqp::read_frame(&mut reader, FRAME_MAX).unwrap();
            if frame.kind == amqp::FRAME_METHOD
                && amqp::decode_method(&frame.payload).unwrap()
                    == (Method::Other {
                        class: 60,
                        method: 40,
                    })
            {
                n += 1;
            }
        }
        n
    }

    fn kinds(results: &[DeliveryResult]) -> Vec<Option<FailureKind>> {
        results
            .iter()
            .map(|r| r.as_ref().err().map(|f| f.kind))
            .collect()
    }

    fn message(result: &DeliveryResult) -> &str {
        &result.as_ref().unwrap_err().message
    }

    use FailureKind::{Permanent, Retryable};

    #[test]
    fn confirms_map_tags_of_this_batch_only() {
        // The channel's publishes 6 to 9: the batch after one of five.
        let mut confirms = Confirms::new(6, 4);
        confirms.settle(5, false, true);
        assert_eq!(confirms.open, 4, "a tag of the previous batch");
        confirms.settle(7, true, true);
        assert_eq!(confirms.confirmed[..2], [Some(true), Some(true)]);
        confirms.settle(7, true, false);
        assert_eq!(confirms.open, 2, "already settled");
        confirms.settle(9, false, false);
        confirms.settle(3, true, true);
        confirms.settle(100, false, true);
        assert_eq!(confirms.open, 1, "tags outside the batch settle nothing");
        confirms.settle(99, true, true);
        assert_eq!(
            confirms.confirmed,
            vec![Some(true), Some(true), Some(true), Some(false)]
        );
        assert_eq!(confirms.open, 0);
    }

    #[test]
    fn delivery_tags_go_on_across_batches() {
        // Batch 1 is tags 1-3, batch 2 tags 4-6 on the same channel.
        let replies = [ack(2, true), ack(3, false), nack(4, false), ack(6, true)].concat();
        let (first, written) = connection(replies);
        let mut warm = Warm::new();
        let config = config();

        let results = publish_batch(
            &mut warm,
            dials(vec![first]),
            &config,
            &events(&["a", "b", "c"]),
        );
        assert_eq!(kinds(&results), [None, None, None]);
        let excerpt = results[0].as_ref().unwrap().response_excerpt.as_deref();
        assert!(excerpt.unwrap().contains("confirmed by the broker"));

        let results = publish_batch(&mut warm, dials(vec![]), &config, &events(&["d", "e", "f"]));
        assert_eq!(kinds(&results), [Some(Retryable), None, None]);
        assert!(message(&results[0]).contains("nack"));
        assert!(warm.is_connected(), "a nack leaves the connection usable");
        assert_eq!(publishes(&written.borrow()), 6, "each event published once");
    }

    #[test]
    fn a_returned_message_fails_alone() {
        let replies = [returned("b"), ack(3, true)].concat();
        let (first, _) = connection(replies);
        let mut warm = Warm::new();
        let results = publish_batch(
            &mut warm,
            dials(vec![first]),
            &config(),
            &events(&["a", "b", "c"]),
        );
        assert_eq!(kinds(&results), [None, Some(Retryable), None]);
        assert!(
            message(&results[1]).contains("312 NO_ROUTE"),
            "{}",
            message(&results[1])
        );
        assert!(warm.is_connected());
    }

    #[test]
    fn an_event_that_cannot_be_encoded_fails_alone() {
        // Its routing key (the event type) is too long: it is not published and takes no tag.
        let mut batch = events(&["a", "b", "c"]);
        batch[1].event_type = "t".repeat(256);
        let (first, written) = connection(ack(2, true));
        let mut warm = Warm::new();
        let config: Config = serde_json::from_str(r#"{"host":"h"}"#).unwrap();
        let results = publish_batch(&mut warm, dials(vec![first]), &config, &batch);
        assert_eq!(kinds(&results), [None, Some(Permanent), None]);
        assert!(message(&results[1]).contains("routing key"));
        assert_eq!(publishes(&written.borrow()), 2);
    }

    #[test]
    fn a_channel_close_fails_the_rest_and_drops_the_connection() {
        let replies = [
            ack(1, false),
            close(20, CHANNEL, 404, "NOT_FOUND - no exchange 'x'"),
        ]
        .concat();
        let (first, written) = connection(replies);
        let mut warm = Warm::new();
        let results = publish_batch(
            &mut warm,
            dials(vec![first]),
            &config(),
            &events(&["a", "b", "c"]),
        );
        assert_eq!(kinds(&results), [None, Some(Permanent), Some(Permanent)]);
        assert!(
            message(&results[2]).contains("404 NOT_FOUND"),
            "{}",
            message(&results[2])
        );
        assert!(!warm.is_connected());
        // channel.close-ok, then connection.close.
        let written = written.borrow();
        let tail = [
            method(CHANNEL, 20, 41, &[]),
            method(
                0,
                10,
                50,
                &[
                    &200u16.to_be_bytes()[..],
                    &short("channel closed by the broker"),
                    &[0; 4],
                ]
                .concat(),
            ),
        ]
        .concat();
        assert!(written.ends_with(&tail));
    }

    #[test]
    fn a_connection_lost_midway_fails_the_unconfirmed_events() {
        let (first, _) = connection(ack(1, false));
        let mut warm = Warm::new();
        let results = publish_batch(
            &mut warm,
            dials(vec![first]),
            &config(),
            &events(&["a", "b", "c"]),
        );
        assert_eq!(kinds(&results), [None, Some(Retryable), Some(Retryable)]);
        assert!(
            message(&results[1]).contains("server closed the connection"),
            "not dialled again after a confirm: {}",
            message(&results[1])
        );
        assert!(!warm.is_connected());
    }

    #[test]
    fn a_kept_connection_closed_while_idle_is_dialled_again() {
        // The broker closes the socket after the first batch.
        let (first, _) = connection(ack(1, false));
        let (second, written) = connection(ack(2, true));
        let mut warm = Warm::new();
        let config = config();
        let mut dial = dials(vec![first, second]);
        let results = publish_batch(&mut warm, &mut dial, &config, &events(&["a"]));
        assert_eq!(kinds(&results), [None]);
        let results = publish_batch(&mut warm, &mut dial, &config, &events(&["b", "c"]));
        assert_eq!(kinds(&results), [None, None]);
        assert_eq!(
            publishes(&written.borrow()),
            2,
            "tags restart on the new channel"
        );
        assert!(warm.is_connected());

        // A kept connection the broker closed while idle, saying why.
        let replies = [
            ack(1, false),
            close(10, 0, 320, "CONNECTION_FORCED - shutdown"),
        ]
        .concat();
        let mut warm = Warm::new();
        publish_batch(
            &mut warm,
            dials(vec![connection(replies).0]),
            &config,
            &events(&["a"]),
        );
        let results = publish_batch(&mut warm, dials(vec![]), &config, &events(&["b"]));
        assert_eq!(kinds(&results), [Some(Retryable)]);
        assert!(
            message(&results[0]).contains("dialled once too often"),
            "a retryable close of a kept connection dials again: {}",
            message(&results[0])
        );
    }

    #[test]
    fn the_handshake_opens_a_channel_in_confirm_mode() {
        let long = |s: &str| [&(s.len() as u32).to_be_bytes()[..], s.as_bytes()].concat();
        let start = [
            &[0u8, 9][..],
            &long(""),
            &long("PLAIN AMQPLAIN"),
            &long("en_US"),
        ]
        .concat();
        let tune = [
            &2047u16.to_be_bytes()[..],
            &131_072u32.to_be_bytes(),
            &60u16.to_be_bytes(),
        ]
        .concat();
        let replies = [
            method(0, 10, 10, &start),
            method(0, 10, 30, &tune),
            method(0, 10, 41, &short("")),
            method(CHANNEL, 20, 11, &long("")),
            method(CHANNEL, 85, 11, &[]),
        ]
        .concat();
        let (mut opening, written) = connection(replies);
        let login = Basic {
            username: "guest".into(),
            password: "guest".into(),
        };
        opening.open(&config(), &login).unwrap();
        assert_eq!(opening.next_tag, 1);
        let written = written.borrow();
        assert!(written.starts_with(amqp::PROTOCOL_HEADER));
        let mut tune_ok = Vec::new();
        amqp::write_frame(
            &mut tune_ok,
            amqp::FRAME_METHOD,
            0,
            &amqp::connection_tune_ok(1, 131_072, 0),
        );
        assert!(
            written.windows(tune_ok.len()).any(|w| w == tune_ok),
            "heartbeats off"
        );
        assert!(
            written.ends_with(&method(CHANNEL, 85, 10, &[0])),
            "confirm.select last"
        );

        // A refused login closes the socket after start-ok.
        let (mut refused, _) = connection(method(0, 10, 10, &start));
        let failure = refused.open(&config(), &login).unwrap_err();
        assert_eq!(failure.kind, Permanent);
        assert!(failure.message.contains("username or password refused"));
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

        let described = pushrail_plugin_sdk::glue::describe::<RabbitMq>();
        let schema: serde_json::Value = serde_json::from_str(&described.config_schema).unwrap();
        assert_eq!(
            schema["properties"]["timeout_ms"],
            json!({
                "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000,
                "description": "Bounds connecting and each wait for the broker."
            })
        );
    }
}

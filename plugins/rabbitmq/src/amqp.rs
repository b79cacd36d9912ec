//! The part of AMQP 0-9-1 a publisher needs: frames, field tables, and the methods of the
//! connection, channel, confirm and basic classes that publishing with confirms exchanges.
//!
//! Numbers and layouts are those of the AMQP 0-9-1 specification (amqp0-9-1.xml) and RabbitMQ's
//! errata (field table types). I/O-free: encoders append to a `Vec<u8>`, decoders read slices.

use std::fmt;
use std::io::{self, Read};

/// Sent first by the client: "AMQP", 0, major 0, minor 9, revision 1.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// Type, channel and size before the payload; the end octet after it.
pub const FRAME_OVERHEAD: u32 = 8;

const CONNECTION: u16 = 10;
const CHANNEL: u16 = 20;
const BASIC: u16 = 60;
const CONFIRM: u16 = 85;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub channel: u16,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The peer answered our protocol header with its own: it speaks another AMQP version.
    ProtocolMismatch([u8; 8]),
    Malformed(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::ProtocolMismatch(header) => write!(
                f,
                "the server does not speak AMQP 0-9-1 (it offered protocol {}.{}.{})",
                header[5], header[6], header[7]
            ),
            Self::Malformed(what) => write!(f, "malformed frame: {what}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads one frame; `max_payload` is the negotiated frame size less [`FRAME_OVERHEAD`].
pub fn read_frame(reader: &mut impl Read, max_payload: u32) -> Result<Frame, ReadError> {
    let mut head = [0u8; 7];
    reader.read_exact(&mut head)?;
    if &head[..4] == b"AMQP" {
        let mut header = [0u8; 8];
        header[..7].copy_from_slice(&head);
        reader.read_exact(&mut header[7..])?;
        return Err(ReadError::ProtocolMismatch(header));
    }
    let kind = head[0];
    let channel = u16::from_be_bytes([head[1], head[2]]);
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
    if size > max_payload {
        return Err(ReadError::Malformed(format!(
            "a frame of {size} bytes exceeds the negotiated maximum of {max_payload}"
        )));
    }
    let mut payload = vec![0u8; size as usize + 1];
    reader.read_exact(&mut payload)?;
    if payload.pop() != Some(FRAME_END) {
        return Err(ReadError::Malformed("missing frame end".into()));
    }
    Ok(Frame {
        kind,
        channel,
        payload,
    })
}

pub fn write_frame(out: &mut Vec<u8>, kind: u8, channel: u16, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(FRAME_END);
}

/// A field-table value, the subset a publisher sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    LongString(Vec<u8>),
    Table(Vec<(String, Value)>),
}

/// Big-endian argument encoder.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong(pub &'static str);

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is longer than 255 bytes", self.0)
    }
}

impl Encoder {
    fn method(class: u16, method: u16) -> Self {
        let mut e = Self::default();
        e.u16(class).u16(method);
        e
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A short string: one length octet, so at most 255 bytes.
    pub fn short_str(&mut self, what: &'static str, v: &str) -> Result<&mut Self, TooLong> {
        let len = u8::try_from(v.len()).map_err(|_| TooLong(what))?;
        self.buf.push(len);
        self.buf.extend_from_slice(v.as_bytes());
        Ok(self)
    }

    pub fn long_str(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn table(&mut self, entries: &[(String, Value)]) -> Result<&mut Self, TooLong> {
        let mut inner = Encoder::default();
        for (name, value) in entries {
            inner.short_str("a header name", name)?;
            match value {
                Value::Bool(b) => inner.u8(b't').u8(u8::from(*b)),
                Value::LongString(s) => inner.u8(b'S').long_str(s),
                Value::Table(t) => inner.u8(b'F').table(t)?,
            };
        }
        self.long_str(&inner.buf);
        Ok(self)
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// connection.start-ok with the PLAIN mechanism.
pub fn connection_start_ok(
    client_properties: &[(String, Value)],
    username: &str,
    password: &str,
) -> Result<Vec<u8>, TooLong> {
    let mut response = Vec::with_capacity(username.len() + password.len() + 2);
    response.push(0);
    response.extend_from_slice(username.as_bytes());
    response.push(0);
    response.extend_from_slice(password.as_bytes());
    let mut e = Encoder::method(CONNECTION, 11);
    e.table(client_properties)?
        .short_str("the mechanism", "PLAIN")?
        .long_str(&response)
        .short_str("the locale", "en_US")?;
    Ok(e.finish())
}

pub fn connection_tune_ok(channel_max: u16, frame_max: u32, heartbeat: u16) -> Vec<u8> {
    let mut e = Encoder::method(CONNECTION, 31);
    e.u16(channel_max).u32(frame_max).u16(heartbeat);
    e.finish()
}

pub fn connection_open(vhost: &str) -> Result<Vec<u8>, TooLong> {
    let mut e = Encoder::method(CONNECTION, 40);
    // reserved-1 (capabilities) is an empty short string, reserved-2 (insist) a zero bit.
    e.short_str("the virtual host", vhost)?.u8(0).u8(0);
    Ok(e.finish())
}

pub fn connection_close(code: u16, text: &str) -> Vec<u8> {
    let mut e = Encoder::method(CONNECTION, 50);
    e.u16(code);
    let _ = e.short_str("the reason", text);
    e.u16(0).u16(0);
    e.finish()
}

pub fn connection_close_ok() -> Vec<u8> {
    Encoder::method(CONNECTION, 51).finish()
}

pub fn channel_open() -> Vec<u8> {
    let mut e = Encoder::method(CHANNEL, 10);
    e.u8(0); // reserved-1: an empty short string
    e.finish()
}

pub fn channel_close_ok() -> Vec<u8> {
    Encoder::method(CHANNEL, 41).finish()
}

pub fn confirm_select() -> Vec<u8> {
    let mut e = Encoder::method(CONFIRM, 10);
    e.u8(0); // no-wait off: the server answers select-ok
    e.finish()
}

pub fn basic_publish(
    exchange: &str,
    routing_key: &str,
    mandatory: bool,
) -> Result<Vec<u8>, TooLong> {
    let mut e = Encoder::method(BASIC, 40);
    e.u16(0) // reserved-1 (ticket)
        .short_str("the exchange", exchange)?
        .short_str("the routing key", routing_key)?
        .u8(u8::from(mandatory)); // bit 0 mandatory, bit 1 immediate (never set)
    Ok(e.finish())
}

/// The basic class's content properties that a publisher sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    pub content_type: Option<String>,
    pub headers: Option<Vec<(String, Value)>>,
    /// 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    pub message_id: Option<String>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    pub kind: Option<String>,
    pub app_id: Option<String>,
}

/// The content header frame's payload: class, weight, body size, property flags and list.
pub fn content_header(body_size: u64, p: &Properties) -> Result<Vec<u8>, TooLong> {
    let mut flags = 0u16;
    let mut list = Encoder::default();
    if let Some(v) = &p.content_type {
        flags |= 1 << 15;
        list.short_str("the content type", v)?;
    }
    if let Some(v) = &p.headers {
        flags |= 1 << 13;
        list.table(v)?;
    }
    if let Some(v) = p.delivery_mode {
        flags |= 1 << 12;
        list.u8(v);
    }
    if let Some(v) = &p.message_id {
        flags |= 1 << 7;
        list.short_str("the message id", v)?;
    }
    if let Some(v) = p.timestamp {
        flags |= 1 << 6;
        list.u64(v);
    }
    if let Some(v) = &p.kind {
        flags |= 1 << 5;
        list.short_str("the type", v)?;
    }
    if let Some(v) = &p.app_id {
        flags |= 1 << 3;
        list.short_str("the app id", v)?;
    }
    let mut e = Encoder::default();
    e.u16(BASIC).u16(0).u64(body_size).u16(flags);
    let mut out = e.finish();
    out.extend_from_slice(&list.finish());
    Ok(out)
}

/// The methods a publisher receives; anything else is `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    ConnectionStart {
        version_major: u8,
        version_minor: u8,
        mechanisms: String,
    },
    ConnectionTune {
        channel_max: u16,
        frame_max: u32,
        heartbeat: u16,
    },
    ConnectionOpenOk,
    ConnectionClose(Close),
    ConnectionCloseOk,
    ConnectionBlocked(String),
    ConnectionUnblocked,
    ChannelOpenOk,
    ChannelClose(Close),
    ChannelCloseOk,
    ConfirmSelectOk,
    BasicAck {
        delivery_tag: u64,
        multiple: bool,
    },
    BasicNack {
        delivery_tag: u64,
        multiple: bool,
    },
    BasicReturn {
        reply_code: u16,
        reply_text: String,
        exchange: String,
        routing_key: String,
    },
    Other {
        class: u16,
        method: u16,
    },
}

/// connection.close or channel.close: why the peer is closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub reply_code: u16,
    pub reply_text: String,
    /// The method that caused it, when one did.
    pub class_id: u16,
    pub method_id: u16,
}

struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if self.buf.len() < n {
            return Err(ReadError::Malformed("a method frame ends early".into()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ReadError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, ReadError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn short_str(&mut self) -> Result<String, ReadError> {
        let len = self.u8()? as usize;
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn long_bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn close(&mut self) -> Result<Close, ReadError> {
        Ok(Close {
            reply_code: self.u16()?,
            reply_text: self.short_str()?,
            class_id: self.u16()?,
            method_id: self.u16()?,
        })
    }
}

/// Decodes the payload of a method frame.
pub fn decode_method(payload: &[u8]) -> Result<Method, ReadError> {
    let mut d = Decoder { buf: payload };
    let class = d.u16()?;
    let method = d.u16()?;
    Ok(match (class, method) {
        (CONNECTION, 10) => {
            let version_major = d.u8()?;
            let version_minor = d.u8()?;
            d.long_bytes()?; // server properties: a field table, not needed
            let mechanisms = String::from_utf8_lossy(d.long_bytes()?).into_owned();
            Method::ConnectionStart {
                version_major,
                version_minor,
                mechanisms,
            }
        }
        (CONNECTION, 30) => Method::ConnectionTune {
            channel_max: d.u16()?,
            frame_max: d.u32()?,
            heartbeat: d.u16()?,
        },
        (CONNECTION, 41) => Method::ConnectionOpenOk,
        (CONNECTION, 50) => Method::ConnectionClose(d.close()?),
        (CONNECTION, 51) => Method::ConnectionCloseOk,
        (CONNECTION, 60) => Method::ConnectionBlocked(d.short_str()?),
        (CONNECTION, 61) => Method::ConnectionUnblocked,
        (CHANNEL, 11) => Method::ChannelOpenOk,
        (CHANNEL, 40) => Method::ChannelClose(d.close()?),
        (CHANNEL, 41) => Method::ChannelCloseOk,
        (CONFIRM, 11) => Method::ConfirmSelectOk,
        (BASIC, 80) => Method::BasicAck {
            delivery_tag: d.u64()?,
            multiple: d.u8()? & 1 == 1,
        },
        (BASIC, 120) => Method::BasicNack {
            delivery_tag: d.u64()?,
            multiple: d.u8()? & 1 == 1,
        },
        (BASIC, 50) => Method::BasicReturn {
            reply_code: d.u16()?,
            reply_text: d.short_str()?,
            exchange: d.short_str()?,
            routing_key: d.short_str()?,
        },
        (class, method) => Method::Other { class, method },
    })
}

/// The `message-id` property in the payload of a content header frame: how a returned message
/// (which carries no delivery tag) is told apart from the others of its batch.
pub fn header_message_id(payload: &[u8]) -> Result<Option<String>, ReadError> {
    let mut d = Decoder { buf: payload };
    d.take(12)?; // class, weight, body size
    let flags = d.u16()?;
    // Bit 0 says another flags word follows; the property list comes after the last one.
    let mut more = flags & 1 == 1;
    while more {
        more = d.u16()? & 1 == 1;
    }
    // Properties are listed in flag order, from bit 15 down; message-id is bit 7.
    for bit in (7..=15).rev() {
        if flags & (1 << bit) == 0 {
            continue;
        }
        match bit {
            7 => return Ok(Some(d.short_str()?)),
            13 => {
                d.long_bytes()?; // headers: a field table
            }
            12 | 11 => {
                d.u8()?; // delivery-mode, priority
            }
            _ => {
                d.short_str()?; // content-type, -encoding, correlation-id, reply-to, expiration
            }
        }
    }
    Ok(None)
}

/// Whether a close with this reply code may succeed when tried again later. AMQP's soft errors
/// about routing and resources, and the broker going away, may; refused logins, missing
/// exchanges or vhosts, and protocol errors will not.
pub fn is_transient(reply_code: u16) -> bool {
    matches!(
        reply_code,
        312 // no-route
            | 313 // no-consumers
            | 320 // connection-forced: the broker is shutting down or the connection was closed by an operator
            | 505 // unexpected-frame, as RabbitMQ uses it for a channel closed under us
            | 506 // resource-error
            | 541 // internal-error
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn framed(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, kind, channel, payload);
        out
    }

    // The expected bytes of the encoder tests were produced by pika 1.4.4, an independent
    // implementation: `pika.frame.Method(channel, pika.spec.<Method>(...)).marshal().hex()` and
    // `pika.frame.Header(channel, size, pika.spec.BasicProperties(...)).marshal().hex()`.

    #[test]
    fn basic_publish_matches_pika() {
        // Basic.Publish(exchange="ex", routing_key="rk", mandatory=True)
        let frame = framed(FRAME_METHOD, 1, &basic_publish("ex", "rk", true).unwrap());
        assert_eq!(frame, hex("0100010000000d003c0028000002657802726b01ce"));
    }

    #[test]
    fn content_header_matches_pika() {
        // BasicProperties(content_type="application/json", delivery_mode=2, message_id="evt_1",
        //   timestamp=1700000000, type="order.created", app_id="pushrail"), body size 13
        let properties = Properties {
            content_type: Some("application/json".into()),
            headers: None,
            delivery_mode: Some(2),
            message_id: Some("evt_1".into()),
            timestamp: Some(1_700_000_000),
            kind: Some("order.created".into()),
            app_id: Some("pushrail".into()),
        };
        let frame = framed(FRAME_HEADER, 1, &content_header(13, &properties).unwrap());
        assert_eq!(
            frame,
            hex(
                "02000100000045003c0000000000000000000d90e8106170706c69636174696f6e2f6a736f6e02
                 056576745f31000000006553f1000d6f726465722e6372656174656408707573687261696cce"
            )
        );
    }

    #[test]
    fn headers_table_matches_pika() {
        // BasicProperties(headers={"a": "b", "t": True}), body size 0
        let properties = Properties {
            headers: Some(vec![
                ("a".into(), Value::LongString(b"b".to_vec())),
                ("t".into(), Value::Bool(true)),
            ]),
            ..Properties::default()
        };
        let frame = framed(FRAME_HEADER, 1, &content_header(0, &properties).unwrap());
        assert_eq!(
            frame,
            hex("0200010000001e003c0000000000000000000020000000000c016153000000016201747401ce")
        );
    }

    #[test]
    fn connection_and_channel_methods_match_pika() {
        let props = vec![("product".to_owned(), Value::LongString(b"x".to_vec()))];
        // Connection.StartOk(client_properties={"product": "x"}, mechanism="PLAIN",
        //   response=b"\0guest\0guest", locale="en_US")
        assert_eq!(
            framed(
                FRAME_METHOD,
                0,
                &connection_start_ok(&props, "guest", "guest").unwrap()
            ),
            hex(
                "01000000000032000a000b0000000e0770726f6475637453000000017805504c41494e0000000c
                 00677565737400677565737405656e5f5553ce"
            )
        );
        // Connection.TuneOk(channel_max=1, frame_max=131072, heartbeat=0)
        assert_eq!(
            framed(FRAME_METHOD, 0, &connection_tune_ok(1, 131072, 0)),
            hex("0100000000000c000a001f0001000200000000ce")
        );
        // Connection.Open(virtual_host="/")
        assert_eq!(
            framed(FRAME_METHOD, 0, &connection_open("/").unwrap()),
            hex("01000000000008000a0028012f0000ce")
        );
        // Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)
        assert_eq!(
            framed(FRAME_METHOD, 0, &connection_close(200, "bye")),
            hex("0100000000000e000a003200c80362796500000000ce")
        );
        // Channel.Open() on channel 1, Confirm.Select() on channel 1
        assert_eq!(
            framed(FRAME_METHOD, 1, &channel_open()),
            hex("010001000000050014000a00ce")
        );
        assert_eq!(
            framed(FRAME_METHOD, 1, &confirm_select()),
            hex("010001000000050055000a00ce")
        );
    }

    /// The connection.start frame RabbitMQ 3.10.8 sent to this client, byte for byte.
    const RABBITMQ_START: &str = "010000000001f0000a000a0009000001cb0c6361706162696c697469657346000000c7127075626c69736865725f636f6e6669726d7374011a65786368616e67655f65786368616e67655f62696e64696e677374010a62617369632e6e61636b740116636f6e73756d65725f63616e63656c5f6e6f74696679740112636f6e6e656374696f6e2e626c6f636b6564740113636f6e73756d65725f7072696f72697469657374011c61757468656e7469636174696f6e5f6661696c7572655f636c6f73657401107065725f636f6e73756d65725f716f7374010f6469726563745f7265706c795f746f74010c636c75737465725f6e616d65530000000972616262697440766d09636f707972696768745300000037436f707972696768742028632920323030372d3230323220564d776172652c20496e632e206f722069747320616666696c69617465732e0b696e666f726d6174696f6e53000000394c6963656e73656420756e64657220746865204d504c20322e302e20576562736974653a2068747470733a2f2f7261626269746d712e636f6d08706c6174666f726d530000001145726c616e672f4f54502032352e322e330770726f6475637453000000085261626269744d510776657273696f6e5300000006332e31302e380000000e504c41494e20414d51504c41494e00000005656e5f5553ce";

    #[test]
    fn decodes_a_captured_connection_start() {
        let bytes = hex(RABBITMQ_START);
        let frame = read_frame(&mut &bytes[..], 131_072).unwrap();
        assert_eq!((frame.kind, frame.channel), (FRAME_METHOD, 0));
        assert_eq!(
            decode_method(&frame.payload).unwrap(),
            Method::ConnectionStart {
                version_major: 0,
                version_minor: 9,
                mechanisms: "PLAIN AMQPLAIN".into()
            }
        );
    }

    #[test]
    fn decodes_what_pika_encodes() {
        let method = |h: &str| {
            let bytes = hex(h);
            decode_method(&read_frame(&mut &bytes[..], 4096).unwrap().payload).unwrap()
        };
        // Basic.Ack(delivery_tag=7, multiple=True)
        assert_eq!(
            method("0100010000000d003c0050000000000000000701ce"),
            Method::BasicAck {
                delivery_tag: 7,
                multiple: true
            }
        );
        // Basic.Nack(delivery_tag=2, multiple=False, requeue=True)
        assert_eq!(
            method("0100010000000d003c0078000000000000000202ce"),
            Method::BasicNack {
                delivery_tag: 2,
                multiple: false
            }
        );
        // Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange="", routing_key="q")
        assert_eq!(
            method("01000100000012003c00320138084e4f5f524f555445000171ce"),
            Method::BasicReturn {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: "".into(),
                routing_key: "q".into()
            }
        );
        // Connection.Close(reply_code=403, reply_text="ACCESS_REFUSED", class_id=0, method_id=0)
        assert_eq!(
            method("01000000000019000a003201930e4143434553535f5245465553454400000000ce"),
            Method::ConnectionClose(Close {
                reply_code: 403,
                reply_text: "ACCESS_REFUSED".into(),
                class_id: 0,
                method_id: 0
            })
        );
        // Connection.Tune(channel_max=2047, frame_max=131072, heartbeat=60)
        assert_eq!(
            method("0100000000000c000a001e07ff00020000003cce"),
            Method::ConnectionTune {
                channel_max: 2047,
                frame_max: 131072,
                heartbeat: 60
            }
        );
        assert!(decode_method(&hex("003c0050 00")).is_err(), "a short frame");
    }

    #[test]
    fn reads_frames_and_spots_other_protocols() {
        let mut bytes = framed(FRAME_METHOD, 1, &hex("0055000b"));
        bytes.extend_from_slice(&framed(FRAME_HEARTBEAT, 0, &[]));
        let mut reader = &bytes[..];
        let frame = read_frame(&mut reader, 4096).unwrap();
        assert_eq!((frame.kind, frame.channel), (FRAME_METHOD, 1));
        assert_eq!(
            decode_method(&frame.payload).unwrap(),
            Method::ConfirmSelectOk
        );
        assert_eq!(read_frame(&mut reader, 4096).unwrap().kind, FRAME_HEARTBEAT);

        let mut other = &b"AMQP\x01\x01\x00\x0a"[..];
        assert!(matches!(
            read_frame(&mut other, 4096),
            Err(ReadError::ProtocolMismatch(_))
        ));
        let big = framed(FRAME_BODY, 1, &[0u8; 100]);
        assert!(matches!(
            read_frame(&mut &big[..], 99),
            Err(ReadError::Malformed(_))
        ));
        let mut bad_end = framed(FRAME_BODY, 1, b"x");
        *bad_end.last_mut().unwrap() = 0;
        assert!(read_frame(&mut &bad_end[..], 10).is_err());
    }

    #[test]
    fn finds_the_message_id_of_a_returned_message() {
        // The content header pika encodes in `content_header_matches_pika`, without the frame.
        let pika = hex(
            "003c0000000000000000000d90e8106170706c69636174696f6e2f6a736f6e02
             056576745f31000000006553f1000d6f726465722e6372656174656408707573687261696c",
        );
        assert_eq!(header_message_id(&pika).unwrap().as_deref(), Some("evt_1"));
        // Headers table before it, as `headers_table_matches_pika` encodes it, but with an id.
        let properties = Properties {
            content_type: Some("application/json".into()),
            headers: Some(vec![
                ("a".into(), Value::LongString(b"b".to_vec())),
                ("t".into(), Value::Bool(true)),
            ]),
            delivery_mode: Some(1),
            message_id: Some("evt_2".into()),
            ..Properties::default()
        };
        let header = content_header(3, &properties).unwrap();
        assert_eq!(
            header_message_id(&header).unwrap().as_deref(),
            Some("evt_2")
        );
        // No message id: headers only (pika's bytes).
        let no_id = hex("003c0000000000000000000020000000000c016153000000016201747401");
        assert_eq!(header_message_id(&no_id).unwrap(), None);
        assert!(header_message_id(&pika[..20]).is_err(), "cut short");
    }

    #[test]
    fn short_strings_are_bounded() {
        assert_eq!(
            basic_publish("", &"k".repeat(256), false),
            Err(TooLong("the routing key"))
        );
    }
}

//! The NATS client protocol, the part a publisher needs: the operations of
//! <https://docs.nats.io/reference/reference-protocols/nats-protocol> (`INFO`, `CONNECT`, `PUB`,
//! `HPUB`, `SUB`, `MSG`, `HMSG`, `PING`, `PONG`, `+OK`, `-ERR`) and the `NATS/1.0` header block.
//!
//! Control lines end in CRLF and their fields are separated by runs of spaces or tabs (the server
//! does send two spaces in places). Encoders append to a `Vec<u8>`; the decoder reads from any
//! `BufRead`.

use std::fmt;
use std::io::{self, BufRead, Read};

/// Control lines longer than this are refused (an `INFO` is a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum ServerOp {
    Info(serde_json::Value),
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// A `MSG` or `HMSG`; `headers` is the raw header block of an `HMSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: String,
    pub sid: String,
    pub reply_to: Option<String>,
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Protocol(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Protocol(m) => write!(f, "not the NATS protocol: {m}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

fn protocol(message: impl Into<String>) -> ReadError {
    ReadError::Protocol(message.into())
}

fn read_line(reader: &mut impl BufRead) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(if line.len() > MAX_LINE {
            protocol("a control line is too long")
        } else {
            io::Error::from(io::ErrorKind::UnexpectedEof).into()
        });
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| protocol("a control line is not UTF-8"))
}

fn read_payload(reader: &mut impl BufRead, len: usize, max: usize) -> Result<Vec<u8>, ReadError> {
    if len > max {
        return Err(protocol(format!("a message of {len} bytes exceeds {max}")));
    }
    let mut payload = vec![0u8; len + 2];
    reader.read_exact(&mut payload)?;
    if !payload.ends_with(b"\r\n") {
        return Err(protocol("a message does not end in CRLF"));
    }
    payload.truncate(len);
    Ok(payload)
}

fn number(field: Option<&str>, what: &str) -> Result<usize, ReadError> {
    field
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| protocol(format!("bad {what}")))
}

/// Reads one server operation; `max_payload` bounds `MSG` bodies.
pub fn read_op(reader: &mut impl BufRead, max_payload: usize) -> Result<ServerOp, ReadError> {
    let line = read_line(reader)?;
    let (op, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line.as_str(), ""),
    };
    match op.to_ascii_uppercase().as_str() {
        "INFO" => serde_json::from_str(rest)
            .map(ServerOp::Info)
            .map_err(|e| protocol(format!("INFO is not JSON: {e}"))),
        "PING" => Ok(ServerOp::Ping),
        "PONG" => Ok(ServerOp::Pong),
        "+OK" => Ok(ServerOp::Ok),
        "-ERR" => Ok(ServerOp::Err(rest.trim_matches('\'').to_owned())),
        "MSG" => {
            // MSG <subject> <sid> [reply-to] <#bytes>
            let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
            let (subject, sid, reply_to, len) = match fields.as_slice() {
                [s, sid, len] => (s, sid, None, len),
                [s, sid, reply, len] => (s, sid, Some(reply), len),
                _ => return Err(protocol(format!("bad MSG line {line:?}"))),
            };
            let len = number(Some(len), "MSG size")?;
            Ok(ServerOp::Msg(Msg {
                subject: (*subject).to_owned(),
                sid: (*sid).to_owned(),
                reply_to: reply_to.map(|r| (*r).to_owned()),
                headers: None,
                payload: read_payload(reader, len, max_payload)?,
            }))
        }
        "HMSG" => {
            // HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
            let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
            let (subject, sid, reply_to, header_len, total) = match fields.as_slice() {
                [s, sid, h, t] => (s, sid, None, h, t),
                [s, sid, reply, h, t] => (s, sid, Some(reply), h, t),
                _ => return Err(protocol(format!("bad HMSG line {line:?}"))),
            };
            let header_len = number(Some(header_len), "HMSG header size")?;
            let total = number(Some(total), "HMSG size")?;
            if header_len > total {
                return Err(protocol("HMSG headers larger than the message"));
            }
            let mut all = read_payload(reader, total, max_payload)?;
            let payload = all.split_off(header_len);
            Ok(ServerOp::Msg(Msg {
                subject: (*subject).to_owned(),
                sid: (*sid).to_owned(),
                reply_to: reply_to.map(|r| (*r).to_owned()),
                headers: Some(all),
                payload,
            }))
        }
        _ => Err(protocol(format!(
            "unexpected {:?}",
            line.chars().take(40).collect::<String>()
        ))),
    }
}

/// The status code of a header block's first line (`NATS/1.0 503`), if it has one.
pub fn status(headers: &[u8]) -> Option<u16> {
    let first = headers.split(|b| *b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?.trim_end();
    first
        .strip_prefix("NATS/1.0")?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A `NATS/1.0` header block. Names and values must not contain CR or LF (nor names `:`).
pub fn header_block(headers: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let mut out = b"NATS/1.0\r\n".to_vec();
    for (name, value) in headers {
        let bad_name = name.is_empty()
            || name
                .bytes()
                .any(|b| b == b':' || b.is_ascii_whitespace() || b.is_ascii_control());
        if bad_name {
            return Err(format!("{name:?} is not a valid header name"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(format!("the value of header {name} contains a line break"));
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

pub fn connect(out: &mut Vec<u8>, options: &serde_json::Value) {
    out.extend_from_slice(b"CONNECT ");
    out.extend_from_slice(options.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn ping(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PING\r\n");
}

pub fn pong(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PONG\r\n");
}

pub fn sub(out: &mut Vec<u8>, subject: &str, sid: &str) {
    out.extend_from_slice(format!("SUB {subject} {sid}\r\n").as_bytes());
}

/// `HPUB <subject> [reply-to] <#header bytes> <#total bytes>` with the headers and payload.
pub fn hpub(
    out: &mut Vec<u8>,
    subject: &str,
    reply_to: Option<&str>,
    headers: &[u8],
    payload: &[u8],
) {
    let total = headers.len() + payload.len();
    let line = match reply_to {
        Some(reply) => format!("HPUB {subject} {reply} {} {total}\r\n", headers.len()),
        None => format!("HPUB {subject} {} {total}\r\n", headers.len()),
    };
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Whether `subject` can be published to: dot-separated non-empty tokens of printable
/// characters, no wildcards.
pub fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(bytes: &[u8]) -> Vec<ServerOp> {
        let mut reader = bytes;
        let mut out = Vec::new();
        while !reader.is_empty() {
            out.push(read_op(&mut reader, 1 << 20).unwrap());
        }
        out
    }

    /// Frames captured from nats-server 2.9.10 on this machine (JetStream enabled).
    #[test]
    fn decodes_captured_server_frames() {
        let info = br#"INFO {"server_id":"NAF5VGG22BFLKXYLBPYN7UE2GOOQ7HFURD4QZAQH6Z7BYLVEEQXL7K2I","version":"2.9.10","proto":1,"headers":true,"max_payload":1048576,"jetstream":true,"client_id":6} "#;
        let mut bytes = info.to_vec();
        bytes.extend_from_slice(b"\r\nPONG\r\n");
        // A PubAck (note the two spaces before the size), a duplicate, and "no responders".
        bytes.extend_from_slice(
            b"MSG _INBOX.cap.1 1  31\r\n{\"stream\":\"CAPTURE_T\", \"seq\":1}\r\n",
        );
        bytes.extend_from_slice(
            b"MSG _INBOX.cap.2 1  49\r\n{\"stream\":\"CAPTURE_T\", \"seq\":1,\"duplicate\": true}\r\n",
        );
        bytes.extend_from_slice(b"HMSG _INBOX.cap.3 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
        let ops = ops(&bytes);
        match &ops[0] {
            ServerOp::Info(info) => {
                assert_eq!(info["max_payload"], 1048576);
                assert_eq!(info["headers"], true);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ops[1], ServerOp::Pong);
        let ServerOp::Msg(ack) = &ops[2] else {
            panic!()
        };
        assert_eq!(ack.subject, "_INBOX.cap.1");
        assert_eq!(ack.sid, "1");
        assert_eq!(ack.payload, br#"{"stream":"CAPTURE_T", "seq":1}"#);
        let ServerOp::Msg(dup) = &ops[3] else {
            panic!()
        };
        let dup: serde_json::Value = serde_json::from_slice(&dup.payload).unwrap();
        assert_eq!(dup["duplicate"], true);
        let ServerOp::Msg(none) = &ops[4] else {
            panic!()
        };
        assert_eq!(status(none.headers.as_ref().unwrap()), Some(503));
        assert!(none.payload.is_empty());
    }

    /// The examples of the protocol reference.
    #[test]
    fn decodes_the_reference_examples() {
        let ops = ops(
            b"MSG FOO.BAR 9 11\r\nHello World\r\nMSG FOO.BAR 9 GREETING.34 11\r\nHello World\r\n\
HMSG FOO.BAR 9 BAZ.69 34 45\r\nNATS/1.0\r\nFoodGroup: vegetable\r\n\r\nHello World\r\n\
-ERR 'Authorization Violation'\r\nPING\r\n+OK\r\n",
        );
        let ServerOp::Msg(first) = &ops[0] else {
            panic!()
        };
        assert_eq!(
            (first.subject.as_str(), first.reply_to.as_deref()),
            ("FOO.BAR", None)
        );
        let ServerOp::Msg(second) = &ops[1] else {
            panic!()
        };
        assert_eq!(second.reply_to.as_deref(), Some("GREETING.34"));
        let ServerOp::Msg(third) = &ops[2] else {
            panic!()
        };
        assert_eq!(
            third.headers.as_deref(),
            Some(&b"NATS/1.0\r\nFoodGroup: vegetable\r\n\r\n"[..])
        );
        assert_eq!(third.payload, b"Hello World");
        assert_eq!(status(third.headers.as_ref().unwrap()), None);
        assert_eq!(ops[3], ServerOp::Err("Authorization Violation".into()));
        assert_eq!(&ops[4..], &[ServerOp::Ping, ServerOp::Ok]);
    }

    #[test]
    fn encodes_the_reference_hpub() {
        // From the protocol reference: HPUB FOO 22 33␍␊NATS/1.0␍␊Bar: Baz␍␊␍␊Hello NATS!␍␊
        let headers = header_block(&[("Bar", "Baz")]).unwrap();
        let mut out = Vec::new();
        hpub(&mut out, "FOO", None, &headers, b"Hello NATS!");
        assert_eq!(
            out,
            b"HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n"
        );
        let mut out = Vec::new();
        hpub(
            &mut out,
            "FRONT.DOOR",
            Some("JOKE.22"),
            &headers,
            b"Knock Knock",
        );
        assert!(out.starts_with(b"HPUB FRONT.DOOR JOKE.22 22 33\r\n"));
    }

    #[test]
    fn refuses_bad_frames_and_headers() {
        assert!(
            read_op(&mut &b"MSG a 1 5\r\nabc\r\n"[..], 100).is_err(),
            "short"
        );
        assert!(
            read_op(&mut &b"MSG a 1 500\r\n"[..], 100).is_err(),
            "too large"
        );
        assert!(read_op(&mut &b"HTTP/1.1 400 Bad Request\r\n"[..], 100).is_err());
        assert!(header_block(&[("A", "b\r\nX: y")]).is_err());
        assert!(header_block(&[("A B", "c")]).is_err());
    }

    #[test]
    fn subjects() {
        assert!(valid_subject("events.orders"));
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b"] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
    }
}

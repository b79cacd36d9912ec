//! The `redis_streams` destination: one `XADD` per event to a Redis stream.
//!
//! One connection per batch. `AUTH` and `SELECT` go first and are answered before anything is
//! written; then the batch's `XADD`s travel in one pipelined `MULTI`/`EXEC`, so a batch lands
//! whole or not at all (a connection lost before `EXEC` leaves nothing behind). Frames are
//! encoded and decoded with `redis-protocol` (RESP2).

use std::io::Write;
use std::time::Duration;

use pushrail_plugin_sdk::credential::kinds::{Basic, Secret};
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame as _};
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
    #[serde(default)]
    database: u32,
    stream: String,
    /// Trim the stream to about this many entries on every add.
    #[serde(default)]
    max_len: Option<u64>,
    /// `MAXLEN ~ n` (efficient, may keep a few more) rather than `MAXLEN = n`.
    #[serde(default = "yes")]
    approximate: bool,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_port() -> u16 {
    6379
}

fn yes() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Replies larger than this are not expected from these commands.
const MAX_REPLY: usize = 4 * 1024 * 1024;

struct RedisStreams;

impl Destination for RedisStreams {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "redis_streams",
            "Redis Streams",
            "Appends each event to a Redis stream with XADD (fields id, type, occurred_at, payload)",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["host", "stream"],
            "additionalProperties": false,
            "properties": {
                "host": {
                    "type": "string", "title": "Host", "minLength": 1, "maxLength": 253,
                    "pattern": "^[^\\s/]+$"
                },
                "port": { "type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 6379 },
                "tls": { "type": "boolean", "title": "TLS", "default": false,
                         "description": "Connect with TLS (rediss); the server certificate is verified." },
                "database": { "type": "integer", "title": "Database", "minimum": 0, "maximum": 65535, "default": 0 },
                "stream": { "type": "string", "title": "Stream key", "minLength": 1, "maxLength": 1024 },
                "max_len": {
                    "type": "integer", "title": "Keep at most (entries)", "minimum": 1,
                    "description": "Trims the stream on every add (XADD MAXLEN). Leave out to keep everything."
                },
                "approximate": {
                    "type": "boolean", "title": "Approximate trimming", "default": true,
                    "description": "MAXLEN ~ n: much cheaper for Redis, may keep slightly more than n entries."
                },
                "timeout_ms": {
                    "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000
                }
            }
        }))
        .credentials(
            &["basic", "secret"],
            json!({
                "oneOf": [
                    {
                        "title": "ACL user (basic)",
                        "type": "object", "required": ["username", "password"], "additionalProperties": false,
                        "properties": {
                            "username": { "type": "string", "title": "Username", "minLength": 1 },
                            "password": { "type": "string", "title": "Password", "minLength": 1 }
                        }
                    },
                    {
                        "title": "Password (secret)",
                        "type": "object", "required": ["value"], "additionalProperties": false,
                        "properties": { "value": { "type": "string", "title": "Password (requirepass)", "minLength": 1 } }
                    }
                ]
            }),
            false,
        )
        .max_batch_size(100)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if config.stream.trim().is_empty() {
            errors.push(FieldError {
                field: "stream".into(),
                message: "must not be blank".into(),
            });
        }
        errors
    }

    fn deliver(
        config: Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult {
        let auth = match &credential {
            None => None,
            Some(c) if c.kind == "basic" => {
                let b: Basic = c.secret()?;
                Some(command(&[
                    b"AUTH",
                    b.username.as_bytes(),
                    b.password.as_bytes(),
                ]))
            }
            Some(c) if c.kind == "secret" => {
                let s: Secret = c.secret()?;
                Some(command(&[b"AUTH", s.value.as_bytes()]))
            }
            Some(c) => {
                return Err(Failure::permanent(format!(
                    "credential kind {} is not supported",
                    c.kind
                )))
            }
        };
        let timeout = Duration::from_millis(config.timeout_ms.clamp(1000, 60_000));
        let mut stream =
            TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
        stream.set_read_timeout(Some(timeout));
        let mut redis = Connection {
            stream,
            buf: Vec::new(),
        };

        // Login and database first: nothing is written unless both were accepted.
        let mut setup = Vec::new();
        if let Some(auth) = auth {
            setup.push(auth);
        }
        if config.database != 0 {
            setup.push(command(&[
                b"SELECT",
                config.database.to_string().as_bytes(),
            ]));
        }
        if !setup.is_empty() {
            for reply in redis.call(&setup, "logging in")? {
                if let OwnedFrame::Error(e) = reply {
                    return Err(classify(&e));
                }
            }
        }

        let mut batch = vec![command(&[b"MULTI"])];
        batch.extend(events.iter().map(|e| xadd(&config, e)));
        batch.push(command(&[b"EXEC"]));
        let replies = redis.call(&batch, "adding to the stream")?;
        // MULTI's +OK, each XADD's +QUEUED (or the error that will abort the transaction), EXEC.
        if let Some(e) = replies.iter().find_map(|r| match r {
            OwnedFrame::Error(e) if !e.starts_with("EXECABORT") => Some(e),
            _ => None,
        }) {
            return Err(classify(e));
        }
        let ids = match replies.last() {
            Some(OwnedFrame::Array(results)) => results,
            Some(OwnedFrame::Error(e)) => return Err(classify(e)),
            other => {
                return Err(Failure::retryable(format!(
                    "unexpected answer to EXEC: {other:?}"
                )))
            }
        };
        let mut added = Vec::with_capacity(ids.len());
        for result in ids {
            match result {
                OwnedFrame::BulkString(id) => added.push(String::from_utf8_lossy(id).into_owned()),
                OwnedFrame::Error(e) => return Err(classify(e)),
                other => {
                    return Err(Failure::retryable(format!(
                        "unexpected answer to XADD: {other:?}"
                    )))
                }
            }
        }
        let _ = redis.send(&[command(&[b"QUIT"])]);
        Ok(Delivered {
            status_code: None,
            response_excerpt: Some(format!(
                "{} entries added to {} ({} .. {})",
                added.len(),
                config.stream,
                added.first().map(String::as_str).unwrap_or("-"),
                added.last().map(String::as_str).unwrap_or("-"),
            )),
        })
    }
}

fn command(parts: &[&[u8]]) -> OwnedFrame {
    OwnedFrame::Array(
        parts
            .iter()
            .map(|p| OwnedFrame::BulkString(p.to_vec()))
            .collect(),
    )
}

/// `XADD stream [MAXLEN [~|=] n] * id <event id> type <type> occurred_at <ms> payload <json>`.
fn xadd(config: &Config, event: &Event) -> OwnedFrame {
    let mut parts: Vec<Vec<u8>> = vec![b"XADD".to_vec(), config.stream.as_bytes().to_vec()];
    if let Some(max_len) = config.max_len {
        parts.push(b"MAXLEN".to_vec());
        parts.push(if config.approximate {
            b"~".to_vec()
        } else {
            b"=".to_vec()
        });
        parts.push(max_len.to_string().into_bytes());
    }
    parts.push(b"*".to_vec());
    for (name, value) in [
        (&b"id"[..], event.id.as_bytes()),
        (b"type", event.event_type.as_bytes()),
        (b"occurred_at", event.occurred_at.to_string().as_bytes()),
        (b"payload", &event.payload),
    ] {
        parts.push(name.to_vec());
        parts.push(value.to_vec());
    }
    OwnedFrame::Array(parts.into_iter().map(OwnedFrame::BulkString).collect())
}

/// A Redis error reply: the first word is its kind.
fn classify(error: &str) -> Failure {
    let kind = error.split_whitespace().next().unwrap_or("");
    let message = format!("Redis refused: {error}");
    let transient = matches!(
        kind,
        "LOADING"
            | "BUSY"
            | "TRYAGAIN"
            | "CLUSTERDOWN"
            | "MASTERDOWN"
            | "READONLY"
            | "NOREPLICAS"
            | "OOM"
    ) || error.contains("max number of clients");
    if transient {
        return Failure::retryable(message);
    }
    if matches!(kind, "MOVED" | "ASK") {
        return Failure::permanent(format!(
            "{message}: the key lives on another node of a Redis Cluster; point the destination at that node"
        ));
    }
    // WRONGPASS, NOAUTH, NOPERM, WRONGTYPE, syntax and argument errors repeat on retry.
    Failure::permanent(message)
}

struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    fn send(&mut self, commands: &[OwnedFrame]) -> Result<(), Failure> {
        let mut out = Vec::new();
        for frame in commands {
            let start = out.len();
            out.resize(start + frame.encode_len(false), 0);
            let n = encode(&mut out[start..], frame, false)
                .map_err(|e| Failure::permanent(format!("encoding a command: {e}")))?;
            out.truncate(start + n);
        }
        self.stream
            .write_all(&out)
            .and_then(|()| self.stream.flush())
            .map_err(|e| io_failure("sending to Redis", &e))
    }

    /// Sends the commands in one write and reads one reply for each.
    fn call(&mut self, commands: &[OwnedFrame], doing: &str) -> Result<Vec<OwnedFrame>, Failure> {
        self.send(commands)?;
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            replies.push(self.reply(doing)?);
        }
        Ok(replies)
    }

    fn reply(&mut self, doing: &str) -> Result<OwnedFrame, Failure> {
        loop {
            match decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    self.buf.drain(..used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure::permanent(format!(
                        "{doing}: the server's answer is not RESP (is this a Redis port?): {e}"
                    )))
                }
            }
            if self.buf.len() > MAX_REPLY {
                return Err(Failure::permanent(format!(
                    "{doing}: the answer is too large"
                )));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read_chunk(doing, &mut chunk)?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

export_destination!(RedisStreams);

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &OwnedFrame) -> String {
        let mut out = vec![0u8; frame.encode_len(false)];
        let n = encode(&mut out, frame, false).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    fn event() -> Event {
        Event {
            id: "evt_1".into(),
            event_type: "order.created".into(),
            occurred_at: 1_700_000_000_123,
            payload: br#"{"a":1}"#.to_vec(),
            attributes: Vec::new(),
        }
    }

    fn config(extra: &str) -> Config {
        serde_json::from_str(&format!(r#"{{"host":"h","stream":"s"{extra}}}"#)).unwrap()
    }

    #[test]
    fn xadd_carries_the_event_id_as_a_field() {
        assert_eq!(
            encoded(&xadd(&config(""), &event())),
            "*11\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$2\r\nid\r\n$5\r\nevt_1\r\n$4\r\ntype\r\n\
             $13\r\norder.created\r\n$11\r\noccurred_at\r\n$13\r\n1700000000123\r\n$7\r\npayload\r\n\
             $7\r\n{\"a\":1}\r\n"
        );
    }

    #[test]
    fn xadd_trims_when_asked() {
        let approximate = encoded(&xadd(&config(r#","max_len":1000"#), &event()));
        assert!(approximate.starts_with(
            "*14\r\n$4\r\nXADD\r\n$1\r\ns\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n1000\r\n$1\r\n*\r\n"
        ));
        let exact = encoded(&xadd(
            &config(r#","max_len":5,"approximate":false"#),
            &event(),
        ));
        assert!(exact.contains("$6\r\nMAXLEN\r\n$1\r\n=\r\n$1\r\n5\r\n"));
    }

    #[test]
    fn error_replies_are_classified() {
        use pushrail_plugin_sdk::FailureKind::{Permanent, Retryable};
        for (reply, kind) in [
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                Permanent,
            ),
            ("NOAUTH Authentication required.", Permanent),
            (
                "ERR AUTH <password> called without any password configured for the default user.",
                Permanent,
            ),
            (
                "WRONGTYPE Operation against a key holding the wrong kind of value",
                Permanent,
            ),
            ("MOVED 3999 127.0.0.1:6381", Permanent),
            ("LOADING Redis is loading the dataset in memory", Retryable),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                Retryable,
            ),
            (
                "READONLY You can't write against a read only replica.",
                Retryable,
            ),
            ("ERR max number of clients reached", Retryable),
        ] {
            assert_eq!(classify(reply).kind, kind, "{reply}");
        }
    }
}

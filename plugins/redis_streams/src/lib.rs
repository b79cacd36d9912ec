//! The `redis_streams` destination: one `XADD` per event to a Redis stream.
//!
//! The session keeps one connection, on which `AUTH` and `SELECT` were sent and answered once
//! (nothing is written with a refused login). Each batch's `XADD`s travel pipelined in one
//! write, and each reply answers for its event: an error reply fails that event alone. Frames
//! are encoded and decoded with `redis-protocol` (RESP2).

use std::io::Write;

use pushrail_plugin_sdk::credential::kinds::{Basic, Secret};
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::settings;
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
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

fn default_port() -> u16 {
    6379
}

fn yes() -> bool {
    true
}

/// Replies larger than this are not expected from these commands.
const MAX_REPLY: usize = 4 * 1024 * 1024;

struct RedisStreams {
    config: Config,
    /// The `AUTH` command of the credential, when there is one.
    auth: Option<OwnedFrame>,
    connection: Warm<Connection>,
}

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
                "timeout_ms": settings::timeout_schema()
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
            errors.push(FieldError::new("stream", "must not be blank"));
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
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
        Ok(Self {
            config,
            auth,
            connection: Warm::new(),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let (config, auth) = (&self.config, self.auth.as_ref());
        add_batch(
            &mut self.connection,
            || Connection::dial(config, auth),
            config,
            events,
        )
    }
}

impl Drop for RedisStreams {
    /// The host drops the session: `QUIT`, without waiting for the answer.
    fn drop(&mut self) {
        if let Some(mut redis) = self.connection.take() {
            let _ = redis.send(&[command(&[b"QUIT"])]);
        }
    }
}

/// Adds a batch on the kept connection (dialling one when there is none) and answers for each
/// event; see [`Warm::deliver`] for when a failed connection is dialled again.
fn add_batch<S: Transport>(
    connection: &mut Warm<Connection<S>>,
    connect: impl FnMut() -> Result<Connection<S>, Failure>,
    config: &Config,
    events: &[Event],
) -> Vec<DeliveryResult> {
    connection.deliver(events, connect, |redis, results| {
        redis.add(config, events, results)
    })
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

/// What a connection runs over: the host's TCP stream, or a scripted server in the tests.
trait Transport: Write {
    /// Reads what has arrived; a closed connection is a retryable failure.
    fn read_chunk(&mut self, doing: &str, chunk: &mut [u8]) -> Result<usize, Failure>;
}

impl Transport for TcpStream {
    fn read_chunk(&mut self, doing: &str, chunk: &mut [u8]) -> Result<usize, Failure> {
        TcpStream::read_chunk(self, doing, chunk)
    }
}

/// A connection past `AUTH` and `SELECT`.
struct Connection<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects, then logs in and selects the database: nothing is written unless both were
    /// accepted.
    fn dial(config: &Config, auth: Option<&OwnedFrame>) -> Result<Self, Failure> {
        let timeout = settings::timeout(config.timeout_ms);
        let mut stream =
            TcpStream::connect_timeout(&config.host, config.port, config.tls, timeout)?;
        stream.set_read_timeout(Some(timeout));
        let mut redis = Connection::new(stream);
        redis.login(auth, config.database)?;
        Ok(redis)
    }
}

impl<S: Transport> Connection<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    fn login(&mut self, auth: Option<&OwnedFrame>, database: u32) -> Result<(), Failure> {
        let mut setup = Vec::new();
        if let Some(auth) = auth {
            setup.push(auth.clone());
        }
        if database != 0 {
            setup.push(command(&[b"SELECT", database.to_string().as_bytes()]));
        }
        if !setup.is_empty() {
            for reply in self.call(&setup, "logging in")? {
                if let OwnedFrame::Error(e) = reply {
                    return Err(classify(&e));
                }
            }
        }
        Ok(())
    }

    /// Sends an `XADD` for each event, in one write, and writes each reply into `results`.
    /// `Err`: the connection failed; the events without a reply get the failure.
    fn add(
        &mut self,
        config: &Config,
        events: &[Event],
        results: &mut [Option<DeliveryResult>],
    ) -> Result<(), Failure> {
        let commands: Vec<OwnedFrame> = events.iter().map(|event| xadd(config, event)).collect();
        self.send(&commands)?;
        let mut added = Vec::new();
        let mut failure = None;
        for (index, result) in results.iter_mut().enumerate() {
            let reply = match self.reply("adding to the stream") {
                Ok(reply) => reply,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            match reply {
                OwnedFrame::BulkString(id) => {
                    added.push((index, String::from_utf8_lossy(&id).into_owned()));
                }
                OwnedFrame::Error(e) => *result = Some(Err(classify(&e))),
                other => {
                    *result = Some(Err(Failure::retryable(format!(
                        "unexpected answer to XADD: {other:?}"
                    ))))
                }
            }
        }
        let n = added.len();
        for (index, id) in added {
            results[index] = Some(Ok(Delivered {
                status_code: None,
                response_excerpt: Some(format!(
                    "{id}: 1 of {n} entries added to {}",
                    config.stream
                )),
            }));
        }
        failure.map_or(Ok(()), Err)
    }

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
    use std::cell::RefCell;
    use std::rc::Rc;

    use pushrail_plugin_sdk::FailureKind::{Permanent, Retryable};

    use super::*;

    /// A server that answers from a script, then closes the connection, and records what it
    /// was sent.
    struct Server {
        replies: Vec<u8>,
        written: Rc<RefCell<Vec<u8>>>,
    }

    impl Write for Server {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Server {
        fn read_chunk(&mut self, doing: &str, chunk: &mut [u8]) -> Result<usize, Failure> {
            if self.replies.is_empty() {
                let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                return Err(io_failure(doing, &eof));
            }
            // A few bytes at a time: replies split across reads.
            let n = chunk.len().min(self.replies.len()).min(7);
            chunk[..n].copy_from_slice(&self.replies[..n]);
            self.replies.drain(..n);
            Ok(n)
        }
    }

    fn connection(replies: &str) -> (Connection<Server>, Rc<RefCell<Vec<u8>>>) {
        let written = Rc::new(RefCell::new(Vec::new()));
        let server = Server {
            replies: replies.as_bytes().to_vec(),
            written: Rc::clone(&written),
        };
        (Connection::new(server), written)
    }

    /// Dials the given connections in turn, then fails.
    fn dials(
        connections: Vec<Connection<Server>>,
    ) -> impl FnMut() -> Result<Connection<Server>, Failure> {
        let mut connections = connections.into_iter();
        move || {
            connections
                .next()
                .ok_or_else(|| Failure::retryable("dialled once too often"))
        }
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event {
                id: format!("evt_{i}"),
                ..event()
            })
            .collect()
    }

    fn xadds(written: &[u8]) -> usize {
        let needle = b"$4\r\nXADD\r\n";
        written
            .windows(needle.len())
            .filter(|w| w == needle)
            .count()
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

    const ID_1: &str = "$15\r\n1700000000000-0\r\n";
    const ID_2: &str = "$15\r\n1700000000000-1\r\n";

    #[test]
    fn an_error_reply_fails_its_event_alone() {
        let replies = format!(
            "{ID_1}-WRONGTYPE Operation against a key holding the wrong kind of value\r\n{ID_2}"
        );
        let (redis, written) = connection(&replies);
        let mut warm = Warm::new();
        let results = add_batch(&mut warm, dials(vec![redis]), &config(""), &events(3));
        assert_eq!(kinds(&results), [None, Some(Permanent), None]);
        assert!(message(&results[1]).contains("WRONGTYPE"));
        let excerpt = results[2]
            .as_ref()
            .unwrap()
            .response_excerpt
            .clone()
            .unwrap();
        assert_eq!(excerpt, "1700000000000-1: 1 of 2 entries added to s");
        assert!(
            warm.is_connected(),
            "an error reply leaves the connection usable"
        );
        assert_eq!(xadds(&written.borrow()), 3);
        assert!(!String::from_utf8_lossy(&written.borrow()).contains("MULTI"));
    }

    #[test]
    fn a_connection_lost_midway_fails_the_events_without_a_reply() {
        let (redis, _) = connection(ID_1);
        let mut warm = Warm::new();
        let results = add_batch(&mut warm, dials(vec![redis]), &config(""), &events(3));
        assert_eq!(kinds(&results), [None, Some(Retryable), Some(Retryable)]);
        assert!(
            message(&results[1]).contains("server closed the connection"),
            "not dialled again after a reply: {}",
            message(&results[1])
        );
        assert!(!warm.is_connected());
    }

    #[test]
    fn a_kept_connection_closed_while_idle_is_dialled_again() {
        // The server closes the connection after the first batch.
        let (first, _) = connection(ID_1);
        let (second, written) = connection(&format!("{ID_1}{ID_2}"));
        let mut warm = Warm::new();
        let mut dial = dials(vec![first, second]);
        let results = add_batch(&mut warm, &mut dial, &config(""), &events(1));
        assert_eq!(kinds(&results), [None]);
        let results = add_batch(&mut warm, &mut dial, &config(""), &events(2));
        assert_eq!(kinds(&results), [None, None]);
        assert_eq!(xadds(&written.borrow()), 2);
        assert!(warm.is_connected());
    }

    #[test]
    fn login_and_database_are_answered_first() {
        let auth = command(&[b"AUTH", b"user", b"pass"]);
        let (mut redis, written) = connection("+OK\r\n+OK\r\n");
        redis.login(Some(&auth), 3).unwrap();
        assert_eq!(
            String::from_utf8(written.borrow().clone()).unwrap(),
            "*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$4\r\npass\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
        );

        let (mut refused, _) =
            connection("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        let failure = refused.login(Some(&auth), 0).unwrap_err();
        assert_eq!(failure.kind, Permanent);
        assert!(failure.message.contains("WRONGPASS"));

        let (mut open, written) = connection("");
        open.login(None, 0).unwrap();
        assert!(written.borrow().is_empty(), "nothing to say");
    }

    #[test]
    fn a_port_that_does_not_speak_resp_is_permanent() {
        let (redis, _) = connection("HTTP/1.1 400 Bad Request\r\n\r\n");
        let mut warm = Warm::new();
        let results = add_batch(&mut warm, dials(vec![redis]), &config(""), &events(2));
        assert_eq!(kinds(&results), [Some(Permanent), Some(Permanent)]);
        assert!(message(&results[0]).contains("not RESP"));
        assert!(!warm.is_connected());
    }

    #[test]
    fn schema_keeps_the_timeout_setting() {
        let described = pushrail_plugin_sdk::glue::describe::<RedisStreams>();
        let schema: serde_json::Value = serde_json::from_str(&described.config_schema).unwrap();
        assert_eq!(
            schema["properties"]["timeout_ms"],
            json!({ "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000 })
        );
        assert_eq!(config("").timeout_ms, 10_000);
        let blank: Config = serde_json::from_str(r#"{"host":"h","stream":" "}"#).unwrap();
        assert_eq!(RedisStreams::validate(&blank)[0].field, "stream");
    }

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

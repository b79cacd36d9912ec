//! The `postgres` destination: one `INSERT … ON CONFLICT (id) DO NOTHING` per batch.
//!
//! The session keeps one connection between batches: startup, authentication (SCRAM-SHA-256, MD5
//! or cleartext, whatever the server asks for) and, optionally, `CREATE TABLE IF NOT EXISTS` run
//! once when it is opened; each batch is then a single multi-row `INSERT` through the extended
//! query protocol with every value as a typed parameter. The event id is the primary key, so a
//! batch sent again inserts nothing twice. An error the server answers (followed by
//! `ReadyForQuery`) keeps the connection; a broken one is dropped and dialled again. Messages are
//! encoded and decoded, and SCRAM computed, with `postgres-protocol`.

mod dsn;

use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;
use pushrail_plugin_sdk::credential::kinds::{Basic, Dsn as DsnSecret};
use pushrail_plugin_sdk::net::{io_failure, TcpStream};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::settings;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    table: String,
    #[serde(default)]
    create_table: bool,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// Type oids of the parameters: text, text, timestamptz, jsonb.
const PARAM_TYPES: [u32; 4] = [25, 25, 1184, 3802];
/// Backend messages larger than this are refused (the answers here are small).
const MAX_MESSAGE: usize = 1024 * 1024;

/// The session of one destination: where to connect and the connection kept between batches.
/// `S` is the byte stream under the connection: the host's TCP, or a scripted server in tests.
struct Postgres<S: Read + Write = TcpStream> {
    target: Target,
    table: String,
    create_table: bool,
    timeout: Duration,
    connection: Warm<Connection<S>>,
}

impl Destination for Postgres {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "postgres",
            "PostgreSQL",
            "Inserts each event as a row (id, type, occurred_at, payload jsonb) into a PostgreSQL table; the event id is the primary key, so retries never insert twice",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["table"],
            "additionalProperties": false,
            "properties": {
                "host": {
                    "type": "string", "title": "Host", "minLength": 1, "maxLength": 253,
                    "pattern": "^[^\\s/]+$",
                    "description": "Required unless the postgres_dsn credential names the host."
                },
                "port": { "type": "integer", "title": "Port", "minimum": 1, "maximum": 65535, "default": 5432 },
                "database": {
                    "type": "string", "title": "Database", "minLength": 1, "maxLength": 63,
                    "description": "Default: the user name (as libpq does)."
                },
                "user": {
                    "type": "string", "title": "User", "minLength": 1, "maxLength": 63,
                    "description": "Used when the credential does not name one (or there is none, with trust authentication)."
                },
                "schema": { "type": "string", "title": "Schema", "minLength": 1, "maxLength": 63,
                            "description": "Default: the first schema of the user's search_path." },
                "table": { "type": "string", "title": "Table", "minLength": 1, "maxLength": 63 },
                "create_table": {
                    "type": "boolean", "title": "Create the table", "default": false,
                    "description": "CREATE TABLE IF NOT EXISTS (id text PRIMARY KEY, type text, occurred_at timestamptz, payload jsonb) before inserting."
                },
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(
            &["basic", "postgres_dsn"],
            json!({
                "oneOf": [
                    {
                        "title": "User and password (basic)",
                        "type": "object", "required": ["username", "password"], "additionalProperties": false,
                        "properties": {
                            "username": { "type": "string", "title": "User", "minLength": 1 },
                            "password": { "type": "string", "title": "Password", "minLength": 1 }
                        }
                    },
                    {
                        "title": "Connection string (postgres_dsn)",
                        "type": "object", "required": ["dsn"], "additionalProperties": false,
                        "properties": {
                            "dsn": {
                                "type": "string", "title": "Connection string", "minLength": 1,
                                "description": "postgresql://user:password@host:5432/dbname or host=... user=... password=...; its values take precedence over the config."
                            }
                        }
                    }
                ]
            }),
            false,
        )
        .max_batch_size(100)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (name, value) in [
            ("schema", config.schema.as_deref()),
            ("table", Some(config.table.as_str())),
        ] {
            if let Some(value) = value {
                if let Err(message) = check_identifier(value) {
                    errors.push(FieldError::new(name, message));
                }
            }
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        Ok(Self {
            target: Target::resolve(&config, credential.as_ref())?,
            table: qualified_table(&config).map_err(Failure::permanent)?,
            create_table: config.create_table,
            timeout: settings::timeout(config.timeout_ms),
            connection: Warm::new(),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        self.deliver_over(
            |target, timeout| {
                let mut stream =
                    TcpStream::connect_timeout(&target.host, target.port, false, timeout)?;
                stream.set_read_timeout(Some(timeout));
                Ok(stream)
            },
            events,
        )
    }
}

impl<S: Read + Write> Postgres<S> {
    /// One batch over the kept connection, `dial`ling a stream when there is none.
    ///
    /// An event that cannot be made a row (a payload that is not UTF-8, a time out of range)
    /// fails alone; the others are inserted by one statement and share its answer.
    fn deliver_over(
        &mut self,
        mut dial: impl FnMut(&Target, Duration) -> Result<S, Failure>,
        events: &[Event],
    ) -> Vec<DeliveryResult> {
        let rows: Vec<Result<Row, Failure>> = events.iter().map(row).collect();
        let valid: Vec<&Row> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
        let answer = if valid.is_empty() {
            Ok(Delivered::default())
        } else {
            let Self {
                target,
                table,
                create_table,
                timeout,
                connection,
            } = self;
            let create = create_table.then_some(table.as_str());
            let mut idle = true;
            let answer = connection
                .with(
                    || Connection::open(dial(target, *timeout)?, target, create),
                    |pg| {
                        let (mut answer, mut ready) = pg.insert(table, &valid)?;
                        if let (Some(create), Err(e)) = (create, &answer) {
                            // Created when the connection was opened, dropped since: again.
                            if e.code == "42P01" && ready {
                                pg.create_table(create)?;
                                (answer, ready) = pg.insert(table, &valid)?;
                            }
                        }
                        idle = ready;
                        Ok(answer.map_err(|e| e.failure("inserting")))
                    },
                )
                .unwrap_or_else(Err);
            if !idle {
                // Not back to idle after the statement: the next batch starts on a fresh one.
                if let Some(mut pg) = connection.take() {
                    pg.terminate();
                }
            }
            answer
        };
        rows.into_iter()
            .map(|row| row.and_then(|_| answer.clone()))
            .collect()
    }
}

impl<S: Read + Write> Drop for Postgres<S> {
    /// Says goodbye (`Terminate`, one small write) so the server ends the backend at once.
    fn drop(&mut self) {
        if let Some(mut pg) = self.connection.take() {
            pg.terminate();
        }
    }
}

/// Where and as whom to connect, from the config and the credential.
struct Target {
    host: String,
    port: u16,
    database: String,
    user: String,
    password: Option<String>,
}

impl Target {
    fn resolve(config: &Config, credential: Option<&Credential>) -> Result<Self, Failure> {
        let mut host = config.host.clone();
        let mut port = config.port;
        let mut database = config.database.clone();
        let mut user = config.user.clone();
        let mut password = None;
        match credential {
            None => {}
            Some(c) if c.kind == "basic" => {
                let basic: Basic = c.secret()?;
                user = Some(basic.username);
                password = Some(basic.password);
            }
            Some(c) if c.kind == "postgres_dsn" => {
                let secret: DsnSecret = c.secret()?;
                // The error names the problem, never the text (it holds the password).
                let dsn = dsn::parse(&secret.dsn).map_err(|e| Failure::permanent(e.to_string()))?;
                if let Some(mode) = dsn.sslmode.as_deref() {
                    if matches!(mode, "require" | "verify-ca" | "verify-full") {
                        return Err(Failure::permanent(format!(
                            "the connection string asks for sslmode={mode}, but TLS to PostgreSQL needs a STARTTLS upgrade the host's network interface does not offer yet"
                        )));
                    }
                }
                host = dsn.host.or(host);
                port = dsn.port.or(port);
                database = dsn.dbname.or(database);
                user = dsn.user.or(user);
                password = dsn.password;
            }
            Some(c) => {
                return Err(Failure::permanent(format!(
                    "credential kind {} is not supported",
                    c.kind
                )))
            }
        }
        let host = host.ok_or_else(|| {
            Failure::permanent("no host: set it in the config or in the connection string")
        })?;
        // libpq tries several comma-separated hosts in turn; one connection is tried here.
        let host = host.split(',').next().unwrap_or_default().trim().to_owned();
        if host.is_empty() || host.starts_with('/') {
            return Err(Failure::permanent(
                "the host must be a host name or IP address (Unix sockets cannot be reached)",
            ));
        }
        let user = user.ok_or_else(|| {
            Failure::permanent("no user: add a credential or set user in the config")
        })?;
        Ok(Self {
            host,
            port: port.unwrap_or(5432),
            database: database.unwrap_or_else(|| user.clone()),
            user,
            password,
        })
    }
}

fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 bytes".into());
    }
    if name.contains('\0') {
        return Err("must not contain NUL".into());
    }
    Ok(())
}

/// A quoted identifier: used exactly as written (case included).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn qualified_table(config: &Config) -> Result<String, String> {
    check_identifier(&config.table).map_err(|e| format!("table {e}"))?;
    Ok(match &config.schema {
        Some(schema) => {
            check_identifier(schema).map_err(|e| format!("schema {e}"))?;
            format!("{}.{}", quote(schema), quote(&config.table))
        }
        None => quote(&config.table),
    })
}

fn insert_sql(table: &str, rows: usize) -> String {
    let mut sql =
        format!("INSERT INTO {table} (\"id\", \"type\", \"occurred_at\", \"payload\") VALUES ");
    for row in 0..rows {
        let p = row * 4;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4));
    }
    sql.push_str(" ON CONFLICT (\"id\") DO NOTHING");
    sql
}

fn create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\"id\" text PRIMARY KEY, \"type\" text NOT NULL, \
         \"occurred_at\" timestamptz NOT NULL, \"payload\" jsonb NOT NULL)"
    )
}

/// Milliseconds since the epoch as an RFC 3339 UTC timestamp, PostgreSQL's timestamptz input.
fn timestamp(ms: u64) -> Result<String, Failure> {
    let at = time::OffsetDateTime::UNIX_EPOCH + Duration::from_millis(ms);
    at.format(&time::format_description::well_known::Rfc3339)
        .permanent("event time out of range")
}

/// One event's parameters: id, type, occurred_at, payload, in the text format.
type Row = [Vec<u8>; 4];

fn row(event: &Event) -> Result<Row, Failure> {
    std::str::from_utf8(&event.payload).permanent("event payload is not UTF-8 JSON")?;
    Ok([
        event.id.as_bytes().to_vec(),
        event.event_type.as_bytes().to_vec(),
        timestamp(event.occurred_at)?.into_bytes(),
        event.payload.clone(),
    ])
}

/// An error a server sent, with its SQLSTATE.
struct ServerError {
    code: String,
    message: String,
}

impl ServerError {
    fn parse(body: &ErrorResponseBody) -> Self {
        let mut error = ServerError {
            code: String::new(),
            message: String::new(),
        };
        let mut severity = String::new();
        let mut detail = String::new();
        let mut fields = body.fields();
        while let Ok(Some(field)) = fields.next() {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'V' => severity = value,
                b'S' if severity.is_empty() => severity = value,
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => detail = value,
                _ => {}
            }
        }
        if !detail.is_empty() {
            error.message = format!("{} ({detail})", error.message);
        }
        if !severity.is_empty() {
            error.message = format!("{severity}: {}", error.message);
        }
        error
    }

    /// SQLSTATE classes that may clear up on their own: connection problems (08), rolled-back
    /// transactions (40: serialization failures, deadlocks), insufficient resources (53, e.g. too
    /// many connections), objects busy or locked (55), operator intervention (57: shutdown,
    /// starting up, cancelled), system and internal errors (58, XX), and a read-only standby
    /// (25006) that may be promoted. Everything else (28 authentication, 3D unknown database,
    /// 42 undefined table or permission denied, 22 and 23 data errors) repeats.
    fn failure(self, doing: &str) -> Failure {
        let transient = matches!(
            self.code.get(..2),
            Some("08" | "40" | "53" | "55" | "57" | "58" | "XX")
        ) || self.code == "25006";
        let message = format!("{doing}: {} [SQLSTATE {}]", self.message, self.code);
        if transient {
            Failure::retryable(message)
        } else {
            Failure::permanent(message)
        }
    }
}

/// What the server said about one query, up to its `ReadyForQuery`.
struct Finished {
    tag: Option<String>,
    error: Option<ServerError>,
    /// `ReadyForQuery` said idle (`I`), outside any transaction: ready for the next batch.
    idle: bool,
}

struct Connection<S> {
    stream: S,
    buf: BytesMut,
}

impl<S: Read + Write> Connection<S> {
    /// Logs in on `stream` and, given a table, creates it when missing: what is done once per
    /// connection.
    fn open(stream: S, target: &Target, create: Option<&str>) -> Result<Self, Failure> {
        let mut pg = Connection {
            stream,
            buf: BytesMut::new(),
        };
        pg.startup(target)?;
        if let Some(table) = create {
            if let Err(failure) = pg.create_table(table) {
                pg.terminate();
                return Err(failure);
            }
        }
        Ok(pg)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| io_failure("sending to PostgreSQL", &e))
    }

    fn message(&mut self, doing: &str) -> Result<Message, Failure> {
        loop {
            // `Message::parse` reserves room for the length a header declares before the body is
            // there: a peer that is not PostgreSQL (an HTTP server on the port, say) declares
            // gigabytes, and the reservation would abort the plugin. Judge the length first.
            if let Some(header) = self.buf.get(1..5) {
                let declared = u32::from_be_bytes(header.try_into().expect("four bytes"));
                if declared as usize > MAX_MESSAGE {
                    return Err(Failure::permanent(format!(
                        "{doing}: the server's answer is not the PostgreSQL protocol (a message of {declared} bytes)"
                    )));
                }
            }
            match Message::parse(&mut self.buf) {
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure::permanent(format!(
                        "{doing}: the server's answer is not the PostgreSQL protocol: {e}"
                    )))
                }
            }
            if self.buf.len() > MAX_MESSAGE {
                return Err(Failure::permanent(format!(
                    "{doing}: the answer is too large"
                )));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => Err(io_failure(
                    doing,
                    &io::Error::from(io::ErrorKind::UnexpectedEof),
                )),
                Ok(n) => Ok(n),
                Err(e) => Err(io_failure(doing, &e)),
            }?;
            self.buf.put_slice(&chunk[..n]);
        }
    }

    fn startup(&mut self, target: &Target) -> Result<(), Failure> {
        let mut out = BytesMut::new();
        frontend::startup_message(
            [
                ("user", target.user.as_str()),
                ("database", target.database.as_str()),
                ("application_name", "pushrail"),
                ("client_encoding", "UTF8"),
            ],
            &mut out,
        )
        .permanent("encoding the startup message")?;
        self.send(&out)?;

        const DOING: &str = "logging in";
        let password = || {
            target.password.as_deref().ok_or_else(|| {
                Failure::permanent("the server asks for a password and the credential has none")
            })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let mut out = BytesMut::new();
            match self.message(DOING)? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?.as_bytes(), &mut out)
                        .permanent(DOING)?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(target.user.as_bytes(), password()?.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut out).permanent(DOING)?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut offered = Vec::new();
                    while let Ok(Some(m)) = mechanisms.next() {
                        offered.push(m.to_owned());
                    }
                    if !offered.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(Failure::permanent(format!(
                            "the server offers only SASL mechanisms {offered:?}; SCRAM-SHA-256 without channel binding is supported"
                        )));
                    }
                    let s = ScramSha256::new(password()?.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)
                        .permanent(DOING)?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Failure::permanent("SCRAM continue without a start"))?;
                    s.update(body.data())
                        .map_err(|e| Failure::permanent(format!("SCRAM: {e}")))?;
                    frontend::sasl_response(s.message(), &mut out).permanent(DOING)?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| Failure::permanent("SCRAM final without a start"))?;
                    // Checks the server's signature: it proves the server knows the password too.
                    s.finish(body.data()).map_err(|e| {
                        Failure::permanent(format!("the server failed SCRAM verification: {e}"))
                    })?;
                }
                Message::ErrorResponse(body) => {
                    return Err(ServerError::parse(&body).failure(DOING))
                }
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ParameterStatus(_)
                | Message::BackendKeyData(_)
                | Message::NoticeResponse(_) => {}
                Message::AuthenticationGss
                | Message::AuthenticationKerberosV5
                | Message::AuthenticationSspi
                | Message::AuthenticationScmCredential
                | Message::AuthenticationGssContinue(_) => {
                    return Err(Failure::permanent(
                        "the server asks for GSSAPI/SSPI/Kerberos authentication, which is not supported",
                    ))
                }
                _ => {
                    return Err(Failure::permanent(format!(
                        "{DOING}: unexpected message from the server"
                    )))
                }
            }
            if !out.is_empty() {
                self.send(&out)?;
            }
        }
    }

    /// Reads up to `ReadyForQuery`, returning the command tag and the first error. A connection
    /// that ends before it fails with the server's error when it sent one (a `FATAL` such as an
    /// administrator's shutdown), else with the I/O error.
    fn finish_query(&mut self, doing: &str) -> Result<Finished, Failure> {
        let mut tag = None;
        let mut error: Option<ServerError> = None;
        loop {
            let message = match self.message(doing) {
                Ok(message) => message,
                Err(failure) => {
                    return Err(match error {
                        Some(e) if failure.kind == FailureKind::Retryable => e.failure(doing),
                        _ => failure,
                    })
                }
            };
            match message {
                Message::ReadyForQuery(body) => {
                    return Ok(Finished {
                        tag,
                        error,
                        idle: body.status() == b'I',
                    })
                }
                Message::CommandComplete(body) => {
                    tag = body.tag().ok().map(str::to_owned);
                }
                // The first error is the cause; later ones follow from it.
                Message::ErrorResponse(body) if error.is_none() => {
                    error = Some(ServerError::parse(&body));
                }
                _ => {}
            }
        }
    }

    fn create_table(&mut self, table: &str) -> Result<(), Failure> {
        let mut out = BytesMut::new();
        frontend::query(&create_sql(table), &mut out).permanent("encoding CREATE TABLE")?;
        self.send(&out)?;
        match self.finish_query("creating the table")?.error {
            None => Ok(()),
            // Two deliveries creating it at once: one wins, the other sees a duplicate.
            Some(e) if e.code == "42P07" || e.code == "23505" => Ok(()),
            Some(e) => Err(e.failure("creating the table")),
        }
    }

    /// One `INSERT` of these rows. `Err` when the connection failed (it is dropped); otherwise
    /// the statement's answer, and whether the connection is idle again (it is kept).
    fn insert(
        &mut self,
        table: &str,
        rows: &[&Row],
    ) -> Result<(Result<Delivered, ServerError>, bool), Failure> {
        let values = rows.iter().flat_map(|row| row.iter());
        let sql = insert_sql(table, rows.len());
        let types = PARAM_TYPES.iter().copied().cycle().take(rows.len() * 4);
        let mut out = BytesMut::new();
        frontend::parse("", &sql, types, &mut out).permanent("encoding the INSERT")?;
        frontend::bind(
            "",
            "",
            [0i16], // every parameter in text format
            values,
            |value, buf| {
                buf.put_slice(value);
                Ok(IsNull::No)
            },
            [0i16],
            &mut out,
        )
        .map_err(|_| Failure::permanent("encoding the INSERT's parameters"))?;
        frontend::execute("", 0, &mut out).permanent("encoding the INSERT")?;
        frontend::sync(&mut out);
        self.send(&out)?;
        let finished = self.finish_query("inserting")?;
        let answer = match finished.error {
            Some(e) => Err(e),
            None => {
                // "INSERT 0 <rows>": rows skipped by ON CONFLICT are the ones already there.
                let inserted: usize = finished
                    .tag
                    .as_deref()
                    .and_then(|t| t.rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some(format!(
                        "{inserted} rows inserted into {table}, {} already there",
                        rows.len().saturating_sub(inserted)
                    )),
                })
            }
        };
        Ok((answer, finished.idle))
    }

    fn terminate(&mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.send(&out);
    }
}

export_destination!(Postgres);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    fn config(extra: &str) -> Config {
        serde_json::from_str(&format!(r#"{{"table":"events"{extra}}}"#)).unwrap()
    }

    fn credential(kind: &str, secret: serde_json::Value) -> Credential {
        Credential {
            kind: kind.into(),
            secret: secret.to_string(),
        }
    }

    #[test]
    fn sql_quotes_identifiers_and_numbers_parameters() {
        let table = qualified_table(&config(r#","schema":"Sales""#)).unwrap();
        assert_eq!(table, r#""Sales"."events""#);
        assert_eq!(quote(r#"a"b"#), r#""a""b""#);
        assert_eq!(
            insert_sql("\"t\"", 2),
            "INSERT INTO \"t\" (\"id\", \"type\", \"occurred_at\", \"payload\") VALUES \
             ($1, $2, $3, $4), ($5, $6, $7, $8) ON CONFLICT (\"id\") DO NOTHING"
        );
        assert!(create_sql("\"t\"").contains("\"id\" text PRIMARY KEY"));
        assert_eq!(
            timestamp(1_700_000_000_123).unwrap(),
            "2023-11-14T22:13:20.123Z"
        );
        assert!(!<Postgres as Destination>::validate(&config(r#","schema":"""#)).is_empty());
    }

    #[test]
    fn the_credential_fills_in_the_config() {
        let c = config(r#","host":"db.internal","database":"app""#);
        let t = Target::resolve(
            &c,
            Some(&credential(
                "basic",
                json!({"username": "u", "password": "p"}),
            )),
        )
        .unwrap_or_else(|_| panic!());
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.database.as_str(),
                t.user.as_str()
            ),
            ("db.internal", 5432, "app", "u")
        );

        let dsn = credential(
            "postgres_dsn",
            json!({"dsn": "postgresql://me:pw@10.0.0.5:6432/prod"}),
        );
        let t = Target::resolve(&c, Some(&dsn)).unwrap_or_else(|_| panic!());
        assert_eq!(
            (t.host.as_str(), t.port, t.database.as_str()),
            ("10.0.0.5", 6432, "prod")
        );
        assert_eq!(t.password.as_deref(), Some("pw"));

        let tls = credential(
            "postgres_dsn",
            json!({"dsn": "host=h user=u sslmode=require"}),
        );
        assert!(Target::resolve(&c, Some(&tls)).is_err());
        let bad = credential("postgres_dsn", json!({"dsn": "password='secret"}));
        let e = Target::resolve(&c, Some(&bad)).err().unwrap();
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert!(Target::resolve(&config(""), None).is_err(), "no host");
        let t = Target::resolve(&config(r#","host":"h","user":"postgres""#), None)
            .unwrap_or_else(|_| panic!());
        assert_eq!(
            t.database, "postgres",
            "the database defaults to the user name"
        );
    }

    /// A server that answers from a script, byte stream by byte stream: what it would send,
    /// prepared in advance (the client reads it in order), and what the client sent it.
    struct Scripted {
        answers: io::Cursor<Vec<u8>>,
        sent: Rc<RefCell<Vec<u8>>>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.answers.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn backend(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut message = vec![tag];
        message.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        message.extend_from_slice(body);
        message
    }

    fn logged_in() -> Vec<u8> {
        [
            backend(b'R', &0i32.to_be_bytes()),
            backend(b'S', b"server_version\x0017\x00"),
            backend(b'Z', b"I"),
        ]
        .concat()
    }

    fn complete(tag: &str) -> Vec<u8> {
        [
            backend(b'1', b""),
            backend(b'2', b""),
            backend(b'C', format!("{tag}\x00").as_bytes()),
            backend(b'Z', b"I"),
        ]
        .concat()
    }

    fn error(severity: &str, code: &str, message: &str) -> Vec<u8> {
        let fields = format!("S{severity}\x00V{severity}\x00C{code}\x00M{message}\x00\x00");
        backend(b'E', fields.as_bytes())
    }

    /// A session whose dials take the next script; returns it with what every connection sent
    /// and how many were dialled.
    struct Harness {
        session: Postgres<Scripted>,
        scripts: Vec<Vec<u8>>,
        sent: Vec<Rc<RefCell<Vec<u8>>>>,
    }

    impl Harness {
        fn new(create_table: bool, scripts: Vec<Vec<u8>>) -> Self {
            let target = Target::resolve(&config(r#","host":"db","user":"app""#), None)
                .unwrap_or_else(|_| panic!());
            Self {
                session: Postgres {
                    target,
                    table: "\"events\"".into(),
                    create_table,
                    timeout: Duration::from_secs(1),
                    connection: Warm::new(),
                },
                scripts: scripts.into_iter().rev().collect(),
                sent: Vec::new(),
            }
        }

        fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
            let Self {
                session,
                scripts,
                sent,
            } = self;
            session.deliver_over(
                |_, _| {
                    let log = Rc::new(RefCell::new(Vec::new()));
                    sent.push(log.clone());
                    Ok(Scripted {
                        answers: io::Cursor::new(scripts.pop().expect("a script per dial")),
                        sent: log,
                    })
                },
                events,
            )
        }

        fn sent(&self, connection: usize) -> String {
            String::from_utf8_lossy(&self.sent[connection].borrow()).into_owned()
        }
    }

    fn event(id: &str) -> Event {
        Event {
            id: id.into(),
            event_type: "order.created".into(),
            occurred_at: 1_700_000_000_000,
            payload: br#"{"n":1}"#.to_vec(),
            attributes: Vec::new(),
        }
    }

    #[test]
    fn one_connection_serves_batch_after_batch_and_creates_the_table_once() {
        let mut script = logged_in();
        script.extend(backend(b'C', b"CREATE TABLE\x00"));
        script.extend(backend(b'Z', b"I"));
        for _ in 0..3 {
            script.extend(complete("INSERT 0 2"));
        }
        let mut pg = Harness::new(true, vec![script]);
        for n in 0..3 {
            let results = pg.deliver(&[event(&format!("a{n}")), event(&format!("b{n}"))]);
            assert_eq!(results.len(), 2);
            for result in results {
                let delivered = result.unwrap_or_else(|f| panic!("{}", f.message));
                assert_eq!(
                    delivered.response_excerpt.as_deref(),
                    Some("2 rows inserted into \"events\", 0 already there")
                );
            }
        }
        assert_eq!(pg.sent.len(), 1, "one connection");
        let sent = pg.sent(0);
        assert_eq!(sent.matches("CREATE TABLE IF NOT EXISTS").count(), 1);
        assert_eq!(sent.matches("INSERT INTO").count(), 3);
        assert!(sent.contains("a2") && sent.contains("b2"));

        drop(pg.session);
        let sent = pg.sent[0].borrow();
        assert_eq!(&sent[sent.len() - 5..], b"X\0\0\0\x04", "Terminate on drop");
    }

    #[test]
    fn a_peer_that_is_not_postgresql_is_a_clear_failure_not_a_crash() {
        // An HTTP server on the port: its "HTTP/1.1 ..." reads as a header declaring about 1.4 GB.
        let script = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".to_vec();
        let mut pg = Harness::new(false, vec![script]);
        let failed = pg.deliver(&[event("a")]);
        let failure = failed[0].as_ref().err().unwrap();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert!(
            failure.message.contains("not the PostgreSQL protocol"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn a_server_error_fails_the_batch_and_keeps_the_connection() {
        let script = [
            logged_in(),
            error("ERROR", "42P01", "relation \"events\" does not exist"),
            backend(b'Z', b"I"),
            complete("INSERT 0 1"),
        ]
        .concat();
        let mut pg = Harness::new(false, vec![script]);
        let failed = pg.deliver(&[event("a"), event("b")]);
        for result in &failed {
            let failure = result.as_ref().err().unwrap();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert!(failure.message.contains("42P01"), "{}", failure.message);
        }
        assert!(pg.session.connection.is_connected());
        assert!(pg.deliver(&[event("c")])[0].is_ok());
        assert_eq!(pg.sent.len(), 1, "the connection was kept");
        assert!(!pg.sent(0).contains("CREATE TABLE"), "create_table is off");
    }

    #[test]
    fn a_table_dropped_under_a_kept_connection_is_created_again() {
        let created = [backend(b'C', b"CREATE TABLE\x00"), backend(b'Z', b"I")].concat();
        let script = [
            logged_in(),
            created.clone(),
            complete("INSERT 0 1"),
            error("ERROR", "42P01", "relation \"events\" does not exist"),
            backend(b'Z', b"I"),
            created,
            complete("INSERT 0 1"),
        ]
        .concat();
        let mut pg = Harness::new(true, vec![script]);
        assert!(pg.deliver(&[event("a")])[0].is_ok());
        let results = pg.deliver(&[event("b")]);
        assert!(
            results[0].is_ok(),
            "{:?}",
            results[0].as_ref().err().map(|f| &f.message)
        );
        assert_eq!(pg.sent.len(), 1);
        assert_eq!(pg.sent(0).matches("CREATE TABLE IF NOT EXISTS").count(), 2);
    }

    #[test]
    fn a_connection_closed_between_batches_is_dialled_again() {
        let first = [
            logged_in(),
            complete("INSERT 0 1"),
            // Closed while idle: what a server shutting down sends before it hangs up.
            error(
                "FATAL",
                "57P01",
                "terminating connection due to administrator command",
            ),
        ]
        .concat();
        let second = [logged_in(), complete("INSERT 0 1")].concat();
        let mut pg = Harness::new(false, vec![first, second]);
        assert!(pg.deliver(&[event("a")])[0].is_ok());
        let results = pg.deliver(&[event("b")]);
        assert!(
            results[0].is_ok(),
            "{:?}",
            results[0].as_ref().err().map(|f| &f.message)
        );
        assert_eq!(pg.sent.len(), 2, "dialled once more");
        assert!(pg.sent(1).contains("INSERT INTO"));
    }

    #[test]
    fn a_broken_connection_is_dropped_and_the_batch_is_retryable() {
        // Fresh connection, no answer to the INSERT: nothing to repeat on, the batch fails.
        let mut pg = Harness::new(false, vec![logged_in()]);
        let results = pg.deliver(&[event("a"), event("b")]);
        for result in results {
            let failure = result.err().unwrap();
            assert_eq!(failure.kind, FailureKind::Retryable);
            assert!(
                failure.message.contains("closed the connection"),
                "{}",
                failure.message
            );
        }
        assert!(!pg.session.connection.is_connected());
    }

    #[test]
    fn a_refused_login_fails_every_event_and_keeps_nothing() {
        let script = error(
            "FATAL",
            "28P01",
            "password authentication failed for user \"app\"",
        );
        let mut pg = Harness::new(true, vec![script]);
        for result in pg.deliver(&[event("a"), event("b")]) {
            let failure = result.err().unwrap();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert!(failure.message.contains("28P01"), "{}", failure.message);
        }
        assert!(!pg.session.connection.is_connected());
    }

    #[test]
    fn an_event_that_cannot_be_a_row_fails_alone() {
        let mut pg = Harness::new(false, vec![[logged_in(), complete("INSERT 0 1")].concat()]);
        let mut bad = event("bad");
        bad.payload = vec![0xff, 0xfe];
        let results = pg.deliver(&[bad, event("good")]);
        assert_eq!(
            results[0].as_ref().err().unwrap().kind,
            FailureKind::Permanent
        );
        assert!(results[1].is_ok());
        let sent = pg.sent(0);
        assert!(sent.contains("good") && !sent.contains("bad"));
        assert!(sent.contains("($1, $2, $3, $4) ON CONFLICT"), "one row");
    }

    #[test]
    fn sqlstates_are_classified() {
        use pushrail_plugin_sdk::FailureKind::{Permanent, Retryable};
        for (code, kind) in [
            ("28P01", Permanent),
            ("28000", Permanent),
            ("3D000", Permanent),
            ("42P01", Permanent),
            ("42501", Permanent),
            ("22P02", Permanent),
            ("53300", Retryable),
            ("57P03", Retryable),
            ("40001", Retryable),
            ("08006", Retryable),
            ("25006", Retryable),
        ] {
            let e = ServerError {
                code: code.into(),
                message: "m".into(),
            };
            assert_eq!(e.failure("x").kind, kind, "{code}");
        }
    }
}

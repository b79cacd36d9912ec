//! The `postgres` destination: one `INSERT … ON CONFLICT (id) DO NOTHING` per batch.
//!
//! One connection per batch: startup, authentication (SCRAM-SHA-256, MD5 or cleartext, whatever
//! the server asks for), optionally `CREATE TABLE IF NOT EXISTS`, then a single multi-row `INSERT`
//! through the extended query protocol with every value as a typed parameter. The event id is the
//! primary key, so a batch sent again inserts nothing twice. Messages are encoded and decoded,
//! and SCRAM computed, with `postgres-protocol`.

mod dsn;

use std::io::Write;
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
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Type oids of the parameters: text, text, timestamptz, jsonb.
const PARAM_TYPES: [u32; 4] = [25, 25, 1184, 3802];
/// Backend messages larger than this are refused (the answers here are small).
const MAX_MESSAGE: usize = 1024 * 1024;

struct Postgres;

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
                "timeout_ms": {
                    "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000
                }
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
                    errors.push(FieldError {
                        field: name.into(),
                        message,
                    });
                }
            }
        }
        errors
    }

    fn deliver(
        config: Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult {
        let target = Target::resolve(&config, credential.as_ref())?;
        let table = qualified_table(&config).map_err(Failure::permanent)?;
        let timeout = Duration::from_millis(config.timeout_ms.clamp(1000, 60_000));
        let mut stream = TcpStream::connect_timeout(&target.host, target.port, false, timeout)?;
        stream.set_read_timeout(Some(timeout));
        let mut pg = Connection {
            stream,
            buf: BytesMut::new(),
        };
        pg.startup(&target)?;
        if config.create_table {
            pg.create_table(&table)?;
        }
        let result = pg.insert(&table, &events);
        pg.terminate();
        result
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

struct Connection {
    stream: TcpStream,
    buf: BytesMut,
}

impl Connection {
    fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| io_failure("sending to PostgreSQL", &e))
    }

    fn message(&mut self, doing: &str) -> Result<Message, Failure> {
        loop {
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
            let n = self.stream.read_chunk(doing, &mut chunk)?;
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

    /// Reads up to `ReadyForQuery`, returning the command tag and the first error.
    fn finish_query(
        &mut self,
        doing: &str,
    ) -> Result<(Option<String>, Option<ServerError>), Failure> {
        let mut tag = None;
        let mut error = None;
        loop {
            match self.message(doing)? {
                Message::ReadyForQuery(_) => return Ok((tag, error)),
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
        match self.finish_query("creating the table")? {
            (_, None) => Ok(()),
            // Two deliveries creating it at once: one wins, the other sees a duplicate.
            (_, Some(e)) if e.code == "42P07" || e.code == "23505" => Ok(()),
            (_, Some(e)) => Err(e.failure("creating the table")),
        }
    }

    fn insert(&mut self, table: &str, events: &[Event]) -> DeliveryResult {
        let mut values: Vec<Vec<u8>> = Vec::with_capacity(events.len() * 4);
        for event in events {
            std::str::from_utf8(&event.payload).permanent("event payload is not UTF-8 JSON")?;
            values.push(event.id.as_bytes().to_vec());
            values.push(event.event_type.as_bytes().to_vec());
            values.push(timestamp(event.occurred_at)?.into_bytes());
            values.push(event.payload.clone());
        }
        let sql = insert_sql(table, events.len());
        let types = PARAM_TYPES.iter().copied().cycle().take(values.len());
        let mut out = BytesMut::new();
        frontend::parse("", &sql, types, &mut out).permanent("encoding the INSERT")?;
        frontend::bind(
            "",
            "",
            [0i16], // every parameter in text format
            values.iter(),
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
        match self.finish_query("inserting")? {
            (_, Some(e)) => Err(e.failure("inserting")),
            (tag, None) => {
                // "INSERT 0 <rows>": rows skipped by ON CONFLICT are the ones already there.
                let inserted: usize = tag
                    .as_deref()
                    .and_then(|t| t.rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok(Delivered {
                    status_code: None,
                    response_excerpt: Some(format!(
                        "{inserted} rows inserted into {table}, {} already there",
                        events.len().saturating_sub(inserted)
                    )),
                })
            }
        }
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
        assert!(!Postgres::validate(&config(r#","schema":"""#)).is_empty());
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

//! libpq connection strings, the two forms a `postgres_dsn` credential may hold:
//! `postgresql://user:password@host:port/dbname?sslmode=...` and
//! `host=... port=... dbname=... user=... password='...' sslmode=...`.
//!
//! Only the parameters a single plaintext connection uses are kept; the rest are ignored, as libpq
//! ignores options that do not apply.

use std::fmt;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dsn {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub sslmode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnError(pub String);

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the connection string is not valid: {}", self.0)
    }
}

pub fn parse(text: &str) -> Result<Dsn, DsnError> {
    let text = text.trim();
    if let Some(rest) = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
    {
        parse_uri(rest)
    } else {
        parse_key_values(text)
    }
}

fn set(dsn: &mut Dsn, key: &str, value: String) -> Result<(), DsnError> {
    match key {
        "host" | "hostaddr" => dsn.host = Some(value),
        "port" => {
            dsn.port = Some(
                value
                    .parse()
                    .map_err(|_| DsnError(format!("port {value:?} is not a port number")))?,
            )
        }
        "dbname" => dsn.dbname = Some(value),
        "user" => dsn.user = Some(value),
        "password" => dsn.password = Some(value),
        "sslmode" => dsn.sslmode = Some(value),
        _ => {}
    }
    Ok(())
}

fn parse_key_values(text: &str) -> Result<Dsn, DsnError> {
    let mut dsn = Dsn::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(dsn);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(DsnError(format!("{key:?} is not followed by =")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(DsnError("a quoted value is not closed".into())),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(DsnError("a quoted value is not closed".into())),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        set(&mut dsn, &key, value)?;
    }
}

fn parse_uri(rest: &str) -> Result<Dsn, DsnError> {
    let mut dsn = Dsn::default();
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (rest, None),
    };
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                dsn.user = Some(decode(user)?);
            }
            if let Some(password) = password {
                dsn.password = Some(decode(password)?);
            }
            host_port
        }
        None => authority,
    };
    if !host_port.is_empty() {
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            // [IPv6]:port
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| DsnError("an IPv6 address is not closed with ]".into()))?;
            (host, after.strip_prefix(':'))
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if !host.is_empty() {
            dsn.host = Some(decode(host)?);
        }
        if let Some(port) = port.filter(|p| !p.is_empty()) {
            set(&mut dsn, "port", decode(port)?)?;
        }
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        dsn.dbname = Some(decode(path)?);
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        set(&mut dsn, &decode(key)?, decode(value)?)?;
    }
    Ok(dsn)
}

/// Percent-decoding, as URIs carry user names and passwords.
fn decode(text: &str) -> Result<String, DsnError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| DsnError("a % is not followed by two hex digits".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DsnError("a percent-encoded part is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    /// Examples from the libpq documentation (section 34.1.1), plus escapes.
    #[test]
    fn uris() {
        assert_eq!(parse("postgresql://").unwrap(), Dsn::default());
        assert_eq!(
            parse("postgresql://localhost").unwrap().host,
            some("localhost")
        );
        let dsn = parse("postgresql://localhost:5433").unwrap();
        assert_eq!((dsn.host, dsn.port), (some("localhost"), Some(5433)));
        assert_eq!(
            parse("postgresql://localhost/mydb").unwrap().dbname,
            some("mydb")
        );
        let dsn = parse("postgresql://user@localhost").unwrap();
        assert_eq!(dsn.user, some("user"));
        let dsn = parse("postgresql://user:secret@localhost").unwrap();
        assert_eq!(dsn.password, some("secret"));
        let dsn =
            parse("postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp")
                .unwrap();
        assert_eq!((dsn.user, dsn.dbname), (some("other"), some("otherdb")));
        let dsn = parse("postgres://u%40x:p%3Aw%2Fd@[2001:db8::1]:6543/d?sslmode=require").unwrap();
        assert_eq!(dsn.user, some("u@x"));
        assert_eq!(dsn.password, some("p:w/d"));
        assert_eq!(dsn.host, some("2001:db8::1"));
        assert_eq!(dsn.port, Some(6543));
        assert_eq!(dsn.sslmode, some("require"));
        assert!(parse("postgresql://h:notaport/").is_err());
        assert!(parse("postgresql://u:%zz@h/").is_err());
    }

    #[test]
    fn key_values() {
        let dsn = parse("host=localhost port=5432 dbname=mydb connect_timeout=10").unwrap();
        assert_eq!(dsn.host, some("localhost"));
        assert_eq!(dsn.port, Some(5432));
        assert_eq!(dsn.dbname, some("mydb"));
        let dsn = parse(r"user = bob password='it\'s a secret' sslmode=disable").unwrap();
        assert_eq!(dsn.user, some("bob"));
        assert_eq!(dsn.password, some("it's a secret"));
        assert_eq!(dsn.sslmode, some("disable"));
        assert_eq!(parse("password=''").unwrap().password, some(""));
        assert!(parse("host").is_err());
        assert!(parse("password='open").is_err());
    }
}

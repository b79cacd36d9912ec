//! Templates for values taken from each event: a message group id, a partition key, an object
//! key, a detail type. Text with placeholders:
//!
//! - `{{event.id}}`, `{{event.type}}`;
//! - `{{payload.<dotted.path>}}`: a value of the JSON payload (a number segment indexes an
//!   array); a string as is, any other value as compact JSON; missing or `null` is an error;
//! - `{{time.year}}`, `{{time.month}}`, `{{time.day}}`, `{{time.hour}}`: the event time in UTC,
//!   zero-padded (`2026`, `03`, `07`, `09`).
//!
//! Spaces inside the braces are allowed (`{{ event.id }}`). A template is parsed once (in
//! `validate` and when the session opens) and rendered for each event.

use std::fmt;

use serde_json::Value;

use crate::Event;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    EventId,
    EventType,
    Payload(Vec<String>),
    Time(TimePart),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimePart {
    Year,
    Month,
    Day,
    Hour,
}

/// A template that does not parse, or a value an event does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl Template {
    /// Parses `text`; an unknown placeholder or an unclosed `{{` is an error.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| Error(format!("unclosed {{{{ at {:?}", &rest[start..])))?;
            parts.push(placeholder(after[..end].trim())?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Whether rendering reads the payload.
    pub fn uses_payload(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Payload(_)))
    }

    /// Renders the template for `event`, parsing its payload if a placeholder needs it.
    pub fn render(&self, event: &Event) -> Result<String, Error> {
        if self.uses_payload() {
            let payload: Value = serde_json::from_slice(&event.payload)
                .map_err(|_| Error("the event payload is not JSON".to_owned()))?;
            self.render_with_payload(event, &payload)
        } else {
            self.render_with_payload(event, &Value::Null)
        }
    }

    /// Renders the template for `event` whose payload the caller already parsed.
    pub fn render_with_payload(&self, event: &Event, payload: &Value) -> Result<String, Error> {
        let mut out = String::new();
        let mut time = None;
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::EventId => out.push_str(&event.id),
                Part::EventType => out.push_str(&event.event_type),
                Part::Payload(path) => out.push_str(&lookup(payload, path)?),
                Part::Time(which) => {
                    let time = match time {
                        Some(time) => time,
                        None => *time.insert(utc(event.occurred_at)?),
                    };
                    let text = match which {
                        TimePart::Year => format!("{:04}", time.year()),
                        TimePart::Month => format!("{:02}", u8::from(time.month())),
                        TimePart::Day => format!("{:02}", time.day()),
                        TimePart::Hour => format!("{:02}", time.hour()),
                    };
                    out.push_str(&text);
                }
            }
        }
        Ok(out)
    }
}

impl std::str::FromStr for Template {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

fn placeholder(name: &str) -> Result<Part, Error> {
    Ok(match name {
        "event.id" => Part::EventId,
        "event.type" => Part::EventType,
        "time.year" => Part::Time(TimePart::Year),
        "time.month" => Part::Time(TimePart::Month),
        "time.day" => Part::Time(TimePart::Day),
        "time.hour" => Part::Time(TimePart::Hour),
        _ => match name.strip_prefix("payload.") {
            Some(path) if !path.is_empty() && path.split('.').all(|s| !s.is_empty()) => {
                Part::Payload(path.split('.').map(str::to_owned).collect())
            }
            _ => {
                return Err(Error(format!(
                    "unknown placeholder {{{{{name}}}}} (use event.id, event.type, \
                     payload.<path>, time.year, time.month, time.day or time.hour)"
                )))
            }
        },
    })
}

fn lookup(payload: &Value, path: &[String]) -> Result<String, Error> {
    let mut value = payload;
    for segment in path {
        value = match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }
        .ok_or_else(|| Error(format!("the payload has no {}", path.join("."))))?;
    }
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Null => Err(Error(format!("payload.{} is null", path.join(".")))),
        other => Ok(other.to_string()),
    }
}

fn utc(ms: u64) -> Result<time::OffsetDateTime, Error> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| Error("the event time is out of range".to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(payload: Value) -> Event {
        Event {
            id: "evt_1".to_owned(),
            event_type: "order.created".to_owned(),
            // 2026-03-07T09:05:00.250Z
            occurred_at: 1_772_874_300_250,
            payload: payload.to_string().into_bytes(),
            attributes: Vec::new(),
        }
    }

    fn render(template: &str, payload: Value) -> Result<String, Error> {
        Template::parse(template)?.render(&event(payload))
    }

    #[test]
    fn renders_event_fields_and_text() {
        assert_eq!(
            render("{{event.type}}", json!({})).unwrap(),
            "order.created"
        );
        assert_eq!(
            render("a/{{ event.id }}-{{event.type}}/z", json!({})).unwrap(),
            "a/evt_1-order.created/z"
        );
        assert_eq!(render("plain", json!({})).unwrap(), "plain");
        assert_eq!(render("", json!({})).unwrap(), "");
        // A lone brace is text.
        assert_eq!(render("{x}", json!({})).unwrap(), "{x}");
    }

    #[test]
    fn renders_payload_paths() {
        let payload = json!({
            "customer": { "id": "c_9", "n": 42, "tags": ["a", "b"], "flag": true, "obj": {"k": 1} },
            "gone": null
        });
        assert_eq!(
            render("{{payload.customer.id}}", payload.clone()).unwrap(),
            "c_9"
        );
        assert_eq!(
            render("{{payload.customer.n}}", payload.clone()).unwrap(),
            "42"
        );
        assert_eq!(
            render("{{payload.customer.tags.1}}", payload.clone()).unwrap(),
            "b"
        );
        assert_eq!(
            render("{{payload.customer.flag}}", payload.clone()).unwrap(),
            "true"
        );
        assert_eq!(
            render("{{payload.customer.obj}}", payload.clone()).unwrap(),
            r#"{"k":1}"#
        );
        assert!(render("{{payload.customer.missing}}", payload.clone())
            .unwrap_err()
            .0
            .contains("customer.missing"));
        assert!(render("{{payload.gone}}", payload.clone()).is_err());
        assert!(render("{{payload.customer.id.x}}", payload).is_err());
        // A payload that is not JSON fails only templates that read it.
        let mut bad = event(json!({}));
        bad.payload = b"not json".to_vec();
        assert!(Template::parse("{{payload.a}}")
            .unwrap()
            .render(&bad)
            .is_err());
        assert_eq!(
            Template::parse("{{event.id}}")
                .unwrap()
                .render(&bad)
                .unwrap(),
            "evt_1"
        );
    }

    #[test]
    fn renders_the_event_time_in_utc() {
        assert_eq!(
            render(
                "{{time.year}}/{{time.month}}/{{time.day}}/{{time.hour}}",
                json!({})
            )
            .unwrap(),
            "2026/03/07/09"
        );
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in [
            "{{event.idx}}",
            "{{payload}}",
            "{{payload.}}",
            "{{payload.a..b}}",
            "{{time.minute}}",
            "{{event.id",
            "x {{ }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert!(Template::parse("{{payload.a}}").unwrap().uses_payload());
        assert!(!Template::parse("{{event.id}}").unwrap().uses_payload());
    }
}

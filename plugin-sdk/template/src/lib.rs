//! A destination that POSTs each batch as NDJSON to an HTTP endpoint, with a bearer token.
//!
//! Everything a plugin does is here: describe the type (id, names, JSON Schemas the embed UI
//! renders forms from), validate what the schema cannot say, open a session for one
//! destination (the host keeps it warm between batches), and deliver a batch, telling the host
//! for each event whether it was delivered or whether a failure is worth retrying.

use std::time::Duration;

use pushrail_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where batches are POSTed.
    url: String,
}

pub struct MyDestination {
    url: String,
    token: String,
}

impl Destination for MyDestination {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new("my_destination", "My destination", "POSTs each batch as NDJSON")
            .config_schema(json!({
                "type": "object",
                "required": ["url"],
                "additionalProperties": false,
                "properties": {
                    "url": { "type": "string", "format": "uri", "title": "Endpoint URL", "examples": ["https://example.com/ingest"] }
                }
            }))
            .credentials(&["bearer"], json!({
                "type": "object",
                "required": ["token"],
                "properties": { "token": { "type": "string", "title": "API token" } }
            }), true)
            .max_batch_size(500)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        match http::Request::post(&config.url) {
            Ok(_) => Vec::new(),
            Err(e) => vec![FieldError::new("url", e.message)],
        }
    }

    /// Runs once per destination; the host keeps the session for the batches that follow.
    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let credential =
            credential.ok_or_else(|| Failure::permanent("a bearer token is required"))?;
        let secret: pushrail_plugin_sdk::credential::kinds::Token = credential.secret()?;
        Ok(Self {
            url: config.url,
            token: secret.token,
        })
    }

    /// One request for the whole batch, so every event shares its answer.
    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        all(events, self.post(events))
    }
}

impl MyDestination {
    fn post(&self, events: &[Event]) -> DeliveryResult {
        let body = ndjson(events)?;
        http::Request::post(&self.url)?
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/x-ndjson")
            // The batch's first event id makes retries of the same batch recognisable downstream.
            .header("idempotency-key", &events[0].id)
            .timeout(Duration::from_secs(10))
            .body(body)
            .send()?
            .into_result()
    }
}

/// One JSON line per event: `{"id", "type", "occurred_at", "data"}`.
pub fn ndjson(events: &[Event]) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    for event in events {
        let data: serde_json::Value =
            serde_json::from_slice(&event.payload).permanent("payload is not JSON")?;
        let line = json!({ "id": event.id, "type": event.event_type, "occurred_at": event.occurred_at, "data": data });
        serde_json::to_writer(&mut out, &line).permanent("encoding")?;
        out.push(b'\n');
    }
    Ok(out)
}

export_destination!(MyDestination);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_event() {
        let event = |id: &str| Event {
            id: id.into(),
            event_type: "order.created".into(),
            occurred_at: 1,
            payload: br#"{"n":1}"#.to_vec(),
            attributes: Vec::new(),
        };
        let body = ndjson(&[event("a"), event("b")]).unwrap();
        let lines: Vec<serde_json::Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["id"], "b");
        assert_eq!(lines[0]["data"]["n"], 1);
    }
}

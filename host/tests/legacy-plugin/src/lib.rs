//! A plugin of the 0.1.0 era: one `deliver` per batch, one answer for the batch. It writes each
//! event as `<id> <type>\n` to the TCP peer of its config (`"host:port"`), through the host's
//! `net` interface, so a test can read what was delivered.

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "destination",
    generate_all,
});

use exports::pushrail::destination::plugin::Guest;
use pushrail::destination::net::{self, ConnectOptions};
use pushrail::destination::types::{
    Delivered, DeliveryRequest, DestinationType, Failure, FailureKind, FieldError,
};

struct Legacy;

fn failure(kind: FailureKind, message: String) -> Failure {
    Failure {
        kind,
        message,
        status_code: None,
        retry_after_ms: None,
        response_excerpt: None,
    }
}

/// `"host:port"` from the config's `peer` field.
fn peer(config: &str) -> Option<(String, u16)> {
    let start = config.find("\"peer\"")?;
    let rest = &config[start + 6..];
    let open = rest.find('"')? + 1;
    let close = open + rest[open..].find('"')?;
    let (host, port) = rest[open..close].rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

impl Guest for Legacy {
    fn describe() -> DestinationType {
        DestinationType {
            id: "legacy".into(),
            name: "Legacy (WIT 0.1.0)".into(),
            description: "Writes event ids to a TCP peer; built against pushrail:destination@0.1.0"
                .into(),
            config_schema:
                r#"{"type":"object","required":["peer"],"properties":{"peer":{"type":"string"}}}"#
                    .into(),
            credential_schema: None,
            credential_kinds: Vec::new(),
            credential_required: false,
            max_batch_size: 50,
        }
    }

    fn validate(config: String) -> Vec<FieldError> {
        match peer(&config) {
            Some(_) => Vec::new(),
            None => vec![FieldError {
                field: "peer".into(),
                message: "expected host:port".into(),
            }],
        }
    }

    fn deliver(request: DeliveryRequest) -> Result<Delivered, Failure> {
        let (host, port) = peer(&request.config)
            .ok_or_else(|| failure(FailureKind::Permanent, "no peer".into()))?;
        let options = ConnectOptions {
            tls: false,
            timeout_ms: Some(5000),
        };
        let (_input, output) = net::connect(&host, port, options)
            .map_err(|e| failure(FailureKind::Retryable, format!("connect: {e:?}")))?;
        let mut text = String::new();
        for event in &request.events {
            text.push_str(&format!("{} {}\n", event.id, event.event_type));
        }
        output
            .blocking_write_and_flush(text.as_bytes())
            .map_err(|e| failure(FailureKind::Retryable, format!("write: {e:?}")))?;
        Ok(Delivered {
            status_code: None,
            response_excerpt: Some(format!("wrote {} events", request.events.len())),
        })
    }
}

export!(Legacy);

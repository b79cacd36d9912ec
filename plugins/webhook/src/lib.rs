//! The `webhook` destination: one HTTPS POST per event, signed with the Standard Webhooks scheme.
//! A batch's requests go out concurrently (at most `max_in_flight` at once), each event with its
//! own signature, `webhook-id` (the receiver's idempotency key) and outcome.

mod signature;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::settings;
use serde::Deserialize;
use serde_json::json;

use crate::signature::{Signer, SignerError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_max_in_flight")]
    max_in_flight: u32,
}

/// Requests of one destination in flight at once, unless its config says otherwise.
fn default_max_in_flight() -> u32 {
    16
}

/// Headers the plugin sets itself; a custom header must not override them.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "authorization",
];

struct Webhook {
    config: Config,
    auth: Auth,
}

impl Destination for Webhook {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "webhook",
            "Webhook",
            "HTTPS POST of each event, signed with the Standard Webhooks scheme",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["url"],
            "additionalProperties": false,
            "properties": {
                "url": {
                    "type": "string", "title": "Endpoint URL", "format": "uri",
                    "pattern": "^https?://", "maxLength": 2048,
                    "description": "Where events are POSTed."
                },
                "headers": {
                    "type": "object", "title": "Custom headers",
                    "additionalProperties": { "type": "string", "maxLength": 4096 },
                    "maxProperties": 32
                },
                "timeout_ms": settings::timeout_schema(),
                "max_in_flight": {
                    "type": "integer", "title": "Requests in flight",
                    "description": "How many of this endpoint's events are sent at once.",
                    "minimum": 1, "maximum": 64, "default": 16
                }
            }
        }))
        .credentials(
            &["webhook_secret", "basic", "bearer"],
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "secret": {
                        "type": "string", "title": "Signing secret", "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$",
                        "description": "whsec_ followed by base64; generated when left out."
                    }
                }
            }),
            false,
        )
        // One event per request is what Standard Webhooks receivers expect; a batch is a set of
        // requests sent concurrently.
        .max_batch_size(100)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(e) = http::Request::post(&config.url) {
            errors.push(FieldError::new("url", e.message));
        }
        for name in config.headers.keys() {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                errors.push(FieldError::new(
                    format!("headers.{name}"),
                    "this header is set by Pushrail",
                ));
            } else if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                errors.push(FieldError::new(
                    format!("headers.{name}"),
                    "not a valid header name",
                ));
            }
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let auth = Auth::from_credential(credential.as_ref())?;
        Ok(Self { config, auth })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let requests = events
            .iter()
            .map(|event| request(&self.config, &self.auth, event))
            .collect::<Vec<_>>();
        let mut results: Vec<Option<DeliveryResult>> = Vec::with_capacity(events.len());
        let mut to_send = Vec::new();
        for request in requests {
            match request {
                Ok(request) => {
                    results.push(None);
                    to_send.push(Ok(request));
                }
                Err(failure) => results.push(Some(Err(failure))),
            }
        }
        let mut answers =
            http::send_all(to_send, self.config.max_in_flight.clamp(1, 64) as usize).into_iter();
        results
            .into_iter()
            .map(|result| match result {
                Some(failure) => failure,
                None => match answers.next() {
                    Some(Ok(response)) => response.into_result(),
                    Some(Err(error)) => Err(error.into()),
                    None => Err(Failure::retryable("the request was not sent")),
                },
            })
            .collect()
    }
}

enum Auth {
    None,
    Sign(Signer),
    Header(String),
}

impl Auth {
    fn from_credential(credential: Option<&Credential>) -> Result<Self, Failure> {
        let Some(credential) = credential else {
            return Ok(Self::None);
        };
        let secret: serde_json::Value =
            serde_json::from_str(&credential.secret).permanent("credential is not valid JSON")?;
        let text = |key: &str| {
            secret[key]
                .as_str()
                .ok_or_else(|| Failure::permanent(format!("credential has no {key}")))
        };
        Ok(match credential.kind.as_str() {
            "webhook_secret" => Self::Sign(Signer::new(text("secret")?).map_err(|e| match e {
                SignerError::Format => Failure::permanent("signing secret is not whsec_<base64>"),
            })?),
            "bearer" => Self::Header(format!("Bearer {}", text("token")?)),
            "basic" => {
                use base64::Engine as _;
                let pair = format!("{}:{}", text("username")?, text("password")?);
                Self::Header(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            other => {
                return Err(Failure::permanent(format!(
                    "credential kind {other} is not supported"
                )))
            }
        })
    }
}

/// The signed request for one event.
fn request(config: &Config, auth: &Auth, event: &Event) -> Result<http::Request, Failure> {
    let occurred_at = time::OffsetDateTime::UNIX_EPOCH + Duration::from_millis(event.occurred_at);
    let occurred_at = occurred_at
        .format(&time::format_description::well_known::Rfc3339)
        .permanent("event time out of range")?;
    let data: serde_json::Value =
        serde_json::from_slice(&event.payload).permanent("event payload is not JSON")?;
    let body = serde_json::to_vec(&json!({
        "type": event.event_type,
        "timestamp": occurred_at,
        "data": data,
    }))
    .permanent("encoding the body")?;

    let mut request = http::Request::post(&config.url)?
        .timeout(settings::timeout(config.timeout_ms))
        .header("webhook-id", &event.id);
    for (name, value) in &config.headers {
        request = request.header(name, value);
    }
    match auth {
        Auth::None => {}
        Auth::Sign(signer) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            request = request
                .header("webhook-timestamp", now.to_string())
                .header("webhook-signature", signer.sign(&event.id, now, &body));
        }
        Auth::Header(value) => request = request.header("authorization", value),
    }
    Ok(request.json_body(body))
}

export_destination!(Webhook);

//! The `webhook` destination: one HTTPS POST per event, signed with the Standard Webhooks scheme.

mod signature;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushrail_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::signature::{Signer, SignerError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
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

struct Webhook;

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
                "timeout_ms": {
                    "type": "integer", "title": "Timeout (ms)",
                    "minimum": 1000, "maximum": 60000, "default": 10000
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
        // One event per request is what Standard Webhooks receivers expect.
        .max_batch_size(1)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(e) = http::Request::post(&config.url) {
            errors.push(field("url", &e.message));
        }
        for name in config.headers.keys() {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                errors.push(field(
                    &format!("headers.{name}"),
                    "this header is set by Pushrail",
                ));
            } else if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                errors.push(field(&format!("headers.{name}"), "not a valid header name"));
            }
        }
        errors
    }

    fn deliver(
        config: Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult {
        let auth = Auth::from_credential(credential.as_ref())?;
        let mut delivered = Delivered::default();
        for event in events {
            delivered = post(&config, &auth, &event)?;
        }
        Ok(delivered)
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

fn post(config: &Config, auth: &Auth, event: &Event) -> DeliveryResult {
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
        .timeout(Duration::from_millis(config.timeout_ms.clamp(1000, 60_000)))
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
    request.json_body(body).send()?.into_result()
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.to_owned(),
    }
}

export_destination!(Webhook);

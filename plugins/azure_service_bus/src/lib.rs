//! The `azure_service_bus` destination: each batch goes to one Azure Service Bus queue or topic
//! with the REST API's Send Message Batch (`POST {namespace}/{entity}/messages`, a JSON array of
//! messages), authorized by a shared access signature the SDK's Azure layer signs from the
//! `azure_sas_key` credential (the policy's name and key) and the session keeps for about an
//! hour. Each message's body is the event record `{"id", "type", "occurred_at", "payload"}`, its
//! `MessageId` the event id (so an entity with duplicate detection on drops a retried copy), and
//! the custom properties `pushrail-event-id` and `pushrail-event-type` carry the id and type.
//!
//! Service Bus takes or refuses a batch request as a whole, so a batch is cut into requests of at
//! most 100 messages and [`MAX_REQUEST_BYTES`], and a message larger than that goes alone: a
//! refusal then fails the events of its own request only.

use std::time::Duration;

use pushrail_plugin_sdk::azure::service_bus;
use pushrail_plugin_sdk::azure::ServiceBusSas;
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::{batch, record, settings};
use serde::Deserialize;
use serde_json::json;

/// Messages in one Send Message Batch.
const MAX_MESSAGES: usize = 100;
/// Bytes of one request's JSON body. A standard-tier namespace takes 256 KiB per batch (and per
/// message) counted as the messages' bodies, properties and the broker's own headers; the JSON
/// sent is never smaller than the bodies and properties it carries (escaping only adds), and
/// 16 KiB is left for the headers the broker adds to each message.
const MAX_REQUEST_BYTES: usize = 240 * 1024;
/// Service Bus's limit on a `MessageId`, in characters.
const MAX_MESSAGE_ID_CHARS: usize = 128;
/// The content type of a Send Message Batch, without parameters (Service Bus refuses a charset).
const BATCH_CONTENT_TYPE: &str = "application/vnd.microsoft.servicebus.json";
/// Longest text of Service Bus's kept in a failure's message (the body excerpt has the rest).
const MAX_DETAIL_CHARS: usize = 300;

const PROPERTY_EVENT_ID: &str = "pushrail-event-id";
const PROPERTY_EVENT_TYPE: &str = "pushrail-event-type";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    namespace: String,
    entity: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: where messages go and the SAS signer with its kept token. Service
/// Bus's REST API is plain HTTPS through the host, so there is no connection to keep.
struct AzureServiceBus {
    /// The entity's URL, `{base}/{entity}`: the token's resource URI too.
    entity_url: String,
    sas: ServiceBusSas,
    timeout: Duration,
}

impl Destination for AzureServiceBus {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "azure_service_bus",
            "Azure Service Bus",
            "Sends each event as a message to a Service Bus queue or topic (REST Send Message Batch), authorized by a SAS token signed from a shared access policy; MessageId = the event id, for duplicate detection",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["namespace", "entity"],
            "additionalProperties": false,
            "properties": {
                "namespace": {
                    "type": "string", "title": "Namespace",
                    "pattern": "^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$",
                    "minLength": 6, "maxLength": 50,
                    "description": "The Service Bus namespace's name, e.g. acme-events for acme-events.servicebus.windows.net (not the host name or a connection string)."
                },
                "entity": {
                    "type": "string", "title": "Queue or topic",
                    "pattern": "^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
                    "minLength": 1, "maxLength": 260,
                    "description": "The name of the queue or topic the messages go to, e.g. orders. It must exist; turn on duplicate detection on it to have retried events dropped by MessageId."
                },
                "endpoint": {
                    "type": "string", "title": "Endpoint", "format": "uri",
                    "pattern": "^https?://", "maxLength": 2048,
                    "description": "The namespace's base URL, for local peers and private endpoints. Default: https://<namespace>.servicebus.windows.net."
                },
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(
            &[service_bus::SAS_KEY_KIND],
            service_bus::credential_schema(),
            true,
        )
        .max_batch_size(MAX_MESSAGES as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = check_namespace(&config.namespace) {
            errors.push(FieldError::new("namespace", message));
        }
        if let Err(message) = check_entity(&config.entity) {
            errors.push(FieldError::new("entity", message));
        }
        if let Some(endpoint) = &config.endpoint {
            if let Err(message) = parse_endpoint(endpoint) {
                errors.push(FieldError::new("endpoint", message));
            }
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        check_namespace(&config.namespace)
            .map_err(|m| Failure::permanent(format!("namespace {m}")))?;
        check_entity(&config.entity).map_err(|m| Failure::permanent(format!("entity {m}")))?;
        let base = match &config.endpoint {
            Some(endpoint) => {
                parse_endpoint(endpoint).map_err(|m| Failure::permanent(format!("endpoint {m}")))?
            }
            None => format!("https://{}.servicebus.windows.net", config.namespace),
        };
        let entity_url = format!("{base}/{}", config.entity);
        let sas = ServiceBusSas::from_credential(credential.as_ref(), &entity_url)?;
        Ok(Self {
            entity_url,
            sas,
            timeout: settings::timeout(config.timeout_ms),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let token = self.sas.token();
        let mut plan = self.plan(events, &token);
        let requests: Vec<_> = plan
            .requests
            .iter_mut()
            .map(|planned| {
                std::mem::replace(
                    &mut planned.request,
                    Err(http::Error::retryable("already sent")),
                )
            })
            .collect();
        let in_flight = requests.len();
        let answers = http::send_all(requests, in_flight);
        // A refused token is not kept: the next batch signs a new one.
        if answers
            .iter()
            .any(|answer| matches!(answer, Ok(response) if response.status == 401))
        {
            self.sas.forget();
        }
        plan.finish(answers, |response, count| self.read_answer(response, count))
    }
}

/// A namespace's name: 6 to 50 letters, digits and hyphens, starting with a letter and ending
/// with a letter or digit, and not ending in `-sb` or `-mgmt` (Azure's rules).
fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.contains('.') || namespace.contains("://") || namespace.contains(';') {
        return Err(
            "must be the namespace's name only, e.g. acme-events (not its host name, a URL or a connection string)"
                .to_owned(),
        );
    }
    if !(6..=50).contains(&namespace.len()) {
        return Err("must be 6 to 50 characters".to_owned());
    }
    if !namespace
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("may only have letters, digits and -".to_owned());
    }
    if !namespace.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("must start with a letter".to_owned());
    }
    if !namespace.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must end with a letter or digit".to_owned());
    }
    let lower = namespace.to_ascii_lowercase();
    if lower.ends_with("-sb") || lower.ends_with("-mgmt") {
        return Err("must not end with -sb or -mgmt".to_owned());
    }
    Ok(())
}

/// A queue's or topic's name: 1 to 260 letters, digits, `.`, `-`, `_` and `/`, not starting or
/// ending with `/` and without an empty segment (`//`), so it stands in the URL as it is.
fn check_entity(entity: &str) -> Result<(), String> {
    if entity.contains("://") {
        return Err("must be the queue's or topic's name, not a URL".to_owned());
    }
    if entity.is_empty() || entity.len() > 260 {
        return Err("must be 1 to 260 characters".to_owned());
    }
    if !entity
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
    {
        return Err("may only have letters, digits, ., -, _ and /".to_owned());
    }
    if entity.starts_with('/') || entity.ends_with('/') {
        return Err("must not start or end with /".to_owned());
    }
    if entity
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("must not have an empty, . or .. segment".to_owned());
    }
    Ok(())
}

/// The namespace's base URL from `endpoint`, without a trailing `/`, or why it is not one.
fn parse_endpoint(endpoint: &str) -> Result<String, String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".to_owned());
    }
    if url.host_str().is_none() {
        return Err("must have a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must be a base URL, without a query or fragment".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// One event as a message of a Send Message Batch: its JSON, ready to join the array.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    json: String,
}

impl Message {
    /// Its bytes in the request: the JSON and the `,` after it.
    fn size(&self) -> usize {
        self.json.len() + 1
    }
}

impl AzureServiceBus {
    /// The message of `event`, or why it cannot be one (then it fails alone, unsent).
    fn message(event: &Event) -> Result<Message, Failure> {
        if event.id.chars().count() > MAX_MESSAGE_ID_CHARS {
            return Err(Failure::permanent(format!(
                "the event id is longer than Service Bus's {MAX_MESSAGE_ID_CHARS} characters for a MessageId"
            )));
        }
        let record = record::event_record(event)?;
        let body = serde_json::to_string(&record)
            .map_err(|e| Failure::permanent(format!("encoding the message: {e}")))?;
        let message = json!({
            "Body": body,
            "BrokerProperties": {
                "MessageId": event.id,
                "ContentType": "application/json",
            },
            "UserProperties": {
                PROPERTY_EVENT_ID: event.id,
                PROPERTY_EVENT_TYPE: event.event_type,
            },
        });
        Ok(Message {
            json: message.to_string(),
        })
    }

    /// The batch's Send Message Batch requests, each authorized with `token`.
    fn plan(&self, events: &[Event], token: &str) -> batch::Plan {
        let messages = events.iter().map(Self::message).collect();
        batch::Plan::new(
            messages,
            Message::size,
            MAX_MESSAGES,
            MAX_REQUEST_BYTES,
            |messages| self.request(messages, token),
        )
    }

    fn request(&self, messages: &[Message], token: &str) -> Result<http::Request, http::Error> {
        let body = batch::json_array("[", messages.iter().map(|m| m.json.as_str()), "]");
        Ok(
            http::Request::post(&format!("{}/messages", self.entity_url))?
                .timeout(self.timeout)
                .header("content-type", BATCH_CONTENT_TYPE)
                .header("authorization", token)
                .body(body),
        )
    }

    /// Each message's outcome from the answer to a Send Message Batch of `count` messages: the
    /// request is taken or refused as a whole.
    fn read_answer(&self, response: &http::Response, count: usize) -> Vec<DeliveryResult> {
        if response.is_success() {
            let delivered = Delivered {
                status_code: Some(response.status),
                response_excerpt: Some(format!(
                    "sent to {} in a batch of {count} messages",
                    self.entity_url
                )),
            };
            return vec![Ok(delivered); count];
        }
        let mut failure = failure(response);
        failure
            .message
            .push_str(&format!("; send to {}", self.entity_url));
        vec![Err(failure); count]
    }
}

/// The failure for a Service Bus answer that is not a success: its `<Detail>` (shortened, any
/// signature removed), the status, and whether to retry.
///
/// Per "Send Message Batch": 400 bad request, 401 authorization failure (a wrong key, an
/// expired token, a policy without the Send claim), 403 quota exceeded or message too large,
/// 404/410 no such queue or topic, 413 too large, 500 internal error; Service Bus also answers
/// 503 when busy and 429 when throttling. Retryable: 408, 429, 5xx, and a 403 that says the
/// quota is exceeded (the entity is full until consumers drain it); the rest are permanent.
fn failure(response: &http::Response) -> Failure {
    let detail = error_detail(&response.body);
    let is_retryable = match response.status {
        408 | 429 => true,
        status if status >= 500 => true,
        403 => detail
            .as_deref()
            .is_some_and(|d| d.to_ascii_lowercase().contains("quota")),
        _ => false,
    };
    let text = match &detail {
        Some(detail) => format!("{detail} (HTTP {})", response.status),
        None => match response.status {
            401 => "HTTP 401: the SAS token was refused".to_owned(),
            404 | 410 => format!(
                "HTTP {}: the queue or topic does not exist",
                response.status
            ),
            status => format!("HTTP {status}"),
        },
    };
    let failure = if is_retryable {
        Failure::retryable(text).with_retry_after_ms(response.retry_after_ms())
    } else {
        Failure::permanent(text)
    };
    failure
        .with_status(response.status)
        .with_excerpt(response.excerpt().map(|e| scrub(&e)))
}

/// The text of Service Bus's XML error (`<Error><Code>401</Code><Detail>…</Detail></Error>`):
/// the `<Detail>` up to its `TrackingId` (a request id for Microsoft's support, kept in the
/// excerpt), shortened and without any signature.
fn error_detail(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let text = xml_element(body, "Detail").or_else(|| xml_element(body, "Message"))?;
    let text = match text.find("TrackingId:") {
        Some(at) => &text[..at],
        None => &text,
    };
    let text = text.trim().trim_end_matches([',', ' ']).trim();
    if text.is_empty() {
        return None;
    }
    let text = scrub(text);
    Some(if text.chars().count() > MAX_DETAIL_CHARS {
        let mut short: String = text.chars().take(MAX_DETAIL_CHARS).collect();
        short.push('…');
        short
    } else {
        text
    })
}

/// `text` with the value of any `sig=` (a token's signature) replaced.
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sig=") {
        out.push_str(&rest[..at + 4]);
        out.push_str("(hidden)");
        rest = &rest[at + 4..];
        let end = rest
            .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '<')
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The text of the first `<name>` element, entities decoded. Service Bus's errors are flat, so
/// no parser is needed.
fn xml_element(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

export_destination!(AzureServiceBus);

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:5300";
    const KEY: &str = "Zm9vYmFyYmF6cXV4K3Rlc3Qva2V5PT1wdXNocmFpbA==";

    fn config(entity: &str) -> Config {
        Config {
            namespace: "pushrail-test".to_owned(),
            entity: entity.to_owned(),
            endpoint: Some(ENDPOINT.to_owned()),
            timeout_ms: 5000,
        }
    }

    fn credential() -> Credential {
        Credential {
            kind: "azure_sas_key".to_owned(),
            secret: json!({ "key_name": "send", "key": KEY }).to_string(),
        }
    }

    fn open(entity: &str) -> AzureServiceBus {
        AzureServiceBus::open(config(entity), Some(credential())).unwrap()
    }

    fn body_of(request: &http::Request) -> Value {
        serde_json::from_slice(request.body_bytes()).unwrap()
    }

    #[test]
    fn builds_a_send_message_batch() {
        let mut bus = open("orders");
        let token = bus.sas.token_at(1_772_874_300);
        let plan = bus.plan(
            &[
                event("evt_1", json!({ "a": 1, "s": "Zoë ☕" })),
                event("evt_2", json!([])),
            ],
            &token,
        );
        assert_eq!(plan.requests.len(), 1);
        assert!(plan.results.iter().all(Option::is_none));
        let request = plan.requests[0].request.as_ref().unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.url(), "http://127.0.0.1:5300/orders/messages");
        assert_eq!(
            request.header_value("content-type"),
            Some("application/vnd.microsoft.servicebus.json")
        );
        assert_eq!(request.header_value("authorization"), Some(token.as_str()));
        assert!(token
            .starts_with("SharedAccessSignature sr=http%3A%2F%2F127.0.0.1%3A5300%2Forders&sig="));
        assert!(token.ends_with("&se=1772877900&skn=send"), "{token}");
        assert_eq!(
            body_of(request),
            json!([
                {
                    "Body": r#"{"id":"evt_1","occurred_at":"2026-03-07T09:05:00.25Z","payload":{"a":1,"s":"Zoë ☕"},"type":"order.created"}"#,
                    "BrokerProperties": { "MessageId": "evt_1", "ContentType": "application/json" },
                    "UserProperties": { "pushrail-event-id": "evt_1", "pushrail-event-type": "order.created" }
                },
                {
                    "Body": r#"{"id":"evt_2","occurred_at":"2026-03-07T09:05:00.25Z","payload":[],"type":"order.created"}"#,
                    "BrokerProperties": { "MessageId": "evt_2", "ContentType": "application/json" },
                    "UserProperties": { "pushrail-event-id": "evt_2", "pushrail-event-type": "order.created" }
                }
            ])
        );
    }

    #[test]
    fn signs_for_the_entity_and_keeps_the_token() {
        let mut config = config("orders/eu");
        config.endpoint = None;
        let mut bus = AzureServiceBus::open(config, Some(credential())).unwrap();
        assert_eq!(
            bus.entity_url,
            "https://pushrail-test.servicebus.windows.net/orders/eu"
        );
        let token = bus.sas.token();
        assert!(token.starts_with(
            "SharedAccessSignature sr=https%3A%2F%2Fpushrail-test.servicebus.windows.net%2Forders%2Feu&sig="
        ));
        let plan = bus.plan(&[event("evt_1", json!({}))], &token);
        assert_eq!(
            plan.requests[0].request.as_ref().unwrap().url(),
            "https://pushrail-test.servicebus.windows.net/orders/eu/messages"
        );
        // The session keeps its token between batches.
        assert_eq!(bus.sas.token(), token);
        let text = format!("{:?}", bus.sas);
        assert!(!text.contains("Zm9v") && !text.contains("sig="), "{text}");
        // An endpoint with a trailing slash.
        let mut config = self::config("orders");
        config.endpoint = Some("http://127.0.0.1:5300/".to_owned());
        let bus = AzureServiceBus::open(config, Some(credential())).unwrap();
        assert_eq!(bus.entity_url, "http://127.0.0.1:5300/orders");
    }

    #[test]
    fn events_that_cannot_be_messages_fail_alone() {
        let bus = open("orders");
        let mut not_json = event("evt_2", json!({}));
        not_json.payload = b"{nope".to_vec();
        let long_id = event(&"x".repeat(129), json!({}));
        let plan = bus.plan(&[event("evt_1", json!({})), not_json, long_id], "t");
        assert_eq!(
            plan.results[1].clone().unwrap().unwrap_err().message,
            "the event payload is not JSON"
        );
        let long = plan.results[2].clone().unwrap().unwrap_err();
        assert_eq!(long.kind, FailureKind::Permanent);
        assert!(long.message.contains("MessageId"), "{}", long.message);
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0]);
    }

    #[test]
    fn large_batches_are_split_and_a_large_message_goes_alone() {
        let bus = open("orders");
        let big = "x".repeat(100 * 1024);
        let events: Vec<Event> = (0..5)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect();
        let plan = bus.plan(&events, "t");
        let groups: Vec<Vec<usize>> = plan.requests.iter().map(|r| r.events.clone()).collect();
        assert_eq!(groups, [vec![0, 1], vec![2, 3], vec![4]]);
        for planned in &plan.requests {
            let request = planned.request.as_ref().unwrap();
            assert!(request.body_bytes().len() <= MAX_REQUEST_BYTES);
            assert!(body_of(request).is_array());
        }
        // One message over the limit: alone, between the others.
        let huge = "y".repeat(300 * 1024);
        let plan = bus.plan(
            &[
                event("evt_0", json!({})),
                event("evt_1", json!({ "huge": huge })),
                event("evt_2", json!({})),
            ],
            "t",
        );
        let groups: Vec<Vec<usize>> = plan.requests.iter().map(|r| r.events.clone()).collect();
        assert_eq!(groups, [vec![0], vec![1], vec![2]]);
        // By count: 100 messages per request.
        let many: Vec<Event> = (0..150)
            .map(|i| event(&format!("evt_{i}"), json!({})))
            .collect();
        let plan = bus.plan(&many, "t");
        let counts: Vec<usize> = plan.requests.iter().map(|r| r.events.len()).collect();
        assert_eq!(counts, [100, 50]);
        // Escaped characters count as sent: the record's `"` is `\"` in the body text.
        let quoted = AzureServiceBus::message(&event("evt_q", json!({ "q": "\"\"" }))).unwrap();
        assert!(quoted.json.contains(r#"\\\"\\\""#), "{}", quoted.json);
        assert_eq!(quoted.size(), quoted.json.len() + 1);
    }

    #[test]
    fn answers_each_request_as_a_whole() {
        let big = "x".repeat(200 * 1024);
        let bus = open("orders");
        let plan = bus.plan(
            &[
                event("evt_0", json!({ "big": big })),
                event("evt_1", json!({})),
                event("evt_2", json!({ "big": big })),
            ],
            "t",
        );
        assert_eq!(plan.requests.len(), 2);
        let results = plan.finish(
            vec![
                Ok(response(201, &[], "")),
                Ok(response(
                    413,
                    &[],
                    "<Error><Code>413</Code><Detail>The request entity is too large. TrackingId:abc, SystemTracker:x, Timestamp:2026</Detail></Error>",
                )),
            ],
            |r, n| bus.read_answer(r, n),
        );
        for ok in &results[..2] {
            let delivered = ok.clone().unwrap();
            assert_eq!(delivered.status_code, Some(201));
            assert_eq!(
                delivered.response_excerpt.as_deref(),
                Some("sent to http://127.0.0.1:5300/orders in a batch of 2 messages")
            );
        }
        let refused = results[2].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert_eq!(
            refused.message,
            "The request entity is too large. (HTTP 413); send to http://127.0.0.1:5300/orders"
        );
    }

    #[test]
    fn reads_and_classifies_service_bus_errors() {
        let error = |status: u16, detail: &str| {
            failure(&response(
                status,
                &[("retry-after", "3")],
                &format!("<Error><Code>{status}</Code><Detail>{detail}</Detail></Error>"),
            ))
        };
        let wrong_key = error(
            401,
            "InvalidSignature: The token has an invalid signature. TrackingId:0b1e, SystemTracker:pushrail-test.servicebus.windows.net:orders/messages, Timestamp:2026-03-07T09:05:00",
        );
        assert_eq!(wrong_key.kind, FailureKind::Permanent);
        assert_eq!(
            wrong_key.message,
            "InvalidSignature: The token has an invalid signature. (HTTP 401)"
        );
        assert_eq!(wrong_key.status_code, Some(401));
        assert!(wrong_key
            .response_excerpt
            .as_deref()
            .unwrap()
            .contains("TrackingId:0b1e"));
        for (status, detail) in [
            (401, "ExpiredToken: The token is expired."),
            (
                401,
                "Unauthorized access. 'Send' claim(s) are required to perform this operation.",
            ),
            (400, "The request is malformed."),
            (
                403,
                "The message size exceeds the limit (MessageSizeExceeded).",
            ),
            (
                404,
                "The messaging entity 'sb://ns/orders' could not be found.",
            ),
            (410, "The queue or topic does not exist."),
        ] {
            let failure = error(status, detail);
            assert_eq!(failure.kind, FailureKind::Permanent, "{status} {detail}");
            assert_eq!(failure.retry_after_ms, None);
            assert_eq!(failure.message, format!("{detail} (HTTP {status})"));
        }
        for (status, detail) in [
            (
                403,
                "QuotaExceeded: The maximum entity size has been reached.",
            ),
            (429, "Throttled."),
            (500, "Internal error."),
            (503, "ServerBusy: The server is busy."),
        ] {
            let failure = error(status, detail);
            assert_eq!(failure.kind, FailureKind::Retryable, "{status} {detail}");
            assert_eq!(failure.retry_after_ms, Some(3000));
        }
        // Without a body.
        let failure = super::failure(&response(401, &[], ""));
        assert_eq!(failure.message, "HTTP 401: the SAS token was refused");
        assert_eq!(failure.kind, FailureKind::Permanent);
        let failure = super::failure(&response(410, &[], ""));
        assert_eq!(
            failure.message,
            "HTTP 410: the queue or topic does not exist"
        );
        let failure = super::failure(&response(502, &[], "<html>bad gateway</html>"));
        assert_eq!(failure.message, "HTTP 502");
        assert_eq!(failure.kind, FailureKind::Retryable);
        // A signature is never repeated, whether in the detail or the excerpt.
        let echo = error(
            401,
            "InvalidAudience: token SharedAccessSignature sr=x&sig=abc%2Bdef&se=1&skn=send is not valid",
        );
        assert!(!echo.message.contains("abc%2Bdef"), "{}", echo.message);
        assert!(
            echo.message.contains("sig=(hidden)&se=1"),
            "{}",
            echo.message
        );
        assert!(!echo.response_excerpt.unwrap().contains("abc%2Bdef"));
        // A long detail is shortened.
        let long = error(400, &"d".repeat(400));
        assert!(long.message.starts_with(&"d".repeat(300)));
        assert!(long.message.contains("… (HTTP 400)"));
    }

    #[test]
    fn a_refused_token_is_signed_again_for_the_next_batch() {
        let mut bus = open("orders");
        let first = bus.sas.token_at(1_772_874_300);
        assert_eq!(bus.sas.token_at(1_772_874_301), first);
        // What deliver does after a 401.
        bus.sas.forget();
        assert_ne!(bus.sas.token_at(1_772_874_301), first);
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            AzureServiceBus::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config("orders")).is_empty());
        for good in [
            "a",
            "orders.v1",
            "orders_eu-2",
            "topics/orders",
            &"q".repeat(260),
        ] {
            assert_eq!(check_entity(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/orders",
            "orders/",
            "a//b",
            "a/../b",
            "orders?x",
            "ord ers",
            "sb://ns.servicebus.windows.net/orders",
            &"q".repeat(261),
        ] {
            assert!(check_entity(bad).is_err(), "{bad}");
        }
        for good in ["acme-events", "Acme01", &format!("a{}", "b".repeat(49))] {
            assert_eq!(check_namespace(good), Ok(()), "{good}");
        }
        for bad in [
            "acme",
            "1acme-events",
            "acme-events-",
            "acme_events",
            "acme-events.servicebus.windows.net",
            "sb://acme-events",
            "acme-events-sb",
            "acme-mgmt",
            &format!("a{}", "b".repeat(50)),
        ] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
        let mut bad = config("/orders");
        bad.namespace = "acme".to_owned();
        bad.endpoint = Some("127.0.0.1:5300".to_owned());
        assert_eq!(fields(&bad), ["namespace", "entity", "endpoint"]);
        for endpoint in ["ftp://h", "http://h/?x=1", "http://u:p@h"] {
            let mut bad = config("orders");
            bad.endpoint = Some(endpoint.to_owned());
            assert_eq!(fields(&bad), ["endpoint"], "{endpoint}");
        }
    }

    #[test]
    fn reads_the_config_json_and_opens() {
        let config: Config =
            serde_json::from_str(r#"{"namespace":"acme-events","entity":"orders"}"#).unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert!(config.endpoint.is_none());
        for bad in [
            r#"{"namespace":"acme-events","entity":"orders","queue":"x"}"#,
            r#"{"entity":"orders"}"#,
        ] {
            assert!(serde_json::from_str::<Config>(bad).is_err(), "{bad}");
        }
        let bus = AzureServiceBus::open(config, Some(credential())).unwrap();
        assert_eq!(bus.timeout, Duration::from_secs(10));
        assert!(AzureServiceBus::open(self::config("orders"), None).is_err());
        let wrong_kind = Credential {
            kind: "azure_shared_key".to_owned(),
            secret: json!({ "account_name": "a", "account_key": KEY }).to_string(),
        };
        let failure = AzureServiceBus::open(self::config("orders"), Some(wrong_kind))
            .err()
            .unwrap();
        assert!(failure.message.contains("expected azure_sas_key"));
        let mut bad = self::config("orders");
        bad.namespace = "x".to_owned();
        assert!(AzureServiceBus::open(bad, Some(credential())).is_err());
    }

    #[test]
    fn describes_itself() {
        let text = format!("{:?}", AzureServiceBus::info());
        for word in [
            "azure_service_bus",
            "azure_sas_key",
            "namespace",
            "entity",
            "max_batch_size: 100",
        ] {
            assert!(text.contains(word), "{word}");
        }
    }
}

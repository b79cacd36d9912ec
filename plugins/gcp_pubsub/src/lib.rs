//! The `gcp_pubsub` destination: each event becomes one Pub/Sub message, published with
//! `topics.publish` (`POST /v1/projects/{project}/topics/{topic}:publish`) in requests of up to
//! 1,000 messages and 9 MiB. The message's data is the event record `{"id", "type",
//! "occurred_at", "payload"}`; the attributes `pushrail-event-id` and `pushrail-event-type` carry
//! the id and type; an optional template gives each message an ordering key. A publish request is
//! accepted or refused as a whole, so its events share its outcome; events of other requests in the
//! batch keep theirs. Requests carry an OAuth 2.0 access token of the service account (the SDK's
//! Google layer: JWT-bearer flow, token kept in the session).

use std::time::Duration;

use base64::Engine as _;
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{batch, gcp, record, settings};
use serde::Deserialize;
use serde_json::{json, Value};

/// Messages per publish request: Pub/Sub's limit.
const MAX_MESSAGES: usize = 1000;
/// Bytes of messages per request: Pub/Sub refuses requests over 10 MB; this leaves room for the
/// request's envelope.
const MAX_REQUEST_BYTES: usize = 9 * 1024 * 1024;
/// Pub/Sub's limit on an ordering key, in bytes.
const MAX_ORDERING_KEY_BYTES: usize = 1024;
/// The API's endpoint.
const DEFAULT_ENDPOINT: &str = "https://pubsub.googleapis.com";
const ATTRIBUTE_EVENT_ID: &str = "pushrail-event-id";
const ATTRIBUTE_EVENT_TYPE: &str = "pushrail-event-type";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    project_id: String,
    topic: String,
    #[serde(default)]
    ordering_key: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the topic's publish URL, the ordering key's template and the
/// service account's access (its token is kept between batches until shortly before it expires).
struct PubSub {
    /// `projects/{project}/topics/{topic}`, as Pub/Sub names a topic.
    topic: String,
    url: String,
    ordering_key: Option<Template>,
    auth: gcp::Auth,
    timeout: Duration,
}

impl Destination for PubSub {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "gcp_pubsub",
            "Google Cloud Pub/Sub",
            "Publishes each event as a Pub/Sub message (the record as data, attributes pushrail-event-id and pushrail-event-type, an optional ordering key). The service account needs the Pub/Sub Publisher role (roles/pubsub.publisher) on the topic.",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["project_id", "topic"],
            "additionalProperties": false,
            "properties": {
                "project_id": {
                    "type": "string", "title": "Project", "minLength": 1, "maxLength": 100,
                    "description": "The project that holds the topic, e.g. acme-prod."
                },
                "topic": {
                    "type": "string", "title": "Topic", "minLength": 3, "maxLength": 255,
                    "pattern": "^[A-Za-z][A-Za-z0-9._~+%-]*$",
                    "description": "The topic's name, e.g. orders (not projects/…/topics/…)."
                },
                "ordering_key": {
                    "type": "string", "title": "Ordering key", "minLength": 1, "maxLength": MAX_ORDERING_KEY_BYTES,
                    "description": "Optional template of each message's ordering key ({{event.type}}, {{event.id}}, {{payload.a.b}}), e.g. {{payload.customer_id}}. Subscribers with message ordering on get the messages of one key in order. Leave empty for none."
                },
                "endpoint": gcp::endpoint_schema(
                    "The Pub/Sub API's base URL, for local peers, private and regional endpoints. Default: https://pubsub.googleapis.com. The token endpoint is the key file's token_uri."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(gcp::CREDENTIAL_KINDS, gcp::credential_schema(), true)
        .max_batch_size(MAX_MESSAGES as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = gcp::check_project_id(&config.project_id) {
            errors.push(FieldError::new("project_id", message));
        }
        if let Err(message) = check_topic(&config.topic) {
            errors.push(FieldError::new("topic", message));
        }
        if let Some(Err(message)) = config.ordering_key.as_deref().map(ordering_template) {
            errors.push(FieldError::new("ordering_key", message));
        }
        errors.extend(gcp::validate_endpoint(config.endpoint.as_deref()));
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let account = gcp::ServiceAccount::from_credential(credential.as_ref())?;
        gcp::check_project_id(&config.project_id)
            .map_err(|m| Failure::permanent(format!("project_id {m}")))?;
        check_topic(&config.topic).map_err(|m| Failure::permanent(format!("topic {m}")))?;
        let ordering_key = config
            .ordering_key
            .as_deref()
            .map(ordering_template)
            .transpose()
            .map_err(|m| Failure::permanent(format!("ordering_key {m}")))?;
        let endpoint = gcp::base_url(config.endpoint.as_deref(), DEFAULT_ENDPOINT)?;
        let url = format!(
            "{endpoint}/v1/projects/{}/topics/{}:publish",
            gcp::path_segment(&config.project_id),
            gcp::path_segment(&config.topic)
        );
        let timeout = settings::timeout(config.timeout_ms);
        Ok(Self {
            topic: format!("projects/{}/topics/{}", config.project_id, config.topic),
            url,
            ordering_key,
            auth: gcp::Auth::new(account, gcp::scopes::PUBSUB, timeout),
            timeout,
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let plan = self.plan(events);
        let topic = &self.topic;
        self.auth
            .send_plan(plan, |response, count| read_answer(topic, response, count))
    }
}

/// Pub/Sub's rules for a topic's name: 3 to 255 characters of letters, digits and `- _ . ~ + %`,
/// starting with a letter, not starting with `goog`.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.starts_with("projects/") {
        return Err("must be the topic's name, not its full path projects/…/topics/…".to_owned());
    }
    if !(3..=255).contains(&topic.len()) {
        return Err(format!("must be 3 to 255 characters, not {}", topic.len()));
    }
    if !topic.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("must start with a letter".to_owned());
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b))
    {
        return Err("may only have letters, digits and - _ . ~ + %".to_owned());
    }
    if topic.to_ascii_lowercase().starts_with("goog") {
        return Err("must not start with goog, which Pub/Sub reserves".to_owned());
    }
    Ok(())
}

fn ordering_template(text: &str) -> Result<Template, String> {
    if text.is_empty() {
        return Err("must not be empty (leave it out for no ordering key)".to_owned());
    }
    Template::parse(text).map_err(|e| e.0)
}

/// One event as a `PubsubMessage`, serialized.
struct Message {
    json: String,
}

impl Message {
    fn size(&self) -> usize {
        self.json.len()
    }
}

impl PubSub {
    /// The message of `event`: the record (base64, as the JSON API carries `data`), the id and
    /// type attributes, and the ordering key rendered for the event.
    fn message(&self, event: &Event) -> Result<Message, Failure> {
        let payload: Value = serde_json::from_slice(&event.payload)
            .map_err(|_| Failure::permanent("the event payload is not JSON"))?;
        let mut message = json!({
            "attributes": {
                ATTRIBUTE_EVENT_ID: event.id,
                ATTRIBUTE_EVENT_TYPE: event.event_type,
            },
        });
        if let Some(template) = &self.ordering_key {
            let key = template
                .render_with_payload(event, &payload)
                .map_err(|e| Failure::permanent(format!("ordering_key: {e}")))?;
            if key.is_empty() {
                return Err(Failure::permanent(
                    "ordering_key: renders empty for this event",
                ));
            }
            if key.len() > MAX_ORDERING_KEY_BYTES {
                return Err(Failure::permanent(format!(
                    "ordering_key: renders {} bytes, over Pub/Sub's limit of {MAX_ORDERING_KEY_BYTES}",
                    key.len()
                )));
            }
            message["orderingKey"] = json!(key);
        }
        let record = record::event_record_with_payload(event, payload)?;
        let data = serde_json::to_vec(&record)
            .map_err(|e| Failure::permanent(format!("encoding the message: {e}")))?;
        message["data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
        Ok(Message {
            json: message.to_string(),
        })
    }

    /// The batch's publish requests; each request's events are in message order.
    fn plan(&self, events: &[Event]) -> batch::Plan {
        let messages = events.iter().map(|e| self.message(e)).collect();
        batch::Plan::new(
            messages,
            Message::size,
            MAX_MESSAGES,
            MAX_REQUEST_BYTES,
            |messages| self.request(messages),
        )
    }

    /// The publish of `messages` (the bearer token is added when it is sent).
    fn request(&self, messages: &[Message]) -> Result<http::Request, http::Error> {
        let body = batch::json_array(
            r#"{"messages":["#,
            messages.iter().map(|message| message.json.as_str()),
            "]}",
        );
        Ok(http::Request::post(&self.url)?
            .timeout(self.timeout)
            .header("content-type", "application/json; charset=UTF-8")
            .body(body))
    }
}

#[derive(Deserialize)]
struct PublishAnswer {
    #[serde(rename = "messageIds", default)]
    message_ids: Vec<String>,
}

/// Each message's outcome from the answer to a publish of `count` messages: the message ids, in
/// order, or Google's error for all of them.
fn read_answer(topic: &str, response: &http::Response, count: usize) -> Vec<DeliveryResult> {
    let answer: PublishAnswer =
        match gcp::read_json(response, &format!("publish {topic}"), "a publish result") {
            Ok(answer) => answer,
            Err(failure) => return vec![Err(failure); count],
        };
    (0..count)
        .map(|i| match answer.message_ids.get(i) {
            Some(id) => Ok(Delivered {
                status_code: Some(response.status),
                response_excerpt: Some(format!("messageId {id} on {topic}")),
            }),
            None => Err(Failure::retryable(format!(
                "Pub/Sub answered {} message ids for {count} messages",
                answer.message_ids.len()
            ))
            .with_status(response.status)),
        })
        .collect()
}

export_destination!(PubSub);

#[cfg(test)]
mod tests {
    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:9060";
    const PRIVATE_KEY: &str = include_str!("../../../plugin-sdk/testdata/gcp-test-key.pem");

    fn config(ordering_key: Option<&str>) -> Config {
        Config {
            project_id: "acme-prod".to_owned(),
            topic: "orders".to_owned(),
            ordering_key: ordering_key.map(str::to_owned),
            endpoint: Some(ENDPOINT.to_owned()),
            timeout_ms: 5000,
        }
    }

    fn credential() -> Credential {
        Credential {
            kind: "gcp_service_account".to_owned(),
            secret: json!({
                "type": "service_account",
                "project_id": "acme-prod",
                "private_key_id": "0123456789abcdef",
                "private_key": PRIVATE_KEY,
                "client_email": "pushrail@acme-prod.iam.gserviceaccount.com",
                "token_uri": "http://127.0.0.1:9061/token"
            })
            .to_string(),
        }
    }

    fn open(ordering_key: Option<&str>) -> PubSub {
        PubSub::open(config(ordering_key), Some(credential())).unwrap()
    }

    fn body(plan: &batch::Plan, i: usize) -> Value {
        let request = plan.requests[i].request.as_ref().unwrap();
        serde_json::from_slice(request.body_bytes()).unwrap()
    }

    fn data(message: &Value) -> Value {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(message["data"].as_str().unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_batch_is_one_publish_with_the_record_and_attributes() {
        let pubsub = open(None);
        let plan = pubsub.plan(&[
            event("evt_1", json!({ "a": 1, "s": "Zoë ☕" })),
            event("evt_2", json!([1, "two"])),
        ]);
        assert_eq!(plan.requests.len(), 1);
        let request = plan.requests[0].request.as_ref().unwrap();
        assert_eq!(
            request.url(),
            format!("{ENDPOINT}/v1/projects/acme-prod/topics/orders:publish")
        );
        let body = body(&plan, 0);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            data(&messages[0]),
            json!({ "id": "evt_1", "type": "order.created",
                    "occurred_at": "2026-03-07T09:05:00.25Z", "payload": { "a": 1, "s": "Zoë ☕" } })
        );
        assert_eq!(
            messages[1]["attributes"],
            json!({ "pushrail-event-id": "evt_2", "pushrail-event-type": "order.created" })
        );
        assert!(messages[0].get("orderingKey").is_none());
    }

    #[test]
    fn the_ordering_key_is_rendered_per_event_and_a_bad_one_fails_alone() {
        let pubsub = open(Some("{{payload.customer}}"));
        let mut not_json = event("evt_4", json!({}));
        not_json.payload = b"{nope".to_vec();
        let plan = pubsub.plan(&[
            event("evt_1", json!({ "customer": "c-1" })),
            event("evt_2", json!({ "other": 1 })),
            event("evt_3", json!({ "customer": "k".repeat(1025) })),
            not_json,
            event("evt_5", json!({ "customer": "c-2" })),
        ]);
        assert_eq!(plan.requests[0].events, [0, 4]);
        let body = body(&plan, 0);
        assert_eq!(body["messages"][0]["orderingKey"], "c-1");
        assert_eq!(body["messages"][1]["orderingKey"], "c-2");
        let failed = |i: usize| plan.results[i].clone().unwrap().unwrap_err();
        assert!(
            failed(1).message.starts_with("ordering_key: "),
            "{}",
            failed(1).message
        );
        assert!(failed(2).message.contains("over Pub/Sub's limit of 1024"));
        assert_eq!(failed(3).message, "the event payload is not JSON");
        for i in 1..4 {
            assert_eq!(failed(i).kind, FailureKind::Permanent);
        }
    }

    #[test]
    fn batches_split_at_1000_messages() {
        let pubsub = open(None);
        let events: Vec<Event> = (0..1001)
            .map(|i| event(&format!("evt_{i}"), json!({})))
            .collect();
        let plan = pubsub.plan(&events);
        assert_eq!(plan.requests.len(), 2);
        assert_eq!(plan.requests[0].events.len(), 1000);
    }

    #[test]
    fn answers_each_message_with_its_id_or_the_error() {
        let topic = "projects/acme-prod/topics/orders";
        let results = read_answer(
            topic,
            &response(200, &[], r#"{"messageIds":["11","12"]}"#),
            2,
        );
        assert_eq!(
            results[1].clone().unwrap().response_excerpt.unwrap(),
            format!("messageId 12 on {topic}")
        );
        let short = read_answer(topic, &response(200, &[], r#"{"messageIds":["11"]}"#), 2);
        assert!(short[0].is_ok());
        assert_eq!(short[1].clone().unwrap_err().kind, FailureKind::Retryable);
        let missing = read_answer(
            topic,
            &response(
                404,
                &[],
                r#"{"error":{"code":404,"message":"Topic not found","status":"NOT_FOUND"}}"#,
            ),
            2,
        );
        for result in missing {
            let failure = result.unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert_eq!(
                failure.message,
                format!("NOT_FOUND: Topic not found (HTTP 404); publish {topic}")
            );
        }
        let busy = read_answer(
            topic,
            &response(
                503,
                &[],
                r#"{"error":{"code":503,"message":"The service is unavailable","status":"UNAVAILABLE"}}"#,
            ),
            1,
        );
        assert_eq!(busy[0].clone().unwrap_err().kind, FailureKind::Retryable);
        let denied = read_answer(
            topic,
            &response(
                403,
                &[],
                r#"{"error":{"code":403,"message":"User not authorized","status":"PERMISSION_DENIED"}}"#,
            ),
            1,
        );
        assert_eq!(denied[0].clone().unwrap_err().kind, FailureKind::Permanent);
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            PubSub::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config(None)).is_empty());
        assert!(fields(&config(Some("{{event.type}}"))).is_empty());
        let mut bad = config(Some("{{nope"));
        bad.project_id = "p".to_owned();
        bad.topic = "projects/acme-prod/topics/orders".to_owned();
        bad.endpoint = Some("ftp://x".to_owned());
        assert_eq!(
            fields(&bad),
            ["project_id", "topic", "ordering_key", "endpoint"]
        );
        for topic in ["ab", "1orders", "goog-orders", "or ders", &"t".repeat(256)] {
            let mut c = config(None);
            c.topic = topic.to_owned();
            assert_eq!(fields(&c), ["topic"], "{topic}");
        }
        assert_eq!(fields(&config(Some(""))), ["ordering_key"]);
    }

    #[test]
    fn opens_with_the_pubsub_scope() {
        let config: Config =
            serde_json::from_str(r#"{"project_id":"acme-prod","topic":"orders"}"#).unwrap();
        let pubsub = PubSub::open(config, Some(credential())).unwrap();
        assert_eq!(
            pubsub.url,
            "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders:publish"
        );
        assert!(PubSub::open(self::config(None), None).is_err());
        assert!(serde_json::from_str::<Config>(
            r#"{"project_id":"acme-prod","topic":"orders","subscription":"x"}"#
        )
        .is_err());
    }

    #[test]
    fn describes_itself() {
        let text = format!("{:?}", PubSub::info());
        assert!(text.contains("roles/pubsub.publisher"));
        assert!(text.contains("max_batch_size: 1000"));
    }
}

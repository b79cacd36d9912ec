//! The `sqs` destination: each batch goes to one Amazon SQS queue with `SendMessageBatch` (JSON
//! protocol, SigV4-signed by the SDK's AWS layer). The message body is the event record
//! `{"id", "type", "occurred_at", "payload"}`, and the attributes `pushrail-event-id` and
//! `pushrail-event-type` carry the id and type. FIFO queues get `MessageGroupId` from a template
//! and `MessageDeduplicationId` = the event id, so a retried event is not queued twice. SQS
//! answers for each entry, so each event gets its own outcome.

use std::time::Duration;

use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{aws, batch, record, settings};
use serde::Deserialize;
use serde_json::{json, Value};

/// Entries in one `SendMessageBatch` (SQS's limit).
const MAX_ENTRIES: usize = 10;
/// Bytes of messages (bodies and attributes) in one `SendMessageBatch`: SQS's classic 256 KiB.
/// Queues made since 2025 take 1 MiB, but a queue's `MaximumMessageSize` may still be 256 KiB.
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The group of a FIFO queue's messages when `message_group_id` is not set.
const DEFAULT_MESSAGE_GROUP_ID: &str = "{{event.type}}";

const ATTRIBUTE_EVENT_ID: &str = "pushrail-event-id";
const ATTRIBUTE_EVENT_TYPE: &str = "pushrail-event-type";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    queue_url: String,
    region: String,
    #[serde(default)]
    message_group_id: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and the signing service. SQS is plain HTTPS
/// through the host, so there is no connection to keep.
struct Sqs {
    queue_url: String,
    fifo: bool,
    group_id: Template,
    service: aws::Service,
    timeout: Duration,
}

impl Destination for Sqs {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "sqs",
            "Amazon SQS",
            "Sends each event as a message to an SQS queue (SendMessageBatch); FIFO queues get a message group id and the event id as deduplication id",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["queue_url", "region"],
            "additionalProperties": false,
            "properties": {
                "queue_url": {
                    "type": "string", "title": "Queue URL", "format": "uri",
                    "pattern": "^https?://", "maxLength": 2048,
                    "description": "The queue's URL, e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/orders (a name ending in .fifo is a FIFO queue)."
                },
                "region": aws::region_schema("The queue's"),
                "message_group_id": {
                    "type": "string", "title": "Message group id", "minLength": 1, "maxLength": 1024,
                    "default": DEFAULT_MESSAGE_GROUP_ID,
                    "description": "FIFO queues only: template of each message's group ({{event.id}}, {{event.type}}, {{payload.a.b}}); messages of one group are delivered in order. Default: the event type."
                },
                "endpoint": aws::endpoint_schema(
                    "The SQS service's base URL, for local peers and private endpoints; default https://sqs.<region>.amazonaws.com. The queue is still the queue URL's."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(aws::CREDENTIAL_KINDS, aws::credential_schema(), true)
        .max_batch_size(MAX_ENTRIES as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = queue_name(&config.queue_url) {
            errors.push(FieldError::new("queue_url", message));
        }
        errors.extend(aws::validate(&config.region, config.endpoint.as_deref()));
        if let Some(template) = &config.message_group_id {
            if let Err(e) = Template::parse(template) {
                errors.push(FieldError::new("message_group_id", e.0));
            }
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let credentials = aws::Credentials::from_credential(credential.as_ref())?;
        let name = queue_name(&config.queue_url)
            .map_err(|m| Failure::permanent(format!("queue_url {m}")))?;
        let group_id = Template::parse(
            config
                .message_group_id
                .as_deref()
                .unwrap_or(DEFAULT_MESSAGE_GROUP_ID),
        )
        .map_err(|e| Failure::permanent(format!("message_group_id: {e}")))?;
        let service = aws::Service::new(
            "sqs",
            &config.region,
            config.endpoint.as_deref(),
            credentials,
        )?;
        Ok(Self {
            fifo: name.ends_with(".fifo"),
            queue_url: config.queue_url,
            group_id,
            service,
            timeout: settings::timeout(config.timeout_ms),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        self.plan(events).send(read_answer)
    }
}

/// The name at the end of a queue URL's path (`https://host/123456789012/orders.fifo` →
/// `orders.fifo`), or why the URL is not a queue URL.
fn queue_name(queue_url: &str) -> Result<String, String> {
    let url = url::Url::parse(queue_url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL".to_owned());
    }
    match url.path().trim_end_matches('/').rsplit('/').next() {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err("must end with the queue's name (…/<account>/<queue>)".to_owned()),
    }
}

/// One event as an SQS entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    body: String,
    event_id: String,
    event_type: String,
    group_id: Option<String>,
    deduplication_id: Option<String>,
}

impl Entry {
    /// The bytes SQS counts against the batch limit: the body and each attribute's name, data
    /// type and value.
    fn size(&self) -> usize {
        let attribute = |name: &str, value: &str| name.len() + "String".len() + value.len();
        self.body.len()
            + attribute(ATTRIBUTE_EVENT_ID, &self.event_id)
            + attribute(ATTRIBUTE_EVENT_TYPE, &self.event_type)
    }

    fn to_json(&self, id: usize) -> Value {
        let attribute = |value: &str| json!({ "DataType": "String", "StringValue": value });
        let mut entry = json!({
            "Id": id.to_string(),
            "MessageBody": self.body,
            "MessageAttributes": {
                ATTRIBUTE_EVENT_ID: attribute(&self.event_id),
                ATTRIBUTE_EVENT_TYPE: attribute(&self.event_type),
            },
        });
        if let Some(group_id) = &self.group_id {
            entry["MessageGroupId"] = json!(group_id);
        }
        if let Some(deduplication_id) = &self.deduplication_id {
            entry["MessageDeduplicationId"] = json!(deduplication_id);
        }
        entry
    }
}

impl Sqs {
    fn entry(&self, event: &Event) -> Result<Entry, Failure> {
        let payload: Value = serde_json::from_slice(&event.payload)
            .map_err(|_| Failure::permanent("the event payload is not JSON"))?;
        let (group_id, deduplication_id) = if self.fifo {
            let (group, deduplication) = aws::fifo_ids("SQS", &self.group_id, event, &payload)?;
            (Some(group), Some(deduplication))
        } else {
            (None, None)
        };
        let record = record::event_record_with_payload(event, payload)?;
        Ok(Entry {
            body: message_body(&record)?,
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            group_id,
            deduplication_id,
        })
    }

    /// The batch's `SendMessageBatch` requests; each request's events are in entry id order.
    fn plan(&self, events: &[Event]) -> batch::Plan {
        let entries = events.iter().map(|event| self.entry(event)).collect();
        batch::Plan::new(
            entries,
            Entry::size,
            MAX_ENTRIES,
            MAX_REQUEST_BYTES,
            |entries| self.request(entries),
        )
    }

    /// The signed `SendMessageBatch` of `entries`; entry ids are their indexes.
    fn request(&self, entries: &[Entry]) -> Result<http::Request, http::Error> {
        let body = json!({
            "QueueUrl": self.queue_url,
            "Entries": entries.iter().enumerate().map(|(id, e)| e.to_json(id)).collect::<Vec<_>>(),
        });
        let request = http::Request::post(&self.service.url("/"))?
            .timeout(self.timeout)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "AmazonSQS.SendMessageBatch")
            .body(body.to_string());
        self.service.sign(request).map_err(|failure| http::Error {
            retryable: failure.kind == FailureKind::Retryable,
            message: failure.message,
        })
    }
}

/// The record as a message body. SQS refuses the characters U+FFFE and U+FFFF, which JSON
/// writers leave as they are; they can only stand in strings, so they are escaped.
fn message_body(record: &Value) -> Result<String, Failure> {
    let body = serde_json::to_string(record)
        .map_err(|e| Failure::permanent(format!("encoding the message: {e}")))?;
    Ok(if body.contains(['\u{fffe}', '\u{ffff}']) {
        body.replace('\u{fffe}', "\\ufffe")
            .replace('\u{ffff}', "\\uffff")
    } else {
        body
    })
}

#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(rename = "Successful", default)]
    successful: Vec<Sent>,
    #[serde(rename = "Failed", default)]
    failed: Vec<Refused>,
}

#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "MessageId", default)]
    message_id: Option<String>,
    #[serde(rename = "SequenceNumber", default)]
    sequence_number: Option<String>,
}

#[derive(Deserialize)]
struct Refused {
    #[serde(rename = "Id")]
    id: String,
    /// A boolean; some peers write it as the string `"true"`.
    #[serde(rename = "SenderFault", default)]
    sender_fault: Value,
    #[serde(rename = "Code", default)]
    code: Option<String>,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

/// Each entry's outcome from the answer to a `SendMessageBatch` of `count` entries.
fn read_answer(response: &http::Response, count: usize) -> Vec<DeliveryResult> {
    if !response.is_success() {
        return vec![Err(aws::failure(response)); count];
    }
    let Ok(answer) = serde_json::from_slice::<BatchAnswer>(&response.body) else {
        return vec![
            Err(Failure::retryable(
                "SQS answered with a body that is not a SendMessageBatch result"
            )
            .with_status(response.status)
            .with_excerpt(response.excerpt()));
            count
        ];
    };
    let mut outcomes: Vec<Option<DeliveryResult>> = vec![None; count];
    // Entry ids are the entries' indexes; an id out of range answers for nothing.
    let index = |id: &str| id.parse::<usize>().ok().filter(|i| *i < count);
    for sent in answer.successful {
        if let Some(slot) = index(&sent.id).map(|i| &mut outcomes[i]) {
            let mut excerpt = format!(
                "MessageId {}",
                sent.message_id.as_deref().unwrap_or("(none)")
            );
            if let Some(sequence) = sent.sequence_number {
                excerpt.push_str(&format!(", SequenceNumber {sequence}"));
            }
            *slot = Some(Ok(Delivered {
                status_code: Some(response.status),
                response_excerpt: Some(excerpt),
            }));
        }
    }
    for refused in answer.failed {
        if let Some(slot) = index(&refused.id).map(|i| &mut outcomes[i]) {
            let sender_fault = match &refused.sender_fault {
                Value::Bool(b) => *b,
                Value::String(s) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
            let message = format!(
                "{}: {} (SenderFault {sender_fault})",
                refused.code.as_deref().unwrap_or("Failed"),
                refused
                    .message
                    .as_deref()
                    .unwrap_or("SQS refused the message"),
            );
            let failure = if sender_fault {
                Failure::permanent(message)
            } else {
                Failure::retryable(message)
            };
            *slot = Some(Err(failure.with_status(response.status)));
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(
                    Failure::retryable("SQS's answer did not mention this message")
                        .with_status(response.status),
                )
            })
        })
        .collect()
}

export_destination!(Sqs);

#[cfg(test)]
mod tests {
    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    fn config(queue_url: &str, group: Option<&str>) -> Config {
        Config {
            queue_url: queue_url.to_owned(),
            region: "eu-west-1".to_owned(),
            message_group_id: group.map(str::to_owned),
            endpoint: Some("http://127.0.0.1:5000".to_owned()),
            timeout_ms: 5000,
        }
    }

    fn credential() -> Credential {
        Credential {
            kind: "aws_access_key".to_owned(),
            secret: r#"{"access_key_id":"AKIDEXAMPLE","secret_access_key":"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}"#.to_owned(),
        }
    }

    fn open(queue_url: &str, group: Option<&str>) -> Sqs {
        Sqs::open(config(queue_url, group), Some(credential())).unwrap()
    }

    const STANDARD: &str = "http://127.0.0.1:5000/123456789012/orders";
    const FIFO: &str = "http://127.0.0.1:5000/123456789012/orders.fifo";

    fn body_of(request: &http::Request) -> Value {
        serde_json::from_slice(request.body_bytes()).unwrap()
    }

    #[test]
    fn builds_a_signed_send_message_batch() {
        let sqs = open(STANDARD, None);
        let plan = sqs.plan(&[event("evt_1", json!({ "a": 1 })), event("evt_2", json!([]))]);
        assert_eq!(plan.requests.len(), 1);
        let request = plan.requests[0].request.as_ref().unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.url(), "http://127.0.0.1:5000/");
        assert_eq!(
            request.header_value("content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(
            request.header_value("x-amz-target"),
            Some("AmazonSQS.SendMessageBatch")
        );
        let authorization = request.header_value("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(authorization.contains("/eu-west-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="));
        assert!(request.header_value("x-amz-date").is_some());
        assert_eq!(
            body_of(request),
            json!({
                "QueueUrl": STANDARD,
                "Entries": [
                    {
                        "Id": "0",
                        "MessageBody": r#"{"id":"evt_1","occurred_at":"2026-03-07T09:05:00.25Z","payload":{"a":1},"type":"order.created"}"#,
                        "MessageAttributes": {
                            "pushrail-event-id": { "DataType": "String", "StringValue": "evt_1" },
                            "pushrail-event-type": { "DataType": "String", "StringValue": "order.created" }
                        }
                    },
                    {
                        "Id": "1",
                        "MessageBody": r#"{"id":"evt_2","occurred_at":"2026-03-07T09:05:00.25Z","payload":[],"type":"order.created"}"#,
                        "MessageAttributes": {
                            "pushrail-event-id": { "DataType": "String", "StringValue": "evt_2" },
                            "pushrail-event-type": { "DataType": "String", "StringValue": "order.created" }
                        }
                    }
                ]
            })
        );
        // Standard queues get neither group nor deduplication ids.
        assert!(plan.results.iter().all(Option::is_none));
    }

    #[test]
    fn goes_to_the_regional_endpoint_by_default() {
        let mut config = config(
            "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
            None,
        );
        config.endpoint = None;
        let sqs = Sqs::open(config, Some(credential())).unwrap();
        let plan = sqs.plan(&[event("evt_1", json!({}))]);
        let request = plan.requests[0].request.as_ref().unwrap();
        assert_eq!(request.url(), "https://sqs.eu-west-1.amazonaws.com/");
    }

    #[test]
    fn fifo_queues_get_group_and_deduplication_ids() {
        let sqs = open(FIFO, None);
        assert!(sqs.fifo);
        let plan = sqs.plan(&[event("evt_1", json!({}))]);
        let request = plan.requests[0].request.as_ref().unwrap();
        let entry = &body_of(request)["Entries"][0];
        assert_eq!(entry["MessageGroupId"], "order.created");
        assert_eq!(entry["MessageDeduplicationId"], "evt_1");

        let sqs = open(FIFO, Some("customer-{{payload.customer.id}}"));
        let plan = sqs.plan(&[
            event("evt_1", json!({ "customer": { "id": 7 } })),
            event("evt_2", json!({ "other": true })),
            event("evt_3", json!({ "customer": { "id": "c 9" } })),
            event("evt_4", json!({ "customer": { "id": "x".repeat(200) } })),
            event("evt_5", json!({ "customer": { "id": "c9" } })),
        ]);
        // Events whose group id cannot be made fail alone, before anything is sent.
        assert!(plan.results[0].is_none());
        let missing = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(missing.kind, FailureKind::Permanent);
        assert!(
            missing.message.contains("customer.id"),
            "{}",
            missing.message
        );
        let space = plan.results[2].clone().unwrap().unwrap_err();
        assert!(
            space.message.contains("MessageGroupId"),
            "{}",
            space.message
        );
        assert!(plan.results[3].clone().unwrap().is_err());
        assert!(plan.results[4].is_none());
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 4]);
        let request = plan.requests[0].request.as_ref().unwrap();
        let entries = body_of(request)["Entries"].clone();
        assert_eq!(entries[0]["Id"], "0");
        assert_eq!(entries[0]["MessageGroupId"], "customer-7");
        assert_eq!(entries[1]["Id"], "1");
        assert_eq!(entries[1]["MessageGroupId"], "customer-c9");
        assert_eq!(entries[1]["MessageDeduplicationId"], "evt_5");
    }

    #[test]
    fn a_payload_that_is_not_json_fails_alone() {
        let sqs = open(STANDARD, None);
        let mut bad = event("evt_2", json!({}));
        bad.payload = b"{nope".to_vec();
        let plan = sqs.plan(&[event("evt_1", json!({})), bad]);
        assert!(plan.results[1].clone().unwrap().is_err());
        assert_eq!(plan.requests[0].events, [0]);
    }

    #[test]
    fn escapes_characters_sqs_refuses() {
        let body = message_body(&json!({ "s": "a\u{fffe}b\u{ffff}\u{1}" })).unwrap();
        assert_eq!(body, r#"{"s":"a\ufffeb\uffff\u0001"}"#);
        let back: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(back["s"], "a\u{fffe}b\u{ffff}\u{1}");
    }

    #[test]
    fn splits_by_count_and_size() {
        let split = |sizes: &[usize], max_entries, max_bytes| {
            batch::split(sizes, max_entries, max_bytes)
                .into_iter()
                .map(|r| (r.start, r.end))
                .collect::<Vec<_>>()
        };
        assert_eq!(split(&[], 10, 100), []);
        assert_eq!(split(&[1; 10], 10, 100), [(0, 10)]);
        assert_eq!(split(&[1; 23], 10, 100), [(0, 10), (10, 20), (20, 23)]);
        assert_eq!(
            split(&[40, 40, 40, 10, 100], 10, 100),
            [(0, 2), (2, 4), (4, 5)]
        );
        // Larger than a whole request: alone.
        assert_eq!(split(&[10, 150, 10], 10, 100), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(split(&[150], 10, 100), [(0, 1)]);
    }

    #[test]
    fn large_messages_go_in_several_requests() {
        let sqs = open(STANDARD, None);
        let big = "x".repeat(100 * 1024);
        let events = (0..5)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect::<Vec<_>>();
        let plan = sqs.plan(&events);
        let groups = plan
            .requests
            .iter()
            .map(|r| r.events.clone())
            .collect::<Vec<_>>();
        assert_eq!(groups, [vec![0, 1], vec![2, 3], vec![4]]);
        for planned in &plan.requests {
            let request = planned.request.as_ref().unwrap();
            let entries = body_of(request)["Entries"].as_array().unwrap().clone();
            let bytes: usize = entries
                .iter()
                .map(|e| e["MessageBody"].as_str().unwrap().len())
                .sum();
            assert!(bytes <= MAX_REQUEST_BYTES);
            // Each request numbers its own entries from 0.
            assert_eq!(entries[0]["Id"], "0");
        }
    }

    #[test]
    fn answers_each_entry() {
        let answer = response(
            200,
            &[],
            r#"{
                "Successful": [
                    {"Id": "0", "MessageId": "m-0", "MD5OfMessageBody": "x"},
                    {"Id": "3", "MessageId": "m-3", "SequenceNumber": "1800"}
                ],
                "Failed": [
                    {"Id": "1", "SenderFault": true, "Code": "InvalidParameterValue", "Message": "bad attribute"},
                    {"Id": "2", "SenderFault": false, "Code": "InternalError", "Message": "try later"},
                    {"Id": "9", "SenderFault": true, "Code": "X", "Message": "unknown id"}
                ]
            }"#,
        );
        let outcomes = read_answer(&answer, 5);
        let delivered = outcomes[0].clone().unwrap();
        assert_eq!(delivered.status_code, Some(200));
        assert_eq!(delivered.response_excerpt.as_deref(), Some("MessageId m-0"));
        let refused = outcomes[1].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert_eq!(
            refused.message,
            "InvalidParameterValue: bad attribute (SenderFault true)"
        );
        let later = outcomes[2].clone().unwrap_err();
        assert_eq!(later.kind, FailureKind::Retryable);
        assert!(later.message.starts_with("InternalError: try later"));
        assert_eq!(
            outcomes[3].clone().unwrap().response_excerpt.as_deref(),
            Some("MessageId m-3, SequenceNumber 1800")
        );
        // Not mentioned: retryable.
        assert_eq!(
            outcomes[4].clone().unwrap_err().kind,
            FailureKind::Retryable
        );

        // moto writes SenderFault as a string.
        let answer = response(
            200,
            &[],
            r#"{"Successful": [], "Failed": [{"Id": "0", "SenderFault": "true", "Code": "InvalidParameterValue", "Message": "m"}]}"#,
        );
        assert_eq!(
            read_answer(&answer, 1)[0].clone().unwrap_err().kind,
            FailureKind::Permanent
        );

        // A body that is not an answer: every entry retryable.
        let outcomes = read_answer(&response(200, &[], "<html>"), 2);
        assert!(outcomes
            .iter()
            .all(|o| o.clone().unwrap_err().kind == FailureKind::Retryable));
    }

    #[test]
    fn a_refused_request_fails_each_of_its_events() {
        let missing = response(
            400,
            &[(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.NonExistentQueue;Sender",
            )],
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#,
        );
        let outcomes = read_answer(&missing, 3);
        assert_eq!(outcomes.len(), 3);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert!(failure.message.starts_with(
                "QueueDoesNotExist (AWS.SimpleQueueService.NonExistentQueue): The specified queue does not exist."
            ));
            assert_eq!(failure.status_code, Some(400));
        }

        let signature = response(
            403,
            &[],
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error></ErrorResponse>",
        );
        let failure = read_answer(&signature, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert!(failure.message.starts_with("SignatureDoesNotMatch: "));
        assert!(!failure.message.contains("EXAMPLEKEY"));

        let throttled = response(
            400,
            &[("retry-after", "2")],
            r#"{"__type":"com.amazonaws.sqs#RequestThrottled","message":"Rate exceeded"}"#,
        );
        let failure = read_answer(&throttled, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.retry_after_ms, Some(2000));
    }

    #[test]
    fn finishes_in_event_order() {
        let sqs = open(STANDARD, None);
        let mut bad = event("evt_1", json!({}));
        bad.payload = b"x".to_vec();
        let big = "x".repeat(200 * 1024);
        let plan = sqs.plan(&[
            event("evt_0", json!({ "big": big })),
            bad,
            event("evt_2", json!({ "big": big })),
        ]);
        assert_eq!(plan.requests.len(), 2);
        let results = plan.finish(
            vec![
                Ok(response(
                    200,
                    &[],
                    r#"{"Successful":[{"Id":"0","MessageId":"a"}],"Failed":[]}"#,
                )),
                Err(http::Error::retryable("connection refused")),
            ],
            read_answer,
        );
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok());
        assert_eq!(results[1].clone().unwrap_err().kind, FailureKind::Permanent);
        let refused = results[2].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Retryable);
        assert_eq!(refused.message, "connection refused");
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            Sqs::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config(STANDARD, Some("{{event.id}}"))).is_empty());
        assert_eq!(fields(&config("sqs/orders", None)), ["queue_url"]);
        assert_eq!(fields(&config("http://h/", None)), ["queue_url"]);
        let mut bad = config(FIFO, Some("{{event.nope}}"));
        bad.region = "EU WEST".to_owned();
        bad.endpoint = Some("127.0.0.1:5000".to_owned());
        assert_eq!(fields(&bad), ["region", "endpoint", "message_group_id"]);
    }

    #[test]
    fn opening_needs_an_access_key() {
        assert!(Sqs::open(config(STANDARD, None), None).is_err());
        let basic = Credential {
            kind: "basic".to_owned(),
            secret: r#"{"username":"u","password":"p"}"#.to_owned(),
        };
        assert!(Sqs::open(config(STANDARD, None), Some(basic)).is_err());
    }

    #[test]
    fn describes_itself() {
        let info = Sqs::info();
        let text = format!("{info:?}");
        assert!(text.contains("aws_access_key"));
        assert!(text.contains("queue_url"));
        assert!(text.contains("max_batch_size: 10"));
    }
}

//! The `sns` destination: each batch goes to one Amazon SNS topic with `PublishBatch` (the AWS
//! query protocol: a form-encoded POST answered in XML, SigV4-signed by the SDK's AWS layer). The
//! message is the event record `{"id", "type", "occurred_at", "payload"}`, and the message
//! attributes `pushrail-event-id` and `pushrail-event-type` carry the id and type. FIFO topics get
//! `MessageGroupId` from a template and `MessageDeduplicationId` = the event id, so a retried
//! event is not published twice. SNS answers for each entry, so each event gets its own outcome.

use std::time::Duration;

use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{aws, batch, record, settings};
use serde::Deserialize;
use serde_json::{json, Value};

/// Entries in one `PublishBatch` (SNS's limit).
const MAX_ENTRIES: usize = 10;
/// Bytes of messages (bodies and attributes) in one `PublishBatch`: SNS's default 256 KiB. A
/// topic's `MaximumMessageSize` may be raised to 1 MiB, but 256 KiB is what every topic takes.
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The group of a FIFO topic's messages when `message_group_id` is not set.
const DEFAULT_MESSAGE_GROUP_ID: &str = "{{event.type}}";
/// SNS's limit on a topic name, `.fifo` included.
const MAX_TOPIC_NAME_CHARS: usize = 256;
/// The version of the SNS query API, sent with every action.
const API_VERSION: &str = "2010-03-31";

const ATTRIBUTE_EVENT_ID: &str = "pushrail-event-id";
const ATTRIBUTE_EVENT_TYPE: &str = "pushrail-event-type";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    topic_arn: String,
    region: String,
    #[serde(default)]
    message_group_id: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and the signing service. SNS is plain HTTPS
/// through the host, so there is no connection to keep.
struct Sns {
    topic_arn: String,
    fifo: bool,
    group_id: Template,
    service: aws::Service,
    timeout: Duration,
}

impl Destination for Sns {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "sns",
            "Amazon SNS",
            "Publishes each event as a message to an SNS topic (PublishBatch); FIFO topics get a message group id and the event id as deduplication id",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["topic_arn", "region"],
            "additionalProperties": false,
            "properties": {
                "topic_arn": {
                    "type": "string", "title": "Topic ARN", "pattern": "^arn:[a-z0-9-]+:sns:",
                    "maxLength": 1024,
                    "description": "The topic's ARN, e.g. arn:aws:sns:eu-west-1:123456789012:orders (a name ending in .fifo is a FIFO topic)."
                },
                "region": {
                    "type": "string", "title": "Region", "pattern": "^[a-z0-9-]+$",
                    "minLength": 1, "maxLength": 64,
                    "description": "The topic's AWS region, e.g. eu-west-1 (the region in the topic ARN)."
                },
                "message_group_id": {
                    "type": "string", "title": "Message group id", "minLength": 1, "maxLength": 1024,
                    "default": DEFAULT_MESSAGE_GROUP_ID,
                    "description": "FIFO topics only: template of each message's group ({{event.id}}, {{event.type}}, {{payload.a.b}}); messages of one group are delivered in order. Default: the event type."
                },
                "endpoint": aws::endpoint_schema(
                    "The SNS service's base URL, for local peers and private endpoints; default https://sns.<region>.amazonaws.com."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(aws::CREDENTIAL_KINDS, aws::credential_schema(), true)
        .max_batch_size(MAX_ENTRIES as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = check_topic_arn(&config.topic_arn, &config.region) {
            errors.push(FieldError::new("topic_arn", message));
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
        let name = check_topic_arn(&config.topic_arn, &config.region)
            .map_err(|m| Failure::permanent(format!("topic_arn {m}")))?;
        let group_id = Template::parse(
            config
                .message_group_id
                .as_deref()
                .unwrap_or(DEFAULT_MESSAGE_GROUP_ID),
        )
        .map_err(|e| Failure::permanent(format!("message_group_id: {e}")))?;
        let service = aws::Service::new(
            "sns",
            &config.region,
            config.endpoint.as_deref(),
            credentials,
        )?;
        Ok(Self {
            fifo: name.ends_with(".fifo"),
            topic_arn: config.topic_arn,
            group_id,
            service,
            timeout: settings::timeout(config.timeout_ms),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        self.plan(events).send(read_answer)
    }
}

/// The topic's name from its ARN (`arn:aws:sns:eu-west-1:123456789012:orders.fifo` →
/// `orders.fifo`), or why the ARN is not a topic ARN of `region`: SNS publishes to a topic only
/// in the topic's own region.
fn check_topic_arn(arn: &str, region: &str) -> Result<String, String> {
    let parts = arn.split(':').collect::<Vec<_>>();
    let [prefix, partition, service, arn_region, account, name] = parts[..] else {
        return Err("must be a topic ARN, arn:aws:sns:<region>:<account>:<topic>".to_owned());
    };
    if prefix != "arn" || partition.is_empty() || service != "sns" {
        return Err("must be an SNS topic ARN, arn:aws:sns:<region>:<account>:<topic>".to_owned());
    }
    if arn_region.is_empty() || account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must name the topic's region and account (12 digits)".to_owned());
    }
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if base.is_empty()
        || name.len() > MAX_TOPIC_NAME_CHARS
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        return Err(format!(
            "must end with a topic name of 1 to {MAX_TOPIC_NAME_CHARS} letters, digits, _ and - \
             (and .fifo for a FIFO topic)"
        ));
    }
    if arn_region != region {
        return Err(format!(
            "is a topic in {arn_region}, but region is {region}: SNS takes a topic's messages in \
             the topic's own region"
        ));
    }
    Ok(name.to_owned())
}

/// One event as an SNS entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    message: String,
    event_id: String,
    event_type: String,
    group_id: Option<String>,
    deduplication_id: Option<String>,
}

impl Entry {
    /// The bytes SNS counts against the batch limit: the message and each attribute's name, data
    /// type and value.
    fn size(&self) -> usize {
        self.attributes()
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum::<usize>()
            + self.message.len()
    }

    fn attributes(&self) -> [(&str, &str); 2] {
        [
            (ATTRIBUTE_EVENT_ID, &self.event_id),
            (ATTRIBUTE_EVENT_TYPE, &self.event_type),
        ]
    }

    /// Writes the entry as member `id + 1` of `PublishBatchRequestEntries`, with `Id` = `id`:
    /// the query protocol numbers list members and map entries from 1.
    fn write(&self, form: &mut url::form_urlencoded::Serializer<'_, String>, id: usize) {
        let member = format!("PublishBatchRequestEntries.member.{}", id + 1);
        form.append_pair(&format!("{member}.Id"), &id.to_string());
        form.append_pair(&format!("{member}.Message"), &self.message);
        for (n, (name, value)) in self.attributes().into_iter().enumerate() {
            let entry = format!("{member}.MessageAttributes.entry.{}", n + 1);
            form.append_pair(&format!("{entry}.Name"), name);
            form.append_pair(&format!("{entry}.Value.DataType"), "String");
            form.append_pair(&format!("{entry}.Value.StringValue"), value);
        }
        if let Some(group_id) = &self.group_id {
            form.append_pair(&format!("{member}.MessageGroupId"), group_id);
        }
        if let Some(deduplication_id) = &self.deduplication_id {
            form.append_pair(
                &format!("{member}.MessageDeduplicationId"),
                deduplication_id,
            );
        }
    }
}

impl Sns {
    fn entry(&self, event: &Event) -> Result<Entry, Failure> {
        let payload: Value = serde_json::from_slice(&event.payload)
            .map_err(|_| Failure::permanent("the event payload is not JSON"))?;
        let (group_id, deduplication_id) = if self.fifo {
            let (group, deduplication) = aws::fifo_ids("SNS", &self.group_id, event, &payload)?;
            (Some(group), Some(deduplication))
        } else {
            (None, None)
        };
        let record = record::event_record_with_payload(event, payload)?;
        Ok(Entry {
            message: message_text(&record)?,
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            group_id,
            deduplication_id,
        })
    }

    /// The batch's `PublishBatch` requests; each request's events are in entry id order.
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

    /// The signed `PublishBatch` of `entries`; entry ids are their indexes.
    fn request(&self, entries: &[Entry]) -> Result<http::Request, http::Error> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", "PublishBatch")
            .append_pair("Version", API_VERSION)
            .append_pair("TopicArn", &self.topic_arn);
        for (id, entry) in entries.iter().enumerate() {
            entry.write(&mut form, id);
        }
        let request = http::Request::post(&self.service.url("/"))?
            .timeout(self.timeout)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form.finish());
        self.service.sign(request).map_err(|failure| http::Error {
            retryable: failure.kind == FailureKind::Retryable,
            message: failure.message,
        })
    }
}

/// The record as a message. SQS subscriptions refuse the characters U+FFFE and U+FFFF, which
/// JSON writers leave as they are; they can only stand in strings, so they are escaped.
fn message_text(record: &Value) -> Result<String, Failure> {
    let text = serde_json::to_string(record)
        .map_err(|e| Failure::permanent(format!("encoding the message: {e}")))?;
    Ok(if text.contains(['\u{fffe}', '\u{ffff}']) {
        text.replace('\u{fffe}', "\\ufffe")
            .replace('\u{ffff}', "\\uffff")
    } else {
        text
    })
}

/// `<PublishBatchResponse><PublishBatchResult>…</PublishBatchResult><ResponseMetadata>…`.
#[derive(Deserialize)]
struct PublishBatchResponse {
    #[serde(rename = "PublishBatchResult")]
    result: PublishBatchResult,
}

#[derive(Deserialize)]
struct PublishBatchResult {
    #[serde(rename = "Successful", default)]
    successful: Members<Sent>,
    #[serde(rename = "Failed", default)]
    failed: Members<Refused>,
}

/// A query-protocol list: `<member>` elements (none in an empty `<Failed/>`).
#[derive(Deserialize)]
struct Members<T> {
    #[serde(rename = "member", default = "Vec::new")]
    members: Vec<T>,
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Self {
            members: Vec::new(),
        }
    }
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
    #[serde(rename = "SenderFault", default)]
    sender_fault: Option<String>,
    #[serde(rename = "Code", default)]
    code: Option<String>,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

/// Each entry's outcome from the answer to a `PublishBatch` of `count` entries.
fn read_answer(response: &http::Response, count: usize) -> Vec<DeliveryResult> {
    if !response.is_success() {
        return vec![Err(aws::failure(response)); count];
    }
    let answer = std::str::from_utf8(&response.body)
        .ok()
        .and_then(|body| quick_xml::de::from_str::<PublishBatchResponse>(body).ok());
    let Some(PublishBatchResponse { result: answer }) = answer else {
        return vec![
            Err(Failure::retryable(
                "SNS answered with a body that is not a PublishBatch result"
            )
            .with_status(response.status)
            .with_excerpt(response.excerpt()));
            count
        ];
    };
    let mut outcomes: Vec<Option<DeliveryResult>> = vec![None; count];
    // Entry ids are the entries' indexes; an id out of range answers for nothing.
    let index = |id: &str| id.trim().parse::<usize>().ok().filter(|i| *i < count);
    for sent in answer.successful.members {
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
    for refused in answer.failed.members {
        if let Some(slot) = index(&refused.id).map(|i| &mut outcomes[i]) {
            *slot = Some(Err(entry_failure(&refused, response.status)));
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(
                    Failure::retryable("SNS's answer did not mention this message")
                        .with_status(response.status),
                )
            })
        })
        .collect()
}

/// An entry SNS refused: permanent when the sender is at fault (`SenderFault` true), unless the
/// code says to slow down or try again.
fn entry_failure(refused: &Refused, status: u16) -> Failure {
    let sender_fault = refused
        .sender_fault
        .as_deref()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case("true"));
    let code = refused.code.as_deref().unwrap_or("Failed");
    let message = format!(
        "{code}: {} (SenderFault {sender_fault})",
        refused
            .message
            .as_deref()
            .unwrap_or("SNS refused the message"),
    );
    let retryable = !sender_fault || aws::is_retryable_code(code);
    let failure = if retryable {
        Failure::retryable(message)
    } else {
        Failure::permanent(message)
    };
    failure.with_status(status)
}

export_destination!(Sns);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    const STANDARD: &str = "arn:aws:sns:eu-west-1:123456789012:orders";
    const FIFO: &str = "arn:aws:sns:eu-west-1:123456789012:orders.fifo";

    fn config(topic_arn: &str, group: Option<&str>) -> Config {
        Config {
            topic_arn: topic_arn.to_owned(),
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

    fn open(topic_arn: &str, group: Option<&str>) -> Sns {
        Sns::open(config(topic_arn, group), Some(credential())).unwrap()
    }

    /// The form fields of a request, decoded.
    fn form_of(request: &http::Request) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(request.body_bytes())
            .into_owned()
            .collect()
    }

    fn request_of(planned: &batch::Planned) -> &http::Request {
        planned.request.as_ref().unwrap()
    }

    /// A `PublishBatch` answer as SNS writes it, with `successful` and `failed` members.
    fn answer(successful: &str, failed: &str) -> http::Response {
        let list = |name: &str, members: &str| {
            if members.is_empty() {
                format!("<{name}/>")
            } else {
                format!("<{name}>{members}</{name}>")
            }
        };
        response(
            200,
            &[("content-type", "text/xml")],
            &format!(
                "<?xml version=\"1.0\"?>\
                 <PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
                 <PublishBatchResult>{}{}</PublishBatchResult>\
                 <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\
                 </PublishBatchResponse>",
                list("Successful", successful),
                list("Failed", failed)
            ),
        )
    }

    #[test]
    fn builds_a_signed_publish_batch() {
        let sns = open(STANDARD, None);
        let plan = sns.plan(&[event("evt_1", json!({ "a": 1 })), event("evt_2", json!([]))]);
        assert_eq!(plan.requests.len(), 1);
        let request = request_of(&plan.requests[0]);
        assert_eq!(request.method(), "POST");
        assert_eq!(request.url(), "http://127.0.0.1:5000/");
        assert_eq!(
            request.header_value("content-type"),
            Some("application/x-www-form-urlencoded; charset=utf-8")
        );
        assert_eq!(request.header_value("x-amz-target"), None);
        let authorization = request.header_value("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(authorization.contains(
            "/eu-west-1/sns/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
        ));
        assert!(request.header_value("x-amz-date").is_some());
        let first = r#"{"id":"evt_1","occurred_at":"2026-03-07T09:05:00.25Z","payload":{"a":1},"type":"order.created"}"#;
        let second = r#"{"id":"evt_2","occurred_at":"2026-03-07T09:05:00.25Z","payload":[],"type":"order.created"}"#;
        let expected: BTreeMap<String, String> = [
            ("Action", "PublishBatch"),
            ("Version", "2010-03-31"),
            ("TopicArn", STANDARD),
            ("PublishBatchRequestEntries.member.1.Id", "0"),
            ("PublishBatchRequestEntries.member.1.Message", first),
            (
                "PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name",
                "pushrail-event-id",
            ),
            (
                "PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType",
                "String",
            ),
            (
                "PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue",
                "evt_1",
            ),
            (
                "PublishBatchRequestEntries.member.1.MessageAttributes.entry.2.Name",
                "pushrail-event-type",
            ),
            (
                "PublishBatchRequestEntries.member.1.MessageAttributes.entry.2.Value.DataType",
                "String",
            ),
            (
                "PublishBatchRequestEntries.member.1.MessageAttributes.entry.2.Value.StringValue",
                "order.created",
            ),
            ("PublishBatchRequestEntries.member.2.Id", "1"),
            ("PublishBatchRequestEntries.member.2.Message", second),
            (
                "PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Name",
                "pushrail-event-id",
            ),
            (
                "PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.DataType",
                "String",
            ),
            (
                "PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.StringValue",
                "evt_2",
            ),
            (
                "PublishBatchRequestEntries.member.2.MessageAttributes.entry.2.Name",
                "pushrail-event-type",
            ),
            (
                "PublishBatchRequestEntries.member.2.MessageAttributes.entry.2.Value.DataType",
                "String",
            ),
            (
                "PublishBatchRequestEntries.member.2.MessageAttributes.entry.2.Value.StringValue",
                "order.created",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        // Standard topics get neither group nor deduplication ids.
        assert_eq!(form_of(request), expected);
        // The body is form-encoded: the message's JSON is percent-encoded, not sent as is.
        let body = std::str::from_utf8(request.body_bytes()).unwrap();
        assert!(body.starts_with("Action=PublishBatch&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A123456789012%3Aorders&PublishBatchRequestEntries.member.1.Id=0&PublishBatchRequestEntries.member.1.Message=%7B%22id%22%3A%22evt_1%22"), "{body}");
        // The message is the SDK's event record.
        let message: Value = serde_json::from_str(first).unwrap();
        assert_eq!(
            message,
            record::event_record(&event("evt_1", json!({ "a": 1 }))).unwrap()
        );
        assert!(plan.results.iter().all(Option::is_none));
    }

    #[test]
    fn goes_to_the_regional_endpoint_by_default() {
        let mut config = config(STANDARD, None);
        config.endpoint = None;
        let sns = Sns::open(config, Some(credential())).unwrap();
        let plan = sns.plan(&[event("evt_1", json!({}))]);
        assert_eq!(
            request_of(&plan.requests[0]).url(),
            "https://sns.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn fifo_topics_get_group_and_deduplication_ids() {
        let sns = open(FIFO, None);
        assert!(sns.fifo);
        let plan = sns.plan(&[event("evt_1", json!({}))]);
        let form = form_of(request_of(&plan.requests[0]));
        assert_eq!(
            form["PublishBatchRequestEntries.member.1.MessageGroupId"],
            "order.created"
        );
        assert_eq!(
            form["PublishBatchRequestEntries.member.1.MessageDeduplicationId"],
            "evt_1"
        );

        let sns = open(FIFO, Some("customer-{{payload.customer.id}}"));
        let plan = sns.plan(&[
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
            missing.message.starts_with("message_group_id: ")
                && missing.message.contains("customer.id"),
            "{}",
            missing.message
        );
        let space = plan.results[2].clone().unwrap().unwrap_err();
        assert_eq!(space.kind, FailureKind::Permanent);
        assert!(
            space.message.contains("MessageGroupId \"customer-c 9\""),
            "{}",
            space.message
        );
        assert!(plan.results[3].clone().unwrap().is_err());
        assert!(plan.results[4].is_none());
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 4]);
        let form = form_of(request_of(&plan.requests[0]));
        assert_eq!(form["PublishBatchRequestEntries.member.1.Id"], "0");
        assert_eq!(
            form["PublishBatchRequestEntries.member.1.MessageGroupId"],
            "customer-7"
        );
        assert_eq!(form["PublishBatchRequestEntries.member.2.Id"], "1");
        assert_eq!(
            form["PublishBatchRequestEntries.member.2.MessageGroupId"],
            "customer-c9"
        );
        assert_eq!(
            form["PublishBatchRequestEntries.member.2.MessageDeduplicationId"],
            "evt_5"
        );

        // An event id SNS would not take as a deduplication id fails alone.
        let sns = open(FIFO, None);
        let plan = sns.plan(&[event("evt 1", json!({})), event("evt_2", json!({}))]);
        let refused = plan.results[0].clone().unwrap().unwrap_err();
        assert!(
            refused
                .message
                .starts_with("MessageDeduplicationId (the event id)"),
            "{}",
            refused.message
        );
        assert_eq!(plan.requests[0].events, [1]);
    }

    #[test]
    fn a_payload_that_is_not_json_fails_alone() {
        let sns = open(STANDARD, None);
        let mut bad = event("evt_2", json!({}));
        bad.payload = b"{nope".to_vec();
        let plan = sns.plan(&[event("evt_1", json!({})), bad]);
        let failure = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert_eq!(failure.message, "the event payload is not JSON");
        assert_eq!(plan.requests[0].events, [0]);
    }

    #[test]
    fn escapes_characters_sqs_subscriptions_refuse() {
        let text = message_text(&json!({ "s": "a\u{fffe}b\u{ffff}\u{1}" })).unwrap();
        assert_eq!(text, r#"{"s":"a\ufffeb\uffff\u0001"}"#);
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["s"], "a\u{fffe}b\u{ffff}\u{1}");
    }

    #[test]
    fn large_messages_go_in_several_requests() {
        let sns = open(STANDARD, None);
        let big = "x".repeat(100 * 1024);
        let mut events = (0..5)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect::<Vec<_>>();
        // Larger than a whole request: alone, and SNS decides (a topic may take up to 1 MiB).
        events.push(event("evt_5", json!({ "big": "x".repeat(300 * 1024) })));
        events.extend((6..9).map(|i| event(&format!("evt_{i}"), json!({}))));
        let plan = sns.plan(&events);
        let groups = plan
            .requests
            .iter()
            .map(|r| r.events.clone())
            .collect::<Vec<_>>();
        assert_eq!(
            groups,
            [vec![0, 1], vec![2, 3], vec![4], vec![5], vec![6, 7, 8]]
        );
        for planned in &plan.requests {
            let form = form_of(request_of(planned));
            // Each request numbers its own entries from 0.
            assert_eq!(form["PublishBatchRequestEntries.member.1.Id"], "0");
            let bytes: usize = form
                .iter()
                .filter(|(k, _)| k.ends_with(".Message"))
                .map(|(_, v)| v.len())
                .sum();
            assert!(bytes <= MAX_REQUEST_BYTES || planned.events == [5]);
        }
    }

    #[test]
    fn a_batch_of_more_than_ten_is_cut_by_ten() {
        let sns = open(STANDARD, None);
        let events = (0..23)
            .map(|i| event(&format!("evt_{i}"), json!({ "i": i })))
            .collect::<Vec<_>>();
        let plan = sns.plan(&events);
        let sizes = plan
            .requests
            .iter()
            .map(|r| r.events.len())
            .collect::<Vec<_>>();
        assert_eq!(sizes, [10, 10, 3]);
        let form = form_of(request_of(&plan.requests[1]));
        assert_eq!(form["PublishBatchRequestEntries.member.10.Id"], "9");
        assert!(!form.contains_key("PublishBatchRequestEntries.member.11.Id"));
        let message: Value =
            serde_json::from_str(&form["PublishBatchRequestEntries.member.10.Message"]).unwrap();
        assert_eq!(message["id"], "evt_19");
    }

    #[test]
    fn counts_the_message_and_its_attributes() {
        let sns = open(STANDARD, None);
        let entry = sns.entry(&event("evt_1", json!({}))).unwrap();
        assert_eq!(
            entry.size(),
            entry.message.len()
                + "pushrail-event-id".len()
                + 6
                + "evt_1".len()
                + "pushrail-event-type".len()
                + 6
                + "order.created".len()
        );
    }

    #[test]
    fn answers_each_entry() {
        let outcomes = read_answer(
            &answer(
                "<member><Id>0</Id><MessageId>m-0</MessageId></member>\
                 <member><Id>3</Id><MessageId>m-3</MessageId><SequenceNumber>1800</SequenceNumber></member>",
                "<member><Id>1</Id><Code>InvalidParameter</Code><Message>Invalid parameter: Message too long &amp; more</Message><SenderFault>true</SenderFault></member>\
                 <member><Id>2</Id><Code>InternalError</Code><Message>try later</Message><SenderFault>false</SenderFault></member>\
                 <member><Id>9</Id><Code>X</Code><Message>unknown id</Message><SenderFault>true</SenderFault></member>",
            ),
            5,
        );
        let delivered = outcomes[0].clone().unwrap();
        assert_eq!(delivered.status_code, Some(200));
        assert_eq!(delivered.response_excerpt.as_deref(), Some("MessageId m-0"));
        let refused = outcomes[1].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert_eq!(
            refused.message,
            "InvalidParameter: Invalid parameter: Message too long & more (SenderFault true)"
        );
        assert_eq!(refused.status_code, Some(200));
        let later = outcomes[2].clone().unwrap_err();
        assert_eq!(later.kind, FailureKind::Retryable);
        assert_eq!(
            later.message,
            "InternalError: try later (SenderFault false)"
        );
        assert_eq!(
            outcomes[3].clone().unwrap().response_excerpt.as_deref(),
            Some("MessageId m-3, SequenceNumber 1800")
        );
        // Not mentioned: retryable.
        let missing = outcomes[4].clone().unwrap_err();
        assert_eq!(missing.kind, FailureKind::Retryable);
        assert_eq!(missing.message, "SNS's answer did not mention this message");
    }

    #[test]
    fn throttled_entries_are_retryable_even_when_the_sender_is_at_fault() {
        let outcomes = read_answer(
            &answer(
                "",
                "<member><Id>0</Id><Code>Throttled</Code><Message>Rate exceeded</Message><SenderFault>true</SenderFault></member>\
                 <member><Id>1</Id><Code>KMSThrottling</Code><SenderFault>true</SenderFault></member>\
                 <member><Id>2</Id><Code>KMSAccessDenied</Code><Message>no key</Message><SenderFault>true</SenderFault></member>",
            ),
            3,
        );
        assert_eq!(
            outcomes[0].clone().unwrap_err().kind,
            FailureKind::Retryable
        );
        let kms = outcomes[1].clone().unwrap_err();
        assert_eq!(kms.kind, FailureKind::Retryable);
        assert_eq!(
            kms.message,
            "KMSThrottling: SNS refused the message (SenderFault true)"
        );
        assert_eq!(
            outcomes[2].clone().unwrap_err().kind,
            FailureKind::Permanent
        );
    }

    #[test]
    fn an_answer_that_is_not_a_publish_batch_result_is_retryable() {
        for body in ["<html>", "{}", "<Other><X/></Other>", ""] {
            let outcomes = read_answer(&response(200, &[], body), 2);
            assert_eq!(outcomes.len(), 2);
            for outcome in &outcomes {
                let failure = outcome.clone().unwrap_err();
                assert_eq!(failure.kind, FailureKind::Retryable, "{body}");
                assert_eq!(
                    failure.message,
                    "SNS answered with a body that is not a PublishBatch result"
                );
            }
        }
        // Both lists empty: nothing answered, so nothing is taken as delivered.
        let outcomes = read_answer(&answer("", ""), 1);
        assert_eq!(
            outcomes[0].clone().unwrap_err().kind,
            FailureKind::Retryable
        );
    }

    #[test]
    fn a_refused_request_fails_each_of_its_events() {
        // What SNS (and moto) answer for a topic that does not exist.
        let missing = response(
            404,
            &[("content-type", "text/xml")],
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
             <Code>NotFound</Code><Message>Topic does not exist</Message></Error>\
             <RequestId>r-2</RequestId></ErrorResponse>",
        );
        let outcomes = read_answer(&missing, 3);
        assert_eq!(outcomes.len(), 3);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert_eq!(failure.message, "NotFound: Topic does not exist (HTTP 404)");
            assert_eq!(failure.status_code, Some(404));
        }

        let signature = response(
            403,
            &[],
            "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error></ErrorResponse>",
        );
        let failure = read_answer(&signature, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert!(failure.message.starts_with("SignatureDoesNotMatch: "));
        assert!(!failure.message.contains("EXAMPLEKEY"));

        let denied = response(
            403,
            &[],
            "<ErrorResponse><Error><Code>AuthorizationError</Code><Message>User is not authorized to perform: SNS:Publish</Message></Error></ErrorResponse>",
        );
        let failure = read_answer(&denied, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);

        let throttled = response(
            429,
            &[("retry-after", "2")],
            "<ErrorResponse><Error><Code>Throttled</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        );
        let failure = read_answer(&throttled, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.retry_after_ms, Some(2000));

        // SNS's KMS throttling comes with HTTP 400: retryable all the same.
        let kms = response(
            400,
            &[("retry-after", "1")],
            "<ErrorResponse><Error><Code>KMSThrottling</Code><Message>slow down</Message></Error></ErrorResponse>",
        );
        let failure = read_answer(&kms, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.retry_after_ms, Some(1000));
        assert_eq!(failure.message, "KMSThrottling: slow down (HTTP 400)");

        let too_long = response(
            400,
            &[],
            "<ErrorResponse><Error><Code>BatchRequestTooLong</Code><Message>The length of all the messages put together is more than the limit.</Message></Error></ErrorResponse>",
        );
        let failure = read_answer(&too_long, 2)[1].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);

        let unavailable = response(503, &[], "");
        let failure = read_answer(&unavailable, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.message, "HTTP 503");
    }

    #[test]
    fn finishes_in_event_order() {
        let sns = open(STANDARD, None);
        let mut bad = event("evt_1", json!({}));
        bad.payload = b"x".to_vec();
        let big = "x".repeat(200 * 1024);
        let plan = sns.plan(&[
            event("evt_0", json!({ "big": big })),
            bad,
            event("evt_2", json!({ "big": big })),
            event("evt_3", json!({})),
        ]);
        assert_eq!(plan.requests.len(), 2);
        assert_eq!(plan.requests[1].events, [2, 3]);
        let results = plan.finish(
            vec![
                Ok(answer(
                    "<member><Id>0</Id><MessageId>a</MessageId></member>",
                    "",
                )),
                Err(http::Error::retryable("connection refused")),
            ],
            read_answer,
        );
        assert_eq!(results.len(), 4);
        assert!(results[0].is_ok());
        assert_eq!(results[1].clone().unwrap_err().kind, FailureKind::Permanent);
        for refused in &results[2..] {
            let refused = refused.clone().unwrap_err();
            assert_eq!(refused.kind, FailureKind::Retryable);
            assert_eq!(refused.message, "connection refused");
        }
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            Sns::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config(STANDARD, Some("{{event.id}}"))).is_empty());
        assert!(fields(&config(FIFO, None)).is_empty());
        assert!(fields(&config("arn:aws-cn:sns:eu-west-1:123456789012:a_B-9", None)).is_empty());
        for bad in [
            "orders",
            "arn:aws:sqs:eu-west-1:123456789012:orders",
            "arn:aws:sns:eu-west-1:123456789012",
            "arn:aws:sns:eu-west-1:123456789012:",
            "arn:aws:sns:eu-west-1:123456789012:.fifo",
            "arn:aws:sns:eu-west-1:123456789012:or ders",
            "arn:aws:sns:eu-west-1:123456789012:orders:sub-id",
            "arn:aws:sns:eu-west-1:acct:orders",
            "arn:aws:sns::123456789012:orders",
            // Another region than `region`.
            "arn:aws:sns:us-east-1:123456789012:orders",
        ] {
            assert_eq!(fields(&config(bad, None)), ["topic_arn"], "{bad}");
        }
        let long = format!("arn:aws:sns:eu-west-1:123456789012:{}", "t".repeat(257));
        assert_eq!(fields(&config(&long, None)), ["topic_arn"]);
        let longest = format!(
            "arn:aws:sns:eu-west-1:123456789012:{}.fifo",
            "t".repeat(251)
        );
        assert!(fields(&config(&longest, None)).is_empty());
        let mut bad = config(FIFO, Some("{{event.nope}}"));
        bad.region = "EU WEST".to_owned();
        bad.endpoint = Some("127.0.0.1:5000".to_owned());
        assert_eq!(
            fields(&bad),
            ["topic_arn", "region", "endpoint", "message_group_id"]
        );
    }

    #[test]
    fn reads_the_config_json() {
        let config: Config = serde_json::from_str(
            r#"{"topic_arn":"arn:aws:sns:us-east-1:123456789012:t","region":"us-east-1"}"#,
        )
        .unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert!(config.message_group_id.is_none());
        assert!(serde_json::from_str::<Config>(
            r#"{"topic_arn":"arn:aws:sns:us-east-1:123456789012:t","region":"us-east-1","topic":"x"}"#
        )
        .is_err());
        let sns = Sns::open(config, Some(credential())).unwrap();
        assert!(!sns.fifo);
        assert_eq!(sns.timeout, Duration::from_secs(10));
        assert_eq!(sns.service.name(), "sns");
        assert_eq!(sns.service.region(), "us-east-1");
    }

    #[test]
    fn opening_needs_an_access_key_and_a_topic_arn() {
        assert!(Sns::open(config(STANDARD, None), None).is_err());
        let basic = Credential {
            kind: "basic".to_owned(),
            secret: r#"{"username":"u","password":"p"}"#.to_owned(),
        };
        assert!(Sns::open(config(STANDARD, None), Some(basic)).is_err());
        let wrong = Sns::open(config("orders", None), Some(credential()))
            .err()
            .unwrap();
        assert!(wrong.message.starts_with("topic_arn "), "{}", wrong.message);
        assert!(Sns::open(config(FIFO, Some("{{nope}}")), Some(credential())).is_err());
    }

    #[test]
    fn describes_itself() {
        let info = Sns::info();
        let text = format!("{info:?}");
        assert!(text.contains("aws_access_key"));
        assert!(text.contains("aws_role"));
        assert!(text.contains("topic_arn"));
        assert!(text.contains("message_group_id"));
        assert!(text.contains("max_batch_size: 10"));
    }
}

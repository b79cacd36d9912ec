//! The `eventbridge` destination: each batch goes to one Amazon EventBridge event bus with
//! `PutEvents` (JSON 1.1 protocol, SigV4-signed by the SDK's AWS layer). Each event is one entry
//! whose `Detail` is the event record `{"id", "type", "occurred_at", "payload"}`, with `Source`
//! from the config (default `pushrail`), `DetailType` from a template (default the event type) and
//! `Time` the event time. EventBridge answers for each entry, so each event gets its own outcome.
//! EventBridge has no deduplication: a consumer reads the event id from the detail's `id` to drop
//! an event delivered twice.

use std::time::Duration;

use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{aws, batch, record, settings};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Entries in one `PutEvents` (EventBridge's limit).
const MAX_ENTRIES: usize = 10;
/// Bytes of one `PutEvents`, counted as EventBridge counts its entries (see [`Entry::size`]).
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Bytes of one entry: an entry alone may not exceed the request's limit.
const MAX_ENTRY_BYTES: usize = MAX_REQUEST_BYTES;
/// The bytes EventBridge adds to an entry's size when it has a `Time`.
const TIME_BYTES: usize = 14;
/// EventBridge's limit on a detail type, in characters.
const MAX_DETAIL_TYPE_CHARS: usize = 128;
/// Our limit on `source`, in characters (EventBridge's rules match sources up to 256).
const MAX_SOURCE_CHARS: usize = 256;
/// EventBridge's limit on an event bus name (an ARN may be longer).
const MAX_BUS_NAME_CHARS: usize = 256;
/// EventBridge's limit on an event bus name or ARN in `PutEvents`.
const MAX_BUS_ARN_CHARS: usize = 1600;
/// The source when `source` is not set.
const DEFAULT_SOURCE: &str = "pushrail";
/// The detail type when `detail_type` is not set.
const DEFAULT_DETAIL_TYPE: &str = "{{event.type}}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    event_bus_name: String,
    region: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    detail_type: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and the signing service. EventBridge is plain
/// HTTPS through the host, so there is no connection to keep.
struct EventBridge {
    event_bus_name: String,
    source: String,
    detail_type: Template,
    service: aws::Service,
    timeout: Duration,
}

impl Destination for EventBridge {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "eventbridge",
            "Amazon EventBridge",
            "Puts each event on an EventBridge event bus (PutEvents), with the source and a detail type from a template",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["event_bus_name", "region"],
            "additionalProperties": false,
            "properties": {
                "event_bus_name": {
                    "type": "string", "title": "Event bus name",
                    "minLength": 1, "maxLength": MAX_BUS_ARN_CHARS,
                    "description": "The event bus's name or ARN, e.g. orders (default is the account's default bus)."
                },
                "region": aws::region_schema("The event bus's"),
                "source": {
                    "type": "string", "title": "Source", "minLength": 1, "maxLength": MAX_SOURCE_CHARS,
                    "default": DEFAULT_SOURCE,
                    "description": "Each event's Source, which rules match on, e.g. com.example.orders. It may not start with aws. (reserved for AWS). Default: pushrail."
                },
                "detail_type": {
                    "type": "string", "title": "Detail type", "minLength": 1, "maxLength": 1024,
                    "default": DEFAULT_DETAIL_TYPE,
                    "description": "Template of each event's DetailType ({{event.id}}, {{event.type}}, {{payload.a.b}}), which rules match on. It must render to 1 to 128 characters. Default: the event type."
                },
                "endpoint": aws::endpoint_schema(
                    "The EventBridge service's base URL, for local peers and private endpoints; default https://events.<region>.amazonaws.com."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(aws::CREDENTIAL_KINDS, aws::credential_schema(), true)
        .max_batch_size(MAX_ENTRIES as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = check_bus_name(&config.event_bus_name) {
            errors.push(FieldError::new("event_bus_name", message));
        }
        errors.extend(aws::validate(&config.region, config.endpoint.as_deref()));
        if let Some(source) = &config.source {
            if let Err(message) = check_source(source) {
                errors.push(FieldError::new("source", message));
            }
        }
        if let Some(template) = &config.detail_type {
            if let Err(e) = Template::parse(template) {
                errors.push(FieldError::new("detail_type", e.0));
            }
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let credentials = aws::Credentials::from_credential(credential.as_ref())?;
        check_bus_name(&config.event_bus_name)
            .map_err(|m| Failure::permanent(format!("event_bus_name {m}")))?;
        let source = config.source.unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
        check_source(&source).map_err(|m| Failure::permanent(format!("source {m}")))?;
        let detail_type =
            Template::parse(config.detail_type.as_deref().unwrap_or(DEFAULT_DETAIL_TYPE))
                .map_err(|e| Failure::permanent(format!("detail_type: {e}")))?;
        let service = aws::Service::new(
            "events",
            &config.region,
            config.endpoint.as_deref(),
            credentials,
        )?;
        Ok(Self {
            event_bus_name: config.event_bus_name,
            source,
            detail_type,
            service,
            timeout: settings::timeout(config.timeout_ms),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        self.plan(events).send(read_answer)
    }
}

/// EventBridge's rule for the bus of `PutEvents`: a name of 1 to 256 letters, digits, `.`, `-`,
/// `_` and `/` (partner buses are `aws.partner/…`), or an event bus ARN.
fn check_bus_name(name: &str) -> Result<(), String> {
    if name.starts_with("arn:") {
        if name.len() > MAX_BUS_ARN_CHARS || !name.contains(":event-bus/") {
            return Err(format!(
                "is not an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>, at most {MAX_BUS_ARN_CHARS} characters)"
            ));
        }
        return Ok(());
    }
    if name.is_empty() || name.len() > MAX_BUS_NAME_CHARS {
        return Err(format!("must be 1 to {MAX_BUS_NAME_CHARS} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
    {
        return Err("may only have letters, digits, ., -, _ and / (or be an event bus ARN)".into());
    }
    Ok(())
}

/// A source EventBridge takes from us: 1 to 256 characters, not under `aws.` (AWS's own).
fn check_source(source: &str) -> Result<(), String> {
    let chars = source.chars().count();
    if chars == 0 || chars > MAX_SOURCE_CHARS {
        return Err(format!("must be 1 to {MAX_SOURCE_CHARS} characters"));
    }
    if source.starts_with("aws.") {
        return Err("may not start with aws. (sources under aws. are AWS's own)".into());
    }
    if source.chars().any(char::is_control) {
        return Err("may not have control characters".into());
    }
    Ok(())
}

/// One event as a `PutEvents` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    detail_type: String,
    /// The event record as JSON text.
    detail: String,
    /// The event time in seconds since the Unix epoch.
    time: u64,
}

/// The body of a `PutEvents`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutEvents<'a> {
    entries: Vec<PutEventsEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsEntry<'a> {
    event_bus_name: &'a str,
    source: &'a str,
    detail_type: &'a str,
    detail: &'a str,
    /// A timestamp: the JSON protocol carries it as epoch seconds.
    time: u64,
}

impl EventBridge {
    /// The bytes EventBridge counts against its limits for `entry`: 14 for the `Time`, and the
    /// UTF-8 bytes of `Source`, `DetailType` and `Detail` (there are no `Resources`), as AWS's
    /// "Calculating PutEvents event entry size" counts them.
    fn size(&self, entry: &Entry) -> usize {
        TIME_BYTES + self.source.len() + entry.detail_type.len() + entry.detail.len()
    }

    fn entry(&self, event: &Event) -> Result<Entry, Failure> {
        let payload: Value = serde_json::from_slice(&event.payload)
            .map_err(|_| Failure::permanent("the event payload is not JSON"))?;
        let detail_type = self
            .detail_type
            .render_with_payload(event, &payload)
            .map_err(|e| Failure::permanent(format!("detail_type: {e}")))?;
        check_detail_type(&detail_type)?;
        let record = record::event_record_with_payload(event, payload)?;
        let detail = serde_json::to_string(&record)
            .map_err(|e| Failure::permanent(format!("encoding the detail: {e}")))?;
        let entry = Entry {
            detail_type,
            detail,
            time: event.occurred_at / 1000,
        };
        let size = self.size(&entry);
        if size > MAX_ENTRY_BYTES {
            return Err(Failure::permanent(format!(
                "the entry is {size} bytes (time {TIME_BYTES} + source {} + detail type {} + \
                 detail {}), over EventBridge's limit of {MAX_ENTRY_BYTES} bytes (256 KiB) per \
                 entry; it was not sent",
                self.source.len(),
                entry.detail_type.len(),
                entry.detail.len(),
            )));
        }
        Ok(entry)
    }

    /// The batch's `PutEvents` requests; each request's events are in entry order.
    fn plan(&self, events: &[Event]) -> batch::Plan {
        let entries = events.iter().map(|event| self.entry(event)).collect();
        batch::Plan::new(
            entries,
            |entry| self.size(entry),
            MAX_ENTRIES,
            MAX_REQUEST_BYTES,
            |entries| self.request(entries),
        )
    }

    /// The signed `PutEvents` of `entries`, in order.
    fn request(&self, entries: &[Entry]) -> Result<http::Request, http::Error> {
        let body = PutEvents {
            entries: entries
                .iter()
                .map(|e| PutEventsEntry {
                    event_bus_name: &self.event_bus_name,
                    source: &self.source,
                    detail_type: &e.detail_type,
                    detail: &e.detail,
                    time: e.time,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| http::Error::permanent(format!("encoding the request: {e}")))?;
        let request = http::Request::post(&self.service.url("/"))?
            .timeout(self.timeout)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AWSEvents.PutEvents")
            .body(body);
        self.service.sign(request).map_err(|failure| http::Error {
            retryable: failure.kind == FailureKind::Retryable,
            message: failure.message,
        })
    }
}

/// EventBridge's rule for detail types: 1 to 128 characters.
fn check_detail_type(detail_type: &str) -> Result<(), Failure> {
    if detail_type.is_empty() {
        return Err(Failure::permanent(format!(
            "detail_type rendered empty; EventBridge requires 1 to {MAX_DETAIL_TYPE_CHARS} characters"
        )));
    }
    let chars = detail_type.chars().count();
    if chars > MAX_DETAIL_TYPE_CHARS {
        return Err(Failure::permanent(format!(
            "detail_type rendered {chars} characters; EventBridge requires 1 to {MAX_DETAIL_TYPE_CHARS}"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsAnswer {
    entries: Vec<EntryAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryAnswer {
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// Each entry's outcome from the answer to a `PutEvents` of `count` entries. EventBridge answers
/// `Entries` in the order of the request, one for each.
fn read_answer(response: &http::Response, count: usize) -> Vec<DeliveryResult> {
    let call = aws::BatchCall {
        service: "EventBridge",
        operation: "PutEvents",
        items: "entries",
    };
    aws::entry_answers(
        response,
        count,
        &call,
        |answer: PutEventsAnswer| answer.entries,
        entry_outcome,
    )
}

fn entry_outcome(entry: EntryAnswer, status: u16) -> DeliveryResult {
    // EventBridge's per-entry codes worth another try are ThrottlingException, InternalFailure
    // and InternalException; anything else (e.g. AccessDeniedException, MalformedDetail,
    // NotAuthorizedForSourceException) is taken as final.
    if let Some(code) = entry.error_code.filter(|c| !c.is_empty()) {
        let message = entry.error_message.as_deref();
        return Err(aws::entry_failure(
            &code,
            message,
            "EventBridge refused the entry",
            status,
        ));
    }
    match entry.event_id.filter(|id| !id.is_empty()) {
        Some(event_id) => Ok(Delivered {
            status_code: Some(status),
            response_excerpt: Some(format!("EventId {event_id}")),
        }),
        None => Err(Failure::retryable(
            "EventBridge answered neither an event id nor an error code for this entry",
        )
        .with_status(status)),
    }
}

export_destination!(EventBridge);

#[cfg(test)]
mod tests {
    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:5000";

    fn config(detail_type: Option<&str>) -> Config {
        Config {
            event_bus_name: "orders".to_owned(),
            region: "eu-west-1".to_owned(),
            source: None,
            detail_type: detail_type.map(str::to_owned),
            endpoint: Some(ENDPOINT.to_owned()),
            timeout_ms: 5000,
        }
    }

    fn credential() -> Credential {
        Credential {
            kind: "aws_access_key".to_owned(),
            secret: r#"{"access_key_id":"AKIDEXAMPLE","secret_access_key":"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}"#.to_owned(),
        }
    }

    fn open(detail_type: Option<&str>) -> EventBridge {
        EventBridge::open(config(detail_type), Some(credential())).unwrap()
    }

    fn request_of(planned: &batch::Planned) -> &http::Request {
        planned.request.as_ref().unwrap()
    }

    fn body_of(request: &http::Request) -> Value {
        serde_json::from_slice(request.body_bytes()).unwrap()
    }

    /// Each entry's detail type and detail.
    fn entries_of(request: &http::Request) -> Vec<(String, String)> {
        body_of(request)["Entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["DetailType"].as_str().unwrap().to_owned(),
                    e["Detail"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn builds_a_signed_put_events() {
        let eventbridge = open(None);
        let plan =
            eventbridge.plan(&[event("evt_1", json!({ "a": 1 })), event("evt_2", json!([]))]);
        assert!(plan.results.iter().all(Option::is_none));
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 1]);
        let request = request_of(&plan.requests[0]);
        assert_eq!(request.method(), "POST");
        assert_eq!(request.url(), "http://127.0.0.1:5000/");
        assert_eq!(
            request.header_value("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert_eq!(
            request.header_value("x-amz-target"),
            Some("AWSEvents.PutEvents")
        );
        let authorization = request.header_value("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(authorization.contains("/eu-west-1/events/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="));
        assert!(request.header_value("x-amz-date").is_some());
        assert_eq!(
            std::str::from_utf8(request.body_bytes()).unwrap(),
            concat!(
                r#"{"Entries":["#,
                r#"{"EventBusName":"orders","Source":"pushrail","DetailType":"order.created","Detail":"{\"id\":\"evt_1\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":{\"a\":1},\"type\":\"order.created\"}","Time":1772874300},"#,
                r#"{"EventBusName":"orders","Source":"pushrail","DetailType":"order.created","Detail":"{\"id\":\"evt_2\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":[],\"type\":\"order.created\"}","Time":1772874300}]}"#
            )
        );
        // Each detail is the SDK's event record, so a consumer reads the event id from it.
        let entries = entries_of(request);
        let detail: Value = serde_json::from_str(&entries[0].1).unwrap();
        assert_eq!(
            detail,
            record::event_record(&event("evt_1", json!({ "a": 1 }))).unwrap()
        );
        assert_eq!(detail["id"], "evt_1");
    }

    #[test]
    fn goes_to_the_regional_endpoint_by_default() {
        let mut config = config(None);
        config.endpoint = None;
        let eventbridge = EventBridge::open(config, Some(credential())).unwrap();
        let plan = eventbridge.plan(&[event("evt_1", json!({}))]);
        assert_eq!(
            request_of(&plan.requests[0]).url(),
            "https://events.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn source_and_bus_come_from_the_config() {
        let mut config = config(None);
        config.source = Some("com.example.orders".to_owned());
        config.event_bus_name = "arn:aws:events:eu-west-1:123456789012:event-bus/orders".to_owned();
        let eventbridge = EventBridge::open(config, Some(credential())).unwrap();
        let plan = eventbridge.plan(&[event("evt_1", json!({}))]);
        let body = body_of(request_of(&plan.requests[0]));
        assert_eq!(body["Entries"][0]["Source"], "com.example.orders");
        assert_eq!(
            body["Entries"][0]["EventBusName"],
            "arn:aws:events:eu-west-1:123456789012:event-bus/orders"
        );
    }

    #[test]
    fn detail_types_come_from_the_template() {
        let eventbridge = open(Some("Order {{payload.order.state}}"));
        let plan = eventbridge.plan(&[
            event("evt_1", json!({ "order": { "state": "paid" } })),
            event("evt_2", json!({ "other": true })),
            event("evt_3", json!({ "order": { "state": "x".repeat(123) } })),
            // 128 characters in 250 bytes: EventBridge counts characters.
            event("evt_4", json!({ "order": { "state": "é".repeat(122) } })),
        ]);
        assert!(plan.results[0].is_none());
        // Events whose detail type cannot be made fail alone, before anything is sent.
        let missing = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(missing.kind, FailureKind::Permanent);
        assert!(
            missing.message.starts_with("detail_type: "),
            "{}",
            missing.message
        );
        assert!(
            missing.message.contains("order.state"),
            "{}",
            missing.message
        );
        let long = plan.results[2].clone().unwrap().unwrap_err();
        assert_eq!(long.kind, FailureKind::Permanent);
        assert_eq!(
            long.message,
            "detail_type rendered 129 characters; EventBridge requires 1 to 128"
        );
        assert!(plan.results[3].is_none());
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 3]);
        let types = entries_of(request_of(&plan.requests[0]))
            .into_iter()
            .map(|(detail_type, _)| detail_type)
            .collect::<Vec<_>>();
        assert_eq!(types[0], "Order paid");
        assert_eq!(types[1].chars().count(), 128);

        // A detail type that renders empty fails alone.
        let eventbridge = open(Some("{{payload.kind}}"));
        let plan = eventbridge.plan(&[
            event("evt_1", json!({ "kind": "" })),
            event("evt_2", json!({ "kind": "k" })),
        ]);
        let empty = plan.results[0].clone().unwrap().unwrap_err();
        assert_eq!(empty.kind, FailureKind::Permanent);
        assert!(
            empty.message.contains("rendered empty"),
            "{}",
            empty.message
        );
        assert_eq!(plan.requests[0].events, [1]);
    }

    #[test]
    fn a_payload_that_is_not_json_fails_alone() {
        let eventbridge = open(None);
        let mut bad = event("evt_2", json!({}));
        bad.payload = b"{nope".to_vec();
        let plan = eventbridge.plan(&[event("evt_1", json!({})), bad]);
        let failure = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert_eq!(failure.message, "the event payload is not JSON");
        assert_eq!(plan.requests[0].events, [0]);
    }

    #[test]
    fn an_oversized_entry_fails_alone_and_is_not_sent() {
        let eventbridge = open(None);
        // The entry's size without the filler string, to build entries of exact sizes.
        let base = eventbridge.size(
            &eventbridge
                .entry(&event("evt_0", json!({ "big": "" })))
                .unwrap(),
        );
        let sized = |id: &str, bytes: usize| event(id, json!({ "big": "x".repeat(bytes - base) }));
        let plan = eventbridge.plan(&[
            sized("evt_0", 1000),
            sized("evt_1", MAX_ENTRY_BYTES + 1),
            sized("evt_2", MAX_ENTRY_BYTES),
        ]);
        assert!(plan.results[0].is_none());
        let over = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(over.kind, FailureKind::Permanent);
        assert_eq!(
            over.message,
            format!(
                "the entry is 262145 bytes (time 14 + source 8 + detail type 13 + detail {}), \
                 over EventBridge's limit of 262144 bytes (256 KiB) per entry; it was not sent",
                262_145 - 14 - 8 - 13
            )
        );
        // Exactly at the limit: sent, alone (the first one no longer fits beside it).
        assert!(plan.results[2].is_none());
        assert_eq!(plan.requests.len(), 2);
        assert_eq!(plan.requests[0].events, [0]);
        assert_eq!(plan.requests[1].events, [2]);
        let entries = entries_of(request_of(&plan.requests[1]));
        assert_eq!(
            14 + "pushrail".len() + entries[0].0.len() + entries[0].1.len(),
            MAX_ENTRY_BYTES
        );
    }

    #[test]
    fn many_events_go_in_requests_of_10() {
        let eventbridge = open(None);
        let events = (0..21)
            .map(|i| event(&format!("evt_{i}"), json!({ "i": i })))
            .collect::<Vec<_>>();
        let plan = eventbridge.plan(&events);
        let counts = plan
            .requests
            .iter()
            .map(|r| r.events.len())
            .collect::<Vec<_>>();
        assert_eq!(counts, [10, 10, 1]);
        assert_eq!(plan.requests[1].events[0], 10);
        let entries = entries_of(request_of(&plan.requests[2]));
        let detail: Value = serde_json::from_str(&entries[0].1).unwrap();
        assert_eq!(detail["id"], "evt_20");
    }

    #[test]
    fn large_entries_go_in_requests_of_at_most_256_kib() {
        let eventbridge = open(None);
        let big = "x".repeat(100 * 1024);
        let events = (0..5)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect::<Vec<_>>();
        let plan = eventbridge.plan(&events);
        let groups = plan
            .requests
            .iter()
            .map(|r| r.events.clone())
            .collect::<Vec<_>>();
        // Two entries of 100 KiB fit in 256 KiB, a third does not.
        assert_eq!(groups, [vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn reads_each_entrys_outcome() {
        let answer = response(
            200,
            &[],
            r#"{
                "FailedEntryCount": 4,
                "Entries": [
                    {"EventId": "11710aed-b79e-4468-a20b-bb3c0c3b4860"},
                    {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded."},
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."},
                    {"ErrorCode": "InternalException", "ErrorMessage": "Internal error."},
                    {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."},
                    {"EventId": "d804d26a-88db-4b66-9eaf-9a11c708ae82"},
                    {}
                ]
            }"#,
        );
        let outcomes = read_answer(&answer, 7);
        let delivered = outcomes[0].clone().unwrap();
        assert_eq!(delivered.status_code, Some(200));
        assert_eq!(
            delivered.response_excerpt.as_deref(),
            Some("EventId 11710aed-b79e-4468-a20b-bb3c0c3b4860")
        );
        let throttled = outcomes[1].clone().unwrap_err();
        assert_eq!(throttled.kind, FailureKind::Retryable);
        assert_eq!(throttled.message, "ThrottlingException: Rate exceeded.");
        assert_eq!(throttled.status_code, Some(200));
        let internal = outcomes[2].clone().unwrap_err();
        assert_eq!(internal.kind, FailureKind::Retryable);
        assert_eq!(
            internal.message,
            "InternalFailure: Internal service failure."
        );
        assert_eq!(
            outcomes[3].clone().unwrap_err().kind,
            FailureKind::Retryable
        );
        let refused = outcomes[4].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert_eq!(refused.message, "MalformedDetail: Detail is malformed.");
        assert_eq!(
            outcomes[5].clone().unwrap().response_excerpt.as_deref(),
            Some("EventId d804d26a-88db-4b66-9eaf-9a11c708ae82")
        );
        // Neither an event id nor an error: retryable.
        assert_eq!(
            outcomes[6].clone().unwrap_err().kind,
            FailureKind::Retryable
        );
    }

    #[test]
    fn an_answer_that_does_not_match_the_request_is_retryable() {
        // One answer for two entries: positions cannot be trusted.
        let short = response(
            200,
            &[],
            r#"{"FailedEntryCount":0,"Entries":[{"EventId":"1"}]}"#,
        );
        let outcomes = read_answer(&short, 2);
        assert_eq!(outcomes.len(), 2);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Retryable);
            assert_eq!(
                failure.message,
                "EventBridge answered for 1 entries of the 2 sent"
            );
        }
        let outcomes = read_answer(&response(200, &[], "<html>"), 2);
        assert!(outcomes
            .iter()
            .all(|o| o.clone().unwrap_err().kind == FailureKind::Retryable));
    }

    #[test]
    fn a_refused_request_fails_each_of_its_events() {
        let missing = response(
            400,
            &[("x-amzn-errortype", "ResourceNotFoundException:")],
            r#"{"__type":"ResourceNotFoundException","message":"Event bus orders does not exist."}"#,
        );
        let outcomes = read_answer(&missing, 3);
        assert_eq!(outcomes.len(), 3);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert_eq!(
                failure.message,
                "ResourceNotFoundException: Event bus orders does not exist. (HTTP 400)"
            );
            assert_eq!(failure.status_code, Some(400));
        }

        let signature = response(
            400,
            &[],
            r#"{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match the signature you provided."}"#,
        );
        let failure = read_answer(&signature, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert!(failure.message.starts_with("InvalidSignatureException: "));
        assert!(!failure.message.contains("EXAMPLEKEY"));

        let throttled = response(
            400,
            &[("retry-after", "2")],
            r#"{"__type":"ThrottlingException","message":"Rate exceeded."}"#,
        );
        let failure = read_answer(&throttled, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.retry_after_ms, Some(2000));

        let unavailable = response(503, &[], "");
        let failure = read_answer(&unavailable, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.message, "HTTP 503");
    }

    #[test]
    fn finishes_in_event_order() {
        let eventbridge = open(None);
        let mut bad = event("evt_1", json!({}));
        bad.payload = b"x".to_vec();
        let mut events = (0..12)
            .map(|i| event(&format!("evt_{i}"), json!({ "i": i })))
            .collect::<Vec<_>>();
        events[1] = bad;
        let plan = eventbridge.plan(&events);
        assert_eq!(plan.requests.len(), 2);
        assert_eq!(plan.requests[0].events, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(plan.requests[1].events, [11]);
        let mut answers = (0..10)
            .map(|i| json!({ "EventId": format!("id-{i}") }))
            .collect::<Vec<_>>();
        answers[2] = json!({ "ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded" });
        let results = plan.finish(
            vec![
                Ok(response(
                    200,
                    &[],
                    &json!({ "FailedEntryCount": 1, "Entries": answers }).to_string(),
                )),
                Err(http::Error::retryable("connection refused")),
            ],
            read_answer,
        );
        assert_eq!(results.len(), 12);
        assert!(results[0].is_ok());
        assert_eq!(results[1].clone().unwrap_err().kind, FailureKind::Permanent);
        assert!(results[2].is_ok());
        // The third entry of the request is the fourth event.
        assert_eq!(results[3].clone().unwrap_err().kind, FailureKind::Retryable);
        assert!(results[4].is_ok());
        assert_eq!(
            results[10].clone().unwrap().response_excerpt.as_deref(),
            Some("EventId id-9")
        );
        let refused = results[11].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Retryable);
        assert_eq!(refused.message, "connection refused");
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            EventBridge::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config(Some("{{event.type}}-{{payload.a}}"))).is_empty());
        assert!(fields(&config(None)).is_empty());
        let mut bad = config(Some("{{event.nope}}"));
        bad.event_bus_name = "orders bus".to_owned();
        bad.region = "EU WEST".to_owned();
        bad.endpoint = Some("127.0.0.1:5000".to_owned());
        bad.source = Some("aws.orders".to_owned());
        assert_eq!(
            fields(&bad),
            [
                "event_bus_name",
                "region",
                "endpoint",
                "source",
                "detail_type"
            ]
        );
        let mut other = config(None);
        other.event_bus_name = "b".repeat(257);
        assert_eq!(fields(&other), ["event_bus_name"]);
        other.event_bus_name = "aws.partner/example.com/123/orders".to_owned();
        assert!(fields(&other).is_empty());
        other.event_bus_name = "arn:aws:events:eu-west-1:123456789012:rule/x".to_owned();
        assert_eq!(fields(&other), ["event_bus_name"]);
        other.event_bus_name = "default".to_owned();
        other.source = Some(String::new());
        assert_eq!(fields(&other), ["source"]);
        other.source = Some("com.example".to_owned());
        assert!(fields(&other).is_empty());
    }

    #[test]
    fn reads_the_config_json() {
        let config: Config =
            serde_json::from_str(r#"{"event_bus_name":"orders","region":"us-east-1"}"#).unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert!(config.source.is_none());
        assert!(config.detail_type.is_none());
        assert!(serde_json::from_str::<Config>(
            r#"{"event_bus_name":"orders","region":"us-east-1","bus":"x"}"#
        )
        .is_err());
        let eventbridge = EventBridge::open(config, Some(credential())).unwrap();
        assert_eq!(eventbridge.timeout, Duration::from_secs(10));
        assert_eq!(eventbridge.source, "pushrail");
        assert_eq!(eventbridge.service.name(), "events");
        assert_eq!(eventbridge.service.region(), "us-east-1");
    }

    #[test]
    fn opening_needs_an_access_key() {
        assert!(EventBridge::open(config(None), None).is_err());
        let basic = Credential {
            kind: "basic".to_owned(),
            secret: r#"{"username":"u","password":"p"}"#.to_owned(),
        };
        assert!(EventBridge::open(config(None), Some(basic)).is_err());
        let mut bad = config(Some("{{nope}}"));
        assert!(EventBridge::open(bad, Some(credential())).is_err());
        bad = config(None);
        bad.event_bus_name = "a b".to_owned();
        assert!(EventBridge::open(bad, Some(credential())).is_err());
        bad = config(None);
        bad.source = Some("aws.s3".to_owned());
        assert!(EventBridge::open(bad, Some(credential())).is_err());
    }

    #[test]
    fn describes_itself() {
        let info = EventBridge::info();
        let text = format!("{info:?}");
        assert!(text.contains("aws_access_key"));
        assert!(text.contains("event_bus_name"));
        assert!(text.contains("detail_type"));
        assert!(text.contains("max_batch_size: 10"));
    }
}

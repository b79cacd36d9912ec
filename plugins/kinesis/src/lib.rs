//! The `kinesis` destination: each batch goes to one Amazon Kinesis data stream with
//! `PutRecords` (JSON 1.1 protocol, SigV4-signed by the SDK's AWS layer). Each event is one
//! record whose data is the event record `{"id", "type", "occurred_at", "payload"}` and a
//! newline, with a partition key from a template (default the event id). Kinesis answers for each
//! record, so each event gets its own outcome. Kinesis has no deduplication: a consumer reads the
//! event id from the record to drop a record written twice.

use std::time::Duration;

use base64::Engine as _;
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{aws, batch, record, settings};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Records in one `PutRecords` (Kinesis's limit).
const MAX_RECORDS: usize = 500;
/// Bytes of one `PutRecords`: the records' data (before base64) and partition keys.
const MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;
/// Bytes of one record, its data (before base64) and partition key: a stream's default maximum
/// record size.
const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Kinesis's limit on a partition key, in Unicode characters.
const MAX_PARTITION_KEY_CHARS: usize = 256;
/// Kinesis's limit on a stream name.
const MAX_STREAM_NAME_CHARS: usize = 128;
/// The partition key when `partition_key` is not set.
const DEFAULT_PARTITION_KEY: &str = "{{event.id}}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    stream_name: String,
    region: String,
    #[serde(default)]
    partition_key: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and the signing service. Kinesis is plain HTTPS
/// through the host, so there is no connection to keep.
struct Kinesis {
    stream_name: String,
    partition_key: Template,
    service: aws::Service,
    timeout: Duration,
}

impl Destination for Kinesis {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "kinesis",
            "Amazon Kinesis Data Streams",
            "Writes each event as a record to a Kinesis data stream (PutRecords), with a partition key from a template",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["stream_name", "region"],
            "additionalProperties": false,
            "properties": {
                "stream_name": {
                    "type": "string", "title": "Stream name", "pattern": "^[a-zA-Z0-9_.-]+$",
                    "minLength": 1, "maxLength": MAX_STREAM_NAME_CHARS,
                    "description": "The data stream's name, e.g. orders."
                },
                "region": aws::region_schema("The stream's"),
                "partition_key": {
                    "type": "string", "title": "Partition key", "minLength": 1, "maxLength": 1024,
                    "default": DEFAULT_PARTITION_KEY,
                    "description": "Template of each record's partition key ({{event.id}}, {{event.type}}, {{payload.a.b}}); records with the same key go to the same shard, in order. It must render to 1 to 256 characters. Default: the event id."
                },
                "endpoint": aws::endpoint_schema(
                    "The Kinesis service's base URL, for local peers and private endpoints; default https://kinesis.<region>.amazonaws.com."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(aws::CREDENTIAL_KINDS, aws::credential_schema(), true)
        .max_batch_size(MAX_RECORDS as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = check_stream_name(&config.stream_name) {
            errors.push(FieldError::new("stream_name", message));
        }
        errors.extend(aws::validate(&config.region, config.endpoint.as_deref()));
        if let Some(template) = &config.partition_key {
            if let Err(e) = Template::parse(template) {
                errors.push(FieldError::new("partition_key", e.0));
            }
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let credentials = aws::Credentials::from_credential(credential.as_ref())?;
        check_stream_name(&config.stream_name)
            .map_err(|m| Failure::permanent(format!("stream_name {m}")))?;
        let partition_key = Template::parse(
            config
                .partition_key
                .as_deref()
                .unwrap_or(DEFAULT_PARTITION_KEY),
        )
        .map_err(|e| Failure::permanent(format!("partition_key: {e}")))?;
        let service = aws::Service::new(
            "kinesis",
            &config.region,
            config.endpoint.as_deref(),
            credentials,
        )?;
        Ok(Self {
            stream_name: config.stream_name,
            partition_key,
            service,
            timeout: settings::timeout(config.timeout_ms),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        self.plan(events).send(read_answer)
    }
}

/// Kinesis's rule for stream names: 1 to 128 letters, digits, `_`, `.` and `-`.
fn check_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_STREAM_NAME_CHARS {
        return Err(format!("must be 1 to {MAX_STREAM_NAME_CHARS} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err("may only have letters, digits, _, . and - (a stream name, not an ARN)".into());
    }
    Ok(())
}

/// One event as a Kinesis record.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// The event record as JSON and a newline.
    data: Vec<u8>,
    partition_key: String,
}

impl Entry {
    /// The bytes Kinesis counts against its limits: the data (before base64) and the partition
    /// key.
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// The body of a `PutRecords`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecords<'a> {
    stream_name: &'a str,
    records: Vec<PutRecordsEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsEntry<'a> {
    /// Base64, as the JSON protocol carries blobs.
    data: String,
    partition_key: &'a str,
}

impl Kinesis {
    fn entry(&self, event: &Event) -> Result<Entry, Failure> {
        let payload: Value = serde_json::from_slice(&event.payload)
            .map_err(|_| Failure::permanent("the event payload is not JSON"))?;
        let partition_key = self
            .partition_key
            .render_with_payload(event, &payload)
            .map_err(|e| Failure::permanent(format!("partition_key: {e}")))?;
        check_partition_key(&partition_key)?;
        let record = record::event_record_with_payload(event, payload)?;
        let mut data = serde_json::to_vec(&record)
            .map_err(|e| Failure::permanent(format!("encoding the record: {e}")))?;
        data.push(b'\n');
        let entry = Entry {
            data,
            partition_key,
        };
        if entry.size() > MAX_RECORD_BYTES {
            return Err(Failure::permanent(format!(
                "the record is {} bytes (data {} + partition key {}), over Kinesis's limit of \
                 {MAX_RECORD_BYTES} bytes (1 MiB) per record; it was not sent",
                entry.size(),
                entry.data.len(),
                entry.partition_key.len(),
            )));
        }
        Ok(entry)
    }

    /// The batch's `PutRecords` requests; each request's events are in record order.
    fn plan(&self, events: &[Event]) -> batch::Plan {
        let entries = events.iter().map(|event| self.entry(event)).collect();
        batch::Plan::new(
            entries,
            Entry::size,
            MAX_RECORDS,
            MAX_REQUEST_BYTES,
            |entries| self.request(entries),
        )
    }

    /// The signed `PutRecords` of `entries`, in order.
    fn request(&self, entries: &[Entry]) -> Result<http::Request, http::Error> {
        let base64 = base64::engine::general_purpose::STANDARD;
        let body = PutRecords {
            stream_name: &self.stream_name,
            records: entries
                .iter()
                .map(|e| PutRecordsEntry {
                    data: base64.encode(&e.data),
                    partition_key: &e.partition_key,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| http::Error::permanent(format!("encoding the request: {e}")))?;
        let request = http::Request::post(&self.service.url("/"))?
            .timeout(self.timeout)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Kinesis_20131202.PutRecords")
            .body(body);
        self.service.sign(request).map_err(|failure| http::Error {
            retryable: failure.kind == FailureKind::Retryable,
            message: failure.message,
        })
    }
}

/// Kinesis's rule for partition keys: 1 to 256 Unicode characters.
fn check_partition_key(key: &str) -> Result<(), Failure> {
    if key.is_empty() {
        return Err(Failure::permanent(format!(
            "partition_key rendered empty; Kinesis requires 1 to {MAX_PARTITION_KEY_CHARS} characters"
        )));
    }
    let chars = key.chars().count();
    if chars > MAX_PARTITION_KEY_CHARS {
        return Err(Failure::permanent(format!(
            "partition_key rendered {chars} characters; Kinesis requires 1 to {MAX_PARTITION_KEY_CHARS}"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsAnswer {
    records: Vec<RecordAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordAnswer {
    #[serde(default)]
    sequence_number: Option<String>,
    #[serde(default)]
    shard_id: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// Each record's outcome from the answer to a `PutRecords` of `count` records. Kinesis answers
/// `Records` in the order of the request, one for each.
fn read_answer(response: &http::Response, count: usize) -> Vec<DeliveryResult> {
    let call = aws::BatchCall {
        service: "Kinesis",
        operation: "PutRecords",
        items: "records",
    };
    aws::entry_answers(
        response,
        count,
        &call,
        |answer: PutRecordsAnswer| answer.records,
        record_outcome,
    )
}

fn record_outcome(record: RecordAnswer, status: u16) -> DeliveryResult {
    // Kinesis names two per-record codes, ProvisionedThroughputExceededException and
    // InternalFailure, both worth another try; anything else is taken as final.
    if let Some(code) = record.error_code.filter(|c| !c.is_empty()) {
        let message = record.error_message.as_deref();
        return Err(aws::entry_failure(
            &code,
            message,
            "Kinesis refused the record",
            status,
        ));
    }
    match record.sequence_number {
        Some(sequence) => Ok(Delivered {
            status_code: Some(status),
            response_excerpt: Some(format!(
                "ShardId {}, SequenceNumber {sequence}",
                record.shard_id.as_deref().unwrap_or("(none)")
            )),
        }),
        None => Err(Failure::retryable(
            "Kinesis answered neither a sequence number nor an error code for this record",
        )
        .with_status(status)),
    }
}

export_destination!(Kinesis);

#[cfg(test)]
mod tests {
    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:5000";

    fn config(partition_key: Option<&str>) -> Config {
        Config {
            stream_name: "orders".to_owned(),
            region: "eu-west-1".to_owned(),
            partition_key: partition_key.map(str::to_owned),
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

    fn open(partition_key: Option<&str>) -> Kinesis {
        Kinesis::open(config(partition_key), Some(credential())).unwrap()
    }

    fn body_of(request: &http::Request) -> Value {
        serde_json::from_slice(request.body_bytes()).unwrap()
    }

    fn request_of(planned: &batch::Planned) -> &http::Request {
        planned.request.as_ref().unwrap()
    }

    /// The records of a request: (data decoded, partition key).
    fn records_of(request: &http::Request) -> Vec<(String, String)> {
        body_of(request)["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(r["Data"].as_str().unwrap())
                    .unwrap();
                (
                    String::from_utf8(data).unwrap(),
                    r["PartitionKey"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn builds_a_signed_put_records() {
        let kinesis = open(None);
        let plan = kinesis.plan(&[event("evt_1", json!({ "a": 1 })), event("evt_2", json!([]))]);
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
            Some("Kinesis_20131202.PutRecords")
        );
        let authorization = request.header_value("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(authorization.contains("/eu-west-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="));
        assert!(request.header_value("x-amz-date").is_some());
        let first = "{\"id\":\"evt_1\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":{\"a\":1},\"type\":\"order.created\"}\n";
        let second = "{\"id\":\"evt_2\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":[],\"type\":\"order.created\"}\n";
        let base64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            body_of(request),
            json!({
                "StreamName": "orders",
                "Records": [
                    { "Data": base64.encode(first), "PartitionKey": "evt_1" },
                    { "Data": base64.encode(second), "PartitionKey": "evt_2" }
                ]
            })
        );
        // The exact bytes: standard base64 with padding.
        assert_eq!(
            std::str::from_utf8(request.body_bytes()).unwrap(),
            concat!(
                r#"{"StreamName":"orders","Records":["#,
                r#"{"Data":"eyJpZCI6ImV2dF8xIiwib2NjdXJyZWRfYXQiOiIyMDI2LTAzLTA3VDA5OjA1OjAwLjI1WiIsInBheWxvYWQiOnsiYSI6MX0sInR5cGUiOiJvcmRlci5jcmVhdGVkIn0K","PartitionKey":"evt_1"},"#,
                r#"{"Data":"eyJpZCI6ImV2dF8yIiwib2NjdXJyZWRfYXQiOiIyMDI2LTAzLTA3VDA5OjA1OjAwLjI1WiIsInBheWxvYWQiOltdLCJ0eXBlIjoib3JkZXIuY3JlYXRlZCJ9Cg==","PartitionKey":"evt_2"}]}"#
            )
        );
        // Each record's data is the SDK's event record and a newline.
        let records = records_of(request);
        let line: Value = serde_json::from_str(records[0].0.trim_end()).unwrap();
        assert_eq!(
            line,
            record::event_record(&event("evt_1", json!({ "a": 1 }))).unwrap()
        );
    }

    #[test]
    fn goes_to_the_regional_endpoint_by_default() {
        let mut config = config(None);
        config.endpoint = None;
        let kinesis = Kinesis::open(config, Some(credential())).unwrap();
        let plan = kinesis.plan(&[event("evt_1", json!({}))]);
        assert_eq!(
            request_of(&plan.requests[0]).url(),
            "https://kinesis.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn partition_keys_come_from_the_template() {
        let kinesis = open(Some("order-{{payload.order.id}}"));
        let plan = kinesis.plan(&[
            event("evt_1", json!({ "order": { "id": 7 } })),
            event("evt_2", json!({ "other": true })),
            event("evt_3", json!({ "order": { "id": "x".repeat(251) } })),
            // 256 characters in 506 bytes: Kinesis counts characters.
            event("evt_4", json!({ "order": { "id": "é".repeat(250) } })),
            event("evt_5", json!({ "order": { "id": "c 9" } })),
        ]);
        assert!(plan.results[0].is_none());
        // Events whose key cannot be made fail alone, before anything is sent.
        let missing = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(missing.kind, FailureKind::Permanent);
        assert!(
            missing.message.starts_with("partition_key: "),
            "{}",
            missing.message
        );
        assert!(missing.message.contains("order.id"), "{}", missing.message);
        let long_key = plan.results[2].clone().unwrap().unwrap_err();
        assert_eq!(long_key.kind, FailureKind::Permanent);
        assert_eq!(
            long_key.message,
            "partition_key rendered 257 characters; Kinesis requires 1 to 256"
        );
        assert!(plan.results[3].is_none());
        assert!(plan.results[4].is_none());
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 3, 4]);
        let keys = records_of(request_of(&plan.requests[0]))
            .into_iter()
            .map(|(_, key)| key)
            .collect::<Vec<_>>();
        assert_eq!(keys[0], "order-7");
        assert_eq!(keys[1].chars().count(), 256);
        assert_eq!(keys[2], "order-c 9");

        // A key that renders empty fails alone.
        let kinesis = open(Some("{{payload.key}}"));
        let plan = kinesis.plan(&[
            event("evt_1", json!({ "key": "" })),
            event("evt_2", json!({ "key": "k" })),
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
        let kinesis = open(None);
        let mut bad = event("evt_2", json!({}));
        bad.payload = b"{nope".to_vec();
        let plan = kinesis.plan(&[event("evt_1", json!({})), bad]);
        let failure = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert_eq!(failure.message, "the event payload is not JSON");
        assert_eq!(plan.requests[0].events, [0]);
    }

    #[test]
    fn an_oversized_record_fails_alone_and_is_not_sent() {
        let kinesis = open(None);
        // The record's size without the filler string, to build records of exact sizes.
        let base = kinesis
            .entry(&event("evt_0", json!({ "big": "" })))
            .unwrap()
            .size();
        let sized = |id: &str, bytes: usize| event(id, json!({ "big": "x".repeat(bytes - base) }));
        let plan = kinesis.plan(&[
            sized("evt_0", 1000),
            sized("evt_1", MAX_RECORD_BYTES + 1),
            sized("evt_2", MAX_RECORD_BYTES),
        ]);
        assert!(plan.results[0].is_none());
        let over = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(over.kind, FailureKind::Permanent);
        assert_eq!(
            over.message,
            format!(
                "the record is 1048577 bytes (data {} + partition key 5), over Kinesis's limit of \
                 1048576 bytes (1 MiB) per record; it was not sent",
                1_048_577 - 5
            )
        );
        // Exactly at the limit: sent.
        assert!(plan.results[2].is_none());
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 2]);
        let records = records_of(request_of(&plan.requests[0]));
        assert_eq!(records[1].0.len() + records[1].1.len(), MAX_RECORD_BYTES);
    }

    #[test]
    fn splits_by_count_and_size() {
        let split = |sizes: &[usize], max_records, max_bytes| {
            batch::split(sizes, max_records, max_bytes)
                .into_iter()
                .map(|r| (r.start, r.end))
                .collect::<Vec<_>>()
        };
        assert_eq!(split(&[], 500, 100), []);
        assert_eq!(split(&[1; 500], 500, 1000), [(0, 500)]);
        assert_eq!(
            split(&[1; 1001], 500, 10_000),
            [(0, 500), (500, 1000), (1000, 1001)]
        );
        assert_eq!(
            split(&[40, 40, 40, 10, 100], 10, 100),
            [(0, 2), (2, 4), (4, 5)]
        );
        // Exactly full, then the next one starts a request.
        assert_eq!(split(&[50, 50, 1], 10, 100), [(0, 2), (2, 3)]);
        // Larger than a whole request: alone.
        assert_eq!(split(&[10, 150, 10], 10, 100), [(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn many_events_go_in_requests_of_500() {
        let kinesis = open(None);
        let events = (0..1001)
            .map(|i| event(&format!("evt_{i}"), json!({ "i": i })))
            .collect::<Vec<_>>();
        let plan = kinesis.plan(&events);
        let counts = plan
            .requests
            .iter()
            .map(|r| r.events.len())
            .collect::<Vec<_>>();
        assert_eq!(counts, [500, 500, 1]);
        assert_eq!(plan.requests[1].events[0], 500);
        let records = records_of(request_of(&plan.requests[2]));
        assert_eq!(records[0].1, "evt_1000");
    }

    #[test]
    fn large_records_go_in_requests_of_at_most_5_mib() {
        let kinesis = open(None);
        let big = "x".repeat(900 * 1024);
        let events = (0..12)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect::<Vec<_>>();
        let plan = kinesis.plan(&events);
        assert!(plan.results.iter().all(Option::is_none));
        let groups = plan
            .requests
            .iter()
            .map(|r| r.events.clone())
            .collect::<Vec<_>>();
        assert_eq!(
            groups,
            [
                (0..5).collect::<Vec<_>>(),
                (5..10).collect(),
                (10..12).collect()
            ]
        );
        for planned in &plan.requests {
            let bytes: usize = records_of(request_of(planned))
                .iter()
                .map(|(data, key)| data.len() + key.len())
                .sum();
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
        }
    }

    #[test]
    fn answers_each_record() {
        let answer = response(
            200,
            &[],
            r#"{
                "FailedRecordCount": 3,
                "Records": [
                    {"SequenceNumber": "4959", "ShardId": "shardId-000000000001"},
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard shardId-000000000001 in stream orders under account 123456789012."},
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."},
                    {"ErrorCode": "KMSAccessDeniedException", "ErrorMessage": "no key"},
                    {"SequenceNumber": "4960", "ShardId": "shardId-000000000000"},
                    {}
                ]
            }"#,
        );
        let outcomes = read_answer(&answer, 6);
        let delivered = outcomes[0].clone().unwrap();
        assert_eq!(delivered.status_code, Some(200));
        assert_eq!(
            delivered.response_excerpt.as_deref(),
            Some("ShardId shardId-000000000001, SequenceNumber 4959")
        );
        let throttled = outcomes[1].clone().unwrap_err();
        assert_eq!(throttled.kind, FailureKind::Retryable);
        assert_eq!(
            throttled.message,
            "ProvisionedThroughputExceededException: Rate exceeded for shard shardId-000000000001 in stream orders under account 123456789012."
        );
        let internal = outcomes[2].clone().unwrap_err();
        assert_eq!(internal.kind, FailureKind::Retryable);
        assert_eq!(
            internal.message,
            "InternalFailure: Internal service failure."
        );
        let refused = outcomes[3].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert_eq!(refused.message, "KMSAccessDeniedException: no key");
        assert_eq!(
            outcomes[4].clone().unwrap().response_excerpt.as_deref(),
            Some("ShardId shardId-000000000000, SequenceNumber 4960")
        );
        // Neither a sequence number nor an error: retryable.
        assert_eq!(
            outcomes[5].clone().unwrap_err().kind,
            FailureKind::Retryable
        );
    }

    #[test]
    fn an_answer_that_does_not_match_the_request_is_retryable() {
        // One answer for two records: positions cannot be trusted.
        let short = response(
            200,
            &[],
            r#"{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"s"}]}"#,
        );
        let outcomes = read_answer(&short, 2);
        assert_eq!(outcomes.len(), 2);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Retryable);
            assert_eq!(
                failure.message,
                "Kinesis answered for 1 records of the 2 sent"
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
            r#"{"__type":"ResourceNotFoundException","message":"Stream orders under account 123456789012 not found."}"#,
        );
        let outcomes = read_answer(&missing, 3);
        assert_eq!(outcomes.len(), 3);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert_eq!(
                failure.message,
                "ResourceNotFoundException: Stream orders under account 123456789012 not found. (HTTP 400)"
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

        let too_big = response(
            400,
            &[],
            r#"{"__type":"ValidationException","message":"1 validation error detected: Value at 'records.1.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576"}"#,
        );
        let failure = read_answer(&too_big, 2)[1].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert!(failure.message.starts_with("ValidationException: "));

        let throttled = response(
            400,
            &[("retry-after", "2")],
            r#"{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for stream orders under account 123456789012."}"#,
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
        let kinesis = open(None);
        let mut bad = event("evt_1", json!({}));
        bad.payload = b"x".to_vec();
        let big = "x".repeat(900 * 1024);
        let mut events = (0..6)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect::<Vec<_>>();
        events[1] = bad;
        // Five records of 900 KiB fit in 5 MiB, a sixth does not.
        events.push(event("evt_6", json!({ "big": big })));
        let plan = kinesis.plan(&events);
        assert_eq!(plan.requests.len(), 2);
        assert_eq!(plan.requests[0].events, [0, 2, 3, 4, 5]);
        assert_eq!(plan.requests[1].events, [6]);
        let results = plan.finish(
            vec![
                Ok(response(
                    200,
                    &[],
                    r#"{"FailedRecordCount":1,"Records":[
                        {"SequenceNumber":"1","ShardId":"s0"},
                        {"SequenceNumber":"2","ShardId":"s1"},
                        {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"},
                        {"SequenceNumber":"3","ShardId":"s0"},
                        {"SequenceNumber":"4","ShardId":"s1"}
                    ]}"#,
                )),
                Err(http::Error::retryable("connection refused")),
            ],
            read_answer,
        );
        assert_eq!(results.len(), 7);
        assert!(results[0].is_ok());
        assert_eq!(results[1].clone().unwrap_err().kind, FailureKind::Permanent);
        assert!(results[2].is_ok());
        assert_eq!(results[3].clone().unwrap_err().kind, FailureKind::Retryable);
        assert!(results[4].is_ok());
        assert_eq!(
            results[5].clone().unwrap().response_excerpt.as_deref(),
            Some("ShardId s1, SequenceNumber 4")
        );
        let refused = results[6].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Retryable);
        assert_eq!(refused.message, "connection refused");
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            Kinesis::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config(Some("{{event.type}}-{{payload.a}}"))).is_empty());
        assert!(fields(&config(None)).is_empty());
        let mut bad = config(Some("{{event.nope}}"));
        bad.stream_name = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders".to_owned();
        bad.region = "EU WEST".to_owned();
        bad.endpoint = Some("127.0.0.1:5000".to_owned());
        assert_eq!(
            fields(&bad),
            ["stream_name", "region", "endpoint", "partition_key"]
        );
        let mut long = config(None);
        long.stream_name = "s".repeat(129);
        assert_eq!(fields(&long), ["stream_name"]);
        long.stream_name = "a.b_c-D9".to_owned();
        assert!(fields(&long).is_empty());
        long.stream_name = String::new();
        assert_eq!(fields(&long), ["stream_name"]);
    }

    #[test]
    fn reads_the_config_json() {
        let config: Config =
            serde_json::from_str(r#"{"stream_name":"orders","region":"us-east-1"}"#).unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert!(config.partition_key.is_none());
        assert!(serde_json::from_str::<Config>(
            r#"{"stream_name":"orders","region":"us-east-1","stream":"x"}"#
        )
        .is_err());
        let kinesis = Kinesis::open(config, Some(credential())).unwrap();
        assert_eq!(kinesis.timeout, Duration::from_secs(10));
        assert_eq!(kinesis.service.name(), "kinesis");
        assert_eq!(kinesis.service.region(), "us-east-1");
    }

    #[test]
    fn opening_needs_an_access_key() {
        assert!(Kinesis::open(config(None), None).is_err());
        let basic = Credential {
            kind: "basic".to_owned(),
            secret: r#"{"username":"u","password":"p"}"#.to_owned(),
        };
        assert!(Kinesis::open(config(None), Some(basic)).is_err());
        let mut bad = config(Some("{{nope}}"));
        assert!(Kinesis::open(bad, Some(credential())).is_err());
        bad = config(None);
        bad.stream_name = "a/b".to_owned();
        assert!(Kinesis::open(bad, Some(credential())).is_err());
    }

    #[test]
    fn describes_itself() {
        let info = Kinesis::info();
        let text = format!("{info:?}");
        assert!(text.contains("aws_access_key"));
        assert!(text.contains("stream_name"));
        assert!(text.contains("partition_key"));
        assert!(text.contains("max_batch_size: 500"));
    }
}

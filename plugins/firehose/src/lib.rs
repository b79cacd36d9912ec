//! The `firehose` destination: each batch goes to one Amazon Data Firehose stream with
//! `PutRecordBatch` (JSON 1.1 protocol, SigV4-signed by the SDK's AWS layer). Each event is one
//! record whose data is the event record `{"id", "type", "occurred_at", "payload"}` and a newline,
//! so the objects Firehose writes (S3, ...) are NDJSON. Firehose answers for each record, so each
//! event gets its own outcome. Firehose has no deduplication: a consumer reads the event id from
//! the line to drop a record written twice.

use std::time::Duration;

use base64::Engine as _;
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::{aws, batch, record, settings};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Records in one `PutRecordBatch` (Firehose's limit).
const MAX_RECORDS: usize = 500;
/// Bytes of one `PutRecordBatch` request: Firehose's 4 MiB "for the entire request".
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// The request's bytes around its records: `{"DeliveryStreamName":"…","Records":[]}` with the
/// longest name, rounded up.
const ENVELOPE_BYTES: usize = 128;
/// The JSON around one record's base64 data in the request: `{"Data":""}` and a comma.
const RECORD_JSON_BYTES: usize = 12;
/// Bytes of one record's data, before base64: Firehose's 1,000 KiB.
const MAX_RECORD_BYTES: usize = 1000 * 1024;
/// Firehose's limit on a stream name.
const MAX_STREAM_NAME_CHARS: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    delivery_stream_name: String,
    region: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and the signing service. Firehose is plain HTTPS
/// through the host, so there is no connection to keep.
struct Firehose {
    delivery_stream_name: String,
    service: aws::Service,
    timeout: Duration,
}

impl Destination for Firehose {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "firehose",
            "Amazon Data Firehose",
            "Writes each event as a newline-terminated JSON record to a Firehose stream (PutRecordBatch), so its S3 objects are NDJSON",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["delivery_stream_name", "region"],
            "additionalProperties": false,
            "properties": {
                "delivery_stream_name": {
                    "type": "string", "title": "Firehose stream name", "pattern": "^[a-zA-Z0-9_.-]+$",
                    "minLength": 1, "maxLength": MAX_STREAM_NAME_CHARS,
                    "description": "The Firehose stream's name (a Direct PUT stream), e.g. orders-to-s3."
                },
                "region": aws::region_schema("The stream's"),
                "endpoint": aws::endpoint_schema(
                    "The Firehose service's base URL, for local peers and private endpoints; default https://firehose.<region>.amazonaws.com."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(aws::CREDENTIAL_KINDS, aws::credential_schema(), true)
        .max_batch_size(MAX_RECORDS as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = check_stream_name(&config.delivery_stream_name) {
            errors.push(FieldError::new("delivery_stream_name", message));
        }
        errors.extend(aws::validate(&config.region, config.endpoint.as_deref()));
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let credentials = aws::Credentials::from_credential(credential.as_ref())?;
        check_stream_name(&config.delivery_stream_name)
            .map_err(|m| Failure::permanent(format!("delivery_stream_name {m}")))?;
        let service = aws::Service::new(
            "firehose",
            &config.region,
            config.endpoint.as_deref(),
            credentials,
        )?;
        Ok(Self {
            delivery_stream_name: config.delivery_stream_name,
            service,
            timeout: settings::timeout(config.timeout_ms),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        self.plan(events).send(read_answer)
    }
}

/// Firehose's rule for stream names: 1 to 64 letters, digits, `_`, `.` and `-`.
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

/// One event as a Firehose record: the event record as JSON and a newline.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    data: Vec<u8>,
}

impl Entry {
    /// The bytes the record takes in the request: its data in base64, in its JSON object.
    fn size(&self) -> usize {
        self.data.len().div_ceil(3) * 4 + RECORD_JSON_BYTES
    }
}

/// The body of a `PutRecordBatch`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatch<'a> {
    delivery_stream_name: &'a str,
    records: Vec<PutRecordBatchEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchEntry {
    /// Base64, as the JSON protocol carries blobs.
    data: String,
}

impl Firehose {
    fn entry(&self, event: &Event) -> Result<Entry, Failure> {
        let record = record::event_record(event)?;
        let mut data = serde_json::to_vec(&record)
            .map_err(|e| Failure::permanent(format!("encoding the record: {e}")))?;
        data.push(b'\n');
        if data.len() > MAX_RECORD_BYTES {
            return Err(Failure::permanent(format!(
                "the record is {} bytes, over Firehose's limit of {MAX_RECORD_BYTES} bytes \
                 (1,000 KiB) per record; it was not sent",
                data.len(),
            )));
        }
        Ok(Entry { data })
    }

    /// The batch's `PutRecordBatch` requests; each request's events are in record order.
    fn plan(&self, events: &[Event]) -> batch::Plan {
        let entries = events.iter().map(|event| self.entry(event)).collect();
        batch::Plan::new(
            entries,
            Entry::size,
            MAX_RECORDS,
            MAX_REQUEST_BYTES - ENVELOPE_BYTES,
            |entries| self.request(entries),
        )
    }

    /// The signed `PutRecordBatch` of `entries`, in order.
    fn request(&self, entries: &[Entry]) -> Result<http::Request, http::Error> {
        let base64 = base64::engine::general_purpose::STANDARD;
        let body = PutRecordBatch {
            delivery_stream_name: &self.delivery_stream_name,
            records: entries
                .iter()
                .map(|e| PutRecordBatchEntry {
                    data: base64.encode(&e.data),
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| http::Error::permanent(format!("encoding the request: {e}")))?;
        let request = http::Request::post(&self.service.url("/"))?
            .timeout(self.timeout)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
            .body(body);
        self.service.sign(request).map_err(|failure| http::Error {
            retryable: failure.kind == FailureKind::Retryable,
            message: failure.message,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchAnswer {
    request_responses: Vec<RecordAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordAnswer {
    #[serde(default)]
    record_id: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// Each record's outcome from the answer to a `PutRecordBatch` of `count` records. Firehose
/// answers `RequestResponses` in the order of the request, one for each.
fn read_answer(response: &http::Response, count: usize) -> Vec<DeliveryResult> {
    let call = aws::BatchCall {
        service: "Firehose",
        operation: "PutRecordBatch",
        items: "records",
    };
    aws::entry_answers(
        response,
        count,
        &call,
        |answer: PutRecordBatchAnswer| answer.request_responses,
        record_outcome,
    )
}

fn record_outcome(record: RecordAnswer, status: u16) -> DeliveryResult {
    // Firehose names two per-record codes, ServiceUnavailableException and InternalFailure, both
    // worth another try; anything else is taken as final.
    if let Some(code) = record.error_code.filter(|c| !c.is_empty()) {
        return Err(aws::entry_failure(
            &code,
            record.error_message.as_deref(),
            "Firehose refused the record",
            status,
        ));
    }
    match record.record_id {
        Some(id) => Ok(Delivered {
            status_code: Some(status),
            response_excerpt: Some(format!("RecordId {id}")),
        }),
        None => Err(Failure::retryable(
            "Firehose answered neither a record id nor an error code for this record",
        )
        .with_status(status)),
    }
}

export_destination!(Firehose);

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:5000";

    fn config() -> Config {
        Config {
            delivery_stream_name: "orders-to-s3".to_owned(),
            region: "eu-west-1".to_owned(),
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

    fn open() -> Firehose {
        Firehose::open(config(), Some(credential())).unwrap()
    }

    fn body_of(request: &http::Request) -> Value {
        serde_json::from_slice(request.body_bytes()).unwrap()
    }

    fn request_of(planned: &batch::Planned) -> &http::Request {
        planned.request.as_ref().unwrap()
    }

    /// The records of a request, their data decoded.
    fn records_of(request: &http::Request) -> Vec<String> {
        body_of(request)["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(r["Data"].as_str().unwrap())
                    .unwrap();
                String::from_utf8(data).unwrap()
            })
            .collect()
    }

    /// An event whose record (with its newline) is exactly `bytes` long.
    fn sized(firehose: &Firehose, id: &str, bytes: usize) -> Event {
        let base = firehose
            .entry(&event(id, json!({ "big": "" })))
            .unwrap()
            .data
            .len();
        event(id, json!({ "big": "x".repeat(bytes - base) }))
    }

    #[test]
    fn builds_a_signed_put_record_batch() {
        let firehose = open();
        let plan = firehose.plan(&[event("evt_1", json!({ "a": 1 })), event("evt_2", json!([]))]);
        assert_eq!(plan.requests.len(), 1);
        let request = request_of(&plan.requests[0]);
        assert_eq!(request.method(), "POST");
        assert_eq!(request.url(), "http://127.0.0.1:5000/");
        assert_eq!(
            request.header_value("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert_eq!(
            request.header_value("x-amz-target"),
            Some("Firehose_20150804.PutRecordBatch")
        );
        let authorization = request.header_value("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(authorization.contains("/eu-west-1/firehose/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="));
        assert!(request.header_value("x-amz-date").is_some());
        // The exact bytes: standard base64 with padding of each record and its newline.
        assert_eq!(
            std::str::from_utf8(request.body_bytes()).unwrap(),
            concat!(
                r#"{"DeliveryStreamName":"orders-to-s3","Records":["#,
                r#"{"Data":"eyJpZCI6ImV2dF8xIiwib2NjdXJyZWRfYXQiOiIyMDI2LTAzLTA3VDA5OjA1OjAwLjI1WiIsInBheWxvYWQiOnsiYSI6MX0sInR5cGUiOiJvcmRlci5jcmVhdGVkIn0K"},"#,
                r#"{"Data":"eyJpZCI6ImV2dF8yIiwib2NjdXJyZWRfYXQiOiIyMDI2LTAzLTA3VDA5OjA1OjAwLjI1WiIsInBheWxvYWQiOltdLCJ0eXBlIjoib3JkZXIuY3JlYXRlZCJ9Cg=="}]}"#
            )
        );
        let records = records_of(request);
        assert_eq!(
            records[0],
            "{\"id\":\"evt_1\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":{\"a\":1},\"type\":\"order.created\"}\n"
        );
        // Each record's data is the SDK's event record and a newline.
        let line: Value = serde_json::from_str(records[1].trim_end()).unwrap();
        assert_eq!(
            line,
            record::event_record(&event("evt_2", json!([]))).unwrap()
        );
        assert!(plan.results.iter().all(Option::is_none));
    }

    #[test]
    fn goes_to_the_regional_endpoint_by_default() {
        let mut config = config();
        config.endpoint = None;
        let firehose = Firehose::open(config, Some(credential())).unwrap();
        let plan = firehose.plan(&[event("evt_1", json!({}))]);
        assert_eq!(
            request_of(&plan.requests[0]).url(),
            "https://firehose.eu-west-1.amazonaws.com/"
        );
    }

    #[test]
    fn a_payload_that_is_not_json_fails_alone() {
        let firehose = open();
        let mut bad = event("evt_2", json!({}));
        bad.payload = b"{nope".to_vec();
        let plan = firehose.plan(&[event("evt_1", json!({})), bad]);
        let failure = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert_eq!(failure.message, "the event payload is not JSON");
        assert_eq!(plan.requests[0].events, [0]);
    }

    #[test]
    fn an_oversized_record_fails_alone_and_is_not_sent() {
        let firehose = open();
        let plan = firehose.plan(&[
            sized(&firehose, "evt_0", 1000),
            sized(&firehose, "evt_1", MAX_RECORD_BYTES + 1),
            sized(&firehose, "evt_2", MAX_RECORD_BYTES),
        ]);
        assert!(plan.results[0].is_none());
        let over = plan.results[1].clone().unwrap().unwrap_err();
        assert_eq!(over.kind, FailureKind::Permanent);
        assert_eq!(
            over.message,
            "the record is 1024001 bytes, over Firehose's limit of 1024000 bytes (1,000 KiB) per \
             record; it was not sent"
        );
        // Exactly at the limit is sent, with its batch mate.
        assert!(plan.results[2].is_none());
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 2]);
        let records = records_of(request_of(&plan.requests[0]));
        assert_eq!(records[1].len(), MAX_RECORD_BYTES);
        assert!(records[1].ends_with("\"}\n"));
    }

    #[test]
    fn counts_each_record_as_it_stands_in_the_request() {
        let firehose = open();
        for bytes in [1000, 1001, 1002] {
            let entry = firehose.entry(&sized(&firehose, "evt_0", bytes)).unwrap();
            let request = firehose.request(std::slice::from_ref(&entry)).unwrap();
            let envelope = r#"{"DeliveryStreamName":"orders-to-s3","Records":[]}"#.len();
            // The record's share of the body, and one comma between records.
            assert_eq!(
                request.body_bytes().len() - envelope + 1,
                entry.size(),
                "{bytes}"
            );
        }
        let longest = format!(
            r#"{{"DeliveryStreamName":"{}","Records":[]}}"#,
            "s".repeat(MAX_STREAM_NAME_CHARS)
        );
        assert!(longest.len() <= ENVELOPE_BYTES);
    }

    #[test]
    fn a_batch_over_4_mib_goes_in_several_requests_each_under_4_mib() {
        let firehose = open();
        // 900 KiB records are 1.2 MiB in base64: three to a request.
        let events = (0..7)
            .map(|i| sized(&firehose, &format!("evt_{i}"), 900 * 1024))
            .collect::<Vec<_>>();
        let plan = firehose.plan(&events);
        let groups = plan
            .requests
            .iter()
            .map(|r| r.events.clone())
            .collect::<Vec<_>>();
        assert_eq!(groups, [vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        for planned in &plan.requests {
            assert!(request_of(planned).body_bytes().len() <= MAX_REQUEST_BYTES);
        }

        // Small records: 500 to a request.
        let events = (0..1001)
            .map(|i| event(&format!("evt_{i}"), json!({ "i": i })))
            .collect::<Vec<_>>();
        let plan = firehose.plan(&events);
        let sizes = plan
            .requests
            .iter()
            .map(|r| r.events.len())
            .collect::<Vec<_>>();
        assert_eq!(sizes, [500, 500, 1]);
        let records = records_of(request_of(&plan.requests[2]));
        assert!(records[0].starts_with("{\"id\":\"evt_1000\""));
    }

    #[test]
    fn answers_each_record() {
        let answer = response(
            200,
            &[],
            r#"{
                "FailedPutCount": 3,
                "Encrypted": false,
                "RequestResponses": [
                    {"RecordId": "r-0"},
                    {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."},
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."},
                    {"ErrorCode": "InvalidArgumentException", "ErrorMessage": "no"},
                    {"RecordId": "r-4"},
                    {}
                ]
            }"#,
        );
        let outcomes = read_answer(&answer, 6);
        let delivered = outcomes[0].clone().unwrap();
        assert_eq!(delivered.status_code, Some(200));
        assert_eq!(delivered.response_excerpt.as_deref(), Some("RecordId r-0"));
        let throttled = outcomes[1].clone().unwrap_err();
        assert_eq!(throttled.kind, FailureKind::Retryable);
        assert_eq!(throttled.message, "ServiceUnavailableException: Slow down.");
        let internal = outcomes[2].clone().unwrap_err();
        assert_eq!(internal.kind, FailureKind::Retryable);
        assert_eq!(
            internal.message,
            "InternalFailure: Internal service failure."
        );
        let refused = outcomes[3].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert_eq!(refused.message, "InvalidArgumentException: no");
        assert_eq!(
            outcomes[4].clone().unwrap().response_excerpt.as_deref(),
            Some("RecordId r-4")
        );
        // Neither a record id nor an error: retryable.
        assert_eq!(
            outcomes[5].clone().unwrap_err().kind,
            FailureKind::Retryable
        );
    }

    #[test]
    fn an_answer_that_does_not_match_the_request_is_retryable() {
        let short = response(
            200,
            &[],
            r#"{"FailedPutCount":0,"RequestResponses":[{"RecordId":"r"}]}"#,
        );
        let outcomes = read_answer(&short, 2);
        assert_eq!(outcomes.len(), 2);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Retryable);
            assert_eq!(
                failure.message,
                "Firehose answered for 1 records of the 2 sent"
            );
        }
        let outcomes = read_answer(&response(200, &[], "<html>"), 2);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Retryable);
            assert_eq!(
                failure.message,
                "Firehose answered with a body that is not a PutRecordBatch result"
            );
        }
    }

    #[test]
    fn a_refused_request_fails_each_of_its_events() {
        let missing = response(
            400,
            &[],
            r#"{"__type":"ResourceNotFoundException","message":"Firehose orders under account 123456789012 not found."}"#,
        );
        let outcomes = read_answer(&missing, 3);
        assert_eq!(outcomes.len(), 3);
        for outcome in &outcomes {
            let failure = outcome.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert_eq!(
                failure.message,
                "ResourceNotFoundException: Firehose orders under account 123456789012 not found. (HTTP 400)"
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

        let kms = response(
            400,
            &[],
            r#"{"__type":"InvalidKMSResourceException","message":"key disabled"}"#,
        );
        let failure = read_answer(&kms, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);

        let unavailable = response(
            400,
            &[("retry-after", "2")],
            r#"{"__type":"ServiceUnavailableException","message":"Slow down."}"#,
        );
        let failure = read_answer(&unavailable, 1)[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.retry_after_ms, Some(2000));

        let failure = read_answer(&response(503, &[], ""), 1)[0]
            .clone()
            .unwrap_err();
        assert_eq!(failure.kind, FailureKind::Retryable);
        assert_eq!(failure.message, "HTTP 503");
    }

    #[test]
    fn finishes_in_event_order() {
        let firehose = open();
        let mut events = (0..5)
            .map(|i| sized(&firehose, &format!("evt_{i}"), 900 * 1024))
            .collect::<Vec<_>>();
        events[1] = sized(&firehose, "evt_1", MAX_RECORD_BYTES + 10);
        let plan = firehose.plan(&events);
        assert_eq!(plan.requests.len(), 2);
        assert_eq!(plan.requests[0].events, [0, 2, 3]);
        assert_eq!(plan.requests[1].events, [4]);
        let results = plan.finish(
            vec![
                Ok(response(
                    200,
                    &[],
                    r#"{"FailedPutCount":1,"RequestResponses":[
                        {"RecordId":"a"},
                        {"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."},
                        {"RecordId":"c"}
                    ]}"#,
                )),
                Err(http::Error::retryable("connection refused")),
            ],
            read_answer,
        );
        assert_eq!(results.len(), 5);
        assert!(results[0].is_ok());
        let over = results[1].clone().unwrap_err();
        assert_eq!(over.kind, FailureKind::Permanent);
        assert!(
            over.message.starts_with("the record is "),
            "{}",
            over.message
        );
        assert_eq!(results[2].clone().unwrap_err().kind, FailureKind::Retryable);
        assert_eq!(
            results[3].clone().unwrap().response_excerpt.as_deref(),
            Some("RecordId c")
        );
        let refused = results[4].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Retryable);
        assert_eq!(refused.message, "connection refused");
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            Firehose::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config()).is_empty());
        let mut bad = config();
        bad.delivery_stream_name =
            "arn:aws:firehose:eu-west-1:123456789012:deliverystream/orders".to_owned();
        bad.region = "EU WEST".to_owned();
        bad.endpoint = Some("127.0.0.1:5000".to_owned());
        assert_eq!(fields(&bad), ["delivery_stream_name", "region", "endpoint"]);
        let mut long = config();
        long.delivery_stream_name = "s".repeat(65);
        assert_eq!(fields(&long), ["delivery_stream_name"]);
        long.delivery_stream_name = "s".repeat(64);
        assert!(fields(&long).is_empty());
        long.delivery_stream_name = "a.b_c-D9".to_owned();
        assert!(fields(&long).is_empty());
        long.delivery_stream_name = String::new();
        assert_eq!(fields(&long), ["delivery_stream_name"]);
    }

    #[test]
    fn reads_the_config_json() {
        let config: Config =
            serde_json::from_str(r#"{"delivery_stream_name":"orders","region":"us-east-1"}"#)
                .unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert!(serde_json::from_str::<Config>(
            r#"{"delivery_stream_name":"orders","region":"us-east-1","stream_name":"x"}"#
        )
        .is_err());
        let firehose = Firehose::open(config, Some(credential())).unwrap();
        assert_eq!(firehose.timeout, Duration::from_secs(10));
        assert_eq!(firehose.service.name(), "firehose");
        assert_eq!(firehose.service.region(), "us-east-1");
    }

    #[test]
    fn opening_needs_an_access_key() {
        assert!(Firehose::open(config(), None).is_err());
        let basic = Credential {
            kind: "basic".to_owned(),
            secret: r#"{"username":"u","password":"p"}"#.to_owned(),
        };
        assert!(Firehose::open(config(), Some(basic)).is_err());
        let mut bad = config();
        bad.delivery_stream_name = "a/b".to_owned();
        assert!(Firehose::open(bad, Some(credential())).is_err());
    }

    #[test]
    fn describes_itself() {
        let info = Firehose::info();
        let text = format!("{info:?}");
        assert!(text.contains("aws_access_key"));
        assert!(text.contains("aws_role"));
        assert!(text.contains("delivery_stream_name"));
        assert!(text.contains("max_batch_size: 500"));
    }
}

//! The `gcs` destination: each batch becomes one object in a Google Cloud Storage bucket, written
//! with the JSON API's media upload (`POST /upload/storage/v1/b/{bucket}/o?uploadType=media`)
//! under the precondition `ifGenerationMatch=0` (create only). The object is NDJSON, one event
//! record `{"id", "type", "occurred_at", "payload"}` per line, gzip-compressed by default. Its name
//! is `object_prefix` (a template), Hive-style hour partitions of the event time unless the prefix
//! places the time itself, and a name derived from the object's event ids: a retried batch finds
//! its own object there (412) instead of adding one. Requests carry an OAuth 2.0 access token of
//! the service account (the SDK's Google layer: JWT-bearer flow, token kept in the session).
//! Events of one batch whose prefixes render differently (another hour, another `{{payload.…}}`
//! value) go to separate objects; each object succeeds or fails as a whole.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pushrail_plugin_sdk::object::{self, Compression, Plan, MAX_EVENTS};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{gcp, settings};
use serde::Deserialize;
use serde_json::json;

/// Cloud Storage's limit on an object name, in UTF-8 bytes.
const MAX_NAME_BYTES: usize = 1024;
/// Longest `object_prefix` accepted, in characters; the rendered name must still fit in 1024
/// bytes.
const MAX_PREFIX_CHARS: usize = 900;
/// The JSON API's endpoint.
const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// The characters an object name keeps as they are in the `name` query parameter: the
/// unreserved ones. Everything else (`/` included) is percent-encoded, UTF-8, upper-case hex.
const NAME_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    bucket: String,
    #[serde(default)]
    object_prefix: String,
    #[serde(default)]
    compression: Compression,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and the service account's access (its token is
/// kept between batches until shortly before it expires).
struct Gcs {
    bucket: String,
    /// How a batch becomes objects: `object_prefix` (with the default partitions when it places
    /// no time itself), the compression, Cloud Storage's rules for a name.
    layout: object::Layout,
    /// The JSON API's base URL, without a trailing `/`.
    endpoint: String,
    auth: gcp::Auth,
    timeout: Duration,
}

impl Destination for Gcs {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "gcs",
            "Google Cloud Storage",
            "Writes each batch as one NDJSON object (gzip by default) to a Cloud Storage bucket, under date partitions, named after its events so a retry never writes a second object",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["bucket"],
            "additionalProperties": false,
            "properties": {
                "bucket": {
                    "type": "string", "title": "Bucket", "pattern": "^[a-z0-9][a-z0-9._-]*[a-z0-9]$",
                    "minLength": 3, "maxLength": 222,
                    "description": "The bucket's name, e.g. acme-events (not a gs:// URL)."
                },
                "object_prefix": {
                    "type": "string", "title": "Object prefix", "maxLength": MAX_PREFIX_CHARS,
                    "default": "",
                    "description": "Text before each object's name, with optional placeholders: {{time.year}}, {{time.month}}, {{time.day}}, {{time.hour}} (the event time, UTC), {{event.type}}, {{payload.a.b}}. Without a {{time.*}} placeholder, Hive-style partitions year=YYYY/month=MM/day=DD/hour=HH/ follow it (after a / when it does not end with one). E.g. events/ or events/{{event.type}}/{{time.year}}/{{time.month}}/{{time.day}}/."
                },
                "compression": {
                    "type": "string", "title": "Compression", "enum": ["gzip", "none"],
                    "default": "gzip",
                    "description": "gzip: objects named .ndjson.gz, stored as gzip files (Content-Type application/gzip); none: .ndjson (application/x-ndjson)."
                },
                "endpoint": gcp::endpoint_schema(
                    "The Cloud Storage JSON API's base URL, for local peers and private endpoints. Default: https://storage.googleapis.com. The token endpoint is the key file's token_uri."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(gcp::CREDENTIAL_KINDS, gcp::credential_schema(), true)
        .max_batch_size(MAX_EVENTS as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = check_bucket(&config.bucket) {
            errors.push(FieldError::new("bucket", message));
        }
        errors.extend(gcp::validate_endpoint(config.endpoint.as_deref()));
        if let Err(message) = name_template(&config.object_prefix) {
            errors.push(FieldError::new("object_prefix", message));
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let account = gcp::ServiceAccount::from_credential(credential.as_ref())?;
        check_bucket(&config.bucket).map_err(|m| Failure::permanent(format!("bucket {m}")))?;
        let object_prefix = name_template(&config.object_prefix)
            .map_err(|m| Failure::permanent(format!("object_prefix {m}")))?;
        let endpoint = gcp::base_url(config.endpoint.as_deref(), DEFAULT_ENDPOINT)?;
        let timeout = settings::timeout(config.timeout_ms);
        Ok(Self {
            bucket: config.bucket,
            layout: object::Layout {
                field: "object_prefix",
                object: "object",
                prefix: object_prefix,
                compression: config.compression,
                check_name,
            },
            endpoint,
            auth: gcp::Auth::new(account, gcp::scopes::DEVSTORAGE_READ_WRITE, timeout),
            timeout,
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let mut plan = self.plan(events);
        let requests = std::mem::take(&mut plan.requests);
        let in_flight = requests.len();
        let answers = self.auth.send_all(requests, in_flight);
        self.finish(plan, answers)
    }
}

/// Cloud Storage's rules for a bucket name: 3 to 63 characters (up to 222 with dots, each
/// dot-separated part at most 63) of lower-case letters, digits, `-`, `_` and `.`, starting and
/// ending with a letter or digit; not an IPv4 address; not starting with `goog` nor containing
/// `google`.
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.starts_with("gs://") {
        return Err("must be the bucket's name, not a gs:// URL".to_owned());
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("may only have lower-case letters, digits, -, _ and .".to_owned());
    }
    let max = if bucket.contains('.') { 222 } else { 63 };
    if !(3..=max).contains(&bucket.len()) {
        return Err(format!(
            "must be 3 to 63 characters (up to 222 with dots), not {}",
            bucket.len()
        ));
    }
    if bucket
        .split('.')
        .any(|part| part.is_empty() || part.len() > 63)
    {
        return Err(
            "must not have an empty part or a part over 63 characters between dots".to_owned(),
        );
    }
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge(bucket.bytes().next()) || !edge(bucket.bytes().last()) {
        return Err("must start and end with a letter or digit".to_owned());
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not be an IP address".to_owned());
    }
    if bucket.starts_with("goog") || bucket.contains("google") {
        return Err(
            "must not start with goog or contain google, which Cloud Storage reserves".to_owned(),
        );
    }
    Ok(())
}

/// The template of every object name's prefix (see [`object::prefix_template`]), or why
/// `object_prefix` cannot be one.
fn name_template(object_prefix: &str) -> Result<Template, String> {
    object::prefix_template(object_prefix, MAX_PREFIX_CHARS, check_name)
}

/// Cloud Storage takes any UTF-8 name of up to 1024 bytes without a carriage return or line
/// feed; this keeps to names every tool lists and reads back as paths: no control characters, no
/// leading `/`, no empty segment (`//`), no `.` or `..` segment, and not under
/// `.well-known/acme-challenge/`, which Cloud Storage refuses.
fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "makes object names of {} bytes, over Cloud Storage's limit of {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("must not have control characters".to_owned());
    }
    if name.starts_with('/') {
        return Err("must not start with /".to_owned());
    }
    if name.starts_with(".well-known/acme-challenge/") {
        return Err("must not start with .well-known/acme-challenge/".to_owned());
    }
    for segment in name.split('/') {
        if segment.is_empty() {
            return Err("must not have an empty segment (//)".to_owned());
        }
        if segment == "." || segment == ".." {
            return Err(format!("must not have a {segment} segment"));
        }
    }
    Ok(())
}

/// What a successful upload answers: the object resource (the fields the log shows).
#[derive(Deserialize)]
struct ObjectResource {
    #[serde(default)]
    generation: Option<String>,
}

impl Gcs {
    /// The batch's objects (see [`object::Layout::plan`]), each written by one upload.
    fn plan(&self, events: &[Event]) -> Plan {
        self.layout
            .plan(events, |object, body| self.request(&object.name, body))
    }

    /// The media upload of `body` as object `name`, created only if no object has that name
    /// (`ifGenerationMatch=0`). The bearer token is added when it is sent.
    fn request(&self, name: &str, body: Vec<u8>) -> Result<http::Request, http::Error> {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}&ifGenerationMatch=0",
            self.endpoint,
            self.bucket,
            utf8_percent_encode(name, NAME_ENCODE)
        );
        Ok(http::Request::post(&url)?
            .timeout(self.timeout)
            .header("content-type", self.layout.compression.content_type())
            .body(body))
    }

    /// One result per event, in order (see [`object::Plan::finish`]).
    fn finish(
        &self,
        plan: Plan,
        answers: Vec<Result<http::Response, Failure>>,
    ) -> Vec<DeliveryResult> {
        plan.finish(answers, |response, object| self.outcome(response, object))
    }

    /// What Cloud Storage's answer to one upload means for each of the object's events.
    fn outcome(&self, response: &http::Response, object: &object::Object) -> DeliveryResult {
        let location = format!("gs://{}/{}", self.bucket, object.name);
        let count = object.events.len();
        if response.is_success() {
            let mut excerpt = format!("{location}, {count} events");
            if let Some(generation) = serde_json::from_slice::<ObjectResource>(&response.body)
                .ok()
                .and_then(|o| o.generation)
            {
                excerpt.push_str(&format!(", generation {generation}"));
            }
            return Ok(Delivered {
                status_code: Some(response.status),
                response_excerpt: Some(excerpt),
            });
        }
        // `ifGenerationMatch=0` failed: an object of this name exists. Its name is derived from
        // these very events in this order, so an earlier attempt wrote it (its answer was lost).
        if response.status == 412 {
            return Ok(Delivered {
                status_code: Some(412),
                response_excerpt: Some(format!(
                    "{location} already exists (written by an earlier attempt of these \
                     {count} events)"
                )),
            });
        }
        let mut failure = gcp::failure(response);
        failure.message.push_str(&format!("; upload {location}"));
        Err(failure)
    }
}

export_destination!(Gcs);

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;
    use serde_json::Value;

    use pushrail_plugin_sdk::fixtures::{event, event_at, response, TIME};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:9023";
    const PRIVATE_KEY: &str = include_str!("../../../plugin-sdk/testdata/gcp-test-key.pem");
    const HOUR_MS: u64 = 3_600_000;

    fn config(object_prefix: &str, compression: Compression) -> Config {
        Config {
            bucket: "acme-events".to_owned(),
            object_prefix: object_prefix.to_owned(),
            compression,
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
                "token_uri": "http://127.0.0.1:9024/token"
            })
            .to_string(),
        }
    }

    fn open(object_prefix: &str, compression: Compression) -> Gcs {
        Gcs::open(config(object_prefix, compression), Some(credential())).unwrap()
    }

    fn request(plan: &Plan, i: usize) -> &http::Request {
        plan.requests[i].as_ref().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
        text
    }

    /// The records of an object's NDJSON text.
    fn lines(text: &str) -> Vec<Value> {
        assert!(text.ends_with('\n'), "every line ends with a newline");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The `name` query parameter of an upload.
    fn name_param(request: &http::Request) -> String {
        let url = url::Url::parse(request.url()).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    #[test]
    fn a_batch_is_one_gzipped_ndjson_upload_created_only_once() {
        let gcs = open("events/", Compression::Gzip);
        let events = [
            event("evt_1", json!({ "a": 1, "s": "Zoë ☕" })),
            event("evt_2", json!([1, "two"])),
            event("evt_3", json!("text")),
        ];
        let plan = gcs.plan(&events);
        assert_eq!(plan.objects.len(), 1);
        assert_eq!(plan.objects[0].events, [0, 1, 2]);
        // Pinned (the SDK's name rule, the same in every store): a change renames every object.
        let name = "events/year=2026/month=03/day=07/hour=09/20260307T090500Z-0e2dbe45be0197e45038a53553fe9028.ndjson.gz";
        assert_eq!(plan.objects[0].name, name);
        let upload = request(&plan, 0);
        assert_eq!(upload.method(), "POST");
        assert_eq!(
            upload.url(),
            format!(
                "{ENDPOINT}/upload/storage/v1/b/acme-events/o?uploadType=media&name=events%2Fyear%3D2026%2Fmonth%3D03%2Fday%3D07%2Fhour%3D09%2F{}&ifGenerationMatch=0",
                object::name(["evt_1", "evt_2", "evt_3"], TIME, Compression::Gzip)
            )
        );
        assert_eq!(name_param(upload), name);
        assert_eq!(
            upload.header_value("content-type"),
            Some("application/gzip")
        );
        assert_eq!(upload.header_value("content-encoding"), None);
        // The token is added when sent, not planned.
        assert_eq!(upload.header_value("authorization"), None);
        let body = upload.body_bytes();
        assert_eq!(&body[..2], [0x1f, 0x8b], "a gzip stream");
        assert_eq!(
            lines(&gunzip(body)),
            [
                json!({"id": "evt_1", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": { "a": 1, "s": "Zoë ☕" }}),
                json!({"id": "evt_2", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": [1, "two"]}),
                json!({"id": "evt_3", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": "text"}),
            ]
        );
        // The same batch makes the same name and bytes.
        let again = gcs.plan(&events);
        assert_eq!(again.objects[0].name, name);
        assert_eq!(request(&again, 0).body_bytes(), body);
    }

    #[test]
    fn names_are_percent_encoded_once_in_the_query() {
        let gcs = open("a b/ü+{{payload.k}}/", Compression::None);
        let plan = gcs.plan(&[event("evt_1", json!({ "k": "x=y&z~-_.%#?" }))]);
        let upload = request(&plan, 0);
        assert!(
            upload
                .url()
                .contains("&name=a%20b%2F%C3%BC%2Bx%3Dy%26z~-_.%25%23%3F%2Fyear%3D2026%2F"),
            "{}",
            upload.url()
        );
        assert!(name_param(upload).starts_with("a b/ü+x=y&z~-_.%#?/year=2026/"));
        assert_eq!(
            upload.header_value("content-type"),
            Some("application/x-ndjson")
        );
        assert_eq!(
            String::from_utf8(upload.body_bytes().to_vec()).unwrap(),
            "{\"id\":\"evt_1\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":{\"k\":\"x=y&z~-_.%#?\"},\"type\":\"order.created\"}\n"
        );
        // Without an endpoint: Google's.
        let mut config = config("", Compression::Gzip);
        config.endpoint = None;
        let gcs = Gcs::open(config, Some(credential())).unwrap();
        let plan = gcs.plan(&[event("evt_1", json!({}))]);
        assert!(request(&plan, 0)
            .url()
            .starts_with("https://storage.googleapis.com/upload/storage/v1/b/acme-events/o?uploadType=media&name=year%3D2026%2F"));
    }

    #[test]
    fn events_of_other_hours_and_prefixes_go_to_their_own_objects() {
        let gcs = open("tenant={{payload.tenant}}/", Compression::Gzip);
        let mut not_json = event("evt_4", json!({}));
        not_json.payload = b"{nope".to_vec();
        let events = [
            event("evt_1", json!({ "tenant": "a" })),
            event_at("evt_2", TIME + HOUR_MS, json!({ "tenant": "a" })),
            event("evt_3", json!({ "other": true })),
            not_json,
            event("evt_5", json!({ "tenant": "a" })),
            event("evt_6", json!({ "tenant": "a/../b" })),
            event("evt_7", json!({ "tenant": "b" })),
        ];
        let plan = gcs.plan(&events);
        let objects: Vec<(String, Vec<usize>)> = plan
            .objects
            .iter()
            .map(|o| {
                (
                    o.name.rsplit_once('/').unwrap().0.to_owned(),
                    o.events.clone(),
                )
            })
            .collect();
        assert_eq!(
            objects,
            [
                (
                    "tenant=a/year=2026/month=03/day=07/hour=09".to_owned(),
                    vec![0, 4]
                ),
                (
                    "tenant=a/year=2026/month=03/day=07/hour=10".to_owned(),
                    vec![1]
                ),
                (
                    "tenant=b/year=2026/month=03/day=07/hour=09".to_owned(),
                    vec![6]
                ),
            ]
        );
        assert!(plan.objects[0].name.ends_with(&object::name(
            ["evt_1", "evt_5"],
            TIME,
            Compression::Gzip
        )));
        let failed = |i: usize| plan.results[i].clone().unwrap().unwrap_err();
        assert_eq!(
            failed(2).message,
            "object_prefix: the payload has no tenant"
        );
        assert_eq!(failed(3).message, "the event payload is not JSON");
        assert!(failed(5).message.contains("must not have a .. segment"));
        for i in [2, 3, 5] {
            assert_eq!(failed(i).kind, FailureKind::Permanent);
        }
        // Answers go back to each object's own events.
        let results = gcs.finish(
            plan,
            vec![
                Ok(response(200, &[], r#"{"generation":"1772874300250000"}"#)),
                Err(Failure::retryable("connection refused")),
            ],
        );
        assert_eq!(results.len(), 7);
        assert!(results[0].is_ok() && results[4].is_ok());
        assert_eq!(
            results[1].clone().unwrap_err().message,
            "connection refused"
        );
        // The third object got no answer at all.
        assert_eq!(results[6].clone().unwrap_err().kind, FailureKind::Retryable);
    }

    #[test]
    fn a_prefix_that_places_the_time_gets_no_default_partitions() {
        let name_of = |prefix: &str| {
            let plan =
                open(prefix, Compression::Gzip).plan(&[event("evt_1", json!({ "tenant": "t-7" }))]);
            plan.objects[0]
                .name
                .rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_owned())
        };
        assert_eq!(
            name_of("raw/{{time.year}}/{{time.month}}/{{time.day}}/"),
            "raw/2026/03/07"
        );
        assert_eq!(
            name_of("events"),
            "events/year=2026/month=03/day=07/hour=09"
        );
        assert_eq!(name_of(""), "year=2026/month=03/day=07/hour=09");
    }

    fn failure_of(response: http::Response) -> Failure {
        let gcs = open("", Compression::Gzip);
        let plan = gcs.plan(&[event("evt_1", json!({})), event("evt_2", json!({}))]);
        let results = gcs.finish(plan, vec![Ok(response)]);
        let first = results[0].clone().unwrap_err();
        assert_eq!(
            results[1].clone().unwrap_err().message,
            first.message,
            "the object fails as a whole"
        );
        first
    }

    fn google_error(code: u16, reason: &str, message: &str) -> String {
        json!({ "error": { "code": code, "message": message,
                           "errors": [{ "message": message, "domain": "global", "reason": reason }] } })
        .to_string()
    }

    #[test]
    fn answers_each_event_of_an_object() {
        let gcs = open("", Compression::Gzip);
        let plan = gcs.plan(&[event("evt_1", json!({})), event("evt_2", json!({}))]);
        let name = plan.objects[0].name.clone();
        let results = gcs.finish(
            plan,
            vec![Ok(response(
                200,
                &[("content-type", "application/json")],
                r#"{"kind":"storage#object","name":"x","bucket":"acme-events","generation":"1772874300250001","size":"120"}"#,
            ))],
        );
        for result in results {
            let delivered = result.unwrap();
            assert_eq!(delivered.status_code, Some(200));
            assert_eq!(
                delivered.response_excerpt.unwrap(),
                format!("gs://acme-events/{name}, 2 events, generation 1772874300250001")
            );
        }
    }

    #[test]
    fn an_object_that_already_exists_was_written_by_an_earlier_attempt() {
        let gcs = open("", Compression::Gzip);
        let plan = gcs.plan(&[event("evt_1", json!({})), event("evt_2", json!({}))]);
        let name = plan.objects[0].name.clone();
        let results = gcs.finish(
            plan,
            vec![Ok(response(
                412,
                &[],
                &google_error(
                    412,
                    "conditionNotMet",
                    "At least one of the pre-conditions you specified did not hold.",
                ),
            ))],
        );
        for result in results {
            let delivered = result.unwrap();
            assert_eq!(delivered.status_code, Some(412));
            assert_eq!(
                delivered.response_excerpt.unwrap(),
                format!("gs://acme-events/{name} already exists (written by an earlier attempt of these 2 events)")
            );
        }
    }

    #[test]
    fn google_errors_are_permanent_or_retryable_with_their_reason() {
        let missing = failure_of(response(
            404,
            &[("content-type", "application/json; charset=UTF-8")],
            &google_error(404, "notFound", "The specified bucket does not exist."),
        ));
        assert_eq!(missing.kind, FailureKind::Permanent);
        assert!(
            missing.message.starts_with(
                "notFound: The specified bucket does not exist. (HTTP 404); upload gs://acme-events/year=2026/"
            ),
            "{}",
            missing.message
        );
        assert_eq!(missing.status_code, Some(404));
        // A bare 404 (as the local emulator answers) still names the reason.
        let bare = failure_of(response(404, &[], ""));
        assert!(
            bare.message
                .starts_with("HTTP 404 (notFound); upload gs://"),
            "{}",
            bare.message
        );
        assert_eq!(bare.kind, FailureKind::Permanent);
        for (status, reason) in [
            (401, "authError"),
            (403, "forbidden"),
            (403, "insufficientPermissions"),
            (400, "invalid"),
        ] {
            let failure = failure_of(response(
                status,
                &[],
                &google_error(status, reason, "refused"),
            ));
            assert_eq!(failure.kind, FailureKind::Permanent, "{reason}");
            assert!(
                failure
                    .message
                    .starts_with(&format!("{reason}: refused (HTTP {status})")),
                "{}",
                failure.message
            );
            assert!(!failure.message.contains("PRIVATE KEY"));
        }
        let slow = failure_of(response(
            429,
            &[("retry-after", "2")],
            &google_error(
                429,
                "rateLimitExceeded",
                "The object exceeded the rate limit.",
            ),
        ));
        assert_eq!(slow.kind, FailureKind::Retryable);
        assert_eq!(slow.retry_after_ms, Some(2000));
        let backend = failure_of(response(
            503,
            &[("retry-after", "1")],
            &google_error(503, "backendError", "Backend Error"),
        ));
        assert_eq!(backend.kind, FailureKind::Retryable);
        assert_eq!(backend.retry_after_ms, Some(1000));
        assert!(backend
            .message
            .starts_with("backendError: Backend Error (HTTP 503); upload gs://"));
        assert_eq!(
            failure_of(response(502, &[], "<html>bad gateway</html>")).kind,
            FailureKind::Retryable
        );
    }

    #[test]
    fn names_keep_to_1024_bytes() {
        let gcs = open("{{payload.k}}/", Compression::Gzip);
        let plan = gcs.plan(&[
            event("evt_1", json!({ "k": "p".repeat(800) })),
            event("evt_2", json!({ "k": "p".repeat(1000) })),
        ]);
        assert!(plan.results[0].is_none());
        assert!(plan.objects[0].name.len() <= MAX_NAME_BYTES);
        let refused = plan.results[1].clone().unwrap().unwrap_err();
        assert!(
            refused
                .message
                .contains("over Cloud Storage's limit of 1024"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            Gcs::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config("", Compression::Gzip)).is_empty());
        assert!(fields(&config(
            "events/{{event.type}}/{{time.year}}/",
            Compression::None
        ))
        .is_empty());
        let mut bad = config("{{event.nope}}", Compression::Gzip);
        bad.bucket = "Acme Events".to_owned();
        bad.endpoint = Some("127.0.0.1:9023".to_owned());
        assert_eq!(fields(&bad), ["bucket", "endpoint", "object_prefix"]);
        for prefix in [
            "/events",
            "a//b",
            "a/../b",
            "./a",
            "a\u{1}b",
            "a\nb",
            "{{payload.x",
            ".well-known/acme-challenge/x",
        ] {
            assert_eq!(
                fields(&config(prefix, Compression::Gzip)),
                ["object_prefix"],
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn bucket_names_follow_cloud_storages_rules() {
        for good in [
            "abc",
            "acme-events",
            "acme_events",
            "events.acme.com",
            "a1-b2.c3",
            &"b".repeat(63),
            &format!("{}.{}", "a".repeat(63), "b".repeat(63)),
        ] {
            assert_eq!(check_bucket(good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            &"b".repeat(64),
            "Acme",
            "-acme",
            "acme_",
            ".acme",
            "acme..events",
            &format!("{}.b", "a".repeat(64)),
            "192.168.5.4",
            "goog-events",
            "my-google-events",
            "gs://acme",
            "acme/events",
        ] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_the_config_json() {
        let config: Config = serde_json::from_str(r#"{"bucket":"acme-events"}"#).unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert_eq!(config.object_prefix, "");
        assert_eq!(config.compression, Compression::Gzip);
        assert!(config.endpoint.is_none());
        let none: Config =
            serde_json::from_str(r#"{"bucket":"acme-events","compression":"none"}"#).unwrap();
        assert_eq!(none.compression, Compression::None);
        for bad in [
            r#"{"bucket":"acme-events","compression":"zstd"}"#,
            r#"{"bucket":"acme-events","key_prefix":"x"}"#,
            r#"{"bucket":"acme-events","region":"eu"}"#,
            r#"{"object_prefix":"x"}"#,
        ] {
            assert!(serde_json::from_str::<Config>(bad).is_err(), "{bad}");
        }
        let gcs = Gcs::open(config, Some(credential())).unwrap();
        assert_eq!(gcs.timeout, Duration::from_secs(10));
        assert_eq!(gcs.endpoint, DEFAULT_ENDPOINT);
    }

    #[test]
    fn opening_needs_a_service_account_and_a_good_config() {
        assert!(Gcs::open(config("", Compression::Gzip), None).is_err());
        let basic = Credential {
            kind: "basic".to_owned(),
            secret: r#"{"username":"u","password":"p"}"#.to_owned(),
        };
        assert!(Gcs::open(config("", Compression::Gzip), Some(basic)).is_err());
        assert!(Gcs::open(config("{{nope}}", Compression::Gzip), Some(credential())).is_err());
        let mut bad = config("", Compression::Gzip);
        bad.bucket = "Bad Bucket".to_owned();
        let failure = Gcs::open(bad, Some(credential())).err().unwrap();
        assert!(
            failure.message.starts_with("bucket "),
            "{}",
            failure.message
        );
        // The token is fetched on the first delivery, not when the session opens.
        let gcs = open("", Compression::Gzip);
        assert_eq!(gcs.auth.tokens_fetched(), 0);
        // The session asks for Cloud Storage's read-write scope, from the key file's token_uri.
        let request = gcs
            .auth
            .account()
            .token_request(
                gcp::scopes::DEVSTORAGE_READ_WRITE,
                1,
                Duration::from_secs(1),
            )
            .unwrap();
        assert_eq!(request.url(), "http://127.0.0.1:9024/token");
        let assertion = url::form_urlencoded::parse(request.body_bytes())
            .find(|(k, _)| k == "assertion")
            .unwrap()
            .1
            .into_owned();
        let claims: gcp::Claims = jsonwebtoken::dangerous::insecure_decode(&assertion)
            .unwrap()
            .claims;
        assert_eq!(
            claims.scope,
            "https://www.googleapis.com/auth/devstorage.read_write"
        );
    }

    #[test]
    fn describes_itself() {
        let info = Gcs::info();
        let text = format!("{info:?}");
        assert!(text.contains("gcp_service_account"));
        assert!(text.contains("object_prefix"));
        assert!(text.contains("compression"));
        assert!(text.contains("max_batch_size: 500"));
    }
}

//! The `s3` destination: each batch becomes one object in an Amazon S3 bucket (`PutObject`,
//! SigV4-signed by the SDK's AWS layer the way S3 wants it). The object is NDJSON, one event
//! record `{"id", "type", "occurred_at", "payload"}` per line, gzip-compressed by default. Its
//! key is `key_prefix` (a template), Hive-style hour partitions of the event time unless the
//! prefix places the time itself, and a name derived from the object's event ids, so a retried
//! batch overwrites its own object instead of adding one. Events of one batch whose prefixes
//! render differently (another hour, another `{{payload.…}}` value) go to separate objects; each
//! object succeeds or fails as a whole.

use std::time::Duration;

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pushrail_plugin_sdk::object::{self, Compression, Plan, MAX_EVENTS};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{aws, settings};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// S3's limit on a key, in UTF-8 bytes.
const MAX_KEY_BYTES: usize = 1024;
/// Longest `key_prefix` accepted, in characters; the rendered key must still fit in 1024 bytes.
const MAX_KEY_PREFIX_CHARS: usize = 900;

/// The characters a key keeps as they are in the request path: the unreserved ones and `/`.
/// Everything else is percent-encoded once (UTF-8, upper-case hex), which is both how S3 reads the
/// key back and the canonical path S3's SigV4 signs.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    bucket: String,
    region: String,
    #[serde(default)]
    key_prefix: String,
    #[serde(default)]
    compression: Compression,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and the signing service. S3 is plain HTTPS
/// through the host, so there is no connection to keep.
struct S3 {
    bucket: String,
    /// How a batch becomes objects: `key_prefix` (with the default partitions when it places no
    /// time itself), the compression, S3's rules for a key.
    layout: object::Layout,
    service: aws::Service,
    /// What the request path starts with: `/{bucket}` in path-style addressing, nothing when
    /// the bucket is in the host name.
    bucket_path: String,
    timeout: Duration,
}

impl Destination for S3 {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "s3",
            "Amazon S3",
            "Writes each batch as one NDJSON object (gzip by default) to an S3 bucket (PutObject), under date partitions, named after its events so a retry overwrites it",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["bucket", "region"],
            "additionalProperties": false,
            "properties": {
                "bucket": {
                    "type": "string", "title": "Bucket", "pattern": "^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
                    "minLength": 3, "maxLength": 63,
                    "description": "The bucket's name, e.g. acme-events (not an ARN or URL)."
                },
                "region": aws::region_schema("The bucket's"),
                "key_prefix": {
                    "type": "string", "title": "Key prefix", "maxLength": MAX_KEY_PREFIX_CHARS,
                    "default": "",
                    "description": "Text before each object's name, with optional placeholders: {{time.year}}, {{time.month}}, {{time.day}}, {{time.hour}} (the event time, UTC), {{event.type}}, {{payload.a.b}}. Without a {{time.*}} placeholder, Hive-style partitions year=YYYY/month=MM/day=DD/hour=HH/ follow it (after a / when it does not end with one). E.g. events/ or events/{{event.type}}/{{time.year}}/{{time.month}}/{{time.day}}/."
                },
                "compression": {
                    "type": "string", "title": "Compression", "enum": ["gzip", "none"],
                    "default": "gzip",
                    "description": "gzip: objects named .ndjson.gz, stored as gzip files (Content-Type application/gzip); none: .ndjson (application/x-ndjson)."
                },
                "endpoint": aws::endpoint_schema(
                    "The S3 service's base URL, for local peers, S3-compatible stores and private endpoints; requests then use path-style addressing (<endpoint>/<bucket>/<key>). Default: https://<bucket>.s3.<region>.amazonaws.com."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(aws::CREDENTIAL_KINDS, aws::credential_schema(), true)
        .max_batch_size(MAX_EVENTS as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = check_bucket(&config.bucket) {
            errors.push(FieldError::new("bucket", message));
        }
        errors.extend(aws::validate(&config.region, config.endpoint.as_deref()));
        if let Err(message) = key_template(&config.key_prefix) {
            errors.push(FieldError::new("key_prefix", message));
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let credentials = aws::Credentials::from_credential(credential.as_ref())?;
        check_bucket(&config.bucket).map_err(|m| Failure::permanent(format!("bucket {m}")))?;
        let key_prefix = key_template(&config.key_prefix)
            .map_err(|m| Failure::permanent(format!("key_prefix {m}")))?;
        let (endpoint, bucket_path) =
            addressing(&config.bucket, &config.region, config.endpoint.as_deref());
        let service =
            aws::Service::new("s3", &config.region, Some(&endpoint), credentials)?.s3_signing();
        Ok(Self {
            bucket: config.bucket,
            layout: object::Layout {
                field: "key_prefix",
                object: "object",
                prefix: key_prefix,
                compression: config.compression,
                check_name: check_key,
            },
            service,
            bucket_path,
            timeout: settings::timeout(config.timeout_ms),
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let mut plan = self.plan(events);
        let requests = std::mem::take(&mut plan.requests);
        let in_flight = requests.len();
        let answers = http::send_all(requests, in_flight);
        self.finish(plan, answers)
    }
}

/// Where requests go, as (base URL, path before the key). With an `endpoint`: path-style,
/// `{endpoint}/{bucket}/{key}`. Without: virtual-hosted, `https://{bucket}.s3.{region}.amazonaws.com/{key}`,
/// except for a bucket name with dots, which S3's wildcard certificate does not cover (the AWS
/// SDKs make the same exception): path-style on the regional endpoint.
fn addressing(bucket: &str, region: &str, endpoint: Option<&str>) -> (String, String) {
    let regional = aws::default_endpoint("s3", region);
    match endpoint {
        Some(endpoint) => (endpoint.to_owned(), format!("/{bucket}")),
        None if bucket.contains('.') => (regional, format!("/{bucket}")),
        None => {
            let host = regional.strip_prefix("https://").unwrap_or(&regional);
            (format!("https://{bucket}.{host}"), String::new())
        }
    }
}

/// S3's rules for a general purpose bucket's name: 3 to 63 lower-case letters, digits, `.` and
/// `-`, starting and ending with a letter or digit, no `..`, not an IPv4 address, none of the
/// prefixes and suffixes S3 reserves. Access point aliases (`…-s3alias`) are bucket names too.
fn check_bucket(bucket: &str) -> Result<(), String> {
    if !(3..=63).contains(&bucket.len()) {
        return Err("must be 3 to 63 characters".to_owned());
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
    {
        return Err(
            "may only have lower-case letters, digits, . and - (a bucket name, not an ARN or URL)"
                .to_owned(),
        );
    }
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge(bucket.bytes().next()) || !edge(bucket.bytes().last()) {
        return Err("must start and end with a letter or digit".to_owned());
    }
    if bucket.contains("..") {
        return Err("must not have two dots in a row".to_owned());
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not be an IP address".to_owned());
    }
    if bucket.ends_with("--x-s3") {
        return Err(
            "names a directory bucket (S3 Express One Zone), which this type does not write to"
                .to_owned(),
        );
    }
    if let Some(reserved) = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .find(|p| bucket.starts_with(*p))
    {
        return Err(format!("must not start with {reserved}, which S3 reserves"));
    }
    if let Some(reserved) = ["--table-s3", ".mrap", "--ol-s3"]
        .iter()
        .find(|s| bucket.ends_with(*s))
    {
        return Err(format!("must not end with {reserved}, which S3 reserves"));
    }
    Ok(())
}

/// The template of every key's prefix (see [`object::prefix_template`]), or why `key_prefix`
/// cannot be one.
fn key_template(key_prefix: &str) -> Result<Template, String> {
    object::prefix_template(key_prefix, MAX_KEY_PREFIX_CHARS, check_key)
}

/// S3 takes any UTF-8 key of up to 1024 bytes; this keeps to keys every tool lists and reads
/// back: no control characters (a listing's XML cannot carry them), no leading `/`, no empty
/// segment (`//`), and no `.` or `..` segment (URL parsers resolve those, so the object would
/// land under another key than the one signed).
fn check_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "makes keys of {} bytes, over S3's limit of {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    if key.chars().any(char::is_control) {
        return Err("must not have control characters".to_owned());
    }
    if key.starts_with('/') {
        return Err("must not start with /".to_owned());
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err("must not have an empty segment (//)".to_owned());
        }
        if segment == "." || segment == ".." {
            return Err(format!("must not have a {segment} segment"));
        }
    }
    Ok(())
}

impl S3 {
    /// The batch's objects (see [`object::Layout::plan`]), each written by one `PutObject`.
    fn plan(&self, events: &[Event]) -> Plan {
        self.layout.plan(events, |object, body| {
            self.request(&object.name, body, object.events.len())
        })
    }

    /// The signed `PutObject` of `body` under `key`.
    fn request(
        &self,
        key: &str,
        body: Vec<u8>,
        count: usize,
    ) -> Result<http::Request, http::Error> {
        let request = self.unsigned_request(key, body, count)?;
        self.service.sign(request).map_err(|failure| http::Error {
            retryable: failure.kind == FailureKind::Retryable,
            message: failure.message,
        })
    }

    /// The `PutObject`, every header set but the signature's. `x-amz-checksum-sha256` has S3
    /// check the body on arrival and keep the checksum with the object, for readers to check it
    /// again (`GetObject` with `ChecksumMode: ENABLED`).
    fn unsigned_request(
        &self,
        key: &str,
        body: Vec<u8>,
        count: usize,
    ) -> Result<http::Request, http::Error> {
        let path = format!(
            "{}/{}",
            self.bucket_path,
            utf8_percent_encode(key, KEY_ENCODE)
        );
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        Ok(http::Request::put(&self.service.url(&path))?
            .timeout(self.timeout)
            .header("content-type", self.layout.compression.content_type())
            .header("x-amz-sdk-checksum-algorithm", "SHA256")
            .header("x-amz-checksum-sha256", checksum)
            .header("x-amz-meta-pushrail-events", count.to_string())
            .body(body))
    }

    /// One result per event, in order (see [`object::Plan::finish`]).
    fn finish(
        &self,
        plan: Plan,
        answers: Vec<Result<http::Response, http::Error>>,
    ) -> Vec<DeliveryResult> {
        plan.finish(answers, |response, object| self.outcome(response, object))
    }

    /// What S3's answer to one `PutObject` means for each of the object's events.
    fn outcome(&self, response: &http::Response, object: &object::Object) -> DeliveryResult {
        let location = format!("s3://{}/{}", self.bucket, object.name);
        if response.is_success() {
            let mut excerpt = format!("{location}, {} events", object.events.len());
            if let Some(etag) = response.header("etag") {
                excerpt.push_str(&format!(", ETag {etag}"));
            }
            if let Some(version) = response.header("x-amz-version-id") {
                excerpt.push_str(&format!(", VersionId {version}"));
            }
            return Ok(Delivered {
                status_code: Some(response.status),
                response_excerpt: Some(excerpt),
            });
        }
        let mut failure = aws::failure(response);
        // A bucket in another region answers 301 PermanentRedirect or 400
        // AuthorizationHeaderMalformed, and names its region in this header.
        if let Some(region) = response
            .header("x-amz-bucket-region")
            .filter(|r| *r != self.service.region())
        {
            failure.message.push_str(&format!(
                " (the bucket is in {region}, not {})",
                self.service.region()
            ));
        }
        failure.message.push_str(&format!("; PutObject {location}"));
        Err(failure)
    }
}

export_destination!(S3);

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::time::UNIX_EPOCH;

    use flate2::read::GzDecoder;
    use serde_json::Value;

    use pushrail_plugin_sdk::fixtures::{event, response, TIME};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:4566";

    fn config(key_prefix: &str, compression: Compression) -> Config {
        Config {
            bucket: "acme-events".to_owned(),
            region: "eu-west-1".to_owned(),
            key_prefix: key_prefix.to_owned(),
            compression,
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

    fn open(key_prefix: &str, compression: Compression) -> S3 {
        S3::open(config(key_prefix, compression), Some(credential())).unwrap()
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

    fn ok() -> http::Response {
        response(200, &[("etag", "\"9b2cf535f27731c974343645a3985328\"")], "")
    }

    #[test]
    fn a_batch_is_one_gzipped_ndjson_object_under_hour_partitions() {
        let s3 = open("events/", Compression::Gzip);
        let events = [
            event("evt_1", json!({ "a": 1, "s": "Zoë ☕" })),
            event("evt_2", json!([1, "two"])),
            event("evt_3", json!("text")),
        ];
        let plan = s3.plan(&events);
        assert_eq!(plan.objects.len(), 1);
        assert_eq!(plan.objects[0].events, [0, 1, 2]);
        // Pinned (the SDK's name rule, the same in every store): a change renames every object.
        assert_eq!(
            plan.objects[0].name,
            "events/year=2026/month=03/day=07/hour=09/20260307T090500Z-0e2dbe45be0197e45038a53553fe9028.ndjson.gz"
        );
        let body = request(&plan, 0).body_bytes();
        assert_eq!(&body[..2], [0x1f, 0x8b], "a gzip stream");
        assert_eq!(
            lines(&gunzip(body)),
            [
                json!({"id": "evt_1", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": { "a": 1, "s": "Zoë ☕" }}),
                json!({"id": "evt_2", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": [1, "two"]}),
                json!({"id": "evt_3", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": "text"}),
            ]
        );
        // The same batch makes the same bytes, so a retry rewrites the object as it was.
        let again = s3.plan(&events);
        assert_eq!(again.objects[0].name, plan.objects[0].name);
        assert_eq!(request(&again, 0).body_bytes(), body);
    }

    #[test]
    fn without_compression_an_object_is_plain_ndjson() {
        let s3 = open("", Compression::None);
        let plan = s3.plan(&[event("evt_1", json!({ "a": 1 }))]);
        let request = request(&plan, 0);
        assert_eq!(
            request.header_value("content-type"),
            Some("application/x-ndjson")
        );
        assert!(plan.objects[0].name.ends_with(".ndjson"));
        assert_eq!(
            String::from_utf8(request.body_bytes().to_vec()).unwrap(),
            "{\"id\":\"evt_1\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":{\"a\":1},\"type\":\"order.created\"}\n"
        );
    }

    #[test]
    fn events_are_grouped_by_their_rendered_prefix() {
        let s3 = open("tenant={{payload.tenant}}/", Compression::Gzip);
        let mut not_json = event("evt_4", json!({}));
        not_json.payload = b"{nope".to_vec();
        let events = [
            event("evt_1", json!({ "tenant": "a" })),
            event("evt_2", json!({ "tenant": "b" })),
            event("evt_3", json!({ "other": true })),
            not_json,
            event("evt_5", json!({ "tenant": "a" })),
            event("evt_6", json!({ "tenant": "a/../b" })),
        ];
        let plan = s3.plan(&events);
        // Events whose key cannot be made fail alone, permanently, and are not written.
        assert!(plan.results[0].is_none());
        let missing = plan.results[2].clone().unwrap().unwrap_err();
        assert_eq!(missing.kind, FailureKind::Permanent);
        assert_eq!(missing.message, "key_prefix: the payload has no tenant");
        let bad = plan.results[3].clone().unwrap().unwrap_err();
        assert_eq!(bad.kind, FailureKind::Permanent);
        assert_eq!(bad.message, "the event payload is not JSON");
        let dots = plan.results[5].clone().unwrap().unwrap_err();
        assert_eq!(dots.kind, FailureKind::Permanent);
        assert!(
            dots.message.contains("must not have a .. segment"),
            "{}",
            dots.message
        );
        let groups: Vec<(&str, &[usize])> = plan
            .objects
            .iter()
            .map(|o| (o.name.split('/').next().unwrap(), o.events.as_slice()))
            .collect();
        assert_eq!(groups, [("tenant=a", &[0, 4][..]), ("tenant=b", &[1][..])]);
        // Answers go back to each object's own events.
        let results = s3.finish(
            plan,
            vec![Ok(ok()), Err(http::Error::retryable("connection refused"))],
        );
        assert_eq!(results.len(), 6);
        assert!(results[0].is_ok() && results[4].is_ok());
        let refused = results[1].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Retryable);
        assert_eq!(refused.message, "connection refused");
        for failed in [2, 3, 5] {
            assert_eq!(
                results[failed].clone().unwrap_err().kind,
                FailureKind::Permanent
            );
        }
    }

    #[test]
    fn with_an_endpoint_requests_are_path_style() {
        let s3 = open("events/", Compression::Gzip);
        let plan = s3.plan(&[event("evt_1", json!({}))]);
        let request = request(&plan, 0);
        assert_eq!(request.method(), "PUT");
        assert_eq!(
            request.url(),
            format!(
                "http://127.0.0.1:4566/acme-events/events/year%3D2026/month%3D03/day%3D07/hour%3D09/{}",
                object::name(["evt_1"], TIME, Compression::Gzip)
            )
        );
        assert_eq!(
            request.header_value("content-type"),
            Some("application/gzip")
        );
        assert_eq!(request.header_value("content-encoding"), None);
        assert_eq!(
            request.header_value("x-amz-meta-pushrail-events"),
            Some("1")
        );
        assert_eq!(
            request.header_value("x-amz-sdk-checksum-algorithm"),
            Some("SHA256")
        );
        let body = request.body_bytes();
        assert_eq!(
            request.header_value("x-amz-checksum-sha256"),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode(Sha256::digest(body))
                    .as_str()
            )
        );
        let hex: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            request.header_value("x-amz-content-sha256"),
            Some(hex.as_str())
        );
        let authorization = request.header_value("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains(
                "/eu-west-1/s3/aws4_request, SignedHeaders=content-type;host;\
                 x-amz-checksum-sha256;x-amz-content-sha256;x-amz-date;\
                 x-amz-meta-pushrail-events;x-amz-sdk-checksum-algorithm, Signature="
            ),
            "{authorization}"
        );
        // An endpoint with a path of its own keeps it.
        let mut with_path = config("", Compression::Gzip);
        with_path.endpoint = Some("http://127.0.0.1:9000/storage/".to_owned());
        let s3 = S3::open(with_path, Some(credential())).unwrap();
        let plan = s3.plan(&[event("evt_1", json!({}))]);
        assert!(request_url(&plan)
            .starts_with("http://127.0.0.1:9000/storage/acme-events/year%3D2026/"));
    }

    fn request_url(plan: &Plan) -> String {
        request(plan, 0).url().to_owned()
    }

    #[test]
    fn without_an_endpoint_requests_are_virtual_hosted() {
        let url_of = |bucket: &str, region: &str| {
            let mut config = config("k/", Compression::Gzip);
            config.bucket = bucket.to_owned();
            config.region = region.to_owned();
            config.endpoint = None;
            let s3 = S3::open(config, Some(credential())).unwrap();
            let url = request_url(&s3.plan(&[event("evt_1", json!({}))]));
            url.split("/year%3D").next().unwrap().to_owned()
        };
        assert_eq!(
            url_of("acme-events", "eu-west-1"),
            "https://acme-events.s3.eu-west-1.amazonaws.com/k"
        );
        assert_eq!(
            url_of("acme-events", "cn-north-1"),
            "https://acme-events.s3.cn-north-1.amazonaws.com.cn/k"
        );
        // Dots would not match S3's wildcard certificate: path-style.
        assert_eq!(
            url_of("events.acme.com", "us-east-1"),
            "https://s3.us-east-1.amazonaws.com/events.acme.com/k"
        );
    }

    #[test]
    fn keys_are_percent_encoded_once_as_s3_signs_them() {
        let s3 = open("a b/ü+{{payload.k}}/", Compression::Gzip);
        let plan = s3.plan(&[event("evt_1", json!({ "k": "x=y&z~-_.%" }))]);
        let url = request_url(&plan);
        assert!(
            url.starts_with(
                "http://127.0.0.1:4566/acme-events/a%20b/%C3%BC%2Bx%3Dy%26z~-_.%25/year%3D2026/"
            ),
            "{url}"
        );
        assert!(plan.objects[0]
            .name
            .starts_with("a b/ü+x=y&z~-_.%/year=2026/"));
    }

    /// Compared with botocore's `S3SigV4Auth` (botocore 1.44) for the same request: same
    /// headers, body, key and time, on a loopback endpoint with a port.
    #[test]
    fn signs_a_put_object_as_botocore_does() {
        let s3 = open("", Compression::None);
        let request = s3
            .unsigned_request("events/year=2026/a b/ü.ndjson", b"{\"a\":1}\n".to_vec(), 1)
            .unwrap();
        // 2015-08-30T12:36:00Z, the time of the AWS SigV4 test suite.
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let signed = s3.service.sign_at(request, time).unwrap();
        assert_eq!(
            signed.url(),
            "http://127.0.0.1:4566/acme-events/events/year%3D2026/a%20b/%C3%BC.ndjson"
        );
        assert_eq!(
            signed.header_value("authorization"),
            Some(BOTOCORE_AUTHORIZATION),
        );
    }

    const BOTOCORE_AUTHORIZATION: &str =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/s3/aws4_request, \
         SignedHeaders=content-type;host;x-amz-checksum-sha256;x-amz-content-sha256;x-amz-date;\
         x-amz-meta-pushrail-events;x-amz-sdk-checksum-algorithm, \
         Signature=a6c6b92af13488f46bdb3c8d25f12939af43223553779fe31912c3a4919af5e3";

    #[test]
    fn answers_each_event_of_an_object() {
        let s3 = open("", Compression::Gzip);
        let plan = s3.plan(&[event("evt_1", json!({})), event("evt_2", json!({}))]);
        let key = plan.objects[0].name.clone();
        let results = s3.finish(
            plan,
            vec![Ok(response(
                200,
                &[
                    ("etag", "\"9b2cf535f27731c974343645a3985328\""),
                    ("x-amz-version-id", "v-1"),
                ],
                "",
            ))],
        );
        for result in results {
            let delivered = result.unwrap();
            assert_eq!(delivered.status_code, Some(200));
            assert_eq!(
                delivered.response_excerpt.unwrap(),
                format!("s3://acme-events/{key}, 2 events, ETag \"9b2cf535f27731c974343645a3985328\", VersionId v-1")
            );
        }
    }

    fn failure_of(response: http::Response) -> Failure {
        let s3 = open("", Compression::Gzip);
        let plan = s3.plan(&[event("evt_1", json!({})), event("evt_2", json!({}))]);
        let results = s3.finish(plan, vec![Ok(response)]);
        let first = results[0].clone().unwrap_err();
        assert_eq!(
            results[1].clone().unwrap_err().message,
            first.message,
            "the object fails as a whole"
        );
        first
    }

    fn s3_error(code: &str, message: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"
        )
    }

    #[test]
    fn s3_errors_are_permanent_or_retryable_with_awss_code() {
        let missing = failure_of(response(
            404,
            &[("content-type", "application/xml")],
            &s3_error("NoSuchBucket", "The specified bucket does not exist"),
        ));
        assert_eq!(missing.kind, FailureKind::Permanent);
        assert!(
            missing.message.starts_with(
                "NoSuchBucket: The specified bucket does not exist (HTTP 404); PutObject s3://acme-events/year=2026/"
            ),
            "{}",
            missing.message
        );
        assert_eq!(missing.status_code, Some(404));
        assert!(missing
            .response_excerpt
            .unwrap()
            .contains("<Code>NoSuchBucket</Code>"));

        for (status, code) in [
            (403, "AccessDenied"),
            (403, "InvalidAccessKeyId"),
            (403, "SignatureDoesNotMatch"),
            (400, "InvalidBucketName"),
            (400, "EntityTooLarge"),
            (400, "BadDigest"),
        ] {
            let failure = failure_of(response(status, &[], &s3_error(code, "refused")));
            assert_eq!(failure.kind, FailureKind::Permanent, "{code}");
            assert!(
                failure.message.starts_with(&format!("{code}: refused")),
                "{}",
                failure.message
            );
            assert!(!failure.message.contains("EXAMPLEKEY"));
        }

        let slow = failure_of(response(
            503,
            &[("retry-after", "2")],
            &s3_error("SlowDown", "Please reduce your request rate."),
        ));
        assert_eq!(slow.kind, FailureKind::Retryable);
        assert_eq!(slow.retry_after_ms, Some(2000));
        assert!(slow
            .message
            .starts_with("SlowDown: Please reduce your request rate. (HTTP 503)"));
        for (status, code) in [
            (500, "InternalError"),
            (503, "ServiceUnavailable"),
            (400, "RequestTimeout"),
        ] {
            let failure = failure_of(response(status, &[], &s3_error(code, "try again")));
            assert_eq!(failure.kind, FailureKind::Retryable, "{code}");
        }
        let bare = failure_of(response(502, &[], "<html>bad gateway</html>"));
        assert_eq!(bare.kind, FailureKind::Retryable);
        assert!(
            bare.message.starts_with("HTTP 502; PutObject s3://"),
            "{}",
            bare.message
        );

        // A bucket in another region: permanent, with the bucket's region.
        let moved = failure_of(response(
            301,
            &[("x-amz-bucket-region", "us-west-2")],
            &s3_error(
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified endpoint.",
            ),
        ));
        assert_eq!(moved.kind, FailureKind::Permanent);
        assert!(
            moved
                .message
                .contains("(HTTP 301) (the bucket is in us-west-2, not eu-west-1)"),
            "{}",
            moved.message
        );
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            S3::validate(config)
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
        bad.bucket = "Acme_Events".to_owned();
        bad.region = "EU WEST".to_owned();
        bad.endpoint = Some("127.0.0.1:4566".to_owned());
        assert_eq!(fields(&bad), ["bucket", "region", "endpoint", "key_prefix"]);
        for prefix in ["/events", "a//b", "a/../b", "./a", "a\u{1}b", "{{payload.x"] {
            assert_eq!(
                fields(&config(prefix, Compression::Gzip)),
                ["key_prefix"],
                "{prefix:?}"
            );
        }
        assert_eq!(
            fields(&config(
                &"p".repeat(MAX_KEY_PREFIX_CHARS + 1),
                Compression::Gzip
            )),
            ["key_prefix"]
        );
        // A prefix whose keys would pass 1024 bytes.
        assert_eq!(
            fields(&config(
                &"ü".repeat(MAX_KEY_PREFIX_CHARS),
                Compression::Gzip
            )),
            ["key_prefix"]
        );
    }

    #[test]
    fn bucket_names_follow_s3s_rules() {
        for good in [
            "abc",
            "acme-events",
            "events.acme.com",
            "a1-b2.c3",
            "my-ap-abcdefghij-s3alias",
            &"b".repeat(63),
        ] {
            assert_eq!(check_bucket(good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            &"b".repeat(64),
            "Acme",
            "acme_events",
            "-acme",
            "acme-",
            ".acme",
            "acme..events",
            "192.168.5.4",
            "xn--acme",
            "sthree-acme",
            "amzn-s3-demo-bucket",
            "acme--x-s3",
            "acme--table-s3",
            "acme.mrap",
            "arn:aws:s3:::acme",
            "s3://acme",
        ] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
        assert!(check_bucket("acme--usw2-az1--x-s3")
            .unwrap_err()
            .contains("directory bucket"));
    }

    #[test]
    fn keys_keep_to_1024_bytes() {
        let long = "p".repeat(800);
        let s3 = open("", Compression::Gzip);
        let plan = s3.plan(&[event("evt_1", json!({}))]);
        assert!(plan.objects[0].name.len() < 100);
        let s3 = open("{{payload.k}}/", Compression::Gzip);
        let plan = s3.plan(&[
            event("evt_1", json!({ "k": long })),
            event("evt_2", json!({ "k": "p".repeat(1000) })),
        ]);
        assert!(plan.results[0].is_none());
        assert!(plan.objects[0].name.len() <= MAX_KEY_BYTES);
        let refused = plan.results[1].clone().unwrap().unwrap_err();
        assert!(
            refused.message.contains("over S3's limit of 1024"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn reads_the_config_json() {
        let config: Config =
            serde_json::from_str(r#"{"bucket":"acme-events","region":"us-east-1"}"#).unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert_eq!(config.key_prefix, "");
        assert_eq!(config.compression, Compression::Gzip);
        assert!(config.endpoint.is_none());
        let none: Config = serde_json::from_str(
            r#"{"bucket":"acme-events","region":"us-east-1","compression":"none"}"#,
        )
        .unwrap();
        assert_eq!(none.compression, Compression::None);
        for bad in [
            r#"{"bucket":"acme-events","region":"us-east-1","compression":"zstd"}"#,
            r#"{"bucket":"acme-events","region":"us-east-1","prefix":"x"}"#,
            r#"{"region":"us-east-1"}"#,
        ] {
            assert!(serde_json::from_str::<Config>(bad).is_err(), "{bad}");
        }
        let s3 = S3::open(config, Some(credential())).unwrap();
        assert_eq!(s3.timeout, Duration::from_secs(10));
        assert_eq!(s3.service.name(), "s3");
        assert_eq!(s3.service.region(), "us-east-1");
    }

    #[test]
    fn opening_needs_an_access_key_and_a_good_config() {
        assert!(S3::open(config("", Compression::Gzip), None).is_err());
        let basic = Credential {
            kind: "basic".to_owned(),
            secret: r#"{"username":"u","password":"p"}"#.to_owned(),
        };
        assert!(S3::open(config("", Compression::Gzip), Some(basic)).is_err());
        assert!(S3::open(config("{{nope}}", Compression::Gzip), Some(credential())).is_err());
        let mut bad = config("", Compression::Gzip);
        bad.bucket = "Bad_Bucket".to_owned();
        let failure = S3::open(bad, Some(credential())).err().unwrap();
        assert!(
            failure.message.starts_with("bucket "),
            "{}",
            failure.message
        );
    }

    #[test]
    fn describes_itself() {
        let info = S3::info();
        let text = format!("{info:?}");
        assert!(text.contains("aws_access_key"));
        assert!(text.contains("aws_role"));
        assert!(text.contains("key_prefix"));
        assert!(text.contains("compression"));
        assert!(text.contains("max_batch_size: 500"));
    }
}

//! The `azure_blob` destination: each batch becomes one block blob in an Azure Storage container
//! (`Put Blob` with `x-ms-blob-type: BlockBlob`, authorized by the SDK's Azure layer with the
//! account's shared key or a SAS token). The blob is NDJSON, one event record `{"id", "type",
//! "occurred_at", "payload"}` per line, gzip-compressed by default. Its name is `blob_prefix` (a
//! template), Hive-style hour partitions of the event time unless the prefix places the time
//! itself, and a name derived from the blob's event ids, so a retried batch overwrites its own
//! blob instead of adding one. Events of one batch whose prefixes render differently (another
//! hour, another `{{payload.…}}` value) go to separate blobs; each blob succeeds or fails as a
//! whole.

use std::time::Duration;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pushrail_plugin_sdk::object::{self, Compression, Plan, MAX_EVENTS};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::template::Template;
use pushrail_plugin_sdk::{azure, settings};
use serde::Deserialize;
use serde_json::json;

/// Azure's limit on a blob name, in characters.
const MAX_NAME_CHARS: usize = 1024;
/// Azure's limit on the path segments of a blob name.
const MAX_SEGMENTS: usize = 254;
/// Longest `blob_prefix` accepted, in characters; the rendered name must still fit in 1024.
const MAX_BLOB_PREFIX_CHARS: usize = 900;
/// The metadata header with the blob's number of events. Metadata names must be C# identifiers,
/// so `_`, not `-`.
const EVENTS_METADATA: &str = "x-ms-meta-pushrail_events";

/// The characters a blob name keeps as they are in the request path: the unreserved ones and
/// `/`. Everything else is percent-encoded once (UTF-8, upper-case hex), as Azure's SDKs do; the
/// SharedKey signature covers the path as sent.
const NAME_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    account: String,
    container: String,
    #[serde(default)]
    blob_prefix: String,
    #[serde(default)]
    compression: Compression,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the parsed config and how requests are authorized. Blob Storage is
/// plain HTTPS through the host, so there is no connection to keep.
struct AzureBlob {
    container: String,
    /// How a batch becomes blobs: `blob_prefix` (with the default partitions when it places no
    /// time itself), the compression, Azure's rules for a blob name.
    layout: object::Layout,
    auth: azure::StorageAuth,
    /// The blob service's base URL, without a trailing `/`.
    endpoint: String,
    timeout: Duration,
}

impl Destination for AzureBlob {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "azure_blob",
            "Azure Blob Storage",
            "Writes each batch as one NDJSON block blob (gzip by default) to an Azure Storage container (Put Blob), under date partitions, named after its events so a retry overwrites it",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["account", "container"],
            "additionalProperties": false,
            "properties": {
                "account": azure::account_schema(),
                "container": {
                    "type": "string", "title": "Container", "pattern": "^([a-z0-9](-?[a-z0-9])*|\\$root|\\$web|\\$logs)$",
                    "minLength": 3, "maxLength": 63,
                    "description": "The container's name, e.g. events (not a URL). It must exist."
                },
                "blob_prefix": {
                    "type": "string", "title": "Blob prefix", "maxLength": MAX_BLOB_PREFIX_CHARS,
                    "default": "",
                    "description": "Text before each blob's name, with optional placeholders: {{time.year}}, {{time.month}}, {{time.day}}, {{time.hour}} (the event time, UTC), {{event.type}}, {{payload.a.b}}. Without a {{time.*}} placeholder, Hive-style partitions year=YYYY/month=MM/day=DD/hour=HH/ follow it (after a / when it does not end with one). E.g. events/ or events/{{event.type}}/{{time.year}}/{{time.month}}/{{time.day}}/."
                },
                "compression": {
                    "type": "string", "title": "Compression", "enum": ["gzip", "none"],
                    "default": "gzip",
                    "description": "gzip: blobs named .ndjson.gz, stored as gzip files (Content-Type application/gzip); none: .ndjson (application/x-ndjson)."
                },
                "endpoint": azure::endpoint_schema(
                    "The blob service's URL, for emulators and private endpoints; an emulator's includes the account (http://127.0.0.1:10000/devstoreaccount1). Default: https://<account>.blob.core.windows.net."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(
            azure::STORAGE_CREDENTIAL_KINDS,
            azure::credential_schema(),
            true,
        )
        .max_batch_size(MAX_EVENTS as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = azure::validate(&config.account, config.endpoint.as_deref());
        if let Err(message) = azure::check_container(&config.container) {
            errors.push(FieldError::new("container", message));
        }
        if let Err(message) = prefix_template(&config.blob_prefix) {
            errors.push(FieldError::new("blob_prefix", message));
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        azure::check_account(&config.account)
            .map_err(|m| Failure::permanent(format!("account {m}")))?;
        let auth = azure::StorageAuth::from_credential(credential.as_ref(), &config.account)?;
        azure::check_container(&config.container)
            .map_err(|m| Failure::permanent(format!("container {m}")))?;
        let blob_prefix = prefix_template(&config.blob_prefix)
            .map_err(|m| Failure::permanent(format!("blob_prefix {m}")))?;
        let endpoint = azure::blob_endpoint(&config.account, config.endpoint.as_deref())?;
        Ok(Self {
            container: config.container,
            layout: object::Layout {
                field: "blob_prefix",
                object: "blob",
                prefix: blob_prefix,
                compression: config.compression,
                check_name,
            },
            auth,
            endpoint,
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

/// The template of every blob's prefix (see [`object::prefix_template`]), or why `blob_prefix`
/// cannot be one.
fn prefix_template(blob_prefix: &str) -> Result<Template, String> {
    object::prefix_template(blob_prefix, MAX_BLOB_PREFIX_CHARS, check_name)
}

/// Azure takes blob names of up to 1024 characters and 254 path segments; this also keeps to
/// names every tool lists and reads back: no control characters, no leading `/`, no empty
/// segment (`//`), and no `.` or `..` segment (URL parsers resolve those, so the blob would land
/// under another name than the one signed).
fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "makes blob names of {chars} characters, over Azure's limit of {MAX_NAME_CHARS}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("must not have control characters".to_owned());
    }
    if name.starts_with('/') {
        return Err("must not start with /".to_owned());
    }
    let mut segments = 0;
    for segment in name.split('/') {
        segments += 1;
        if segment.is_empty() {
            return Err("must not have an empty segment (//)".to_owned());
        }
        if segment == "." || segment == ".." {
            return Err(format!("must not have a {segment} segment"));
        }
    }
    if segments > MAX_SEGMENTS {
        return Err(format!(
            "makes blob names of {segments} path segments, over Azure's limit of {MAX_SEGMENTS}"
        ));
    }
    Ok(())
}

impl AzureBlob {
    /// The batch's blobs (see [`object::Layout::plan`]), each written by one `Put Blob`.
    fn plan(&self, events: &[Event]) -> Plan {
        self.layout.plan(events, |blob, body| {
            self.request(&blob.name, body, blob.events.len())
        })
    }

    /// The authorized `Put Blob` of `body` under `name`.
    fn request(
        &self,
        name: &str,
        body: Vec<u8>,
        count: usize,
    ) -> Result<http::Request, http::Error> {
        let request = self.unsigned_request(name, body, count)?;
        self.auth.authorize(request).map_err(|failure| http::Error {
            retryable: failure.kind == FailureKind::Retryable,
            message: failure.message,
        })
    }

    /// The `Put Blob`, every header set but the authorization's. `Content-MD5` has Azure check
    /// the body on arrival (the SharedKey signature covers the body's length, not its bytes)
    /// and keep the hash with the blob, for readers to check again.
    fn unsigned_request(
        &self,
        name: &str,
        body: Vec<u8>,
        count: usize,
    ) -> Result<http::Request, http::Error> {
        let url = format!(
            "{}/{}/{}",
            self.endpoint,
            self.container,
            utf8_percent_encode(name, NAME_ENCODE)
        );
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        Ok(http::Request::put(&self.auth.url(&url))?
            .timeout(self.timeout)
            .header("x-ms-blob-type", "BlockBlob")
            .header("content-type", self.layout.compression.content_type())
            .header("content-md5", md5)
            .header(EVENTS_METADATA, count.to_string())
            .body(body))
    }

    /// Where a blob is, for the delivery log: its URL without any SAS token, the name as is.
    fn location(&self, blob: &object::Object) -> String {
        format!("{}/{}/{}", self.endpoint, self.container, blob.name)
    }

    /// One result per event, in order (see [`object::Plan::finish`]).
    fn finish(
        &self,
        plan: Plan,
        answers: Vec<Result<http::Response, http::Error>>,
    ) -> Vec<DeliveryResult> {
        plan.finish(answers, |response, blob| self.outcome(response, blob))
    }

    /// What Azure's answer to one `Put Blob` means for each of the blob's events.
    fn outcome(&self, response: &http::Response, blob: &object::Object) -> DeliveryResult {
        let location = self.location(blob);
        if response.is_success() {
            let mut excerpt = format!("{location}, {} events", blob.events.len());
            if let Some(etag) = response.header("etag") {
                excerpt.push_str(&format!(", ETag {etag}"));
            }
            if let Some(version) = response.header("x-ms-version-id") {
                excerpt.push_str(&format!(", VersionId {version}"));
            }
            return Ok(Delivered {
                status_code: Some(response.status),
                response_excerpt: Some(excerpt),
            });
        }
        let mut failure = azure::failure(response);
        failure.message.push_str(&format!("; Put Blob {location}"));
        Err(failure)
    }
}

export_destination!(AzureBlob);

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;
    use serde_json::Value;

    use pushrail_plugin_sdk::fixtures::{event, event_at, response, TIME};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";
    const DEV_ACCOUNT: &str = "devstoreaccount1";
    /// Azurite's published development key.
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    const HOUR_MS: u64 = 3_600_000;

    fn config(blob_prefix: &str, compression: Compression) -> Config {
        Config {
            account: DEV_ACCOUNT.to_owned(),
            container: "events".to_owned(),
            blob_prefix: blob_prefix.to_owned(),
            compression,
            endpoint: Some(ENDPOINT.to_owned()),
            timeout_ms: 5000,
        }
    }

    fn credential() -> Credential {
        Credential {
            kind: "azure_shared_key".to_owned(),
            secret: json!({ "account_name": DEV_ACCOUNT, "account_key": DEV_KEY }).to_string(),
        }
    }

    fn sas() -> Credential {
        Credential {
            kind: "azure_sas_token".to_owned(),
            secret: json!({ "sas_token": "?sv=2025-11-05&sr=c&sp=cw&sig=c2VjcmV0%3D" }).to_string(),
        }
    }

    fn open(blob_prefix: &str, compression: Compression) -> AzureBlob {
        AzureBlob::open(config(blob_prefix, compression), Some(credential())).unwrap()
    }

    fn request(plan: &Plan, i: usize) -> &http::Request {
        plan.requests[i].as_ref().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
        text
    }

    fn lines(text: &str) -> Vec<Value> {
        assert!(text.ends_with('\n'), "every line ends with a newline");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_is_one_gzipped_ndjson_block_blob_under_hour_partitions() {
        let blob = open("events/", Compression::Gzip);
        let events = [
            event("evt_1", json!({ "a": 1, "s": "Zoë ☕" })),
            event("evt_2", json!([1, "two"])),
            event("evt_3", json!("text")),
        ];
        let plan = blob.plan(&events);
        assert_eq!(plan.objects.len(), 1);
        assert_eq!(plan.objects[0].events, [0, 1, 2]);
        // Pinned (the SDK's name rule, the same in every store): a change renames every object.
        let name = "events/year=2026/month=03/day=07/hour=09/20260307T090500Z-0e2dbe45be0197e45038a53553fe9028.ndjson.gz";
        assert_eq!(plan.objects[0].name, name);
        let put = request(&plan, 0);
        assert_eq!(put.method(), "PUT");
        assert_eq!(
            put.url(),
            format!(
                "{ENDPOINT}/events/events/year%3D2026/month%3D03/day%3D07/hour%3D09/{}",
                object::name(["evt_1", "evt_2", "evt_3"], TIME, Compression::Gzip)
            )
        );
        assert_eq!(put.header_value("x-ms-blob-type"), Some("BlockBlob"));
        assert_eq!(put.header_value("content-type"), Some("application/gzip"));
        assert_eq!(put.header_value("content-encoding"), None);
        assert_eq!(put.header_value("x-ms-meta-pushrail_events"), Some("3"));
        assert_eq!(put.header_value("x-ms-version"), Some(azure::API_VERSION));
        let body = put.body_bytes();
        assert_eq!(
            put.header_value("content-md5"),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode(Md5::digest(body))
                    .as_str()
            )
        );
        let authorization = put.header_value("authorization").unwrap();
        assert!(
            authorization.starts_with("SharedKey devstoreaccount1:"),
            "{authorization}"
        );
        assert_eq!(&body[..2], [0x1f, 0x8b], "a gzip stream");
        assert_eq!(
            lines(&gunzip(body)),
            [
                json!({"id": "evt_1", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": { "a": 1, "s": "Zoë ☕" }}),
                json!({"id": "evt_2", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": [1, "two"]}),
                json!({"id": "evt_3", "type": "order.created", "occurred_at": "2026-03-07T09:05:00.25Z", "payload": "text"}),
            ]
        );
        // The same batch makes the same name and bytes, so a retry rewrites the blob as it was.
        let again = blob.plan(&events);
        assert_eq!(again.objects[0].name, name);
        assert_eq!(request(&again, 0).body_bytes(), body);
    }

    /// The request the plugin signs is the request the Python SDK would sign the same way: the
    /// SDK's own `SharedKeyCredentialPolicy` vector is checked in `plugin_sdk::azure`; here, the
    /// string-to-sign of a real Put Blob, its path percent-encoded once.
    #[test]
    fn signs_the_put_blob_over_its_encoded_path() {
        let blob = open("a b/ü+{{payload.k}}/", Compression::None);
        let plan = blob.plan(&[event("evt_1", json!({ "k": "x=y&z~-_.%" }))]);
        assert!(plan.objects[0]
            .name
            .starts_with("a b/ü+x=y&z~-_.%/year=2026/"));
        let put = request(&plan, 0);
        assert!(
            put.url().starts_with(&format!(
                "{ENDPOINT}/events/a%20b/%C3%BC%2Bx%3Dy%26z~-_.%25/year%3D2026/"
            )),
            "{}",
            put.url()
        );
        let text = azure::string_to_sign(put, DEV_ACCOUNT).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "PUT");
        assert_eq!(lines[3], put.body_bytes().len().to_string());
        assert_eq!(lines[4], put.header_value("content-md5").unwrap());
        assert_eq!(lines[5], "application/x-ndjson");
        assert_eq!(&lines[12][..15], "x-ms-blob-type:");
        assert!(
            lines.last().unwrap().starts_with(
                "/devstoreaccount1/devstoreaccount1/events/a%20b/%C3%BC%2Bx%3Dy%26z~-_.%25/"
            ),
            "{text}"
        );
        let key = azure::SharedKey::new(DEV_ACCOUNT, DEV_KEY).unwrap();
        assert_eq!(
            put.header_value("authorization").unwrap(),
            format!("SharedKey devstoreaccount1:{}", key.signature(&text))
        );
    }

    #[test]
    fn a_sas_token_goes_in_the_query_and_not_in_the_log() {
        let blob = AzureBlob::open(config("", Compression::Gzip), Some(sas())).unwrap();
        let plan = blob.plan(&[event("evt_1", json!({}))]);
        let put = request(&plan, 0);
        assert!(
            put.url()
                .ends_with(".ndjson.gz?sv=2025-11-05&sr=c&sp=cw&sig=c2VjcmV0%3D"),
            "{}",
            put.url()
        );
        assert_eq!(put.header_value("authorization"), None);
        assert!(put.header_value("x-ms-date").is_some());
        let results = blob.finish(
            plan,
            vec![Ok(response(
                403,
                &[("x-ms-error-code", "AuthenticationFailed")],
                "<Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.\nRequestId:1</Message></Error>",
            ))],
        );
        let failure = results[0].clone().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Permanent);
        assert!(
            failure.message.starts_with(&format!(
                "AuthenticationFailed: Server failed to authenticate the request. (HTTP 403); Put Blob {ENDPOINT}/events/year=2026/"
            )),
            "{}",
            failure.message
        );
        assert!(!failure.message.contains("sig="), "{}", failure.message);
    }

    #[test]
    fn without_an_endpoint_blobs_go_to_the_accounts_service() {
        let mut config = config("k/", Compression::Gzip);
        config.account = "acmeevents".to_owned();
        config.endpoint = None;
        let blob = AzureBlob::open(config, Some(sas())).unwrap();
        let plan = blob.plan(&[event("evt_1", json!({}))]);
        assert!(request(&plan, 0)
            .url()
            .starts_with("https://acmeevents.blob.core.windows.net/events/k/year%3D2026/"));
    }

    #[test]
    fn events_are_grouped_by_their_rendered_prefix_and_hour() {
        let blob = open("tenant={{payload.tenant}}/", Compression::Gzip);
        let mut not_json = event("evt_4", json!({}));
        not_json.payload = b"{nope".to_vec();
        let events = [
            event("evt_1", json!({ "tenant": "a" })),
            event("evt_2", json!({ "tenant": "b" })),
            event("evt_3", json!({ "other": true })),
            not_json,
            event("evt_5", json!({ "tenant": "a" })),
            event("evt_6", json!({ "tenant": "a/../b" })),
            event_at("evt_7", TIME + HOUR_MS, json!({ "tenant": "a" })),
        ];
        let plan = blob.plan(&events);
        let missing = plan.results[2].clone().unwrap().unwrap_err();
        assert_eq!(missing.kind, FailureKind::Permanent);
        assert_eq!(missing.message, "blob_prefix: the payload has no tenant");
        assert_eq!(
            plan.results[3].clone().unwrap().unwrap_err().message,
            "the event payload is not JSON"
        );
        let dots = plan.results[5].clone().unwrap().unwrap_err();
        assert!(
            dots.message.contains("must not have a .. segment"),
            "{}",
            dots.message
        );
        let groups: Vec<(String, &[usize])> = plan
            .objects
            .iter()
            .map(|b| {
                (
                    b.name.rsplit_once('/').unwrap().0.to_owned(),
                    b.events.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                (
                    "tenant=a/year=2026/month=03/day=07/hour=09".to_owned(),
                    &[0, 4][..]
                ),
                (
                    "tenant=b/year=2026/month=03/day=07/hour=09".to_owned(),
                    &[1][..]
                ),
                (
                    "tenant=a/year=2026/month=03/day=07/hour=10".to_owned(),
                    &[6][..]
                ),
            ]
        );
        // Answers go back to each blob's own events.
        let results = blob.finish(
            plan,
            vec![
                Ok(response(201, &[("etag", "\"0x8DC\"")], "")),
                Err(http::Error::retryable("connection refused")),
                Ok(response(
                    503,
                    &[("x-ms-error-code", "ServerBusy"), ("retry-after", "4")],
                    "",
                )),
            ],
        );
        assert_eq!(results.len(), 7);
        let delivered = results[0].clone().unwrap();
        assert_eq!(delivered.status_code, Some(201));
        assert!(delivered
            .response_excerpt
            .unwrap()
            .ends_with(".ndjson.gz, 2 events, ETag \"0x8DC\""));
        assert!(results[4].is_ok());
        assert_eq!(results[1].clone().unwrap_err().kind, FailureKind::Retryable);
        let busy = results[6].clone().unwrap_err();
        assert_eq!(busy.kind, FailureKind::Retryable);
        assert_eq!(busy.retry_after_ms, Some(4000));
        assert!(
            busy.message.starts_with("ServerBusy (HTTP 503); Put Blob "),
            "{}",
            busy.message
        );
        for failed in [2, 3, 5] {
            assert_eq!(
                results[failed].clone().unwrap_err().kind,
                FailureKind::Permanent
            );
        }
    }

    #[test]
    fn large_batches_are_cut_into_blobs_of_at_most_8_mib() {
        let blob = open("", Compression::None);
        let big = "x".repeat(700 * 1024);
        let events: Vec<Event> = (0..25)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect();
        let plan = blob.plan(&events);
        let counts: Vec<usize> = plan.objects.iter().map(|b| b.events.len()).collect();
        assert_eq!(counts, [11, 11, 3]);
        for (i, b) in plan.objects.iter().enumerate() {
            assert!(request(&plan, i).body_bytes().len() <= object::MAX_OBJECT_BYTES);
            let ids = b.events.iter().map(|&p| events[p].id.as_str());
            assert!(b
                .name
                .ends_with(&object::name(ids, TIME, Compression::None)));
        }
        let mut huge = event("evt_huge", json!({}));
        huge.payload = format!("\"{}\"", "y".repeat(object::MAX_OBJECT_BYTES)).into_bytes();
        let plan = blob.plan(&[event("evt_0", json!({})), huge]);
        assert_eq!(plan.objects.len(), 1);
        let refused = plan.results[1].clone().unwrap().unwrap_err();
        assert!(
            refused.message.contains("over the 8388608 bytes"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn without_compression_a_blob_is_plain_ndjson() {
        let blob = open("", Compression::None);
        let plan = blob.plan(&[event("evt_1", json!({ "a": 1 }))]);
        let put = request(&plan, 0);
        assert_eq!(
            put.header_value("content-type"),
            Some("application/x-ndjson")
        );
        assert!(plan.objects[0].name.ends_with(".ndjson"));
        assert_eq!(
            String::from_utf8(put.body_bytes().to_vec()).unwrap(),
            "{\"id\":\"evt_1\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":{\"a\":1},\"type\":\"order.created\"}\n"
        );
    }

    #[test]
    fn a_prefix_that_places_the_time_gets_no_default_partitions() {
        let prefix_of = |prefix: &str| {
            let plan = open(prefix, Compression::Gzip).plan(&[event("evt_1", json!({}))]);
            plan.objects[0]
                .name
                .rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_owned())
        };
        assert_eq!(
            prefix_of("raw/{{event.type}}/{{time.year}}/{{time.month}}/{{time.day}}/"),
            "raw/order.created/2026/03/07"
        );
        assert_eq!(
            prefix_of("events"),
            "events/year=2026/month=03/day=07/hour=09"
        );
        assert_eq!(prefix_of(""), "year=2026/month=03/day=07/hour=09");
    }

    #[test]
    fn azure_errors_are_permanent_or_retryable_with_azures_code() {
        let failure_of = |status: u16, code: &str| {
            let blob = open("", Compression::Gzip);
            let plan = blob.plan(&[event("evt_1", json!({}))]);
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>refused\nRequestId:1\nTime:2026</Message></Error>"
            );
            blob.finish(
                plan,
                vec![Ok(response(status, &[("x-ms-error-code", code)], &body))],
            )[0]
            .clone()
            .unwrap_err()
        };
        for (status, code) in [
            (403, "AuthenticationFailed"),
            (403, "AuthorizationFailure"),
            (403, "AuthorizationPermissionMismatch"),
            (404, "ContainerNotFound"),
            (400, "Md5Mismatch"),
            (413, "RequestBodyTooLarge"),
        ] {
            let failure = failure_of(status, code);
            assert_eq!(failure.kind, FailureKind::Permanent, "{code}");
            assert!(
                failure.message.starts_with(&format!(
                    "{code}: refused (HTTP {status}); Put Blob {ENDPOINT}/events/year=2026/"
                )),
                "{}",
                failure.message
            );
            assert_eq!(failure.status_code, Some(status));
            assert!(!failure.message.contains("Eby8"));
        }
        for (status, code) in [
            (503, "ServerBusy"),
            (500, "OperationTimedOut"),
            (500, "InternalError"),
        ] {
            assert_eq!(
                failure_of(status, code).kind,
                FailureKind::Retryable,
                "{code}"
            );
        }
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            AzureBlob::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config("", Compression::Gzip)).is_empty());
        let mut bad = config("{{event.nope}}", Compression::Gzip);
        bad.account = "Acme".to_owned();
        bad.container = "Acme_Events".to_owned();
        bad.endpoint = Some("127.0.0.1:10000".to_owned());
        assert_eq!(
            fields(&bad),
            ["account", "endpoint", "container", "blob_prefix"]
        );
        for prefix in ["/events", "a//b", "a/../b", "./a", "a\u{1}b", "{{payload.x"] {
            assert_eq!(
                fields(&config(prefix, Compression::Gzip)),
                ["blob_prefix"],
                "{prefix:?}"
            );
        }
        assert_eq!(
            fields(&config(
                &"p".repeat(MAX_BLOB_PREFIX_CHARS + 1),
                Compression::Gzip
            )),
            ["blob_prefix"]
        );
        assert_eq!(
            fields(&config(&"a/".repeat(260), Compression::Gzip)),
            ["blob_prefix"]
        );
    }

    #[test]
    fn reads_the_config_json_and_opens() {
        let config: Config =
            serde_json::from_str(r#"{"account":"devstoreaccount1","container":"events"}"#).unwrap();
        assert_eq!(config.timeout_ms, settings::DEFAULT_TIMEOUT_MS);
        assert_eq!(config.blob_prefix, "");
        assert_eq!(config.compression, Compression::Gzip);
        assert!(config.endpoint.is_none());
        for bad in [
            r#"{"account":"a1b","container":"events","compression":"zstd"}"#,
            r#"{"account":"a1b","container":"events","prefix":"x"}"#,
            r#"{"container":"events"}"#,
        ] {
            assert!(serde_json::from_str::<Config>(bad).is_err(), "{bad}");
        }
        let blob = AzureBlob::open(config, Some(credential())).unwrap();
        assert_eq!(
            blob.endpoint,
            "https://devstoreaccount1.blob.core.windows.net"
        );
        assert_eq!(blob.timeout, Duration::from_secs(10));
        assert!(AzureBlob::open(self::config("", Compression::Gzip), None).is_err());
        let mut other = self::config("", Compression::Gzip);
        other.account = "other1".to_owned();
        let failure = AzureBlob::open(other, Some(credential())).err().unwrap();
        assert!(failure
            .message
            .contains("for account devstoreaccount1, not other1"));
    }

    #[test]
    fn describes_itself() {
        let text = format!("{:?}", AzureBlob::info());
        for word in [
            "azure_shared_key",
            "azure_sas_token",
            "blob_prefix",
            "container",
            "max_batch_size: 500",
        ] {
            assert!(text.contains(word), "{word}");
        }
    }
}

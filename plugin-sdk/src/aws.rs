//! What the AWS destination types share: credentials of kind `aws_access_key`, Signature
//! Version 4 (signed by the AWS SDK's own `aws-sigv4` crate, not by hand), the service endpoint,
//! and the reading and classification of AWS's error answers.
//!
//! ```ignore
//! use pushrail_plugin_sdk::{aws, http};
//!
//! let credentials = aws::Credentials::from_credential(credential.as_ref())?;
//! let service = aws::Service::new("sqs", &config.region, config.endpoint.as_deref(), credentials)?;
//! let request = http::Request::post(&service.url("/"))?
//!     .header("content-type", "application/x-amz-json-1.0")
//!     .header("x-amz-target", "AmazonSQS.SendMessageBatch")
//!     .body(body);
//! let response = service.sign(request)?.send()?;
//! if !response.is_success() {
//!     return Err(aws::failure(&response));
//! }
//! ```

use std::fmt;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{http, Credential, DeliveryResult, Failure, FieldError};

/// The credential kind that carries an access key.
pub const ACCESS_KEY_KIND: &str = "aws_access_key";
/// The credential kind that names a customer's IAM role. The host assumes the role (STS
/// AssumeRole with the deployment's own keys and the sub-tenant's external id) and opens the
/// session with the temporary keys as an [`ACCESS_KEY_KIND`] credential, so a plugin never
/// sees the role's kind, nor the deployment's keys.
pub const ROLE_KIND: &str = "aws_role";
/// The kinds every AWS type accepts, for [`crate::TypeInfo::credentials`].
pub const CREDENTIAL_KINDS: &[&str] = &[ACCESS_KEY_KIND, ROLE_KIND];

/// Longest AWS message kept in a failure's message (the body excerpt has the rest).
const MAX_MESSAGE_CHARS: usize = 300;

/// An access key: `access_key_id`, `secret_access_key` and, for temporary credentials, a
/// `session_token`. Its `Debug` shows the access key id only.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    identity: Identity,
}

#[derive(Deserialize)]
struct AccessKey {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        let access_key_id = access_key_id.into();
        let session_token = session_token.filter(|t| !t.is_empty());
        let credentials = aws_credential_types::Credentials::new(
            access_key_id.clone(),
            secret_access_key,
            session_token,
            None,
            "pushrail",
        );
        Self {
            access_key_id,
            identity: credentials.into(),
        }
    }

    /// The credential a session was opened with, which must be of kind `aws_access_key`.
    pub fn from_credential(credential: Option<&Credential>) -> Result<Self, Failure> {
        let credential = credential.ok_or_else(|| {
            Failure::permanent(format!("an {ACCESS_KEY_KIND} credential is required"))
        })?;
        if credential.kind == ROLE_KIND {
            return Err(Failure::permanent(
                "an aws_role credential reached the plugin unassumed: this host cannot assume roles",
            ));
        }
        if credential.kind != ACCESS_KEY_KIND {
            return Err(Failure::permanent(format!(
                "credential kind {} is not supported (expected {ACCESS_KEY_KIND})",
                credential.kind
            )));
        }
        let key: AccessKey = credential.secret()?;
        if key.access_key_id.is_empty() || key.secret_access_key.is_empty() {
            return Err(Failure::permanent(
                "the aws_access_key credential has an empty access_key_id or secret_access_key",
            ));
        }
        Ok(Self::new(
            key.access_key_id,
            key.secret_access_key,
            key.session_token,
        ))
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// The JSON Schema of an `aws_access_key` secret, for [`crate::TypeInfo::credentials`].
pub fn credential_schema() -> Value {
    json!({
        "type": "object",
        "required": ["access_key_id", "secret_access_key"],
        "properties": {
            "access_key_id": {
                "type": "string", "title": "Access key id", "minLength": 1, "maxLength": 128
            },
            "secret_access_key": {
                "type": "string", "title": "Secret access key", "minLength": 1, "maxLength": 16384
            },
            "session_token": {
                "type": "string", "title": "Session token", "minLength": 1, "maxLength": 16384,
                "description": "Only for temporary credentials."
            }
        }
    })
}

/// The JSON Schema of the `region` field every AWS type has; `what` says whose region it is
/// ("The queue's").
pub fn region_schema(what: &str) -> Value {
    json!({
        "type": "string", "title": "Region", "pattern": "^[a-z0-9-]+$",
        "minLength": 1, "maxLength": 64,
        "description": format!("{what} AWS region, e.g. eu-west-1.")
    })
}

/// The JSON Schema of the optional `endpoint` field every AWS type has; `description` says
/// what the default is and how the endpoint is used.
pub fn endpoint_schema(description: &str) -> Value {
    json!({
        "type": "string", "title": "Endpoint", "format": "uri",
        "pattern": "^https?://", "maxLength": 2048,
        "description": description
    })
}

/// Checks the `region` and `endpoint` fields every AWS type has: a region of `[a-z0-9-]`, an
/// endpoint (when given) an `http` or `https` URL.
pub fn validate(region: &str, endpoint: Option<&str>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(message) = check_region(region) {
        errors.push(FieldError::new("region", message));
    }
    if let Some(endpoint) = endpoint {
        if let Err(message) = parse_endpoint(endpoint) {
            errors.push(FieldError::new("endpoint", message));
        }
    }
    errors
}

fn check_region(region: &str) -> Result<(), String> {
    if region.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if region.len() > 64
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("must be an AWS region such as eu-west-1 (a-z, 0-9 and -)".to_owned());
    }
    Ok(())
}

fn parse_endpoint(endpoint: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("not a URL: {e}"))?;
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
    Ok(url)
}

/// The default endpoint of `service` in `region`: `https://{service}.{region}.amazonaws.com`
/// (`.amazonaws.com.cn` in the China regions).
pub fn default_endpoint(service: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{domain}")
}

/// One AWS service of one destination: where its requests go and how they are signed.
#[derive(Clone, Debug)]
pub struct Service {
    name: String,
    region: String,
    endpoint: url::Url,
    credentials: Credentials,
    s3_signing: bool,
}

impl Service {
    /// `name` is both the endpoint prefix and the signing name (`sqs`, `sns`, `kinesis`,
    /// `events`, `firehose`, `s3`). `endpoint`, when given, replaces the regional endpoint (a
    /// base URL, for local peers and private endpoints); requests are still signed for `region`.
    pub fn new(
        name: &str,
        region: &str,
        endpoint: Option<&str>,
        credentials: Credentials,
    ) -> Result<Self, Failure> {
        check_region(region).map_err(|m| Failure::permanent(format!("region {m}")))?;
        let endpoint = match endpoint {
            Some(endpoint) => {
                parse_endpoint(endpoint).map_err(|m| Failure::permanent(format!("endpoint {m}")))?
            }
            None => parse_endpoint(&default_endpoint(name, region))
                .map_err(|m| Failure::permanent(format!("endpoint {m}")))?,
        };
        Ok(Self {
            name: name.to_owned(),
            region: region.to_owned(),
            endpoint,
            credentials,
            s3_signing: false,
        })
    }

    /// Signs the way S3 wants it: an `x-amz-content-sha256` header, the path signed as sent
    /// (no normalization, no second percent-encoding).
    pub fn s3_signing(mut self) -> Self {
        self.s3_signing = true;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint's base URL.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The endpoint with `path` (and query) after its own path: `url("/")` for the JSON and
    /// query protocols, `url("/bucket/key")` for S3. `path` must already be percent-encoded.
    pub fn url(&self, path: &str) -> String {
        let base = self.endpoint.as_str().trim_end_matches('/');
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    /// Signs `request` at the wall clock's time: adds `x-amz-date`, `authorization` and, for
    /// temporary credentials, `x-amz-security-token`. Every header already set is signed, so
    /// set them all before signing.
    pub fn sign(&self, request: http::Request) -> Result<http::Request, Failure> {
        self.sign_at(request, SystemTime::now())
    }

    /// [`Service::sign`] at a given time (for tests).
    pub fn sign_at(
        &self,
        request: http::Request,
        time: SystemTime,
    ) -> Result<http::Request, Failure> {
        let mut settings = SigningSettings::default();
        if self.s3_signing {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        let params = v4::SigningParams::builder()
            .identity(&self.credentials.identity)
            .region(&self.region)
            .name(&self.name)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| Failure::permanent(format!("signing the request: {e}")))?;
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| {
                std::str::from_utf8(value)
                    .map(|value| (name.as_str(), value))
                    .map_err(|_| {
                        Failure::permanent(format!("header {name} is not text, so not signable"))
                    })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let signable = SignableRequest::new(
            request.method(),
            request.url(),
            headers.into_iter(),
            SignableBody::Bytes(request.body_bytes()),
        )
        .map_err(|e| Failure::permanent(format!("signing the request: {e}")))?;
        let (instructions, _signature) = sign(signable, &params.into())
            .map_err(|e| Failure::permanent(format!("signing the request: {e}")))?
            .into_parts();
        let (new_headers, params) = instructions.into_parts();
        if !params.is_empty() {
            // Only presigned URLs (query signing) add parameters; this module never asks for them.
            return Err(Failure::permanent(
                "signing the request: unexpected query parameters",
            ));
        }
        Ok(new_headers.iter().fold(request, |request, header| {
            request.header(header.name(), header.value())
        }))
    }
}

/// The longest group or deduplication id SQS and SNS take.
const MAX_FIFO_ID_CHARS: usize = 128;

/// The `MessageGroupId` (rendered from `group_id`) and `MessageDeduplicationId` (the event id,
/// so a retry is dropped by the service) of one event on an SQS or SNS FIFO queue or topic.
/// Both must be 1 to 128 letters, digits or punctuation, as `service` (`SQS`, `SNS`) requires; an
/// id that is not fails the event alone.
pub fn fifo_ids(
    service: &str,
    group_id: &crate::template::Template,
    event: &crate::Event,
    payload: &Value,
) -> Result<(String, String), Failure> {
    let group = group_id
        .render_with_payload(event, payload)
        .map_err(|e| Failure::permanent(format!("message_group_id: {e}")))?;
    check_fifo_id(service, "MessageGroupId", &group)?;
    check_fifo_id(service, "MessageDeduplicationId (the event id)", &event.id)?;
    Ok((group, event.id.clone()))
}

fn check_fifo_id(service: &str, what: &str, id: &str) -> Result<(), Failure> {
    if id.is_empty() || id.len() > MAX_FIFO_ID_CHARS || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::permanent(format!(
            "{what} {id:?} is not 1 to {MAX_FIFO_ID_CHARS} letters, digits or punctuation, which {service} requires"
        )));
    }
    Ok(())
}

/// What an AWS error answer says: the error code and message, read from whichever place the
/// service's protocol puts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: u16,
    /// The error's name (`ThrottlingException`, `QueueDoesNotExist`, `SlowDown`, ...), without
    /// the JSON protocol's namespace prefix.
    pub code: Option<String>,
    /// The awsQuery code of a query-compatible JSON service (`x-amzn-query-error`), when it
    /// differs from `code` (SQS: `AWS.SimpleQueueService.NonExistentQueue`).
    pub query_code: Option<String>,
    pub message: Option<String>,
    /// `Retry-After`, when the service sent one.
    pub retry_after_ms: Option<u64>,
}

impl ErrorAnswer {
    /// Reads an error answer: JSON (`__type`, `code`, `message`), the `x-amzn-query-error` and
    /// `x-amzn-errortype` headers, or XML (`<Code>`, `<Message>`).
    pub fn read(response: &http::Response) -> Self {
        let json: Option<Value> = serde_json::from_slice(&response.body).ok();
        let json = json.as_ref().filter(|v| v.is_object());
        let json_field = |names: &[&str]| {
            json.and_then(|v| {
                names
                    .iter()
                    .find_map(|name| v.get(*name).and_then(Value::as_str))
                    .map(str::to_owned)
            })
        };

        let query_code = response
            .header("x-amzn-query-error")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let code = json_field(&["__type", "code", "Code"])
            .or_else(|| response.header("x-amzn-errortype").map(str::to_owned))
            .or_else(|| xml_element(&response.body, "Code"))
            .map(|code| shape_name(&code))
            .filter(|code| !code.is_empty());
        let message = json_field(&["message", "Message", "errorMessage"])
            .or_else(|| xml_element(&response.body, "Message"))
            .map(|m| shorten(m.trim()))
            .filter(|m| !m.is_empty());
        let (code, query_code) = match (code, query_code) {
            (None, query) => (query, None),
            (Some(code), Some(query)) if query == code => (Some(code), None),
            (code, query) => (code, query),
        };
        Self {
            status: response.status,
            code,
            query_code,
            message,
            retry_after_ms: response.retry_after_ms(),
        }
    }

    /// Whether trying again later may succeed: throttling and transient codes, 408, 429 and 5xx;
    /// everything else (auth, missing resources, validation) is permanent.
    pub fn is_retryable(&self) -> bool {
        let codes = [self.code.as_deref(), self.query_code.as_deref()];
        let codes = codes.iter().flatten();
        if codes.clone().any(|code| is_retryable_code(code)) {
            return true;
        }
        if codes.clone().any(|code| is_permanent_code(code)) {
            return false;
        }
        matches!(self.status, 408 | 429) || self.status >= 500
    }

    /// The failure for the delivery log: AWS's code and message, the status, `Retry-After`.
    pub fn into_failure(self, excerpt: Option<String>) -> Failure {
        let mut text = match (&self.code, &self.query_code) {
            (Some(code), Some(query)) => format!("{code} ({query})"),
            (Some(code), None) => code.clone(),
            (None, _) => format!("HTTP {}", self.status),
        };
        if let Some(message) = &self.message {
            text.push_str(": ");
            text.push_str(message);
        }
        if self.code.is_some() {
            text.push_str(&format!(" (HTTP {})", self.status));
        }
        let failure = if self.is_retryable() {
            Failure::retryable(text).with_retry_after_ms(self.retry_after_ms)
        } else {
            Failure::permanent(text)
        };
        failure.with_status(self.status).with_excerpt(excerpt)
    }
}

/// The failure for an AWS answer that is not a success (see [`ErrorAnswer`]).
pub fn failure(response: &http::Response) -> Failure {
    ErrorAnswer::read(response).into_failure(response.excerpt())
}

/// Whether an AWS error code says "slow down" or "try again" (the AWS SDKs' throttling and
/// transient lists, plus clock skew: the host's clock, not the request, is wrong).
/// What a batch call's names are, for the messages of [`entry_answers`].
pub struct BatchCall<'a> {
    /// `Kinesis`, `EventBridge`, ...
    pub service: &'a str,
    /// `PutRecords`, `PutEvents`, ...
    pub operation: &'a str,
    /// `records`, `entries`, ...
    pub items: &'a str,
}

/// The outcome of each entry of a batch call that answers every entry in the order sent
/// (PutRecords, PutEvents, PutRecordBatch). A refused request answers every entry with
/// [`failure`]. Answers are matched by position, so a body that cannot be read, or that answers
/// for another number of entries, answers every entry retryably: none can be trusted.
pub fn entry_answers<A: serde::de::DeserializeOwned, E>(
    response: &http::Response,
    count: usize,
    call: &BatchCall<'_>,
    entries: impl FnOnce(A) -> Vec<E>,
    outcome: impl Fn(E, u16) -> DeliveryResult,
) -> Vec<DeliveryResult> {
    if !response.is_success() {
        return vec![Err(failure(response)); count];
    }
    let unreadable = |message: String| {
        vec![
            Err(Failure::retryable(message)
                .with_status(response.status)
                .with_excerpt(response.excerpt()));
            count
        ]
    };
    let Ok(answer) = serde_json::from_slice::<A>(&response.body) else {
        return unreadable(format!(
            "{} answered with a body that is not a {} result",
            call.service, call.operation
        ));
    };
    let entries = entries(answer);
    if entries.len() != count {
        return unreadable(format!(
            "{} answered for {} {} of the {count} sent",
            call.service,
            entries.len(),
            call.items
        ));
    }
    entries
        .into_iter()
        .map(|entry| outcome(entry, response.status))
        .collect()
}

/// One entry refused with an AWS error code: `"{code}: {message}"` (or `refused` when the
/// service gave no message), retryable when the code is one AWS retries.
pub fn entry_failure(code: &str, message: Option<&str>, refused: &str, status: u16) -> Failure {
    let message = format!("{code}: {}", message.unwrap_or(refused));
    let failure = if is_retryable_code(code) {
        Failure::retryable(message)
    } else {
        Failure::permanent(message)
    };
    failure.with_status(status)
}

pub fn is_retryable_code(code: &str) -> bool {
    const RETRYABLE: &[&str] = &[
        // Throttling.
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "KmsThrottled",
        "KMSThrottling",
        "KMSThrottlingException",
        // SNS's throttling code, which its model counts as the sender's fault (HTTP 429).
        "Throttled",
        // Transient.
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "InternalErrorException",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceFailure",
        // Clock skew.
        "RequestTimeTooSkewed",
        "RequestExpired",
        "RequestInTheFuture",
    ];
    let short = short_code(code);
    RETRYABLE.contains(&code) || RETRYABLE.contains(&short)
}

/// Whether an AWS error code says the request will fail the same way again: refused
/// credentials or signature, no permission, a missing queue/bucket/stream/topic, a request the
/// service finds invalid.
pub fn is_permanent_code(code: &str) -> bool {
    const PERMANENT: &[&str] = &[
        // Credentials and signature.
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "UnrecognizedClientException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "InvalidAccessKeyId",
        "InvalidSecurity",
        "InvalidToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
        "AuthorizationError",
        "NotAuthorized",
        "OptInRequired",
        "KmsAccessDenied",
        // Missing resources.
        "QueueDoesNotExist",
        "NonExistentQueue",
        "ResourceNotFoundException",
        "ResourceNotFound",
        "NoSuchBucket",
        "NoSuchKey",
        "NotFound",
        "NotFoundException",
        "NotFoundError",
        "KmsNotFound",
        // Validation.
        "ValidationError",
        "ValidationException",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameterException",
        "InvalidParameterCombination",
        "InvalidArgument",
        "InvalidArgumentException",
        "InvalidRequest",
        "InvalidRequestException",
        "InvalidAction",
        "InvalidInput",
        "MissingParameter",
        "MalformedInput",
        "SerializationException",
        "UnknownOperationException",
        "BatchRequestTooLong",
        "BatchEntryIdsNotDistinct",
        "TooManyEntriesInBatchRequest",
        "EmptyBatchRequest",
        "InvalidBatchEntryId",
        "InvalidMessageContents",
        "UnsupportedOperation",
        "EntityTooLarge",
        "KmsDisabled",
        "KmsInvalidState",
        "KmsInvalidKeyUsage",
        "KmsOptInRequired",
    ];
    let short = short_code(code);
    PERMANENT.contains(&code) || PERMANENT.contains(&short) || short.starts_with("AccessDenied")
}

/// `AWS.SimpleQueueService.NonExistentQueue` → `NonExistentQueue`.
fn short_code(code: &str) -> &str {
    code.rsplit('.').next().unwrap_or(code)
}

/// `com.amazonaws.sqs#QueueDoesNotExist` or `QueueDoesNotExist:http://...` →
/// `QueueDoesNotExist`.
fn shape_name(code: &str) -> String {
    let code = code.trim();
    let code = code.rsplit('#').next().unwrap_or(code);
    let code = code.split(':').next().unwrap_or(code);
    code.trim().to_owned()
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    short.push('…');
    short
}

/// The text of the first `<name>` element of an XML body, entities decoded. AWS's XML errors are
/// flat enough (`<Error><Code>..</Code><Message>..</Message></Error>`) that no parser is needed.
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    let text = &body[start..end];
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::fixtures::response;

    #[test]
    fn fifo_ids_render_the_group_and_take_the_event_id_within_the_services_rules() {
        let event = crate::Event {
            id: "evt_1".into(),
            event_type: "order.created".into(),
            occurred_at: 0,
            payload: Vec::new(),
            attributes: Vec::new(),
        };
        let template: crate::template::Template = "order-{{payload.order}}".parse().unwrap();
        let ids = fifo_ids("SQS", &template, &event, &json!({ "order": 7 })).unwrap();
        assert_eq!(ids, ("order-7".to_owned(), "evt_1".to_owned()));
        let long = json!({ "order": "x".repeat(200) });
        let refused = fifo_ids("SNS", &template, &event, &long).unwrap_err();
        assert_eq!(refused.kind, crate::FailureKind::Permanent);
        assert!(
            refused.message.contains("MessageGroupId"),
            "{}",
            refused.message
        );
        assert!(
            refused.message.contains("which SNS requires"),
            "{}",
            refused.message
        );
        let spaced = json!({ "order": "a b" });
        assert!(
            fifo_ids("SQS", &template, &event, &spaced).is_err(),
            "no spaces"
        );
    }

    /// The AWS documentation's example key.
    fn example() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        )
    }

    /// 2015-08-30T12:36:00Z, the time of the AWS SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    #[test]
    fn signs_the_test_suite_get_vanilla_request() {
        // aws-sig-v4-test-suite/get-vanilla: GET / on example.amazonaws.com, service "service".
        let service = Service::new(
            "service",
            "us-east-1",
            Some("https://example.amazonaws.com"),
            example(),
        )
        .unwrap();
        let signed = service
            .sign_at(http::Request::get(&service.url("/")).unwrap(), suite_time())
            .unwrap();
        assert_eq!(signed.header_value("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            signed.header_value("authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert_eq!(signed.header_value("x-amz-security-token"), None);
    }

    #[test]
    fn signs_an_sqs_json_request_as_botocore_does() {
        // The expected signature was computed with botocore 1.43's SigV4Auth for the same request
        // (same headers, body, key and time), on a loopback endpoint with a port.
        let service =
            Service::new("sqs", "eu-west-1", Some("http://127.0.0.1:5000"), example()).unwrap();
        let request = http::Request::post(&service.url("/"))
            .unwrap()
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", "AmazonSQS.SendMessageBatch")
            .body(r#"{"QueueUrl":"http://127.0.0.1:5000/123456789012/q","Entries":[]}"#);
        let signed = service.sign_at(request, suite_time()).unwrap();
        assert_eq!(signed.url(), "http://127.0.0.1:5000/");
        assert_eq!(
            signed.header_value("authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/sqs/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
                 Signature=6bab9e8758a54bdb8cf8293006469bc140c9d460df2d254817d27b443bf64e90"
            )
        );
    }

    #[test]
    fn signs_with_a_session_token() {
        let service = Service::new(
            "sqs",
            "eu-west-1",
            None,
            Credentials::new("AKIDEXAMPLE", "secret", Some("the-token".to_owned())),
        )
        .unwrap();
        let request = || http::Request::post(&service.url("/")).unwrap().body("{}");
        let signed = service.sign_at(request(), suite_time()).unwrap();
        assert_eq!(signed.url(), "https://sqs.eu-west-1.amazonaws.com/");
        assert_eq!(
            signed.header_value("x-amz-security-token"),
            Some("the-token")
        );
        let authorization = signed.header_value("authorization").unwrap();
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/sqs/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="
        ));
        // The same inputs give the same signature; another time or body another one.
        let again = service.sign_at(request(), suite_time()).unwrap();
        assert_eq!(again.header_value("authorization"), Some(authorization));
        let later = service
            .sign_at(request(), suite_time() + Duration::from_secs(1))
            .unwrap();
        assert_ne!(later.header_value("authorization"), Some(authorization));
        let other = service
            .sign_at(request().body("{ }"), suite_time())
            .unwrap();
        assert_ne!(other.header_value("authorization"), Some(authorization));
    }

    #[test]
    fn s3_signing_adds_the_payload_hash() {
        let service = Service::new("s3", "us-east-1", Some("http://127.0.0.1:9000"), example())
            .unwrap()
            .s3_signing();
        let signed = service
            .sign_at(
                http::Request::put(&service.url("/bucket/a%20b/c.ndjson"))
                    .unwrap()
                    .body(""),
                suite_time(),
            )
            .unwrap();
        assert_eq!(
            signed.header_value("x-amz-content-sha256"),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert!(signed
            .header_value("authorization")
            .unwrap()
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let credentials = Credentials::new("AKIDEXAMPLE", "very-secret", Some("token-x".into()));
        let text = format!("{credentials:?}");
        assert!(text.contains("AKIDEXAMPLE"));
        assert!(!text.contains("very-secret"));
        assert!(!text.contains("token-x"));
        let service = Service::new("sqs", "eu-west-1", None, credentials).unwrap();
        let text = format!("{service:?}");
        assert!(!text.contains("very-secret"));
        assert!(!text.contains("token-x"));
    }

    #[test]
    fn reads_the_credential() {
        let credential = |kind: &str, secret: &str| Credential {
            kind: kind.to_owned(),
            secret: secret.to_owned(),
        };
        let ok = Credentials::from_credential(Some(&credential(
            "aws_access_key",
            r#"{"access_key_id":"AKID","secret_access_key":"s","role_arn":"ignored"}"#,
        )))
        .unwrap();
        assert_eq!(ok.access_key_id(), "AKID");
        assert!(Credentials::from_credential(None).is_err());
        let wrong = Credentials::from_credential(Some(&credential("basic", "{}"))).unwrap_err();
        assert!(wrong.message.contains("basic"));
        let missing = Credentials::from_credential(Some(&credential(
            "aws_access_key",
            r#"{"access_key_id":"AKID"}"#,
        )))
        .unwrap_err();
        assert!(missing.message.contains("secret_access_key"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            default_endpoint("sqs", "eu-west-1"),
            "https://sqs.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            default_endpoint("sqs", "cn-north-1"),
            "https://sqs.cn-north-1.amazonaws.com.cn"
        );
        let service = Service::new(
            "sqs",
            "us-east-1",
            Some("http://localhost:4566/"),
            example(),
        )
        .unwrap();
        assert_eq!(service.url("/"), "http://localhost:4566/");
        let service = Service::new("s3", "us-east-1", Some("http://h/prefix/"), example()).unwrap();
        assert_eq!(service.url("/b/k"), "http://h/prefix/b/k");
        assert_eq!(service.url("b"), "http://h/prefix/b");
        assert!(Service::new("sqs", "EU", None, example()).is_err());
        assert!(Service::new("sqs", "eu-west-1", Some("ftp://h"), example()).is_err());
    }

    #[test]
    fn validates_region_and_endpoint() {
        assert!(validate("eu-west-1", None).is_empty());
        assert!(validate("us-gov-west-1", Some("https://sqs.example")).is_empty());
        let fields =
            |errors: Vec<FieldError>| errors.into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(validate("", None)), ["region"]);
        assert_eq!(fields(validate("eu west", None)), ["region"]);
        assert_eq!(fields(validate("Eu-West-1", None)), ["region"]);
        assert_eq!(
            fields(validate("eu-west-1", Some("localhost:4566"))),
            ["endpoint"]
        );
        assert_eq!(
            fields(validate("eu-west-1", Some("file:///x"))),
            ["endpoint"]
        );
        assert_eq!(
            fields(validate("eu-west-1", Some("http://h/?a=b"))),
            ["endpoint"]
        );
    }

    #[test]
    fn reads_json_errors() {
        let answer = ErrorAnswer::read(&response(
            400,
            &[
                (
                    "x-amzn-query-error",
                    "AWS.SimpleQueueService.NonExistentQueue;Sender",
                ),
                ("content-type", "application/x-amz-json-1.0"),
            ],
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#,
        ));
        assert_eq!(answer.code.as_deref(), Some("QueueDoesNotExist"));
        assert_eq!(
            answer.query_code.as_deref(),
            Some("AWS.SimpleQueueService.NonExistentQueue")
        );
        assert_eq!(
            answer.message.as_deref(),
            Some("The specified queue does not exist.")
        );
        assert!(!answer.is_retryable());
        let failure = answer.into_failure(None);
        assert_eq!(
            failure.message,
            "QueueDoesNotExist (AWS.SimpleQueueService.NonExistentQueue): The specified queue does not exist. (HTTP 400)"
        );
        assert_eq!(failure.status_code, Some(400));

        // Only the query header.
        let answer = ErrorAnswer::read(&response(
            400,
            &[(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.NonExistentQueue;Sender",
            )],
            "",
        ));
        assert_eq!(
            answer.code.as_deref(),
            Some("AWS.SimpleQueueService.NonExistentQueue")
        );
        assert!(!answer.is_retryable());

        // `code` and `Message` spellings, and x-amzn-errortype.
        let answer = ErrorAnswer::read(&response(
            400,
            &[],
            r#"{"code":"ValidationException","Message":"bad"}"#,
        ));
        assert_eq!(answer.code.as_deref(), Some("ValidationException"));
        assert_eq!(answer.message.as_deref(), Some("bad"));
        let answer = ErrorAnswer::read(&response(
            400,
            &[(
                "x-amzn-errortype",
                "ResourceNotFoundException:http://internal.amazon.com/",
            )],
            "{}",
        ));
        assert_eq!(answer.code.as_deref(), Some("ResourceNotFoundException"));
    }

    #[test]
    fn reads_xml_errors() {
        let answer = ErrorAnswer::read(&response(
            403,
            &[],
            "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type>\
             <Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated \
             does not match the signature you provided.</Message></Error></ErrorResponse>",
        ));
        assert_eq!(answer.code.as_deref(), Some("SignatureDoesNotMatch"));
        let failure = answer.into_failure(None);
        assert_eq!(failure.kind, crate::FailureKind::Permanent);
        assert!(failure
            .message
            .starts_with("SignatureDoesNotMatch: The request signature we calculated"));
        let answer = ErrorAnswer::read(&response(
            503,
            &[("retry-after", "3")],
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate &amp; retry.</Message></Error>",
        ));
        assert_eq!(
            answer.message.as_deref(),
            Some("Please reduce your request rate & retry.")
        );
        let failure = answer.into_failure(Some("x".into()));
        assert_eq!(failure.kind, crate::FailureKind::Retryable);
        assert_eq!(failure.retry_after_ms, Some(3000));
        assert_eq!(failure.response_excerpt.as_deref(), Some("x"));
    }

    #[test]
    fn classifies_errors() {
        let retryable = |status: u16, code: Option<&str>| {
            ErrorAnswer {
                status,
                code: code.map(str::to_owned),
                query_code: None,
                message: None,
                retry_after_ms: None,
            }
            .is_retryable()
        };
        for code in [
            "ThrottlingException",
            "RequestThrottled",
            "ProvisionedThroughputExceededException",
            "SlowDown",
            "AWS.SimpleQueueService.RequestThrottled",
            "InternalFailure",
            "ServiceUnavailable",
            "RequestTimeTooSkewed",
        ] {
            assert!(retryable(400, Some(code)), "{code}");
        }
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "UnrecognizedClientException",
            "ExpiredToken",
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "ResourceNotFoundException",
            "NoSuchBucket",
            "ValidationException",
            "InvalidParameterValue",
            "SomethingNew",
        ] {
            assert!(!retryable(400, Some(code)), "{code}");
        }
        // A known permanent code stays permanent whatever the status; unknown codes and none
        // follow the status.
        assert!(!retryable(500, Some("AccessDenied")));
        assert!(retryable(500, Some("SomethingNew")));
        assert!(retryable(503, None));
        assert!(retryable(429, None));
        assert!(retryable(502, None));
        assert!(!retryable(403, None));
        assert!(!retryable(404, None));
        // Without a code, the message says the status.
        let failure = failure(&response(502, &[], "<html>bad gateway</html>"));
        assert_eq!(failure.message, "HTTP 502");
        assert_eq!(failure.kind, crate::FailureKind::Retryable);
    }
}

//! What the Azure destination types share. Service Bus's shared access signatures (credential
//! kind `azure_sas_key`) are in [`service_bus`]; the rest of this module is Azure Storage's.
//!
//! What the Azure Storage destination types share: credentials of kind `azure_shared_key` (the
//! request signed with the account key, Azure's SharedKey scheme) and `azure_sas_token` (a shared
//! access signature appended to every URL), the blob service endpoint and account name, and the
//! reading and classification of Azure Storage's error answers.
//!
//! ```ignore
//! use pushrail_plugin_sdk::{azure, http};
//!
//! let auth = azure::StorageAuth::from_credential(credential.as_ref(), &config.account)?;
//! let endpoint = azure::blob_endpoint(&config.account, config.endpoint.as_deref())?;
//! let url = auth.url(&format!("{endpoint}/{container}/{encoded_name}"));
//! let request = http::Request::put(&url)?
//!     .header("x-ms-blob-type", "BlockBlob")
//!     .body(body);
//! let response = auth.authorize(request)?.send()?;
//! if !response.is_success() {
//!     return Err(azure::failure(&response));
//! }
//! ```
//!
//! SharedKey is signed here (HMAC-SHA256 from the `hmac` and `sha2` crates) because no
//! maintained Rust crate signs Azure Storage requests without bringing its own HTTP client: the
//! string-to-sign follows "Authorize with Shared Key" in Azure's REST documentation, and the
//! unit tests compare the signature with the one the Python `azure-storage-blob` SDK computes.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{http, Credential, Failure, FieldError};

pub mod service_bus;
pub use service_bus::ServiceBusSas;

/// The credential kind that carries a storage account's name and key.
pub const SHARED_KEY_KIND: &str = "azure_shared_key";
/// The credential kind that carries a shared access signature (SAS) token.
pub const SAS_TOKEN_KIND: &str = "azure_sas_token";
/// The kinds an Azure Storage type accepts, for [`crate::TypeInfo::credentials`].
pub const STORAGE_CREDENTIAL_KINDS: &[&str] = &[SHARED_KEY_KIND, SAS_TOKEN_KIND];

/// The Storage REST API version every request asks for (`x-ms-version`). Azure accepts it, and so
/// does Azurite 3.35 and later, the local peer, without `--skipApiVersionCheck`.
pub const API_VERSION: &str = "2025-11-05";

/// Longest Azure message kept in a failure's message (the body excerpt has the rest).
const MAX_MESSAGE_CHARS: usize = 300;

/// A storage account's name and decoded key, signing requests with SharedKey. Its `Debug` shows
/// the account name only.
#[derive(Clone)]
pub struct SharedKey {
    account: String,
    key: Vec<u8>,
}

#[derive(Deserialize)]
struct SharedKeySecret {
    account_name: String,
    account_key: String,
}

#[derive(Deserialize)]
struct SasTokenSecret {
    sas_token: String,
}

impl SharedKey {
    /// `account_key` is the base64 key the Azure portal shows.
    pub fn new(account: &str, account_key: &str) -> Result<Self, Failure> {
        check_account(account).map_err(|m| Failure::permanent(format!("the account name {m}")))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(account_key.trim())
            .map_err(|_| {
                Failure::permanent(
                    "the azure_shared_key credential's account_key is not base64 (copy key1 or key2 of the storage account as shown)",
                )
            })?;
        if key.is_empty() {
            return Err(Failure::permanent(
                "the azure_shared_key credential's account_key is empty",
            ));
        }
        Ok(Self {
            account: account.to_owned(),
            key,
        })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Signs `request` at `time`: sets `x-ms-date` and (unless already set) `x-ms-version`, then
    /// `authorization: SharedKey {account}:{signature}`. Every header is set before signing, so
    /// set them all first.
    pub fn sign_at(
        &self,
        request: http::Request,
        time: SystemTime,
    ) -> Result<http::Request, Failure> {
        let request = with_date_and_version(request, time);
        let string_to_sign = string_to_sign(&request, &self.account)?;
        let signature = self.signature(&string_to_sign);
        Ok(request.header(
            "authorization",
            format!("SharedKey {}:{signature}", self.account),
        ))
    }

    /// The base64 HMAC-SHA256 of `string_to_sign` under the account key.
    pub fn signature(&self, string_to_sign: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(string_to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKey")
            .field("account", &self.account)
            .field("key", &"** redacted **")
            .finish()
    }
}

/// A shared access signature: the query string (`sv=…&sig=…`) appended to every request's URL.
/// Its `Debug` hides it.
#[derive(Clone)]
pub struct SasToken {
    query: String,
}

impl SasToken {
    /// Takes the token as the portal or an SDK gives it, with or without its leading `?`.
    pub fn new(token: &str) -> Result<Self, Failure> {
        let query = token.trim();
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.starts_with("http://") || query.starts_with("https://") {
            return Err(Failure::permanent(
                "the azure_sas_token credential holds a URL; give the token only (the part after ?, sv=…&sig=…)",
            ));
        }
        if query.is_empty()
            || query.contains(['#', ' ', '\n', '\r', '\t'])
            || !query.split('&').any(|pair| pair.starts_with("sig="))
        {
            return Err(Failure::permanent(
                "the azure_sas_token credential is not a SAS token (a query string such as sv=…&sp=…&sig=…)",
            ));
        }
        Ok(Self {
            query: query.to_owned(),
        })
    }

    /// `url` with the token appended to its query.
    pub fn apply(&self, url: &str) -> String {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{}", self.query)
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SasToken(** redacted **)")
    }
}

/// How a session's requests to Azure Storage are authorized.
#[derive(Clone, Debug)]
pub enum StorageAuth {
    SharedKey(SharedKey),
    Sas(SasToken),
}

impl StorageAuth {
    /// The credential a session was opened with (`azure_shared_key` or `azure_sas_token`, one is
    /// required) for storage account `account`. A shared key of another account is refused here:
    /// Azure would only answer `AuthenticationFailed`.
    pub fn from_credential(
        credential: Option<&Credential>,
        account: &str,
    ) -> Result<Self, Failure> {
        let credential = credential.ok_or_else(|| {
            Failure::permanent(format!(
                "an {SHARED_KEY_KIND} or {SAS_TOKEN_KIND} credential is required"
            ))
        })?;
        match credential.kind.as_str() {
            SHARED_KEY_KIND => {
                let secret: SharedKeySecret = credential.secret()?;
                if secret.account_name != account {
                    return Err(Failure::permanent(format!(
                        "the azure_shared_key credential is for account {}, not {account}",
                        secret.account_name
                    )));
                }
                SharedKey::new(&secret.account_name, &secret.account_key).map(Self::SharedKey)
            }
            SAS_TOKEN_KIND => {
                let secret: SasTokenSecret = credential.secret()?;
                SasToken::new(&secret.sas_token).map(Self::Sas)
            }
            other => Err(Failure::permanent(format!(
                "credential kind {other} is not supported (expected {SHARED_KEY_KIND} or {SAS_TOKEN_KIND})"
            ))),
        }
    }

    /// The URL to send a request to: `url` itself, or with the SAS token appended.
    pub fn url(&self, url: &str) -> String {
        match self {
            Self::SharedKey(_) => url.to_owned(),
            Self::Sas(token) => token.apply(url),
        }
    }

    /// Authorizes `request` (built on [`StorageAuth::url`]) at the wall clock's time.
    pub fn authorize(&self, request: http::Request) -> Result<http::Request, Failure> {
        self.authorize_at(request, SystemTime::now())
    }

    /// [`StorageAuth::authorize`] at a given time: `x-ms-date` and `x-ms-version`, and the
    /// SharedKey signature when signing with a key.
    pub fn authorize_at(
        &self,
        request: http::Request,
        time: SystemTime,
    ) -> Result<http::Request, Failure> {
        match self {
            Self::SharedKey(key) => key.sign_at(request, time),
            Self::Sas(_) => Ok(with_date_and_version(request, time)),
        }
    }
}

fn with_date_and_version(request: http::Request, time: SystemTime) -> http::Request {
    let request = request.header("x-ms-date", http_date(time));
    if request.header_value("x-ms-version").is_some() {
        request
    } else {
        request.header("x-ms-version", API_VERSION)
    }
}

/// `time` as an HTTP date (RFC 1123, GMT): `Sat, 07 Mar 2026 09:05:00 GMT`.
pub fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = time::OffsetDateTime::from(time);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The standard headers of the string-to-sign, in order (`Range` last).
const SIGNED_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// Azure Storage's SharedKey string-to-sign for `request` (API versions 2015-02-21 and later):
/// the verb; the values of the standard headers, each on its line (`Content-Length` is the
/// body's length, empty for an empty body, as the host sends it); the canonicalized `x-ms-*`
/// headers (`name:value` lines, names in lower case sorted, values trimmed, repeated headers
/// joined with `,`); the canonicalized resource, `/{account}{path}` with the path as sent
/// (percent-encoded; with an emulator's endpoint it starts with the account again), then one
/// `\n{name}:{values}` per query parameter, names in lower case sorted, values decoded and
/// sorted, joined with `,`.
///
/// The `x-ms-*` names are sorted by their bytes. Azure's own order treats `-` specially
/// (the SDKs reimplement it); the two only differ between names that match up to a `-`
/// and a letter, which the headers sent here never do.
pub fn string_to_sign(request: &http::Request, account: &str) -> Result<String, Failure> {
    let header_text = |name: &str| -> Result<Vec<&str>, Failure> {
        request
            .headers()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(n, v)| {
                std::str::from_utf8(v).map(str::trim).map_err(|_| {
                    Failure::permanent(format!("header {n} is not text, so not signable"))
                })
            })
            .collect()
    };
    let mut text = format!("{}\n", request.method().to_ascii_uppercase());
    for name in SIGNED_HEADERS {
        let value = if name == "content-length" {
            match request.body_bytes().len() {
                0 => String::new(),
                n => n.to_string(),
            }
        } else {
            header_text(name)?.join(",")
        };
        text.push_str(&value);
        text.push('\n');
    }
    let mut names: Vec<&str> = request
        .headers()
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("x-ms-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        text.push_str(&format!("{name}:{}\n", header_text(name)?.join(",")));
    }
    let url = url::Url::parse(request.url())
        .map_err(|e| Failure::permanent(format!("signing the request: {e}")))?;
    text.push('/');
    text.push_str(account);
    text.push_str(url.path());
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for pair in url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let name = decode(name).to_ascii_lowercase();
        let value = decode(value);
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => params.push((name, vec![value])),
        }
    }
    params.sort();
    for (name, mut values) in params {
        values.sort();
        text.push_str(&format!("\n{name}:{}", values.join(",")));
    }
    Ok(text)
}

/// A storage account's name: 3 to 24 lower-case letters and digits.
pub fn check_account(account: &str) -> Result<(), String> {
    if !(3..=24).contains(&account.len())
        || !account
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(
            "must be 3 to 24 lower-case letters and digits (the storage account's name, not a URL)"
                .to_owned(),
        );
    }
    Ok(())
}

/// A blob container's name: 3 to 63 lower-case letters, digits and `-`, starting and ending with
/// a letter or digit, no `--`; or one of the special containers `$root`, `$web`, `$logs`.
pub fn check_container(container: &str) -> Result<(), String> {
    if matches!(container, "$root" | "$web" | "$logs") {
        return Ok(());
    }
    if !(3..=63).contains(&container.len()) {
        return Err("must be 3 to 63 characters".to_owned());
    }
    if !container
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(
            "may only have lower-case letters, digits and - (a container name, not a URL)"
                .to_owned(),
        );
    }
    if container.starts_with('-') || container.ends_with('-') {
        return Err("must start and end with a letter or digit".to_owned());
    }
    if container.contains("--") {
        return Err("must not have two hyphens in a row".to_owned());
    }
    Ok(())
}

/// The default blob service endpoint of `account`: `https://{account}.blob.core.windows.net`.
pub fn default_blob_endpoint(account: &str) -> String {
    format!("https://{account}.blob.core.windows.net")
}

/// The blob service's base URL, without a trailing `/`: `endpoint` when given (an emulator's
/// includes the account: `http://127.0.0.1:10000/devstoreaccount1`), else the account's default.
pub fn blob_endpoint(account: &str, endpoint: Option<&str>) -> Result<String, Failure> {
    match endpoint {
        Some(endpoint) => {
            let url = parse_endpoint(endpoint)
                .map_err(|m| Failure::permanent(format!("endpoint {m}")))?;
            Ok(url.as_str().trim_end_matches('/').to_owned())
        }
        None => Ok(default_blob_endpoint(account)),
    }
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
        return Err(
            "must be a base URL, without a query or fragment (a SAS token goes in an azure_sas_token credential)"
                .to_owned(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".to_owned());
    }
    Ok(url)
}

/// Checks the `account` and `endpoint` fields of an Azure Storage type.
pub fn validate(account: &str, endpoint: Option<&str>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(message) = check_account(account) {
        errors.push(FieldError::new("account", message));
    }
    if let Some(endpoint) = endpoint {
        if let Err(message) = parse_endpoint(endpoint) {
            errors.push(FieldError::new("endpoint", message));
        }
    }
    errors
}

/// The JSON Schema of the `account` field.
pub fn account_schema() -> Value {
    json!({
        "type": "string", "title": "Storage account", "pattern": "^[a-z0-9]{3,24}$",
        "minLength": 3, "maxLength": 24,
        "description": "The storage account's name, e.g. acmeevents (not a URL)."
    })
}

/// The JSON Schema of the optional `endpoint` field; `description` says what the default is.
pub fn endpoint_schema(description: &str) -> Value {
    json!({
        "type": "string", "title": "Endpoint", "format": "uri",
        "pattern": "^https?://", "maxLength": 2048,
        "description": description
    })
}

/// The JSON Schema of the `azure_shared_key` and `azure_sas_token` secrets, for
/// [`crate::TypeInfo::credentials`] (the host's own schemas of those kinds).
pub fn credential_schema() -> Value {
    json!({
        "oneOf": [
            {
                "title": "Shared key",
                "type": "object",
                "required": ["account_name", "account_key"],
                "description": "Azure portal → your storage account → Security + networking → Access keys: the storage account name and the Key of key1 (or key2).",
                "properties": {
                    "account_name": {
                        "type": "string", "title": "Storage account name", "minLength": 1,
                        "description": "The name at the top of the Access keys page, e.g. acmeevents (not a URL)."
                    },
                    "account_key": {
                        "type": "string", "title": "Account key (base64)", "minLength": 1,
                        "description": "key1's (or key2's) Key: Show, then copy. Not the connection string."
                    }
                }
            },
            {
                "title": "SAS token",
                "type": "object",
                "required": ["sas_token"],
                "description": "Azure portal → your storage account → Security + networking → Shared access signature: allow the Blob service, the Container and Object resource types and the Create and Write permissions, choose an expiry, then Generate SAS and connection string.",
                "properties": {
                    "sas_token": {
                        "type": "string", "title": "SAS token", "minLength": 1, "maxLength": 16384,
                        "description": "The SAS token shown after Generate SAS and connection string (with or without its leading ?), e.g. sv=2024-11-04&ss=b&srt=co&sp=cw&se=...&sig=..."
                    }
                }
            }
        ]
    })
}

/// What an Azure Storage error answer says: the error code (`x-ms-error-code`, or the XML
/// body's `<Code>`) and the first line of its `<Message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    /// `Retry-After`, when the service sent one.
    pub retry_after_ms: Option<u64>,
}

impl ErrorAnswer {
    pub fn read(response: &http::Response) -> Self {
        let code = response
            .header("x-ms-error-code")
            .map(str::to_owned)
            .or_else(|| xml_element(&response.body, "Code"))
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        // Azure appends `RequestId:…` and `Time:…` lines to every message.
        let message = xml_element(&response.body, "Message")
            .and_then(|m| m.lines().next().map(|l| shorten(l.trim())))
            .filter(|m| !m.is_empty());
        Self {
            status: response.status,
            code,
            message,
            retry_after_ms: response.retry_after_ms(),
        }
    }

    /// Whether trying again later may succeed: Azure's transient codes, 408, 429 and 5xx; every
    /// other answer (auth, a missing container, a refused request) is permanent.
    pub fn is_retryable(&self) -> bool {
        if let Some(code) = self.code.as_deref() {
            if is_retryable_code(code) {
                return true;
            }
            if is_permanent_code(code) {
                return false;
            }
        }
        matches!(self.status, 408 | 429) || self.status >= 500
    }

    /// The failure for the delivery log: Azure's code and message, the status, `Retry-After`.
    pub fn into_failure(self, excerpt: Option<String>) -> Failure {
        let mut text = self
            .code
            .clone()
            .unwrap_or_else(|| format!("HTTP {}", self.status));
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

/// The failure for an Azure Storage answer that is not a success (see [`ErrorAnswer`]).
pub fn failure(response: &http::Response) -> Failure {
    ErrorAnswer::read(response).into_failure(response.excerpt())
}

/// Whether an Azure Storage error code says "try again": the service is busy or timed out.
pub fn is_retryable_code(code: &str) -> bool {
    matches!(
        code,
        "ServerBusy"
            | "OperationTimedOut"
            | "InternalError"
            | "ServiceUnavailable"
            | "IngressOverAccountLimit"
            | "EgressOverAccountLimit"
            | "TooManyRequests"
            | "ContainerBeingDeleted"
    )
}

/// Whether an Azure Storage error code says the request will fail the same way again: refused
/// credentials or signature, no permission, a missing or disabled account or container, a
/// request the service finds invalid.
pub fn is_permanent_code(code: &str) -> bool {
    code.starts_with("Authorization")
        || code.starts_with("Invalid")
        || code.starts_with("Unsupported")
        || code.starts_with("Missing")
        || matches!(
            code,
            "AuthenticationFailed"
                | "InsufficientAccountPermissions"
                | "AccountIsDisabled"
                | "AccountBeingCreated"
                | "ContainerNotFound"
                | "ContainerDisabled"
                | "ResourceNotFound"
                | "ResourceTypeMismatch"
                | "BlobNotFound"
                | "BlobImmutableDueToPolicy"
                | "BlobArchived"
                | "LeaseIdMissing"
                | "LeaseIdMismatchWithBlobOperation"
                | "LeaseNotPresentWithBlobOperation"
                | "ConditionNotMet"
                | "Md5Mismatch"
                | "Crc64Mismatch"
                | "RequestBodyTooLarge"
                | "OutOfRangeInput"
                | "OutOfRangeQueryParameterValue"
                | "ConditionHeadersNotSupported"
                | "KeyVaultEncryptionKeyNotFound"
                | "KeyVaultAccessTokenCannotBeAcquired"
                | "KeyVaultVaultNotFound"
                | "NoAuthenticationInformation"
        )
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    short.push('…');
    short
}

/// The text of the first `<name>` element of an XML body, entities decoded. Azure's errors are
/// flat (`<Error><Code>..</Code><Message>..</Message></Error>`), so no parser is needed.
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .replace("&lt;", "<")
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

    /// Azurite's well-known development account and its published key.
    const DEV_ACCOUNT: &str = "devstoreaccount1";
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// 2026-03-07T09:05:00Z, a Saturday.
    fn time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_772_874_300)
    }

    fn key() -> SharedKey {
        SharedKey::new(DEV_ACCOUNT, DEV_KEY).unwrap()
    }

    /// The Put Blob of [`signs_a_put_blob_as_the_python_sdk_does`].
    fn put_blob() -> http::Request {
        http::Request::put(
            "http://127.0.0.1:10000/devstoreaccount1/events/raw/a%20b/%C3%BC.ndjson.gz",
        )
        .unwrap()
        .header("x-ms-blob-type", "BlockBlob")
        .header("content-type", "application/gzip")
        .header("content-md5", "CY9rzUYh03PK3k6DJie09g==")
        .header("x-ms-meta-pushrail_events", "2")
        .body("hello world\n")
    }

    #[test]
    fn formats_http_dates() {
        assert_eq!(http_date(time()), "Sat, 07 Mar 2026 09:05:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn builds_the_string_to_sign() {
        let request = with_date_and_version(put_blob(), time());
        assert_eq!(
            string_to_sign(&request, DEV_ACCOUNT).unwrap(),
            "PUT\n\n\n12\nCY9rzUYh03PK3k6DJie09g==\napplication/gzip\n\n\n\n\n\n\n\
             x-ms-blob-type:BlockBlob\n\
             x-ms-date:Sat, 07 Mar 2026 09:05:00 GMT\n\
             x-ms-meta-pushrail_events:2\n\
             x-ms-version:2025-11-05\n\
             /devstoreaccount1/devstoreaccount1/events/raw/a%20b/%C3%BC.ndjson.gz"
        );
        // Query parameters: names lower-cased and sorted, values decoded, repeated ones joined.
        let request = http::Request::get(
            "https://acme.blob.core.windows.net/c?restype=container&COMP=list&include=snapshots&include=metadata&prefix=a%2Fb",
        )
        .unwrap()
        .header("x-ms-version", "2025-11-05")
        .header("X-MS-Client-Request-Id", " abc ");
        assert_eq!(
            string_to_sign(&request, "acme").unwrap(),
            "GET\n\n\n\n\n\n\n\n\n\n\n\n\
             x-ms-client-request-id:abc\nx-ms-version:2025-11-05\n\
             /acme/c\ncomp:list\ninclude:metadata,snapshots\nprefix:a/b\nrestype:container"
        );
    }

    /// The expected `Authorization` was computed with the Python `azure-storage-blob` SDK's own
    /// signer (12.31.1, `azure.storage.blob._shared.authentication.SharedKeyCredentialPolicy`)
    /// for the same request, headers and time:
    ///
    /// ```python
    /// from azure.core.pipeline import PipelineRequest, PipelineContext
    /// from azure.core.rest import HttpRequest
    /// from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy
    /// r = HttpRequest("PUT", "http://127.0.0.1:10000/devstoreaccount1/events/raw/a%20b/%C3%BC.ndjson.gz",
    ///     headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/gzip",
    ///              "Content-MD5": "CY9rzUYh03PK3k6DJie09g==", "x-ms-meta-pushrail_events": "2",
    ///              "Content-Length": "12", "x-ms-date": "Sat, 07 Mar 2026 09:05:00 GMT",
    ///              "x-ms-version": "2025-11-05"}, content=b"hello world\n")
    /// p = PipelineRequest(r, PipelineContext(None))
    /// SharedKeyCredentialPolicy("devstoreaccount1", DEV_KEY).on_request(p)
    /// print(r.headers["Authorization"])
    /// ```
    #[test]
    fn signs_a_put_blob_as_the_python_sdk_does() {
        let signed = key().sign_at(put_blob(), time()).unwrap();
        assert_eq!(
            signed.header_value("x-ms-date"),
            Some("Sat, 07 Mar 2026 09:05:00 GMT")
        );
        assert_eq!(signed.header_value("x-ms-version"), Some(API_VERSION));
        assert_eq!(
            signed.header_value("authorization"),
            Some(PYTHON_SDK_AUTHORIZATION)
        );
        // Another time, body or key: another signature.
        let later = key()
            .sign_at(put_blob(), time() + Duration::from_secs(1))
            .unwrap();
        assert_ne!(
            later.header_value("authorization"),
            Some(PYTHON_SDK_AUTHORIZATION)
        );
        // SharedKey signs the body's length, not its bytes (Content-MD5 covers those).
        let same_length = key()
            .sign_at(put_blob().body("hello world!"), time())
            .unwrap();
        assert_eq!(
            same_length.header_value("authorization"),
            Some(PYTHON_SDK_AUTHORIZATION)
        );
        let longer = key()
            .sign_at(put_blob().body("hello world!!"), time())
            .unwrap();
        assert_ne!(
            longer.header_value("authorization"),
            Some(PYTHON_SDK_AUTHORIZATION)
        );
        let wrong = SharedKey::new(DEV_ACCOUNT, "d3Jvbmc=")
            .unwrap()
            .sign_at(put_blob(), time())
            .unwrap();
        assert_ne!(
            wrong.header_value("authorization"),
            Some(PYTHON_SDK_AUTHORIZATION)
        );
    }

    const PYTHON_SDK_AUTHORIZATION: &str =
        "SharedKey devstoreaccount1:sI1fUVO72FMYprIOR3p+cY/nyLfoQ+Inj8kmDJttjXw=";

    #[test]
    fn reads_the_credential() {
        let credential = |kind: &str, secret: Value| Credential {
            kind: kind.to_owned(),
            secret: secret.to_string(),
        };
        let auth = StorageAuth::from_credential(
            Some(&credential(
                "azure_shared_key",
                json!({ "account_name": DEV_ACCOUNT, "account_key": DEV_KEY }),
            )),
            DEV_ACCOUNT,
        )
        .unwrap();
        assert!(matches!(&auth, StorageAuth::SharedKey(k) if k.account() == DEV_ACCOUNT));
        assert_eq!(auth.url("http://h/a/c/b"), "http://h/a/c/b");
        let text = format!("{auth:?}");
        assert!(
            text.contains(DEV_ACCOUNT) && !text.contains("Eby8"),
            "{text}"
        );

        let other = StorageAuth::from_credential(
            Some(&credential(
                "azure_shared_key",
                json!({ "account_name": "other", "account_key": DEV_KEY }),
            )),
            DEV_ACCOUNT,
        )
        .unwrap_err();
        assert_eq!(
            other.message,
            "the azure_shared_key credential is for account other, not devstoreaccount1"
        );
        let bad_key = StorageAuth::from_credential(
            Some(&credential(
                "azure_shared_key",
                json!({ "account_name": DEV_ACCOUNT, "account_key": "not base64!" }),
            )),
            DEV_ACCOUNT,
        )
        .unwrap_err();
        assert!(
            bad_key.message.contains("not base64"),
            "{}",
            bad_key.message
        );
        assert!(!bad_key.message.contains("not base64!"));

        // A SAS token with or without its leading `?`.
        for token in [
            "?sv=2025-11-05&sp=cw&sig=abc%2Bdef",
            "sv=2025-11-05&sp=cw&sig=abc%2Bdef",
        ] {
            let auth = StorageAuth::from_credential(
                Some(&credential(
                    "azure_sas_token",
                    json!({ "sas_token": token }),
                )),
                DEV_ACCOUNT,
            )
            .unwrap();
            assert_eq!(
                auth.url("http://h/a/c/b%20x"),
                "http://h/a/c/b%20x?sv=2025-11-05&sp=cw&sig=abc%2Bdef"
            );
            assert_eq!(
                auth.url("http://h/a/c?restype=container"),
                "http://h/a/c?restype=container&sv=2025-11-05&sp=cw&sig=abc%2Bdef"
            );
            assert!(!format!("{auth:?}").contains("sig"));
            // SAS requests carry the date and version, and no Authorization.
            let request = auth
                .authorize_at(
                    http::Request::put(&auth.url("http://h/a/c/b")).unwrap(),
                    time(),
                )
                .unwrap();
            assert_eq!(request.header_value("x-ms-version"), Some(API_VERSION));
            assert!(request.header_value("x-ms-date").is_some());
            assert_eq!(request.header_value("authorization"), None);
        }
        for bad in [
            "",
            "?",
            "sv=2025-11-05&sp=cw",
            "https://acme.blob.core.windows.net/c?sv=1&sig=x",
            "sv=1&sig=a b",
        ] {
            let failure = StorageAuth::from_credential(
                Some(&credential("azure_sas_token", json!({ "sas_token": bad }))),
                DEV_ACCOUNT,
            )
            .unwrap_err();
            assert_eq!(failure.kind, crate::FailureKind::Permanent, "{bad}");
        }
        assert!(StorageAuth::from_credential(None, DEV_ACCOUNT).is_err());
        let wrong_kind = StorageAuth::from_credential(
            Some(&credential("aws_access_key", json!({}))),
            DEV_ACCOUNT,
        )
        .unwrap_err();
        assert!(wrong_kind.message.contains("aws_access_key"));
    }

    #[test]
    fn names_and_endpoints() {
        for good in ["abc", "devstoreaccount1", &"a".repeat(24)] {
            assert_eq!(check_account(good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            "Acme",
            "acme-events",
            &"a".repeat(25),
            "acme.blob.core.windows.net",
        ] {
            assert!(check_account(bad).is_err(), "{bad}");
        }
        for good in [
            "abc",
            "acme-events",
            "a1-b2-c3",
            "$root",
            "$web",
            &"c".repeat(63),
        ] {
            assert_eq!(check_container(good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            "Acme",
            "acme_events",
            "-acme",
            "acme-",
            "a--b",
            "$other",
            &"c".repeat(64),
        ] {
            assert!(check_container(bad).is_err(), "{bad}");
        }
        assert_eq!(
            blob_endpoint("acme", None).unwrap(),
            "https://acme.blob.core.windows.net"
        );
        assert_eq!(
            blob_endpoint(
                "devstoreaccount1",
                Some("http://127.0.0.1:10000/devstoreaccount1/")
            )
            .unwrap(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert!(blob_endpoint("acme", Some("ftp://h")).is_err());
        let fields =
            |errors: Vec<FieldError>| errors.into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert!(validate("acme", Some("https://acme.blob.core.windows.net")).is_empty());
        assert_eq!(fields(validate("Acme", None)), ["account"]);
        assert_eq!(
            fields(validate("acme", Some("https://h/c?sv=1&sig=x"))),
            ["endpoint"]
        );
        assert_eq!(
            fields(validate("acme", Some("127.0.0.1:10000"))),
            ["endpoint"]
        );
    }

    #[test]
    fn reads_and_classifies_errors() {
        // Azurite's answer to a wrong key.
        let answer = ErrorAnswer::read(&response(
            403,
            &[("x-ms-error-code", "AuthorizationFailure")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error>\n  <Code>AuthorizationFailure</Code>\n  \
             <Message>Server failed to authenticate the request. Make sure the value of the Authorization header is formed correctly including the signature.\n\
             RequestId:5a3b\nTime:2026-03-07T09:05:00.000Z</Message>\n</Error>",
        ));
        assert_eq!(answer.code.as_deref(), Some("AuthorizationFailure"));
        assert!(!answer.is_retryable());
        let failure = answer.into_failure(None);
        assert_eq!(failure.kind, crate::FailureKind::Permanent);
        assert_eq!(
            failure.message,
            "AuthorizationFailure: Server failed to authenticate the request. Make sure the value \
             of the Authorization header is formed correctly including the signature. (HTTP 403)"
        );
        // The code from the body alone; and from the header alone (a HEAD has no body).
        let answer = ErrorAnswer::read(&response(
            404,
            &[],
            "<Error><Code>ContainerNotFound</Code><Message>The specified container does not exist.</Message></Error>",
        ));
        assert_eq!(answer.code.as_deref(), Some("ContainerNotFound"));
        assert!(!answer.is_retryable());
        let answer = ErrorAnswer::read(&response(
            503,
            &[("x-ms-error-code", "ServerBusy"), ("retry-after", "7")],
            "",
        ));
        assert_eq!(answer.code.as_deref(), Some("ServerBusy"));
        let failure = answer.into_failure(None);
        assert_eq!(failure.kind, crate::FailureKind::Retryable);
        assert_eq!(failure.retry_after_ms, Some(7000));
        assert_eq!(failure.message, "ServerBusy (HTTP 503)");

        let retryable = |status: u16, code: Option<&str>| {
            ErrorAnswer {
                status,
                code: code.map(str::to_owned),
                message: None,
                retry_after_ms: None,
            }
            .is_retryable()
        };
        for code in [
            "ServerBusy",
            "OperationTimedOut",
            "InternalError",
            "IngressOverAccountLimit",
        ] {
            assert!(retryable(400, Some(code)), "{code}");
        }
        for code in [
            "AuthenticationFailed",
            "AuthorizationFailure",
            "AuthorizationPermissionMismatch",
            "AuthorizationSourceIPMismatch",
            "ContainerNotFound",
            "InvalidHeaderValue",
            "InvalidAuthenticationInfo",
            "Md5Mismatch",
            "SomethingNew",
        ] {
            assert!(!retryable(403, Some(code)), "{code}");
        }
        // A known permanent code stays permanent whatever the status; others follow it.
        assert!(!retryable(500, Some("AuthenticationFailed")));
        assert!(retryable(500, Some("SomethingNew")));
        assert!(retryable(500, None));
        assert!(retryable(503, None));
        assert!(retryable(429, None));
        assert!(!retryable(400, None));
        let failure = super::failure(&response(502, &[], "<html>bad gateway</html>"));
        assert_eq!(failure.message, "HTTP 502");
        assert_eq!(failure.kind, crate::FailureKind::Retryable);
    }
}

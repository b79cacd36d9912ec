//! What the Google Cloud destination types share: credentials of kind `gcp_service_account` (the
//! service account's key file as downloaded), the OAuth 2.0 JWT-bearer flow that turns it into an
//! access token (an RS256 assertion signed by the `jsonwebtoken` crate on its RustCrypto backend,
//! not by hand), the token kept in the warm session, the API endpoint, and the reading and
//! classification of Google's JSON error answers.
//!
//! ```ignore
//! use pushrail_plugin_sdk::{gcp, http};
//!
//! let account = gcp::ServiceAccount::from_credential(credential.as_ref())?;
//! let mut auth = gcp::Auth::new(account, gcp::scopes::DEVSTORAGE_READ_WRITE, timeout);
//! let base = gcp::base_url(config.endpoint.as_deref(), "https://storage.googleapis.com")?;
//! let request = http::Request::post(&format!("{base}/upload/storage/v1/b/acme/o?uploadType=media&name=x"))?
//!     .body(body);
//! // Adds the bearer token (fetched, or the session's while it is fresh); after a 401, fetches a
//! // new token and sends the refused requests once more.
//! for answer in auth.send_all(vec![Ok(request)], 1) {
//!     let response = answer?;
//!     if !response.is_success() {
//!         return Err(gcp::failure(&response));
//!     }
//! }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{http, Credential, Failure, FieldError};

/// The credential kind of a service account key.
pub const SERVICE_ACCOUNT_KIND: &str = "gcp_service_account";
/// The kinds every Google type accepts, for [`crate::TypeInfo::credentials`].
pub const CREDENTIAL_KINDS: &[&str] = &[SERVICE_ACCOUNT_KIND];
/// Google's token endpoint, for a key file without `token_uri`.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The lifetime asked for in an assertion (`exp - iat`): Google's maximum, one hour.
pub const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// A token is fetched again this long before it expires, so no request leaves with a token that
/// expires on the way.
pub const REFRESH_BEFORE_SECS: u64 = 60;
/// The token's lifetime when the token endpoint does not say (`expires_in`).
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Longest message from Google kept in a failure's message (the body excerpt has the rest).
const MAX_MESSAGE_CHARS: usize = 300;

/// The OAuth scopes of the Google APIs the destination types call.
pub mod scopes {
    /// Cloud Storage: create objects.
    pub const DEVSTORAGE_READ_WRITE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
    /// Pub/Sub.
    pub const PUBSUB: &str = "https://www.googleapis.com/auth/pubsub";
    /// BigQuery: `tabledata.insertAll`.
    pub const BIGQUERY_INSERTDATA: &str = "https://www.googleapis.com/auth/bigquery.insertdata";
}

/// The fields of a service account key file that the flow needs; the others are ignored.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    private_key_id: Option<String>,
    private_key: String,
    client_email: String,
    #[serde(default)]
    token_uri: Option<String>,
}

/// A service account: its email, key id, token endpoint and private key. Its `Debug` shows no
/// key material.
#[derive(Clone)]
pub struct ServiceAccount {
    client_email: String,
    private_key_id: Option<String>,
    project_id: Option<String>,
    token_uri: String,
    key: EncodingKey,
}

/// The claims of the JWT-bearer assertion Google's token endpoint takes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub scope: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

impl ServiceAccount {
    /// The credential a session was opened with, which must be of kind `gcp_service_account`:
    /// the key file's JSON object, with a PEM (PKCS#8) RSA `private_key`.
    pub fn from_credential(credential: Option<&Credential>) -> Result<Self, Failure> {
        let credential = credential.ok_or_else(|| {
            Failure::permanent(format!("a {SERVICE_ACCOUNT_KIND} credential is required"))
        })?;
        if credential.kind != SERVICE_ACCOUNT_KIND {
            return Err(Failure::permanent(format!(
                "credential kind {} is not supported (expected {SERVICE_ACCOUNT_KIND})",
                credential.kind
            )));
        }
        let file: KeyFile = credential.secret()?;
        Self::from_key_file(file)
    }

    /// A key file's JSON text (for tests and tools).
    pub fn from_json(json: &str) -> Result<Self, Failure> {
        Self::from_credential(Some(&Credential {
            kind: SERVICE_ACCOUNT_KIND.to_owned(),
            secret: json.to_owned(),
        }))
    }

    fn from_key_file(file: KeyFile) -> Result<Self, Failure> {
        if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(Failure::permanent(format!(
                "the key file is of type {kind:?}, not \"service_account\": create a key for a \
                 service account (IAM → Service accounts → Keys → JSON)"
            )));
        }
        if file.client_email.trim().is_empty() {
            return Err(Failure::permanent(
                "the gcp_service_account credential has an empty client_email",
            ));
        }
        let token_uri = match file.token_uri.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_TOKEN_URI.to_owned(),
            Some(uri) => {
                parse_base_url(uri).map_err(|m| Failure::permanent(format!("token_uri {m}")))?;
                uri.to_owned()
            }
        };
        // A key pasted from the JSON text by hand may keep its `\n` escapes as two characters.
        let pem = if file.private_key.contains('\n') {
            file.private_key
        } else {
            file.private_key.replace("\\n", "\n")
        };
        // The crate's error could describe the key; it is not repeated.
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
            Failure::permanent(
                "the gcp_service_account credential's private_key is not an RSA private key in \
                 PEM form (-----BEGIN PRIVATE KEY-----)",
            )
        })?;
        Ok(Self {
            client_email: file.client_email,
            private_key_id: file.private_key_id.filter(|id| !id.is_empty()),
            project_id: file.project_id.filter(|id| !id.is_empty()),
            token_uri,
            key,
        })
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    pub fn private_key_id(&self) -> Option<&str> {
        self.private_key_id.as_deref()
    }

    /// The key file's `project_id`, the default project of types that name one.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// Where the assertion is exchanged for a token: the key file's `token_uri`, or
    /// [`DEFAULT_TOKEN_URI`].
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The claims of an assertion for `scope` issued at `now` (seconds since the epoch).
    pub fn claims(&self, scope: &str, now: u64) -> Claims {
        Claims {
            iss: self.client_email.clone(),
            scope: scope.to_owned(),
            aud: self.token_uri.clone(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        }
    }

    /// The signed assertion (a JWT, RS256, `kid` = the key's id) for `scope` at `now`.
    pub fn assertion(&self, scope: &str, now: u64) -> Result<String, Failure> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        jsonwebtoken::encode(&header, &self.claims(scope, now), &self.key)
            .map_err(|e| Failure::permanent(format!("signing the token assertion: {e}")))
    }

    /// The token request: `POST token_uri` with the form
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...`.
    pub fn token_request(
        &self,
        scope: &str,
        now: u64,
        timeout: Duration,
    ) -> Result<http::Request, Failure> {
        let assertion = self.assertion(scope, now)?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT)
            .append_pair("assertion", &assertion)
            .finish();
        Ok(http::Request::post(&self.token_uri)?
            .timeout(timeout)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form))
    }
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"** redacted **")
            .finish()
    }
}

/// An access token and when it expires (seconds since the epoch). Its `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    value: String,
    expires_at: u64,
}

impl AccessToken {
    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Whether the token is still good for a request sent at `now`: it expires more than
    /// [`REFRESH_BEFORE_SECS`] later.
    pub fn is_fresh(&self, now: u64) -> bool {
        now + REFRESH_BEFORE_SECS < self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"** redacted **")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// What the token endpoint's answer to the token request sent at `now` means. Refusals
/// (`invalid_grant`, `invalid_client`, `unauthorized_client`, `invalid_scope`, ... with 400 or 401)
/// are permanent, with Google's error and description in the message; 408, 429 and 5xx are
/// retryable. A success body is never quoted: it holds the token.
pub fn read_token_answer(
    account: &ServiceAccount,
    response: &http::Response,
    now: u64,
) -> Result<AccessToken, Failure> {
    let context = format!(
        "the token endpoint {} for {}",
        account.token_uri, account.client_email
    );
    if response.is_success() {
        let answer: TokenAnswer = serde_json::from_slice(&response.body).map_err(|_| {
            Failure::retryable(format!(
                "{context} answered with a body that is not a token answer"
            ))
            .with_status(response.status)
        })?;
        if let Some(kind) = answer
            .token_type
            .as_deref()
            .filter(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(Failure::permanent(format!(
                "{context} answered with a token of type {kind:?}, not Bearer"
            ))
            .with_status(response.status));
        }
        if answer.access_token.is_empty() {
            return Err(Failure::retryable(format!(
                "{context} answered with an empty access_token"
            ))
            .with_status(response.status));
        }
        let lifetime = answer.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS);
        return Ok(AccessToken {
            value: answer.access_token,
            expires_at: now.saturating_add(lifetime),
        });
    }
    let retryable_status = matches!(response.status, 408 | 429) || response.status >= 500;
    let (text, retryable) = match serde_json::from_slice::<TokenError>(&response.body) {
        Ok(error) => {
            let mut text = format!("{context} refused the assertion: {}", error.error);
            if let Some(description) = error.error_description.filter(|d| !d.is_empty()) {
                text.push_str(": ");
                text.push_str(&shorten(description.trim()));
            }
            let retryable = retryable_status
                || matches!(
                    error.error.as_str(),
                    "temporarily_unavailable" | "server_error"
                );
            (text, retryable)
        }
        Err(_) => (format!("{context} refused the assertion"), retryable_status),
    };
    let text = format!("{text} (HTTP {})", response.status);
    let failure = if retryable {
        Failure::retryable(text).with_retry_after_ms(response.retry_after_ms())
    } else {
        Failure::permanent(text)
    };
    Err(failure
        .with_status(response.status)
        .with_excerpt(response.excerpt()))
}

/// Seconds since the epoch by the wall clock.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A service account's access to one API (one scope) for a session: the token is fetched on
/// first use, kept while fresh, fetched again shortly before it expires and after the API
/// refuses it (401).
#[derive(Debug)]
pub struct Auth {
    account: ServiceAccount,
    scope: String,
    timeout: Duration,
    token: Option<AccessToken>,
    /// Tokens fetched so far (for tests and the delivery log).
    fetched: u32,
}

impl Auth {
    /// `timeout` applies to the token request.
    pub fn new(account: ServiceAccount, scope: &str, timeout: Duration) -> Self {
        Self {
            account,
            scope: scope.to_owned(),
            timeout,
            token: None,
            fetched: 0,
        }
    }

    pub fn account(&self) -> &ServiceAccount {
        &self.account
    }

    /// How many tokens this session fetched.
    pub fn tokens_fetched(&self) -> u32 {
        self.fetched
    }

    /// Forgets the token, so the next request fetches a new one.
    pub fn invalidate(&mut self) {
        self.token = None;
    }

    /// The session's token while fresh, or a new one from the token endpoint.
    pub fn token(&mut self) -> Result<String, Failure> {
        self.token_via(now_secs(), &mut |requests| http::send_all(requests, 1))
    }

    /// Sends the requests with the bearer token, at most `max_in_flight` at a time (one host
    /// call), and answers for each in order. Requests the API answers 401 are sent once more
    /// with a new token. Without a token, every request is answered with the token's failure.
    pub fn send_all(
        &mut self,
        requests: Vec<Result<http::Request, http::Error>>,
        max_in_flight: usize,
    ) -> Vec<Result<http::Response, Failure>> {
        self.send_all_via(requests, now_secs, &mut |requests| {
            http::send_all(requests, max_in_flight)
        })
    }

    /// Sends a batch's requests (see [`crate::batch::Plan`]) at once with the bearer token, as
    /// [`Auth::send_all`] does, and answers each event with `read_answer`.
    pub fn send_plan(
        &mut self,
        plan: crate::batch::Plan,
        read_answer: impl Fn(&http::Response, usize) -> Vec<crate::DeliveryResult>,
    ) -> Vec<crate::DeliveryResult> {
        plan.send_with(
            |requests| {
                let in_flight = requests.len();
                self.send_all(requests, in_flight)
            },
            read_answer,
        )
    }

    fn token_via(&mut self, now: u64, send: &mut Transport<'_>) -> Result<String, Failure> {
        if let Some(token) = self.token.as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(token.value.clone());
        }
        self.token = None;
        let request = self
            .account
            .token_request(&self.scope, now, self.timeout)
            .map_err(request_error);
        self.fetched += 1;
        let answer = send(vec![request])
            .pop()
            .unwrap_or_else(|| Err(http::Error::retryable("the token request was not sent")));
        let response = answer.map_err(|error| {
            let failure: Failure = error.into();
            Failure {
                message: format!(
                    "requesting a token from {}: {}",
                    self.account.token_uri, failure.message
                ),
                ..failure
            }
        })?;
        let token = read_token_answer(&self.account, &response, now)?;
        let value = token.value.clone();
        self.token = Some(token);
        Ok(value)
    }

    fn send_all_via(
        &mut self,
        requests: Vec<Result<http::Request, http::Error>>,
        now: fn() -> u64,
        send: &mut Transport<'_>,
    ) -> Vec<Result<http::Response, Failure>> {
        if requests.is_empty() {
            return Vec::new();
        }
        let token = match self.token_via(now(), send) {
            Ok(token) => token,
            Err(failure) => return vec![Err(failure); requests.len()],
        };
        let authorized = requests
            .iter()
            .map(|r| r.clone().map(|r| bearer(r, &token)))
            .collect();
        let mut answers: Vec<Result<http::Response, Failure>> = send(authorized)
            .into_iter()
            .map(|a| a.map_err(Failure::from))
            .collect();
        answers.resize_with(requests.len(), || {
            Err(Failure::retryable(
                "the host gave no answer for the request",
            ))
        });
        let refused: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Ok(r) if r.status == 401))
            .map(|(i, _)| i)
            .collect();
        if refused.is_empty() {
            return answers;
        }
        // The token was revoked or expired early: a new one, and the refused requests once more.
        self.invalidate();
        let token = match self.token_via(now(), send) {
            Ok(token) => token,
            Err(failure) => {
                for &i in &refused {
                    answers[i] = Err(failure.clone());
                }
                return answers;
            }
        };
        let again = refused
            .iter()
            .map(|&i| requests[i].clone().map(|r| bearer(r, &token)))
            .collect();
        for (i, answer) in refused.into_iter().zip(send(again)) {
            answers[i] = answer.map_err(Failure::from);
        }
        answers
    }
}

/// How [`Auth`] sends requests: the host's `http-batch` in a plugin, a fake in tests.
type Transport<'a> = dyn FnMut(Vec<Result<http::Request, http::Error>>) -> Vec<Result<http::Response, http::Error>>
    + 'a;

fn bearer(request: http::Request, token: &str) -> http::Request {
    request.header("authorization", format!("Bearer {token}"))
}

/// A failure as the transport's error, to be answered in place of a request.
fn request_error(failure: Failure) -> http::Error {
    http::Error {
        retryable: failure.kind == crate::FailureKind::Retryable,
        message: failure.message,
    }
}

/// The JSON Schema of a `gcp_service_account` secret (the key file's object), for
/// [`crate::TypeInfo::credentials`]. The same fields as the host's kind.
pub fn credential_schema() -> Value {
    let text = |title: &str| json!({ "type": "string", "minLength": 1, "maxLength": 16384, "title": title });
    json!({
        "type": "object",
        "required": ["client_email", "private_key"],
        "description": "The fields of the service account's JSON key file. Google Cloud console → IAM & Admin → Service accounts → the account → Keys → Add key → Create new key → JSON downloads it. The role the account needs is in the destination type's description.",
        "properties": {
            "type": { "type": "string", "const": "service_account" },
            "project_id": text("Project"),
            "private_key_id": text("Private key id"),
            "private_key": {
                "type": "string", "minLength": 1, "maxLength": 16384,
                "title": "Private key (PEM)", "x-multiline": true,
                "description": "The key file's private_key, from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY----- (its \\n may stay as they are)."
            },
            "client_email": {
                "type": "string", "minLength": 1, "maxLength": 16384, "title": "Client email",
                "description": "The key file's client_email, e.g. pushrail@acme-prod.iam.gserviceaccount.com."
            },
            "client_id": { "type": "string" },
            "auth_uri": { "type": "string" },
            "token_uri": { "type": "string", "description": format!("Default: {DEFAULT_TOKEN_URI}.") },
            "auth_provider_x509_cert_url": { "type": "string" },
            "client_x509_cert_url": { "type": "string" },
            "universe_domain": { "type": "string" }
        }
    })
}

/// The JSON Schema of the optional `endpoint` field every Google type has; `description` says
/// what the default is.
pub fn endpoint_schema(description: &str) -> Value {
    json!({
        "type": "string", "title": "Endpoint", "format": "uri",
        "pattern": "^https?://", "maxLength": 2048,
        "description": description
    })
}

/// Checks an `endpoint` field: when given, an `http` or `https` base URL.
pub fn validate_endpoint(endpoint: Option<&str>) -> Vec<FieldError> {
    match endpoint.map(parse_base_url) {
        Some(Err(message)) => vec![FieldError::new("endpoint", message)],
        _ => Vec::new(),
    }
}

/// The API's base URL without a trailing `/`: `endpoint` when given, else `default`.
pub fn base_url(endpoint: Option<&str>, default: &str) -> Result<String, Failure> {
    let url = endpoint.unwrap_or(default);
    parse_base_url(url).map_err(|m| Failure::permanent(format!("endpoint {m}")))?;
    Ok(url.trim_end_matches('/').to_owned())
}

fn parse_base_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
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

/// Checks a project id: 6 to 30 lower-case letters, digits and hyphens, starting with a letter
/// and not ending with a hyphen, or a legacy domain-scoped one (`example.com:project`).
pub fn check_project_id(project: &str) -> Result<(), String> {
    let id = match project.rsplit_once(':') {
        Some((domain, id)) if !domain.is_empty() => id,
        Some(_) => "",
        None => project,
    };
    let good = (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if good {
        Ok(())
    } else {
        Err("must be a project id: 6 to 30 lower-case letters, digits and hyphens, starting with a letter (e.g. acme-prod)".to_owned())
    }
}

/// A name as one segment of an API path: the unreserved characters as they are, everything else
/// (`/` included) percent-encoded.
pub fn path_segment(name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

/// What a Google API error answer says: `{"error": {"code", "message", "errors": [{"reason",
/// "message", "domain"}], "status"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: u16,
    /// The first `errors[].reason` (`notFound`, `forbidden`, `rateLimitExceeded`, ...), else
    /// the error's `status` (`NOT_FOUND`, ...), else an OAuth `error` (`invalid_token`).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub retry_after_ms: Option<u64>,
}

impl ErrorAnswer {
    pub fn read(response: &http::Response) -> Self {
        let json: Option<Value> = serde_json::from_slice(&response.body).ok();
        let error = json.as_ref().and_then(|v| v.get("error"));
        let (reason, message) = match error {
            Some(Value::Object(error)) => {
                let first = error
                    .get("errors")
                    .and_then(Value::as_array)
                    .and_then(|errors| errors.first());
                let reason = first
                    .and_then(|e| e.get("reason"))
                    .and_then(Value::as_str)
                    .or_else(|| error.get("status").and_then(Value::as_str));
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .or_else(|| first.and_then(|e| e.get("message")).and_then(Value::as_str));
                (reason, message)
            }
            // OAuth-style: {"error": "invalid_token", "error_description": "..."}.
            Some(Value::String(code)) => (
                Some(code.as_str()),
                json.as_ref()
                    .and_then(|v| v.get("error_description"))
                    .and_then(Value::as_str),
            ),
            _ => (None, None),
        };
        Self {
            status: response.status,
            reason: reason
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            message: message.map(|m| shorten(m.trim())).filter(|m| !m.is_empty()),
            retry_after_ms: response.retry_after_ms(),
        }
    }

    /// Whether trying again later may succeed: rate limits and backend errors, 408, 429 and 5xx;
    /// everything else (auth, missing buckets and tables, invalid requests) is permanent.
    pub fn is_retryable(&self) -> bool {
        const RETRYABLE: &[&str] = &[
            "rateLimitExceeded",
            "userRateLimitExceeded",
            "quotaExceeded",
            "backendError",
            "internalError",
            "serviceUnavailable",
            "RESOURCE_EXHAUSTED",
            "UNAVAILABLE",
            "INTERNAL",
            "DEADLINE_EXCEEDED",
            "ABORTED",
        ];
        const PERMANENT: &[&str] = &[
            "notFound",
            "forbidden",
            "authError",
            "required",
            "invalid",
            "invalidArgument",
            "badRequest",
            "accountDisabled",
            "insufficientPermissions",
            "userProjectMissing",
            "conditionNotMet",
            "conflict",
            "NOT_FOUND",
            "PERMISSION_DENIED",
            "UNAUTHENTICATED",
            "INVALID_ARGUMENT",
            "FAILED_PRECONDITION",
            "invalid_token",
        ];
        if let Some(reason) = self.reason.as_deref() {
            if RETRYABLE.contains(&reason) {
                return true;
            }
            if PERMANENT.contains(&reason) {
                return false;
            }
        }
        matches!(self.status, 408 | 429) || self.status >= 500
    }

    /// The failure for the delivery log: Google's reason and message and the status,
    /// `Retry-After`. An answer without an error body names the reason Google's JSON APIs give
    /// that status (`HTTP 404 (notFound)`).
    pub fn into_failure(self, excerpt: Option<String>) -> Failure {
        let retryable = self.is_retryable();
        let text = match (&self.reason, &self.message) {
            (Some(reason), Some(message)) => {
                format!("{reason}: {message} (HTTP {})", self.status)
            }
            (Some(reason), None) => format!("{reason} (HTTP {})", self.status),
            (None, Some(message)) => format!("HTTP {}: {message}", self.status),
            (None, None) => match status_reason(self.status) {
                Some(reason) => format!("HTTP {} ({reason})", self.status),
                None => format!("HTTP {}", self.status),
            },
        };
        let failure = if retryable {
            Failure::retryable(text).with_retry_after_ms(self.retry_after_ms)
        } else {
            Failure::permanent(text)
        };
        failure.with_status(self.status).with_excerpt(excerpt)
    }
}

/// The failure for a Google API answer that is not a success (see [`ErrorAnswer`]).
pub fn failure(response: &http::Response) -> Failure {
    ErrorAnswer::read(response).into_failure(response.excerpt())
}

/// A Google API's answer to `action` (`insertAll acme:events.t`, `publish projects/p/topics/t`):
/// the success body as `T`, or the failure: Google's error (see [`failure`]) with `; {action}`
/// after it, or, for a success body that is not `T` (`expected` names it), a retryable one.
pub fn read_json<T: serde::de::DeserializeOwned>(
    response: &http::Response,
    action: &str,
    expected: &str,
) -> Result<T, Failure> {
    if !response.is_success() {
        let mut failure = failure(response);
        failure.message.push_str(&format!("; {action}"));
        return Err(failure);
    }
    serde_json::from_slice(&response.body).map_err(|_| {
        Failure::retryable(format!("the answer to {action} is not {expected}"))
            .with_status(response.status)
            .with_excerpt(response.excerpt())
    })
}

/// The reason Google's JSON APIs give a status (Cloud Storage's "HTTP status and error codes").
fn status_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "badRequest",
        401 => "authError",
        403 => "forbidden",
        404 => "notFound",
        409 => "conflict",
        412 => "conditionNotMet",
        429 => "rateLimitExceeded",
        500 | 503 => "backendError",
        _ => return None,
    })
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;
    use crate::fixtures::response;

    const PRIVATE_KEY: &str = include_str!("../testdata/gcp-test-key.pem");
    const PUBLIC_KEY: &str = include_str!("../testdata/gcp-test-key.pub.pem");
    const OTHER_PUBLIC_KEY: &str = include_str!("../testdata/gcp-other-key.pub.pem");
    const TOKEN_URI: &str = "http://127.0.0.1:9/token";
    const SCOPE: &str = scopes::DEVSTORAGE_READ_WRITE;
    /// 2026-03-07T09:05:00Z.
    const NOW: u64 = 1_772_874_300;

    fn key_file() -> Value {
        json!({
            "type": "service_account",
            "project_id": "acme-prod",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": PRIVATE_KEY,
            "client_email": "pushrail@acme-prod.iam.gserviceaccount.com",
            "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": TOKEN_URI,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/pushrail%40acme-prod.iam.gserviceaccount.com",
            "universe_domain": "googleapis.com"
        })
    }

    fn account() -> ServiceAccount {
        ServiceAccount::from_json(&key_file().to_string()).unwrap()
    }

    fn verify(jwt: &str, public_pem: &str) -> jsonwebtoken::errors::Result<Claims> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[TOKEN_URI]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // The fixed test time is in the past.
        validation.validate_exp = false;
        let key = DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
        jsonwebtoken::decode::<Claims>(jwt, &key, &validation).map(|d| d.claims)
    }

    #[test]
    fn the_assertion_is_rs256_signed_with_the_accounts_key() {
        let account = account();
        let jwt = account.assertion(SCOPE, NOW).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(
            header.kid.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        let claims = verify(&jwt, PUBLIC_KEY).unwrap();
        assert_eq!(
            claims,
            Claims {
                iss: "pushrail@acme-prod.iam.gserviceaccount.com".to_owned(),
                scope: "https://www.googleapis.com/auth/devstorage.read_write".to_owned(),
                aud: TOKEN_URI.to_owned(),
                iat: NOW,
                exp: NOW + 3600,
            }
        );
        // Another key's public half does not verify it, nor does a tampered token.
        assert!(verify(&jwt, OTHER_PUBLIC_KEY).is_err());
        // The claims of another (valid) assertion under this one's signature.
        let other = account
            .assertion("https://www.googleapis.com/auth/cloud-platform", NOW)
            .unwrap();
        let mut parts: Vec<&str> = jwt.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        assert!(verify(&parts.join("."), PUBLIC_KEY).is_err());
        assert!(verify(&other, PUBLIC_KEY).is_ok());
    }

    #[test]
    fn the_token_request_is_the_jwt_bearer_form() {
        let request = account()
            .token_request(SCOPE, NOW, Duration::from_secs(5))
            .unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.url(), TOKEN_URI);
        assert_eq!(
            request.header_value("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let form: Vec<(String, String)> = url::form_urlencoded::parse(request.body_bytes())
            .into_owned()
            .collect();
        assert_eq!(form.len(), 2);
        assert_eq!(
            form[0],
            ("grant_type".to_owned(), JWT_BEARER_GRANT.to_owned())
        );
        assert_eq!(form[1].0, "assertion");
        assert_eq!(verify(&form[1].1, PUBLIC_KEY).unwrap().iat, NOW);
        assert!(!String::from_utf8_lossy(request.body_bytes()).contains("PRIVATE KEY"));
    }

    #[test]
    fn reads_the_key_file() {
        let account = account();
        assert_eq!(
            account.client_email(),
            "pushrail@acme-prod.iam.gserviceaccount.com"
        );
        assert_eq!(account.project_id(), Some("acme-prod"));
        assert_eq!(account.token_uri(), TOKEN_URI);
        // Without token_uri, Google's.
        let mut file = key_file();
        file.as_object_mut().unwrap().remove("token_uri");
        let account = ServiceAccount::from_json(&file.to_string()).unwrap();
        assert_eq!(account.token_uri(), DEFAULT_TOKEN_URI);
        // A key whose newlines were kept as `\n` escapes.
        let mut file = key_file();
        file["private_key"] = json!(PRIVATE_KEY.replace('\n', "\\n"));
        let escaped = ServiceAccount::from_json(&file.to_string()).unwrap();
        assert!(verify(&escaped.assertion(SCOPE, NOW).unwrap(), PUBLIC_KEY).is_ok());

        let refused = |file: Value| ServiceAccount::from_json(&file.to_string()).unwrap_err();
        let mut other = key_file();
        other["type"] = json!("authorized_user");
        assert!(refused(other).message.contains("authorized_user"));
        let mut bad_key = key_file();
        bad_key["private_key"] =
            json!("-----BEGIN PRIVATE KEY-----\nnot-a-key-at-all\n-----END PRIVATE KEY-----\n");
        let failure = refused(bad_key);
        assert!(failure.message.contains("not an RSA private key"));
        assert!(!failure.message.contains("not-a-key-at-all"));
        let mut missing = key_file();
        missing.as_object_mut().unwrap().remove("client_email");
        assert!(refused(missing).message.contains("client_email"));
        let mut bad_uri = key_file();
        bad_uri["token_uri"] = json!("ftp://x/token");
        assert!(refused(bad_uri).message.starts_with("token_uri "));

        assert!(ServiceAccount::from_credential(None).is_err());
        let wrong = ServiceAccount::from_credential(Some(&Credential {
            kind: "aws_access_key".to_owned(),
            secret: "{}".to_owned(),
        }))
        .unwrap_err();
        assert!(wrong.message.contains("aws_access_key"));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let account = account();
        let text = format!("{account:?}");
        assert!(text.contains("pushrail@acme-prod.iam.gserviceaccount.com"));
        assert!(!text.contains("PRIVATE KEY"));
        let secret_line = PRIVATE_KEY.lines().nth(1).unwrap();
        assert!(!text.contains(secret_line));
        let token = AccessToken {
            value: "ya29.secret-token".to_owned(),
            expires_at: NOW,
        };
        assert!(!format!("{token:?}").contains("ya29"));
        let auth = Auth::new(account, SCOPE, Duration::from_secs(5));
        assert!(!format!("{auth:?}").contains(secret_line));
    }

    #[test]
    fn reads_token_answers() {
        let account = account();
        let token = read_token_answer(
            &account,
            &response(
                200,
                &[],
                r#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#,
            ),
            NOW,
        )
        .unwrap();
        assert_eq!(token.value(), "ya29.abc");
        assert_eq!(token.expires_at(), NOW + 3599);
        assert!(token.is_fresh(NOW));
        assert!(token.is_fresh(NOW + 3599 - 61));
        assert!(!token.is_fresh(NOW + 3599 - 60));

        let refused = read_token_answer(
            &account,
            &response(
                400,
                &[("content-type", "application/json")],
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
            ),
            NOW,
        )
        .unwrap_err();
        assert_eq!(refused.kind, crate::FailureKind::Permanent);
        assert_eq!(
            refused.message,
            format!(
                "the token endpoint {TOKEN_URI} for pushrail@acme-prod.iam.gserviceaccount.com \
                 refused the assertion: invalid_grant: Invalid JWT Signature. (HTTP 400)"
            )
        );
        assert_eq!(refused.status_code, Some(400));
        for (status, body) in [
            (
                401,
                r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#,
            ),
            (400, r#"{"error":"invalid_scope"}"#),
            (403, "<html>forbidden</html>"),
        ] {
            let failure =
                read_token_answer(&account, &response(status, &[], body), NOW).unwrap_err();
            assert_eq!(failure.kind, crate::FailureKind::Permanent, "{body}");
        }
        let busy = read_token_answer(
            &account,
            &response(503, &[("retry-after", "7")], "unavailable"),
            NOW,
        )
        .unwrap_err();
        assert_eq!(busy.kind, crate::FailureKind::Retryable);
        assert_eq!(busy.retry_after_ms, Some(7000));
        // A success that is not a token answer is not quoted (it may hold a token).
        let odd = read_token_answer(
            &account,
            &response(200, &[], r#"{"id_token":"secret-id-token"}"#),
            NOW,
        )
        .unwrap_err();
        assert_eq!(odd.kind, crate::FailureKind::Retryable);
        assert!(odd.response_excerpt.is_none());
        assert!(!odd.message.contains("secret-id-token"));
        let mac = read_token_answer(
            &account,
            &response(200, &[], r#"{"access_token":"x","token_type":"mac"}"#),
            NOW,
        )
        .unwrap_err();
        assert!(mac.message.contains("\"mac\""));
    }

    /// A fake transport: answers token requests with tokens `t1`, `t2`, ... (checking each
    /// assertion) and API requests with `api(token)`.
    struct Fake {
        tokens: u32,
        api_calls: Vec<String>,
        token_status: u16,
        api: fn(&str) -> u16,
    }

    impl Fake {
        fn new(api: fn(&str) -> u16) -> RefCell<Self> {
            RefCell::new(Self {
                tokens: 0,
                api_calls: Vec::new(),
                token_status: 200,
                api,
            })
        }

        fn answer(
            &mut self,
            requests: Vec<Result<http::Request, http::Error>>,
        ) -> Vec<Result<http::Response, http::Error>> {
            requests
                .into_iter()
                .map(|request| {
                    let request = request?;
                    if request.url() == TOKEN_URI {
                        let form: Vec<(String, String)> =
                            url::form_urlencoded::parse(request.body_bytes())
                                .into_owned()
                                .collect();
                        verify(&form[1].1, PUBLIC_KEY).expect("a valid assertion");
                        if self.token_status != 200 {
                            return Ok(response(
                                self.token_status,
                                &[],
                                r#"{"error":"invalid_grant","error_description":"account not found"}"#,
                            ));
                        }
                        self.tokens += 1;
                        return Ok(response(
                            200,
                            &[],
                            &format!(
                                r#"{{"access_token":"t{}","expires_in":3600,"token_type":"Bearer"}}"#,
                                self.tokens
                            ),
                        ));
                    }
                    let auth = request.header_value("authorization").unwrap().to_owned();
                    let token = auth.strip_prefix("Bearer ").unwrap().to_owned();
                    self.api_calls.push(token.clone());
                    Ok(response((self.api)(&token), &[], ""))
                })
                .collect()
        }
    }

    fn api_request() -> Result<http::Request, http::Error> {
        http::Request::post("http://127.0.0.1:9/upload")
    }

    #[test]
    fn the_token_is_kept_until_shortly_before_it_expires() {
        let fake = Fake::new(|_| 200);
        let mut auth = Auth::new(account(), SCOPE, Duration::from_secs(5));
        let mut send = |r| fake.borrow_mut().answer(r);
        assert_eq!(auth.token_via(NOW, &mut send).unwrap(), "t1");
        assert_eq!(auth.token_via(NOW + 1000, &mut send).unwrap(), "t1");
        assert_eq!(auth.token_via(NOW + 3600 - 61, &mut send).unwrap(), "t1");
        assert_eq!(auth.token_via(NOW + 3600 - 60, &mut send).unwrap(), "t2");
        assert_eq!(auth.tokens_fetched(), 2);
        auth.invalidate();
        assert_eq!(auth.token_via(NOW + 3600, &mut send).unwrap(), "t3");
    }

    #[test]
    fn a_401_fetches_a_new_token_and_sends_the_refused_requests_once_more() {
        // The API takes t2 only: t1 was "revoked".
        let fake = Fake::new(|token| if token == "t2" { 200 } else { 401 });
        let mut auth = Auth::new(account(), SCOPE, Duration::from_secs(5));
        let answers = auth.send_all_via(
            vec![
                api_request(),
                Err(http::Error::permanent("no body")),
                api_request(),
            ],
            || NOW,
            &mut |r| fake.borrow_mut().answer(r),
        );
        assert_eq!(answers[0].as_ref().unwrap().status, 200);
        assert_eq!(answers[1].as_ref().unwrap_err().message, "no body");
        assert_eq!(answers[2].as_ref().unwrap().status, 200);
        assert_eq!(fake.borrow().api_calls, ["t1", "t1", "t2", "t2"]);
        assert_eq!(auth.tokens_fetched(), 2);

        // An API that refuses every token: one retry only, then the 401 stands.
        let fake = Fake::new(|_| 401);
        let mut auth = Auth::new(account(), SCOPE, Duration::from_secs(5));
        let answers = auth.send_all_via(vec![api_request()], || NOW, &mut |r| {
            fake.borrow_mut().answer(r)
        });
        assert_eq!(answers[0].as_ref().unwrap().status, 401);
        assert_eq!(fake.borrow().api_calls, ["t1", "t2"]);

        // Nothing to send: no token either.
        assert!(auth
            .send_all_via(Vec::new(), || NOW, &mut |_| unreachable!())
            .is_empty());

        // The next batch reuses the good token.
        let fake = Fake::new(|_| 200);
        let mut auth = Auth::new(account(), SCOPE, Duration::from_secs(5));
        for _ in 0..3 {
            auth.send_all_via(vec![api_request()], || NOW, &mut |r| {
                fake.borrow_mut().answer(r)
            });
        }
        assert_eq!(fake.borrow().api_calls, ["t1", "t1", "t1"]);
        assert_eq!(auth.tokens_fetched(), 1);
    }

    #[test]
    fn a_refused_assertion_fails_every_request_without_sending_it() {
        let fake = Fake::new(|_| 200);
        fake.borrow_mut().token_status = 400;
        let mut auth = Auth::new(account(), SCOPE, Duration::from_secs(5));
        let answers = auth.send_all_via(vec![api_request(), api_request()], || NOW, &mut |r| {
            fake.borrow_mut().answer(r)
        });
        for answer in answers {
            let failure = answer.unwrap_err();
            assert_eq!(failure.kind, crate::FailureKind::Permanent);
            assert!(
                failure
                    .message
                    .contains("refused the assertion: invalid_grant: account not found (HTTP 400)"),
                "{}",
                failure.message
            );
            assert!(!failure.message.contains("PRIVATE"));
        }
        assert!(fake.borrow().api_calls.is_empty());
        // No answer at all from the token endpoint: retryable.
        let mut auth = Auth::new(account(), SCOPE, Duration::from_secs(5));
        let answers = auth.send_all_via(vec![api_request()], || NOW, &mut |r| {
            r.into_iter()
                .map(|_| Err(http::Error::retryable("connection refused")))
                .collect()
        });
        let failure = answers[0].as_ref().unwrap_err();
        assert_eq!(failure.kind, crate::FailureKind::Retryable);
        assert_eq!(
            failure.message,
            format!("requesting a token from {TOKEN_URI}: connection refused")
        );
    }

    #[test]
    fn reads_google_json_errors() {
        let answer = ErrorAnswer::read(&response(
            404,
            &[("content-type", "application/json; charset=UTF-8")],
            r#"{"error":{"code":404,"message":"The specified bucket does not exist.","errors":[{"message":"The specified bucket does not exist.","domain":"global","reason":"notFound"}]}}"#,
        ));
        assert_eq!(answer.reason.as_deref(), Some("notFound"));
        assert!(!answer.is_retryable());
        let failure = answer.into_failure(None);
        assert_eq!(
            failure.message,
            "notFound: The specified bucket does not exist. (HTTP 404)"
        );
        assert_eq!(failure.kind, crate::FailureKind::Permanent);

        let slow = failure_of(
            429,
            &[("retry-after", "3")],
            r#"{"error":{"code":429,"message":"The rate of change requests to the object is too high.","errors":[{"reason":"rateLimitExceeded"}]}}"#,
        );
        assert_eq!(slow.kind, crate::FailureKind::Retryable);
        assert_eq!(slow.retry_after_ms, Some(3000));
        assert!(slow
            .message
            .starts_with("rateLimitExceeded: The rate of change"));
        let backend = failure_of(
            503,
            &[],
            r#"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#,
        );
        assert_eq!(backend.kind, crate::FailureKind::Retryable);
        assert_eq!(backend.message, "backendError: Backend Error (HTTP 503)");
        // Newer APIs: a status instead of errors[].
        let denied = failure_of(
            403,
            &[],
            r#"{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED"}}"#,
        );
        assert_eq!(
            denied.message,
            "PERMISSION_DENIED: Permission denied (HTTP 403)"
        );
        assert_eq!(denied.kind, crate::FailureKind::Permanent);
        // OAuth-style, and bare answers.
        let token = failure_of(
            401,
            &[],
            r#"{"error":"invalid_token","error_description":"Invalid Credentials"}"#,
        );
        assert_eq!(
            token.message,
            "invalid_token: Invalid Credentials (HTTP 401)"
        );
        assert_eq!(token.kind, crate::FailureKind::Permanent);
        let bare = failure_of(404, &[], "");
        assert_eq!(bare.message, "HTTP 404 (notFound)");
        assert_eq!(bare.kind, crate::FailureKind::Permanent);
        assert_eq!(
            failure_of(502, &[], "<html/>").kind,
            crate::FailureKind::Retryable
        );
        assert_eq!(failure_of(500, &[], "").message, "HTTP 500 (backendError)");
        assert_eq!(failure_of(418, &[], "").message, "HTTP 418");
        // A known permanent reason stays permanent whatever the status, and the other way.
        assert_eq!(
            failure_of(500, &[], r#"{"error":{"errors":[{"reason":"notFound"}]}}"#).kind,
            crate::FailureKind::Permanent
        );
        assert_eq!(
            failure_of(
                403,
                &[],
                r#"{"error":{"errors":[{"reason":"quotaExceeded"}]}}"#
            )
            .kind,
            crate::FailureKind::Retryable
        );
    }

    fn failure_of(status: u16, headers: &[(&str, &str)], body: &str) -> Failure {
        failure(&response(status, headers, body))
    }

    #[test]
    fn reads_a_json_answer_or_says_what_failed() {
        #[derive(Deserialize, Debug)]
        struct Ids {
            #[serde(rename = "messageIds")]
            ids: Vec<String>,
        }
        let ok: Ids = read_json(
            &response(200, &[], r#"{"messageIds":["1"]}"#),
            "publish t",
            "a publish result",
        )
        .unwrap();
        assert_eq!(ok.ids, ["1"]);
        let garbled = read_json::<Ids>(
            &response(200, &[], "<html>"),
            "publish t",
            "a publish result",
        )
        .unwrap_err();
        assert_eq!(garbled.kind, crate::FailureKind::Retryable);
        assert_eq!(
            garbled.message,
            "the answer to publish t is not a publish result"
        );
        let missing = read_json::<Ids>(
            &response(
                404,
                &[],
                r#"{"error":{"code":404,"message":"Topic not found","status":"NOT_FOUND"}}"#,
            ),
            "publish t",
            "a publish result",
        )
        .unwrap_err();
        assert_eq!(missing.kind, crate::FailureKind::Permanent);
        assert_eq!(
            missing.message,
            "NOT_FOUND: Topic not found (HTTP 404); publish t"
        );
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            base_url(None, "https://storage.googleapis.com").unwrap(),
            "https://storage.googleapis.com"
        );
        assert_eq!(
            base_url(Some("http://127.0.0.1:9023/"), "https://x").unwrap(),
            "http://127.0.0.1:9023"
        );
        assert!(base_url(Some("ftp://h"), "https://x").is_err());
        assert!(validate_endpoint(None).is_empty());
        assert!(validate_endpoint(Some("https://storage.example/base")).is_empty());
        for bad in [
            "127.0.0.1:9023",
            "http://h/?a=b",
            "http://u:p@h/",
            "file:///x",
        ] {
            assert_eq!(validate_endpoint(Some(bad)).len(), 1, "{bad}");
        }
    }
}

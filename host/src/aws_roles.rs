//! Customer-owned IAM roles (credential kind `aws_role`). The credential holds only a role ARN;
//! the host assumes the role with STS `AssumeRole`, signed with the deployment's own AWS keys and
//! carrying the sub-tenant's external id, and opens the plugin's session with the temporary keys
//! it gets back. The plugin never sees the deployment's keys, and because the external id is the
//! sub-tenant's (kept in the store, never typed by anyone), a role whose trust policy names one
//! sub-tenant's external id cannot be assumed for another sub-tenant's destination.
//!
//! Temporary keys are cached per credential until [`REFRESH_BEFORE`] ahead of their expiry; a
//! rotated role ARN (new ciphertext) is assumed afresh on the next batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::vault::SecretString;

/// The credential kind this module serves.
pub const KIND: &str = "aws_role";
/// What the plugin is handed instead: the temporary keys as an access key.
pub const ACCESS_KEY_KIND: &str = "aws_access_key";
/// How long an assumed role's keys are asked to last (STS's default; a role's maximum session
/// duration is at least this).
const SESSION_SECONDS: u64 = 3600;
/// Keys are assumed again this long before they expire, so a batch never starts with keys that
/// run out in the middle of it.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// One STS call's limit.
const STS_TIMEOUT: Duration = Duration::from_secs(10);

/// The deployment's own AWS identity, from the operator's configuration.
pub struct Operator {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
    /// The account the trust policy names as principal.
    pub account_id: String,
    /// The region STS is called in (and signed for).
    pub region: String,
    /// STS's base URL; default `https://sts.{region}.amazonaws.com`.
    pub sts_endpoint: Option<url::Url>,
}

impl Operator {
    fn partition(&self) -> &'static str {
        partition(&self.region)
    }

    fn endpoint(&self) -> String {
        match &self.sts_endpoint {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None if self.region.starts_with("cn-") => {
                format!("https://sts.{}.amazonaws.com.cn", self.region)
            }
            None => format!("https://sts.{}.amazonaws.com", self.region),
        }
    }

    fn identity(&self) -> Identity {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose().to_owned(),
            self.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "pushrail-operator",
        )
        .into()
    }
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Why a role could not be assumed. Messages carry STS's own code and message, never a key.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AssumeError {
    pub retryable: bool,
    pub message: String,
}

impl AssumeError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }
}

/// An assumed role's temporary keys.
#[derive(Clone)]
pub struct TemporaryKeys {
    pub access_key_id: String,
    secret_access_key: Arc<SecretString>,
    session_token: Arc<SecretString>,
    expires_at: SystemTime,
}

impl TemporaryKeys {
    /// The keys as an `aws_access_key` secret, the JSON a plugin's session is opened with.
    pub fn secret_json(&self) -> Zeroizing<String> {
        Zeroizing::new(
            json!({
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key.expose(),
                "session_token": self.session_token.expose(),
            })
            .to_string(),
        )
    }

    fn fresh(&self) -> bool {
        SystemTime::now() + REFRESH_BEFORE < self.expires_at
    }
}

impl std::fmt::Debug for TemporaryKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryKeys")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What one assumption is for: the role, and whose it is.
pub struct Role {
    pub arn: String,
    /// The sub-tenant's external id (the store's, never the customer's input).
    pub external_id: String,
    /// Names the session in the customer's CloudTrail: the destination's id.
    pub session_name: String,
}

/// The keys of one credential version (its ciphertext's hash: a rotation is a new version).
struct Cached {
    version: [u8; 32],
    keys: TemporaryKeys,
}

/// Assumes customers' roles for the delivery engine; one per process.
pub struct AwsRoles {
    operator: Option<Operator>,
    http: reqwest::Client,
    /// Per credential id; the async lock makes concurrent batches of one destination wait for
    /// one STS call instead of making one each.
    cache: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl AwsRoles {
    pub fn new(operator: Option<Operator>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(STS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            operator,
            http,
            cache: Mutex::default(),
        })
    }

    /// Whether this deployment can assume roles at all.
    pub fn enabled(&self) -> bool {
        self.operator.is_some()
    }

    /// What the customer needs to set up the role: the deployment's account, their external
    /// id, and the trust policy to paste into the role. `None` without operator credentials.
    pub fn trust(&self, external_id: &str) -> Option<Value> {
        let operator = self.operator.as_ref()?;
        let principal = format!(
            "arn:{}:iam::{}:root",
            operator.partition(),
            operator.account_id
        );
        Some(json!({
            "account_id": operator.account_id,
            "external_id": external_id,
            "principal": principal,
            "trust_policy": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "AWS": principal },
                    "Action": "sts:AssumeRole",
                    "Condition": { "StringEquals": { "sts:ExternalId": external_id } }
                }]
            }
        }))
    }

    /// The temporary keys of credential `credential_id` at `ciphertext`: cached ones while they
    /// are fresh, else a new `AssumeRole`. `role` is only asked for (decrypted) on a miss.
    pub async fn keys<F, Fut>(
        &self,
        credential_id: &str,
        ciphertext: &[u8],
        role: F,
    ) -> Result<TemporaryKeys, AssumeError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Role, AssumeError>>,
    {
        let operator = self.operator.as_ref().ok_or_else(|| {
            AssumeError::permanent(
                "this deployment has no AWS credentials to assume roles with; use an aws_access_key credential",
            )
        })?;
        let version: [u8; 32] = Sha256::digest(ciphertext).into();
        let slot = self
            .cache
            .lock()
            .expect("role cache lock")
            .entry(credential_id.to_owned())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(cached) = slot.as_ref() {
            if cached.version == version && cached.keys.fresh() {
                return Ok(cached.keys.clone());
            }
        }
        let keys = self.assume(operator, &role().await?).await?;
        *slot = Some(Cached {
            version,
            keys: keys.clone(),
        });
        Ok(keys)
    }

    /// Forgets a credential's keys (it was deleted).
    pub fn forget(&self, credential_id: &str) {
        self.cache
            .lock()
            .expect("role cache lock")
            .remove(credential_id);
    }

    async fn assume(&self, operator: &Operator, role: &Role) -> Result<TemporaryKeys, AssumeError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRole")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", &role.arn)
            .append_pair("RoleSessionName", &session_name(&role.session_name))
            .append_pair("ExternalId", &role.external_id)
            .append_pair("DurationSeconds", &SESSION_SECONDS.to_string())
            .finish();
        let url = format!("{}/", operator.endpoint());
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = sign_headers(operator, &url, content_type, body.as_bytes())?;
        let mut builder = self
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| AssumeError::retryable(format!("calling STS failed: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| AssumeError::retryable(format!("reading STS's answer failed: {e}")))?;
        if !status.is_success() {
            return Err(sts_error(status.as_u16(), &text, &role.arn));
        }
        parse_credentials(&text)
    }
}

/// STS's rule for session names: 2 to 64 of `[\w+=,.@-]`.
fn session_name(name: &str) -> String {
    let mut cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
        .take(64)
        .collect();
    if cleaned.len() < 2 {
        cleaned = "pushrail".to_owned();
    }
    cleaned
}

/// The SigV4 headers (`authorization`, `x-amz-date`, and `x-amz-security-token` for temporary
/// operator keys) of an STS request, by the AWS SDK's own signer.
fn sign_headers(
    operator: &Operator,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, AssumeError> {
    let identity = operator.identity();
    let signing_error = |e: &dyn std::fmt::Display| {
        AssumeError::permanent(format!("signing the STS request failed: {e}"))
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&operator.region)
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signing_error(&e))?;
    let signable = SignableRequest::new(
        "POST",
        url,
        [("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| signing_error(&e))?;
    let (instructions, _) = sign(signable, &params.into())
        .map_err(|e| signing_error(&e))?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}

/// Text of the first element named `name` in `doc`.
fn element<'a>(doc: &'a roxmltree::Document<'_>, name: &str) -> Option<&'a str> {
    doc.descendants()
        .find(|n| n.tag_name().name() == name)
        .and_then(|n| n.text())
}

/// Reads the `Credentials` of an `AssumeRoleResponse`.
fn parse_credentials(text: &str) -> Result<TemporaryKeys, AssumeError> {
    let unreadable = || AssumeError::retryable("STS answered AssumeRole with an unreadable body");
    let doc = roxmltree::Document::parse(text).map_err(|_| unreadable())?;
    let access_key_id = element(&doc, "AccessKeyId").ok_or_else(unreadable)?;
    let secret_access_key = element(&doc, "SecretAccessKey").ok_or_else(unreadable)?;
    let session_token = element(&doc, "SessionToken").ok_or_else(unreadable)?;
    let expiration = element(&doc, "Expiration").ok_or_else(unreadable)?;
    let expires_at = time::OffsetDateTime::parse(
        expiration.trim(),
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| unreadable())?;
    Ok(TemporaryKeys {
        access_key_id: access_key_id.trim().to_owned(),
        secret_access_key: Arc::new(SecretString::new(secret_access_key.trim().to_owned())),
        session_token: Arc::new(SecretString::new(session_token.trim().to_owned())),
        expires_at: SystemTime::from(expires_at),
    })
}

/// An STS error answer as a failure: AWS's code and message (which name the role, never a
/// key); throttling and 5xx retryable, the rest (no trust, no such role) permanent.
fn sts_error(status: u16, text: &str, role_arn: &str) -> AssumeError {
    let doc = roxmltree::Document::parse(text).ok();
    let code = doc.as_ref().and_then(|d| element(d, "Code")).unwrap_or("");
    let message = doc
        .as_ref()
        .and_then(|d| element(d, "Message"))
        .unwrap_or("")
        .chars()
        .take(300)
        .collect::<String>();
    let retryable = status >= 500
        || status == 429
        || matches!(
            code,
            "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "IDPCommunicationError"
        );
    let code = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        code.to_owned()
    };
    let message = format!("assuming role {role_arn} failed: {code}: {message}");
    if retryable {
        AssumeError::retryable(message)
    } else {
        AssumeError::permanent(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(region: &str) -> Operator {
        Operator {
            access_key_id: "AKIDOPERATOR".into(),
            secret_access_key: SecretString::new("operator-secret".into()),
            session_token: None,
            account_id: "111122223333".into(),
            region: region.into(),
            sts_endpoint: None,
        }
    }

    #[test]
    fn the_trust_policy_names_the_deployment_and_binds_the_external_id() {
        let roles = AwsRoles::new(Some(operator("eu-west-1"))).unwrap();
        let trust = roles.trust("pr-ext-1").unwrap();
        let statement = &trust["trust_policy"]["Statement"][0];
        assert_eq!(
            statement["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(statement["Action"], "sts:AssumeRole");
        assert_eq!(
            statement["Condition"]["StringEquals"]["sts:ExternalId"],
            "pr-ext-1"
        );
        let china = AwsRoles::new(Some(operator("cn-north-1"))).unwrap();
        assert_eq!(
            china.trust("x").unwrap()["principal"],
            "arn:aws-cn:iam::111122223333:root"
        );
        assert!(AwsRoles::new(None).unwrap().trust("x").is_none());
    }

    #[test]
    fn reads_assume_role_credentials() {
        let text = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
          <AssumeRoleResult><Credentials>
            <SessionToken>FQoGZXIvYXdzEXAMPLE</SessionToken>
            <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
            <Expiration>2030-07-15T23:28:33.359Z</Expiration>
            <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
          </Credentials></AssumeRoleResult></AssumeRoleResponse>"#;
        let keys = parse_credentials(text).unwrap();
        assert_eq!(keys.access_key_id, "ASIAEXAMPLE");
        assert!(keys.fresh());
        let secret: Value = serde_json::from_str(&keys.secret_json()).unwrap();
        assert_eq!(
            secret["secret_access_key"],
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
        );
        assert_eq!(secret["session_token"], "FQoGZXIvYXdzEXAMPLE");
        assert!(!format!("{keys:?}").contains("wJalr"));
        assert!(parse_credentials("<nope/>").unwrap_err().retryable);
    }

    #[test]
    fn sts_errors_keep_aws_code_and_classify() {
        let denied = r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>
            <Message>User is not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>"#;
        let error = sts_error(403, denied, "arn:aws:iam::1:role/r");
        assert!(!error.retryable);
        assert!(error
            .message
            .contains("AccessDenied: User is not authorized"));
        assert!(
            sts_error(
                400,
                "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>",
                "r"
            )
            .retryable
        );
        assert!(sts_error(503, "", "r").retryable);
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert_eq!(session_name("dst_01HX/é"), "dst_01HX");
        assert_eq!(session_name("é"), "pushrail");
        assert_eq!(session_name(&"a".repeat(100)).len(), 64);
    }

    #[test]
    fn signs_sts_requests_with_sigv4() {
        let headers = sign_headers(
            &operator("us-east-1"),
            "https://sts.us-east-1.amazonaws.com/",
            "application/x-www-form-urlencoded; charset=utf-8",
            b"Action=AssumeRole",
        )
        .unwrap();
        let auth = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDOPERATOR/"));
        assert!(auth.contains("/us-east-1/sts/aws4_request"));
        assert!(!auth.contains("operator-secret"));
    }
}

//! Credential kinds: the JSON Schema each secret must satisfy, and what identifies one.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::scope::Scope;

/// The vault context of a credential: binds its ciphertext to this tenant, sub-tenant and row.
pub fn context(scope: &Scope, credential_id: &str) -> String {
    format!(
        "credential:{}:{}:{credential_id}",
        scope.tenant_id(),
        scope.sub_tenant_id()
    )
}

fn string(title: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 16384, "title": title })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "additionalProperties": false, "properties": properties })
}

/// A kind's schema with the help text the embed shows above its form: where the customer finds
/// the secret.
fn described(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

fn described_string(title: &str, description: &str) -> Value {
    described(string(title), description)
}

/// Every kind and its secret's schema.
pub fn kinds() -> &'static [(&'static str, Value)] {
    static KINDS: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    KINDS.get_or_init(|| {
        vec![
            ("webhook_secret", object(&[], json!({
                "secret": { "type": "string", "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$", "maxLength": 256,
                            "title": "Signing secret", "description": "whsec_<base64>; generated when left out" }
            }))),
            ("basic", object(&["username", "password"], json!({
                "username": string("Username"), "password": string("Password")
            }))),
            ("bearer", object(&["token"], json!({ "token": string("Token") }))),
            ("aws_access_key", described(object(&["access_key_id", "secret_access_key"], json!({
                "access_key_id": string("Access key id"),
                "secret_access_key": string("Secret access key"),
                "session_token": string("Session token")
            })), "AWS console → IAM → Users → the user → Security credentials → Create access key. The user needs only the permissions the destination type names.")),
            ("aws_role", object(&["role_arn"], json!({
                "role_arn": {
                    "type": "string", "title": "Role ARN", "maxLength": 2048,
                    "pattern": "^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\\w+=,.@/-]{1,512}$",
                    "description": "The IAM role Pushrail assumes, e.g. arn:aws:iam::123456789012:role/pushrail-delivery. Its trust policy must name this deployment's account and your external id."
                }
            }))),
            ("gcp_service_account", described(object(&["client_email", "private_key"], json!({
                "type": { "type": "string" },
                "project_id": string("Project"),
                "private_key_id": string("Private key id"),
                "private_key": { "type": "string", "minLength": 1, "maxLength": 16384, "title": "Private key (PEM)", "x-multiline": true,
                                 "description": "The key file's private_key, from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY----- (its \\n may stay as they are)." },
                "client_email": described_string("Client email", "The key file's client_email, e.g. pushrail@acme-prod.iam.gserviceaccount.com."),
                "client_id": { "type": "string" },
                "auth_uri": { "type": "string" },
                "token_uri": { "type": "string" },
                "auth_provider_x509_cert_url": { "type": "string" },
                "client_x509_cert_url": { "type": "string" },
                "universe_domain": { "type": "string" }
            })), "The fields of the service account's JSON key file. Google Cloud console → IAM & Admin → Service accounts → the account → Keys → Add key → Create new key → JSON downloads it. The role the account needs is in the destination type's description.")),
            ("azure_shared_key", described(object(&["account_name", "account_key"], json!({
                "account_name": described_string("Storage account name", "The name at the top of the Access keys page, e.g. acmeevents (not a URL)."),
                "account_key": described_string("Account key (base64)", "key1's (or key2's) Key: Show, then copy. Not the connection string.")
            })), "Azure portal → your storage account → Security + networking → Access keys: the storage account name and the Key of key1 (or key2).")),
            ("azure_sas_token", described(object(&["sas_token"], json!({
                "sas_token": described_string("SAS token", "The SAS token shown after Generate SAS and connection string (with or without its leading ?), e.g. sv=2024-11-04&ss=b&srt=co&sp=cw&se=...&sig=...")
            })), "Azure portal → your storage account → Security + networking → Shared access signature: allow the Blob service, the Container and Object resource types and the Create and Write permissions, choose an expiry, then Generate SAS and connection string.")),
            ("azure_sas_key", described(object(&["key_name", "key"], json!({
                "key_name": described_string("Shared access policy name", "The policy's name, e.g. RootManageSharedAccessKey, or a policy with only the Send claim on the queue or topic."),
                "key": described_string("Shared access policy key", "The policy's Primary key (or Secondary key).")
            })), "Azure portal → your Service Bus namespace (or the queue or topic) → Settings → Shared access policies: a policy with the Send claim, its name and its Primary key. Pasting its connection string fills both.")),
            ("sasl_plain", object(&["username", "password"], json!({
                "username": string("Username"), "password": string("Password")
            }))),
            ("sasl_scram", object(&["username", "password", "mechanism"], json!({
                "username": string("Username"), "password": string("Password"),
                "mechanism": { "type": "string", "enum": ["SCRAM-SHA-256", "SCRAM-SHA-512"] }
            }))),
            ("nats_token", object(&["token"], json!({ "token": string("Token") }))),
            ("postgres_dsn", object(&["dsn"], json!({ "dsn": string("Connection string") }))),
            ("secret", object(&["value"], json!({ "value": string("Secret") }))),
        ]
    })
}

pub fn schema(kind: &str) -> Option<&'static Value> {
    kinds().iter().find(|(k, _)| *k == kind).map(|(_, s)| s)
}

/// A non-secret label for telling keys apart: the public part of the credential where it has one
/// (an access key id, a service account's email, a user name), plus a short keyed hash of the
/// whole secret. The hash key is derived from the master key, so the fingerprint reveals nothing
/// that could be checked against a guess without it.
pub fn fingerprint(kind: &str, secret: &Value, hash: &str) -> String {
    let public = match kind {
        "aws_access_key" => secret["access_key_id"].as_str(),
        "aws_role" => secret["role_arn"].as_str(),
        "gcp_service_account" => secret["client_email"].as_str(),
        "azure_shared_key" => secret["account_name"].as_str(),
        "azure_sas_key" => secret["key_name"].as_str(),
        "basic" | "sasl_plain" | "sasl_scram" => secret["username"].as_str(),
        _ => None,
    };
    match public {
        Some(public) => format!("{public} · {hash}"),
        None => hash.to_owned(),
    }
}

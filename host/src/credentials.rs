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
            ("aws_access_key", object(&["access_key_id", "secret_access_key"], json!({
                "access_key_id": string("Access key id"),
                "secret_access_key": string("Secret access key"),
                "session_token": string("Session token")
            }))),
            ("aws_role", object(&["role_arn"], json!({
                "role_arn": {
                    "type": "string", "title": "Role ARN", "maxLength": 2048,
                    "pattern": "^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\\w+=,.@/-]{1,512}$",
                    "description": "The IAM role Pushrail assumes, e.g. arn:aws:iam::123456789012:role/pushrail-delivery. Its trust policy must name this deployment's account and your external id."
                }
            }))),
            ("gcp_service_account", object(&["client_email", "private_key"], json!({
                "type": { "type": "string" },
                "project_id": string("Project"),
                "private_key_id": string("Private key id"),
                "private_key": { "type": "string", "minLength": 1, "maxLength": 16384, "title": "Private key (PEM)", "x-multiline": true },
                "client_email": string("Client email"),
                "client_id": { "type": "string" },
                "auth_uri": { "type": "string" },
                "token_uri": { "type": "string" },
                "auth_provider_x509_cert_url": { "type": "string" },
                "client_x509_cert_url": { "type": "string" },
                "universe_domain": { "type": "string" }
            }))),
            ("azure_shared_key", object(&["account_name", "account_key"], json!({
                "account_name": string("Storage account name"),
                "account_key": string("Account key (base64)")
            }))),
            ("azure_sas_token", object(&["sas_token"], json!({
                "sas_token": { "type": "string", "minLength": 1, "maxLength": 16384, "title": "SAS token",
                               "description": "A shared access signature, e.g. sv=2024-11-04&ss=b&srt=co&sp=cw&se=...&sig=..." }
            }))),
            ("azure_sas_key", object(&["key_name", "key"], json!({
                "key_name": string("Shared access policy name"),
                "key": string("Shared access policy key")
            }))),
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

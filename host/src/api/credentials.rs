//! A sub-tenant's credentials. Secrets go in and never come out: answers carry a fingerprint.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::extract::ApiJson;
use super::views::{self, Items};
use super::AppState;
use crate::auth::EmbedPrincipal;
use crate::aws_roles;
use crate::credentials;
use crate::error::{ApiError, ApiResult, FieldDetail};
use crate::ids;
use crate::store::{CredentialRow, NewCredential, Tx};
use crate::vault::SecretString;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    name: String,
    kind: String,
    #[serde(default)]
    secret: SecretValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateCredential {
    #[serde(default)]
    secret: SecretValue,
}

/// The secret of a request body; wiped when dropped, redacted when printed.
#[derive(Deserialize, Default)]
#[serde(transparent)]
pub struct SecretValue(Value);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => zeroize::Zeroize::zeroize(s),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

pub fn generate_webhook_secret() -> Value {
    let mut key = Zeroizing::new([0u8; 24]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    json!({ "secret": format!("whsec_{}", STANDARD.encode(key.as_ref())) })
}

pub async fn list(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
) -> ApiResult<Json<Items<views::Credential>>> {
    let rows = state.store.list_credentials(&principal.scope).await?;
    Ok(Json(Items {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

pub async fn create(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    ApiJson(mut body): ApiJson<CreateCredential>,
) -> ApiResult<(StatusCode, Json<views::Credential>)> {
    if body.name.trim().is_empty() || body.name.len() > 255 || body.name.contains('\0') {
        return Err(ApiError::field("name", "must be 1 to 255 bytes"));
    }
    if body.kind == "webhook_secret" && body.secret.0.get("secret").is_none() {
        let mut generated = generate_webhook_secret();
        std::mem::swap(&mut body.secret.0, &mut generated);
        wipe(&mut generated);
    }
    let mut tx = state.store.begin().await?;
    let row = insert(
        &state,
        &mut tx,
        &principal,
        &body.name,
        &body.kind,
        &body.secret.0,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Checks, seals and stores a secret, with its audit row, in the caller's transaction.
pub async fn insert(
    state: &AppState,
    tx: &mut Tx<'_>,
    principal: &EmbedPrincipal,
    name: &str,
    kind: &str,
    secret: &Value,
) -> ApiResult<CredentialRow> {
    check_secret(kind, secret)?;
    check_available(state, kind)?;
    let scope = &principal.scope;
    let id = ids::new(ids::CREDENTIAL);
    let plain = SecretString::new(secret.to_string());
    let sealed = state
        .vault
        .seal(&credentials::context(scope, &id), plain.expose().as_bytes());
    let fingerprint = credentials::fingerprint(
        kind,
        secret,
        &state.vault.fingerprint(plain.expose().as_bytes()),
    );
    let new = NewCredential {
        id: &id,
        name,
        kind,
        fingerprint: &fingerprint,
        sealed: &sealed,
    };
    let row = state.store.insert_credential(tx, scope, &new).await?;
    principal
        .audit(&state.store, tx, "credential.create", &id)
        .await?;
    Ok(row)
}

pub async fn rotate(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    Path(id): Path<String>,
    ApiJson(mut body): ApiJson<RotateCredential>,
) -> ApiResult<Json<views::Credential>> {
    let scope = &principal.scope;
    let current = state
        .store
        .get_credential(scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    if current.kind == "webhook_secret" && body.secret.0.get("secret").is_none() {
        let mut generated = generate_webhook_secret();
        std::mem::swap(&mut body.secret.0, &mut generated);
        wipe(&mut generated);
    }
    check_secret(&current.kind, &body.secret.0)?;
    check_available(&state, &current.kind)?;
    let plain = SecretString::new(body.secret.0.to_string());
    let sealed = state
        .vault
        .seal(&credentials::context(scope, &id), plain.expose().as_bytes());
    let fingerprint = credentials::fingerprint(
        &current.kind,
        &body.secret.0,
        &state.vault.fingerprint(plain.expose().as_bytes()),
    );
    let mut tx = state.store.begin().await?;
    if !state
        .store
        .rotate_credential(&mut tx, scope, &id, &fingerprint, &sealed)
        .await?
    {
        return Err(ApiError::not_found("credential"));
    }
    principal
        .audit(&state.store, &mut tx, "credential.rotate", &id)
        .await?;
    tx.commit().await?;
    let row = state
        .store
        .get_credential(scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    Ok(Json(row.into()))
}

pub async fn delete(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = &principal.scope;
    if state.store.get_credential(scope, &id).await?.is_none() {
        return Err(ApiError::not_found("credential"));
    }
    let mut tx = state.store.begin().await?;
    if state.store.credential_in_use(&mut tx, scope, &id).await? {
        return Err(ApiError::conflict(
            "credential_in_use",
            "a destination uses this credential; detach or delete it first",
        ));
    }
    state.store.delete_credential(&mut tx, scope, &id).await?;
    principal
        .audit(&state.store, &mut tx, "credential.delete", &id)
        .await?;
    tx.commit().await?;
    state.aws_roles.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// What a customer needs to create a role Pushrail may assume: this deployment's AWS account,
/// the sub-tenant's external id and the trust policy to paste into the role.
pub async fn aws_role(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
) -> ApiResult<Json<Value>> {
    check_available(&state, aws_roles::KIND)?;
    let external_id = state.store.aws_external_id(&principal.scope).await?;
    let trust = state
        .aws_roles
        .trust(&external_id)
        .ok_or_else(roles_unavailable)?;
    Ok(Json(trust))
}

fn roles_unavailable() -> ApiError {
    ApiError::conflict(
        "aws_roles_unavailable",
        "this deployment has no AWS credentials of its own to assume roles with; use an aws_access_key credential",
    )
}

/// Kinds the deployment must be set up for: `aws_role` needs the operator's AWS keys.
fn check_available(state: &AppState, kind: &str) -> ApiResult<()> {
    if kind == aws_roles::KIND && !state.aws_roles.enabled() {
        return Err(roles_unavailable());
    }
    Ok(())
}

/// Validates a secret against its kind's schema. Messages name the field and the rule, never the
/// value: validator messages quote the instance, which here is the secret.
fn check_secret(kind: &str, secret: &Value) -> ApiResult<()> {
    let schema = credentials::schema(kind).ok_or_else(|| {
        let known: Vec<_> = credentials::kinds().iter().map(|(k, _)| *k).collect();
        ApiError::field(
            "kind",
            format!("unknown credential kind; known kinds: {}", known.join(", ")),
        )
    })?;
    let validator = jsonschema::validator_for(schema).map_err(ApiError::internal)?;
    let details: Vec<FieldDetail> = validator
        .iter_errors(secret)
        .map(|error| {
            let path = error.instance_path.to_string();
            let mut field = format!("secret{}", path.replace('/', "."));
            let message = match &error.kind {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    field = format!("{field}.{}", property.as_str().unwrap_or("?"));
                    "is required".to_owned()
                }
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    format!("unknown fields: {}", unexpected.join(", "))
                }
                _ => {
                    let rule = error.schema_path.to_string();
                    let rule = rule.rsplit('/').next().unwrap_or("schema").to_owned();
                    format!("does not satisfy the `{rule}` rule of kind {kind}")
                }
            };
            FieldDetail { field, message }
        })
        .collect();
    if details.is_empty() {
        return Ok(());
    }
    Err(ApiError::fields(details))
}

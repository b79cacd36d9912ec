//! `PUT/GET/DELETE /v1/operator-webhook`: where the vendor hears about its customers'
//! destinations (see `crate::operator`). The endpoint is a webhook destination of the tenant's
//! reserved operator sub-tenant, signed with a secret generated here and shown once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::credentials::generate_webhook_secret;
use super::extract::ApiJson;
use super::AppState;
use crate::auth::TenantPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::scope::Scope;
use crate::store::{DestinationPatch, DestinationRow, NewCredential, NewDestination};
use crate::{credentials, ids, operator};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorWebhook {
    url: String,
}

fn check_url(url: &str) -> ApiResult<()> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            Ok(())
        }
        _ => Err(ApiError::field("url", "must be an http or https URL")),
    }
}

fn view(row: &DestinationRow, secret: Option<&str>) -> Value {
    let config: Value = serde_json::from_str(&row.config).unwrap_or(Value::Null);
    let mut answer = json!({
        "url": config["url"],
        "destination_id": row.id,
        "enabled": row.enabled(),
        "circuit": row.circuit(),
    });
    if let Some(secret) = secret {
        answer["secret"] = json!(secret);
    }
    answer
}

async fn current(state: &AppState, scope: &Scope) -> ApiResult<Option<DestinationRow>> {
    Ok(state
        .store
        .list_destinations(scope)
        .await?
        .into_iter()
        .next())
}

fn not_registered() -> ApiError {
    ApiError::not_found("operator webhook")
}

/// The tenant's operator scope and endpoint, or 404.
async fn registered(state: &AppState, tenant_id: &str) -> ApiResult<(Scope, DestinationRow)> {
    let scope = operator::scope(&state.store, tenant_id)
        .await?
        .ok_or_else(not_registered)?;
    let row = current(state, &scope).await?.ok_or_else(not_registered)?;
    Ok((scope, row))
}

/// Registers (201, with the signing secret, once) or moves (200) the tenant's operator endpoint.
pub async fn put(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    ApiJson(body): ApiJson<OperatorWebhook>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_url(&body.url)?;
    let sub_tenant_id = state
        .store
        .ensure_sub_tenant(&tenant.tenant_id, operator::EXTERNAL_ID)
        .await?;
    let scope = Scope::authenticated(tenant.tenant_id.clone(), sub_tenant_id);
    let config = json!({ "url": body.url }).to_string();
    let mut tx = state.store.begin().await?;
    if let Some(existing) = current(&state, &scope).await? {
        let patch = DestinationPatch {
            name: &existing.name,
            config: &config,
            credential_id: existing.credential_id.as_deref(),
            event_types: &existing.event_types,
            enabled: true,
        };
        state
            .store
            .update_destination(&mut tx, &scope, &existing.id, &patch)
            .await?;
        tx.commit().await?;
        state.plugins.invalidate(&existing.id);
        let row = current(&state, &scope).await?.ok_or_else(not_registered)?;
        return Ok((StatusCode::OK, Json(view(&row, None))));
    }
    let secret = generate_webhook_secret();
    let plain = secret.to_string();
    let credential_id = ids::new(ids::CREDENTIAL);
    let sealed = state.vault.seal(
        &credentials::context(&scope, &credential_id),
        plain.as_bytes(),
    );
    let fingerprint = credentials::fingerprint(
        "webhook_secret",
        &secret,
        &state.vault.fingerprint(plain.as_bytes()),
    );
    state
        .store
        .insert_credential(
            &mut tx,
            &scope,
            &NewCredential {
                id: &credential_id,
                name: "Operator events signing secret",
                kind: "webhook_secret",
                fingerprint: &fingerprint,
                sealed: &sealed,
            },
        )
        .await?;
    let id = ids::new(ids::DESTINATION);
    state
        .store
        .insert_destination(
            &mut tx,
            &scope,
            &NewDestination {
                id: &id,
                type_id: "webhook",
                name: "Operator events",
                config: &config,
                credential_id: Some(&credential_id),
                event_types: "[]",
                enabled: true,
            },
        )
        .await?;
    tx.commit().await?;
    let row = current(&state, &scope).await?.ok_or_else(not_registered)?;
    Ok((
        StatusCode::CREATED,
        Json(view(&row, secret["secret"].as_str())),
    ))
}

pub async fn get(State(state): State<AppState>, tenant: TenantPrincipal) -> ApiResult<Json<Value>> {
    let (_, row) = registered(&state, &tenant.tenant_id).await?;
    Ok(Json(view(&row, None)))
}

pub async fn delete(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
) -> ApiResult<StatusCode> {
    let (scope, row) = registered(&state, &tenant.tenant_id).await?;
    let mut tx = state.store.begin().await?;
    state
        .store
        .delete_destination(&mut tx, &scope, &row.id)
        .await?;
    tx.commit().await?;
    state.plugins.invalidate(&row.id);
    Ok(StatusCode::NO_CONTENT)
}

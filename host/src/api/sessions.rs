//! Session tokens: minted and revoked by the vendor's backend, published keys for verifiers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::ApiJson;
use super::AppState;
use crate::auth::TenantPrincipal;
use crate::auth::MAX_TTL_SECS;
use crate::error::{ApiError, ApiResult};
use crate::{clock, ids};

const DEFAULT_TTL_SECS: i64 = 900;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    external_id: String,
    ttl_seconds: Option<i64>,
}

/// Why an external id is not acceptable, if it is not. `deleted:` names offboarded customers.
pub fn external_id_problem(external_id: &str) -> Result<(), &'static str> {
    if external_id.is_empty() || external_id.len() > 255 {
        Err("must be 1 to 255 bytes")
    } else if external_id.contains('\0') {
        Err("must not contain NUL")
    } else if external_id.starts_with("deleted:") {
        Err("must not start with deleted: (reserved for offboarded customers)")
    } else if external_id.starts_with(crate::operator::RESERVED_PREFIX) {
        Err("must not start with pushrail: (reserved for Pushrail's own use)")
    } else {
        Ok(())
    }
}

pub fn check_external_id(external_id: &str, field: &str) -> ApiResult<()> {
    external_id_problem(external_id).map_err(|message| ApiError::field(field, message))
}

pub async fn create(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    ApiJson(body): ApiJson<CreateSession>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_external_id(&body.external_id, "external_id")?;
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return Err(ApiError::field(
            "ttl_seconds",
            format!("must be between 1 and {MAX_TTL_SECS}"),
        ));
    }
    let sub_tenant_id = state
        .store
        .ensure_sub_tenant(&tenant.tenant_id, &body.external_id)
        .await?;
    let session_id = ids::new(ids::SESSION);
    let (token, exp) = state.sessions.mint(&sub_tenant_id, &session_id, ttl)?;
    state
        .store
        .insert_session(&session_id, &tenant.tenant_id, &sub_tenant_id, exp * 1000)
        .await?;
    let actor = format!("tenant:{}", tenant.tenant_id);
    state
        .store
        .audit_now(
            &tenant.tenant_id,
            Some(&sub_tenant_id),
            &actor,
            "session.issue",
            &session_id,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "session_id": session_id,
            "sub_tenant_id": sub_tenant_id,
            "expires_at": clock::to_rfc3339(exp * 1000),
        })),
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    let sub_tenant_id = state
        .store
        .revoke_session(&tenant.tenant_id, &session_id)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))?;
    let actor = format!("tenant:{}", tenant.tenant_id);
    state
        .store
        .audit_now(
            &tenant.tenant_id,
            Some(&sub_tenant_id),
            &actor,
            "session.revoke",
            &session_id,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn revoke_sub_tenant(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    Path(external_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let sub_tenant_id = state
        .store
        .find_sub_tenant(&tenant.tenant_id, &external_id)
        .await?
        .ok_or_else(|| ApiError::not_found("sub-tenant"))?;
    let revoked = state
        .store
        .revoke_sub_tenant_sessions(&tenant.tenant_id, &sub_tenant_id)
        .await?;
    let actor = format!("tenant:{}", tenant.tenant_id);
    state
        .store
        .audit_now(
            &tenant.tenant_id,
            Some(&sub_tenant_id),
            &actor,
            "session.revoke_all",
            &sub_tenant_id,
        )
        .await?;
    Ok(Json(json!({ "revoked": revoked })))
}

pub async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.sessions.jwks())
}

/// Offboards a customer (an extension of API.md): sessions end at once, secrets are destroyed.
pub async fn delete_sub_tenant(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    Path(external_id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_sub_tenant(&tenant.tenant_id, &external_id)
        .await?
        .ok_or_else(|| ApiError::not_found("sub-tenant"))?;
    Ok(StatusCode::NO_CONTENT)
}

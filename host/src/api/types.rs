//! The destination types the loaded plugins provide, with the schemas the embed UI renders.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::auth::{EmbedPrincipal, TenantPrincipal};
use crate::credentials;

fn describe(state: &AppState) -> Vec<Value> {
    state
        .plugins
        .plugins()
        .iter()
        .map(|plugin| {
            let info = &plugin.info;
            let kinds: Vec<Value> = info
                .credential_kinds
                .iter()
                .map(|kind| json!({ "kind": kind, "schema": credentials::schema(kind) }))
                .collect();
            json!({
                "type": info.id,
                "name": info.name,
                "description": info.description,
                "config_schema": info.config_schema,
                "credential_schema": info.credential_schema,
                "credential_kinds": kinds,
                "credential_required": info.credential_required,
            })
        })
        .collect()
}

pub async fn list(State(state): State<AppState>, _principal: EmbedPrincipal) -> Json<Vec<Value>> {
    Json(describe(&state))
}

pub async fn list_for_vendor(
    State(state): State<AppState>,
    _tenant: TenantPrincipal,
) -> Json<Vec<Value>> {
    Json(describe(&state))
}

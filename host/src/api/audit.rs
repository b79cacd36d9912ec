use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::ApiQuery;
use super::AppState;
use crate::auth::EmbedPrincipal;
use crate::clock::to_rfc3339;
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: must be between 1 and 500",
        ));
    }
    let rows = state
        .store
        .list_audit(&principal.scope, query.cursor.as_deref(), limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let items: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "at": to_rfc3339(r.at), "actor": r.actor, "action": r.action, "target": r.target }))
        .collect();
    let next_cursor = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::ApiQuery;
use super::AppState;
use crate::auth::EmbedPrincipal;
use crate::clock::{self, to_rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::store::{ActionFilter, AuditFilter};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    /// One action (`credential.rotate`) or a family of them (`credential.*`).
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// Action names are dot-separated words of lowercase letters, digits and `_`.
fn action_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.split('.').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

fn action_filter(text: &str) -> ApiResult<ActionFilter> {
    let filter = match text.strip_suffix(".*") {
        Some(family) => ActionFilter::Family(family.to_owned()),
        None => ActionFilter::Exact(text.to_owned()),
    };
    let (ActionFilter::Family(name) | ActionFilter::Exact(name)) = &filter;
    if action_name(name) {
        Ok(filter)
    } else {
        Err(invalid(
            "action: must be an action (credential.rotate) or a family of them (credential.*)",
        ))
    }
}

fn time(field: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .map(|text| {
            clock::parse_rfc3339(text)
                .ok_or_else(|| invalid(format!("{field}: must be an RFC 3339 timestamp")))
        })
        .transpose()
}

pub async fn list(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(invalid("limit: must be between 1 and 500"));
    }
    let filter = AuditFilter {
        action: query.action.as_deref().map(action_filter).transpose()?,
        since: time("since", query.since.as_deref())?,
        until: time("until", query.until.as_deref())?,
        before_id: query.cursor,
        limit: limit + 1,
    };
    let rows = state.store.list_audit(&principal.scope, &filter).await?;
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

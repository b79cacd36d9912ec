//! The delivery log (per sub-tenant, and the operator's view of one sub-tenant) and replays.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiQuery};
use super::views::{self, Page};
use super::AppState;
use crate::auth::{EmbedPrincipal, TenantPrincipal};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::scope::Scope;
use crate::store::{DeliveryFilter, ReplayFilter};

const STATUSES: &[&str] = &["pending", "delivering", "succeeded", "failed"];
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    destination_id: Option<String>,
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

fn time(field: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .map(|text| {
            clock::parse_rfc3339(text)
                .ok_or_else(|| invalid(format!("{field}: must be an RFC 3339 timestamp")))
        })
        .transpose()
}

impl ListQuery {
    fn into_filter(self) -> ApiResult<DeliveryFilter> {
        if let Some(status) = &self.status {
            if !STATUSES.contains(&status.as_str()) {
                return Err(invalid(format!(
                    "status: must be one of {}",
                    STATUSES.join(", ")
                )));
            }
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(format!("limit: must be between 1 and {MAX_LIMIT}")));
        }
        let before_id = self
            .cursor
            .map(|cursor| {
                URL_SAFE_NO_PAD
                    .decode(&cursor)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .filter(|id| id.starts_with("dlv_"))
                    .ok_or_else(|| invalid("cursor: not a cursor returned by this endpoint"))
            })
            .transpose()?;
        Ok(DeliveryFilter {
            status: self.status,
            destination_id: self.destination_id,
            event_type: self.event_type,
            since: time("since", self.since.as_deref())?,
            until: time("until", self.until.as_deref())?,
            before_id,
            limit,
        })
    }
}

async fn page(
    state: &AppState,
    scope: &Scope,
    query: ListQuery,
) -> ApiResult<Json<Page<views::Delivery>>> {
    let mut filter = query.into_filter()?;
    let limit = filter.limit;
    filter.limit += 1;
    let mut rows = state.store.list_deliveries(scope, &filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| URL_SAFE_NO_PAD.encode(&r.id))
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

pub async fn list(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<views::Delivery>>> {
    page(&state, &principal.scope, query).await
}

/// The vendor's operator view of one customer's log; the sub-tenant is looked up within the
/// calling tenant only, so another tenant's customers answer 404.
pub async fn list_for_operator(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    Path(external_id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<views::Delivery>>> {
    let sub_tenant_id = state
        .store
        .find_sub_tenant(&tenant.tenant_id, &external_id)
        .await?
        .ok_or_else(|| ApiError::not_found("sub-tenant"))?;
    page(
        &state,
        &Scope::authenticated(tenant.tenant_id, sub_tenant_id),
        query,
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    Path(id): Path<String>,
) -> ApiResult<Json<views::Delivery>> {
    let detail = state
        .store
        .get_delivery(&principal.scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let mut delivery = views::Delivery::from(detail.delivery);
    delivery.payload = Some(views::payload(detail.payload));
    delivery.attempts = Some(detail.attempts.into_iter().map(Into::into).collect());
    Ok(Json(delivery))
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

pub async fn replay(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let scope = &principal.scope;
    let replay_id = ids::new(ids::REPLAY);
    let request = serde_json::to_string(&body).map_err(ApiError::internal)?;
    if let Some(destination_id) = &body.destination_id {
        if state
            .store
            .get_destination(scope, destination_id)
            .await?
            .is_none()
        {
            return Err(ApiError::not_found("destination"));
        }
    }
    let mut tx = state.store.begin().await?;
    let count = match &body.delivery_id {
        Some(delivery_id) => {
            if body.since.is_some()
                || body.until.is_some()
                || body.destination_id.is_some()
                || body.status.is_some()
            {
                return Err(ApiError::field(
                    "delivery_id",
                    "give either delivery_id or a window (since, until), not both",
                ));
            }
            match state
                .store
                .replay_delivery(&mut tx, state.engine.first_attempt_at(), scope, delivery_id)
                .await?
            {
                None => return Err(ApiError::not_found("delivery")),
                Some(false) => {
                    return Err(ApiError::conflict(
                        "delivery_in_progress",
                        "the delivery is still pending or being delivered",
                    ))
                }
                Some(true) => 1,
            }
        }
        None => {
            let (Some(since), Some(until)) = (&body.since, &body.until) else {
                return Err(ApiError::field(
                    "since",
                    "give delivery_id, or since and until",
                ));
            };
            let since = clock::parse_rfc3339(since)
                .ok_or_else(|| ApiError::field("since", "must be an RFC 3339 timestamp"))?;
            let until = clock::parse_rfc3339(until)
                .ok_or_else(|| ApiError::field("until", "must be an RFC 3339 timestamp"))?;
            if since >= until {
                return Err(ApiError::field("until", "must be after since"));
            }
            let status = body.status.clone().unwrap_or_else(|| "failed".to_owned());
            if !matches!(status.as_str(), "failed" | "succeeded") {
                return Err(ApiError::field("status", "must be failed or succeeded"));
            }
            let filter = ReplayFilter {
                since,
                until,
                destination_id: body.destination_id.clone(),
                status,
            };
            state
                .store
                .replay_window(&mut tx, state.engine.first_attempt_at(), scope, &filter)
                .await?
        }
    };
    state
        .store
        .insert_replay(&mut tx, scope, &replay_id, &request, count as i64)
        .await?;
    principal
        .audit(&state.store, &mut tx, "replay.create", &replay_id)
        .await?;
    tx.commit().await?;
    if count > 0 {
        state.engine.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "replay_id": replay_id, "deliveries": count })),
    ))
}

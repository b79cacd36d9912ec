//! Ingest: the vendor publishes events for one sub-tenant; they fan out into deliveries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};

use super::extract::ApiJson;
use super::AppState;
use crate::auth::TenantPrincipal;
use crate::clock;
use crate::engine::fanout;
use crate::error::{ApiError, ApiResult, FieldDetail};
use crate::scope::Scope;
use crate::store::NewEvent;

/// The largest payload of one event, as JSON text.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
const MAX_BATCH: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    external_id: String,
    #[serde(rename = "type")]
    event_type: String,
    payload: Box<RawValue>,
    id: Option<String>,
    occurred_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBatch {
    events: Vec<PublishEvent>,
}

pub async fn publish(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    ApiJson(event): ApiJson<PublishEvent>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let results = ingest(&state, &tenant, vec![event], "").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(results.into_iter().next().unwrap_or(Value::Null)),
    ))
}

pub async fn publish_batch(
    State(state): State<AppState>,
    tenant: TenantPrincipal,
    ApiJson(batch): ApiJson<PublishBatch>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::field(
            "events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    let results = ingest(&state, &tenant, batch.events, "events").await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "results": results }))))
}

/// Checks every event first, so a batch with one bad event is refused whole and nothing is
/// half-written; then stores all of them in one transaction.
async fn ingest(
    state: &AppState,
    tenant: &TenantPrincipal,
    events: Vec<PublishEvent>,
    prefix: &str,
) -> ApiResult<Vec<Value>> {
    let mut details = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let at = |field: &str| {
            if prefix.is_empty() {
                field.to_owned()
            } else {
                format!("{prefix}[{i}].{field}")
            }
        };
        let mut problem = |field: &str, message: &str| {
            details.push(FieldDetail {
                field: at(field),
                message: message.to_owned(),
            })
        };
        if let Err(message) = super::sessions::external_id_problem(&event.external_id) {
            problem("external_id", message);
        }
        if !valid_event_type(&event.event_type) {
            problem(
                "type",
                "must be 1 to 255 characters of letters, digits and . _ - :",
            );
        }
        if event.payload.get().len() > MAX_PAYLOAD_BYTES {
            problem(
                "payload",
                &format!("must be at most {MAX_PAYLOAD_BYTES} bytes of JSON"),
            );
        }
        if let Some(id) = &event.id {
            if id.is_empty() || id.len() > 255 || id.contains('\0') {
                problem("id", "must be 1 to 255 bytes, without NUL");
            }
        }
        if let Some(at) = &event.occurred_at {
            if clock::parse_rfc3339(at).is_none() {
                problem("occurred_at", "must be an RFC 3339 timestamp");
            }
        }
    }
    if !details.is_empty() {
        return Err(ApiError::fields(details));
    }

    let now = clock::now_ms();
    let mut new_events = Vec::with_capacity(events.len());
    let mut scopes: Vec<(String, Scope)> = Vec::new();
    for event in events {
        let scope = match scopes
            .iter()
            .find(|(external, _)| *external == event.external_id)
        {
            Some((_, scope)) => scope.clone(),
            None => {
                let sub = state
                    .store
                    .ensure_sub_tenant(&tenant.tenant_id, &event.external_id)
                    .await?;
                let scope = Scope::authenticated(tenant.tenant_id.clone(), sub);
                scopes.push((event.external_id.clone(), scope.clone()));
                scope
            }
        };
        new_events.push(NewEvent {
            scope,
            idempotency_key: event.id,
            event_type: event.event_type,
            payload: event.payload.get().to_owned(),
            occurred_at: event
                .occurred_at
                .as_deref()
                .and_then(clock::parse_rfc3339)
                .unwrap_or(now),
        });
    }
    let ingest = || {
        state.store.ingest(
            &new_events,
            &fanout::matcher,
            state.engine.first_attempt_at(),
        )
    };
    let results = match ingest().await {
        // Two requests raced with the same idempotency key: the loser's transaction rolled back
        // whole; run it again and its lookup answers with the winner's event.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => ingest().await?,
        other => other?,
    };
    if results.iter().any(|r| r.deliveries > 0 && !r.duplicate) {
        state.engine.wake();
    }
    Ok(results
        .into_iter()
        .map(|r| json!({ "event_id": r.event_id, "deliveries": r.deliveries }))
        .collect())
}

fn valid_event_type(event_type: &str) -> bool {
    !event_type.is_empty()
        && event_type.len() <= 255
        && event_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
}

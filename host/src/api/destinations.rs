//! A sub-tenant's destinations: create, read, change, delete, and send a test event.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::credentials::generate_webhook_secret;
use super::extract::{parse, ApiJson};
use super::views::{self, Items};
use super::AppState;
use crate::auth::EmbedPrincipal;
use crate::engine::fanout;
use crate::error::{ApiError, ApiResult, FieldDetail};
use crate::ids;
use crate::sandbox::Plugin;
use crate::store::{DestinationPatch, DestinationRow, NewDestination};

const MAX_EVENT_TYPE_PATTERNS: usize = 64;
/// Destinations one customer may have: bounds the fan-out work each of its events costs.
const MAX_DESTINATIONS: i64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDestination {
    #[serde(rename = "type")]
    type_id: String,
    name: String,
    config: Value,
    credential_id: Option<String>,
    event_types: Option<Vec<String>>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateDestination {
    #[serde(rename = "type")]
    type_id: Option<String>,
    name: Option<String>,
    config: Option<Value>,
    /// `null` detaches the credential; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    credential_id: Option<Option<String>>,
    event_types: Option<Vec<String>>,
    enabled: Option<bool>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    payload: Option<Value>,
}

pub async fn list(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
) -> ApiResult<Json<Items<views::Destination>>> {
    let rows = state.store.list_destinations(&principal.scope).await?;
    Ok(Json(Items {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

pub async fn get(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    Path(id): Path<String>,
) -> ApiResult<Json<views::Destination>> {
    Ok(Json(find(&state, &principal, &id).await?.into()))
}

async fn find(state: &AppState, principal: &EmbedPrincipal, id: &str) -> ApiResult<DestinationRow> {
    state
        .store
        .get_destination(&principal.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))
}

pub async fn create(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    ApiJson(body): ApiJson<CreateDestination>,
) -> ApiResult<(StatusCode, Json<views::Destination>)> {
    let plugin = state.plugins.get(&body.type_id).ok_or_else(|| {
        let known: Vec<_> = state
            .plugins
            .plugins()
            .iter()
            .map(|p| p.info.id.clone())
            .collect();
        ApiError::field(
            "type",
            format!(
                "unknown destination type; known types: {}",
                known.join(", ")
            ),
        )
    })?;
    let event_types = body.event_types.unwrap_or_default();
    let generate_secret = body.credential_id.is_none()
        && plugin
            .info
            .credential_kinds
            .iter()
            .any(|k| k == "webhook_secret");
    check(
        &state,
        &principal,
        &plugin,
        &body.name,
        &body.config,
        body.credential_id.as_deref(),
        &event_types,
        generate_secret,
    )
    .await?;

    let scope = &principal.scope;
    let id = ids::new(ids::DESTINATION);
    let config = body.config.to_string();
    let event_types = serde_json::to_string(&event_types).map_err(ApiError::internal)?;
    let mut tx = state.store.begin().await?;
    if state.store.count_destinations(&mut tx, scope).await? >= MAX_DESTINATIONS {
        return Err(ApiError::conflict(
            "destination_limit_reached",
            format!(
                "a customer can have at most {MAX_DESTINATIONS} destinations; delete one first"
            ),
        ));
    }
    let credential_id = match body.credential_id {
        Some(id) => Some(id),
        None if generate_secret => {
            let name = format!("{} signing secret", body.name);
            let credential = super::credentials::insert(
                &state,
                &mut tx,
                &principal,
                &name,
                "webhook_secret",
                &generate_webhook_secret(),
            )
            .await?;
            Some(credential.id)
        }
        None => None,
    };
    let new = NewDestination {
        id: &id,
        type_id: &plugin.info.id,
        name: &body.name,
        config: &config,
        credential_id: credential_id.as_deref(),
        event_types: &event_types,
        enabled: body.enabled.unwrap_or(true),
    };
    state.store.insert_destination(&mut tx, scope, &new).await?;
    principal
        .audit(&state.store, &mut tx, "destination.create", &id)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(find(&state, &principal, &id).await?.into()),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateDestination>,
) -> ApiResult<Json<views::Destination>> {
    let current = find(&state, &principal, &id).await?;
    if body.type_id.as_ref().is_some_and(|t| *t != current.type_id) {
        return Err(ApiError::field(
            "type",
            "a destination's type cannot change; create a new destination",
        ));
    }
    let plugin = state.plugins.get(&current.type_id).ok_or_else(|| {
        ApiError::conflict(
            "type_unavailable",
            "no plugin for this destination's type is loaded",
        )
    })?;
    let enabled = body.enabled.unwrap_or(current.enabled());
    let name = body.name.unwrap_or(current.name);
    let config = match body.config {
        Some(config) => config,
        None => serde_json::from_str(&current.config).map_err(ApiError::internal)?,
    };
    let credential_id = body.credential_id.unwrap_or(current.credential_id);
    let event_types = match body.event_types {
        Some(types) => types,
        None => serde_json::from_str(&current.event_types).map_err(ApiError::internal)?,
    };
    check(
        &state,
        &principal,
        &plugin,
        &name,
        &config,
        credential_id.as_deref(),
        &event_types,
        false,
    )
    .await?;

    let scope = &principal.scope;
    let config = config.to_string();
    let event_types = serde_json::to_string(&event_types).map_err(ApiError::internal)?;
    let patch = DestinationPatch {
        name: &name,
        config: &config,
        credential_id: credential_id.as_deref(),
        event_types: &event_types,
        enabled,
    };
    let mut tx = state.store.begin().await?;
    if !state
        .store
        .update_destination(&mut tx, scope, &id, &patch)
        .await?
    {
        return Err(ApiError::not_found("destination"));
    }
    principal
        .audit(&state.store, &mut tx, "destination.update", &id)
        .await?;
    tx.commit().await?;
    // Sessions opened with the old config close now; the next batch opens one with the new.
    state.plugins.invalidate(&id);
    Ok(Json(find(&state, &principal, &id).await?.into()))
}

pub async fn delete(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = &principal.scope;
    let mut tx = state.store.begin().await?;
    if !state.store.delete_destination(&mut tx, scope, &id).await? {
        return Err(ApiError::not_found("destination"));
    }
    principal
        .audit(&state.store, &mut tx, "destination.delete", &id)
        .await?;
    tx.commit().await?;
    state.plugins.invalidate(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Delivers a test event now, through the same engine path as any event, and answers with the
/// attempt. A failed test is retried on the schedule like any other delivery.
pub async fn test(
    State(state): State<AppState>,
    principal: EmbedPrincipal,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let request: TestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TestRequest::default()
    } else {
        parse(&body)?
    };
    let payload = request
        .payload
        .unwrap_or_else(|| json!({ "message": "Test event from Pushrail", "destination_id": id }))
        .to_string();
    if payload.len() > super::events::MAX_PAYLOAD_BYTES {
        return Err(ApiError::field("payload", "too large"));
    }
    if !find(&state, &principal, &id).await?.enabled() {
        return Err(ApiError::conflict(
            "destination_disabled",
            "enable the destination to send it a test event",
        ));
    }
    let claimed = state
        .store
        .insert_test_delivery(
            &principal.scope,
            &id,
            &payload,
            state.engine.owner(),
            state.engine.lease_ms(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    let delivery_id = claimed.id.clone();
    let slot = state.plugin_call_slot().await?;
    state.engine.deliver_now(vec![claimed]).await?;
    drop(slot);
    let detail = state
        .store
        .get_delivery(&principal.scope, &delivery_id)
        .await?
        .ok_or_else(|| ApiError::internal("test delivery vanished"))?;
    let attempt = detail.attempts.into_iter().last().map(views::Attempt::from);
    Ok(Json(
        json!({ "delivery_id": delivery_id, "attempt": attempt }),
    ))
}

/// Everything about a destination that can be wrong, reported together.
#[allow(clippy::too_many_arguments)]
async fn check(
    state: &AppState,
    principal: &EmbedPrincipal,
    plugin: &std::sync::Arc<Plugin>,
    name: &str,
    config: &Value,
    credential_id: Option<&str>,
    event_types: &[String],
    will_generate_credential: bool,
) -> ApiResult<()> {
    let mut details = Vec::new();
    let mut problem = |field: String, message: String| details.push(FieldDetail { field, message });
    if name.trim().is_empty() || name.len() > 255 || name.contains('\0') {
        problem("name".into(), "must be 1 to 255 bytes".into());
    }
    if event_types.len() > MAX_EVENT_TYPE_PATTERNS {
        problem(
            "event_types".into(),
            format!("at most {MAX_EVENT_TYPE_PATTERNS} patterns"),
        );
    }
    for (i, pattern) in event_types.iter().enumerate() {
        if let Err(message) = fanout::compile(pattern) {
            problem(format!("event_types[{i}]"), message);
        }
    }
    if !config.is_object() {
        problem("config".into(), "must be an object".into());
    } else {
        let schema_errors = plugin.check_schema(config);
        let schema_ok = schema_errors.is_empty();
        for error in schema_errors {
            problem(error.field, error.message);
        }
        if schema_ok {
            let _slot = state.plugin_call_slot().await?;
            let plugin_errors = state
                .plugins
                .validate(plugin, &config.to_string())
                .await
                .map_err(|e| {
                    ApiError::internal(format!("validating with plugin {}: {e}", plugin.info.id))
                })?;
            for error in plugin_errors {
                let field = if error.field.starts_with("config") {
                    error.field
                } else {
                    format!("config.{}", error.field)
                };
                problem(field, error.message);
            }
        }
    }
    match credential_id {
        Some(id) => match state.store.get_credential(&principal.scope, id).await? {
            // Another sub-tenant's credential is as unknown as a made-up id.
            None => return Err(ApiError::not_found("credential")),
            Some(credential) if !plugin.info.credential_kinds.contains(&credential.kind) => {
                problem(
                    "credential_id".into(),
                    format!(
                        "a {} destination takes credentials of kind {}, not {}",
                        plugin.info.id,
                        plugin.info.credential_kinds.join(" or "),
                        credential.kind
                    ),
                )
            }
            Some(_) => {}
        },
        None if plugin.info.credential_required && !will_generate_credential => {
            problem(
                "credential_id".into(),
                "this destination type needs a credential".into(),
            );
        }
        None => {}
    }
    if details.is_empty() {
        return Ok(());
    }
    Err(ApiError::fields(details))
}

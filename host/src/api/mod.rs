//! The HTTP API: the vendor API (`/v1`, tenant API keys) and the embed API (`/embed/v1`, session
//! tokens), each a set of small route modules over one shared state.

mod audit;
mod credentials;
mod deliveries;
mod destinations;
mod events;
mod extract;
mod limits;
mod operator;
mod sessions;
mod types;
mod views;

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use axum::Router;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

use crate::auth::SessionSigner;
use crate::engine::Engine;
use crate::error::{ApiError, ApiResult};
use crate::sandbox::Sandbox;
use crate::store::Store;
use crate::vault::Vault;

pub use limits::RateLimits;

/// Request bodies above this are refused with 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub sessions: SessionSigner,
    pub plugins: Arc<Sandbox>,
    pub engine: Engine,
    pub limits: RateLimits,
    /// Plugin calls the API makes for its own answers, bounded apart from the engine's.
    pub api_plugin_calls: Arc<tokio::sync::Semaphore>,
    /// Assumes customers' IAM roles; knows whether this deployment can.
    pub aws_roles: Arc<crate::aws_roles::AwsRoles>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// How long an API request waits for a free plugin-call slot before answering 503.
const PLUGIN_CALL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Shared {
    /// A slot for a plugin call the API makes itself (a test event, a config check). These have
    /// their own bounded capacity, so customers firing test events at slow endpoints cannot
    /// starve the engine; beyond it, 503 with `Retry-After`.
    pub async fn plugin_call_slot(&self) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout(
            PLUGIN_CALL_WAIT,
            self.api_plugin_calls.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::unavailable(
                "plugins_busy",
                "too many test events and checks are running at once; try again shortly",
                5,
            )),
        }
    }
}

/// Ready to serve: the store answers and holds every migration this build knows, and at least
/// one destination plugin is loaded. 503 with the reasons otherwise (load balancers and
/// orchestrators keep traffic away until then).
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let mut problems = Vec::new();
    if let Err(reason) = state.store.readiness().await {
        problems.push(reason);
    }
    let types = state.plugins.plugins().len();
    if types == 0 {
        problems.push("no destination plugins are loaded (check --plugins-dir)".to_owned());
    }
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready", "destination_types": types })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "not_ready", "reasons": problems })),
        )
    }
}

pub fn router(state: AppState) -> Router {
    let vendor = Router::new()
        .route("/sessions", post(sessions::create))
        .route(
            "/sessions/{session_id}",
            axum::routing::delete(sessions::revoke),
        )
        .route(
            "/sub-tenants/{external_id}",
            axum::routing::delete(sessions::delete_sub_tenant),
        )
        .route(
            "/sub-tenants/{external_id}/revoke-sessions",
            post(sessions::revoke_sub_tenant),
        )
        .route(
            "/sub-tenants/{external_id}/deliveries",
            get(deliveries::list_for_operator),
        )
        .route("/events", post(events::publish))
        .route("/events/batch", post(events::publish_batch))
        .route("/destination-types", get(types::list_for_vendor))
        .route(
            "/operator-webhook",
            get(operator::get)
                .put(operator::put)
                .delete(operator::delete),
        );

    // Session tokens travel in a header, never in cookies, so any origin may call the embed API.
    let embed = Router::new()
        .route("/destination-types", get(types::list))
        .route(
            "/destinations",
            get(destinations::list).post(destinations::create),
        )
        .route(
            "/destinations/{id}",
            get(destinations::get)
                .patch(destinations::update)
                .delete(destinations::delete),
        )
        .route("/destinations/{id}/test", post(destinations::test))
        .route(
            "/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/credentials/{id}",
            axum::routing::delete(credentials::delete),
        )
        .route("/credentials/{id}/rotate", post(credentials::rotate))
        .route("/aws-role", get(credentials::aws_role))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::get))
        .route("/replays", post(deliveries::replay))
        .route("/audit", get(audit::list))
        .layer(CorsLayer::very_permissive().allow_credentials(false));

    Router::new()
        .nest("/v1", vendor)
        .nest("/embed/v1", embed)
        .route(
            "/.well-known/jwks.json",
            get(sessions::jwks).layer(CorsLayer::permissive()),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

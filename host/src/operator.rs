//! Operator events: what the vendor hears about its customers' destinations (failing, disabled,
//! recovered, a delivery that ran out of retries, a credential the peer refused). The vendor
//! registers one endpoint (`PUT /v1/operator-webhook`); Pushrail keeps it as a webhook
//! destination of a sub-tenant of the vendor's own, reserved for this, so the events travel
//! through the same engine as everything else: signed (Standard Webhooks), retried, logged.

use serde_json::{json, Value};

use crate::scope::Scope;
use crate::store::{NewEvent, Store};
use crate::{clock, engine};

/// The external id of the sub-tenant that holds a vendor's operator endpoint. Customers' external
/// ids may not start with `pushrail:`, so no customer can be it, and no session can be minted
/// for it.
pub const EXTERNAL_ID: &str = "pushrail:operator";

/// The prefix of external ids Pushrail keeps for itself.
pub const RESERVED_PREFIX: &str = "pushrail:";

/// The operator sub-tenant's scope, if the tenant has registered an operator endpoint.
pub async fn scope(store: &Store, tenant_id: &str) -> sqlx::Result<Option<Scope>> {
    Ok(store
        .find_sub_tenant(tenant_id, EXTERNAL_ID)
        .await?
        .map(|id| Scope::authenticated(tenant_id.to_owned(), id)))
}

/// The customer's destination operator events are about.
pub struct Subject<'a> {
    pub tenant_id: &'a str,
    /// The customer's own sub-tenant id (its external id is looked up for the payload).
    pub sub_tenant_id: &'a str,
    pub destination_id: &'a str,
}

/// Publishes `notices` (event type, and what else the event says: reason, last error, delivery
/// id; never a secret) about `subject` to the tenant's operator endpoint, if it has one, in one
/// ingest. Events about the operator endpoint itself are not published (they would feed
/// themselves). Failures are logged, never passed on: the deliveries that caused the notices are
/// recorded either way.
pub async fn notify(
    store: &Store,
    engine_wake: &tokio::sync::Notify,
    subject: Subject<'_>,
    notices: Vec<(&'static str, Value)>,
) {
    if notices.is_empty() {
        return;
    }
    let result = async {
        let Some(scope) = scope(store, subject.tenant_id).await? else {
            return Ok(());
        };
        if scope.sub_tenant_id() == subject.sub_tenant_id {
            return Ok(());
        }
        let external_id = store
            .sub_tenant_external_id(subject.tenant_id, subject.sub_tenant_id)
            .await?
            .unwrap_or_default();
        let now = clock::now_ms();
        let events: Vec<NewEvent> = notices
            .into_iter()
            .map(|(event_type, details)| {
                let mut payload = json!({
                    "sub_tenant": external_id,
                    "destination_id": subject.destination_id,
                });
                if let (Value::Object(payload), Value::Object(details)) = (&mut payload, details) {
                    payload.extend(details);
                }
                NewEvent {
                    scope: scope.clone(),
                    idempotency_key: None,
                    event_type: event_type.to_owned(),
                    payload: payload.to_string(),
                    occurred_at: now,
                }
            })
            .collect();
        store.ingest(&events, &engine::fanout::matcher, now).await?;
        engine_wake.notify_one();
        Ok::<(), sqlx::Error>(())
    }
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "publishing operator events failed");
    }
}

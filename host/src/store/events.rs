use super::sql::{Arg, Sql};
use super::{FanoutTarget, Store};
use crate::scope::Scope;
use crate::{clock, ids};

/// How long an event's idempotency key answers with the first event.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Rows per multi-row INSERT, well inside SQLite's bound-parameter limit.
const INSERT_CHUNK: usize = 500;

/// Whether an event type goes to one destination.
pub type Matcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub struct NewEvent {
    pub scope: Scope,
    pub idempotency_key: Option<String>,
    pub event_type: String,
    pub payload: String,
    pub occurred_at: i64,
}

#[derive(Debug, Clone)]
pub struct IngestedEvent {
    pub event_id: String,
    pub deliveries: i64,
    /// The idempotency key matched an earlier event, which is what `event_id` names.
    pub duplicate: bool,
}

struct NewDelivery {
    id: String,
    event: usize,
    event_id: String,
    destination_id: String,
}

impl Store {
    /// Stores the events and fans each out to its sub-tenant's matching destinations, all in one
    /// transaction: either every event of the call and its deliveries exist, or none does.
    pub async fn ingest(
        &self,
        events: &[NewEvent],
        matcher: &(dyn Fn(&FanoutTarget) -> Matcher + Sync),
        first_attempt_at: i64,
    ) -> sqlx::Result<Vec<IngestedEvent>> {
        let now = clock::now_ms();
        let mut tx = self.begin().await?;
        let mut targets: Vec<(Scope, Vec<(FanoutTarget, Matcher)>)> = Vec::new();
        let mut results = Vec::with_capacity(events.len());
        // (index into `events` and `results`, which are aligned, new event id)
        let mut fresh: Vec<(usize, String)> = Vec::new();
        let mut deliveries: Vec<NewDelivery> = Vec::new();

        for (index, event) in events.iter().enumerate() {
            if let Some(key) = &event.idempotency_key {
                let earlier: Option<(String, i64, i64)> = sqlx::query_as(
                    "SELECT id, deliveries, created_at FROM events
                     WHERE tenant_id = $1 AND sub_tenant_id = $2 AND idempotency_key = $3",
                )
                .bind(event.scope.tenant_id())
                .bind(event.scope.sub_tenant_id())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
                match earlier {
                    Some((id, n, created_at)) if now - created_at < IDEMPOTENCY_WINDOW_MS => {
                        results.push(IngestedEvent {
                            event_id: id,
                            deliveries: n,
                            duplicate: true,
                        });
                        continue;
                    }
                    Some((id, ..)) => {
                        sqlx::query("UPDATE events SET idempotency_key = NULL WHERE id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    None => {}
                }
                // A key repeated inside this call answers with the first occurrence.
                if let Some((first, _)) = fresh.iter().find(|(i, _)| {
                    events[*i].idempotency_key.as_ref() == Some(key)
                        && events[*i].scope == event.scope
                }) {
                    let first = &results[*first];
                    results.push(IngestedEvent {
                        duplicate: true,
                        ..first.clone()
                    });
                    continue;
                }
            }

            let position = match targets.iter().position(|(scope, _)| *scope == event.scope) {
                Some(position) => position,
                None => {
                    // Each destination's patterns are compiled once per call, not once per event.
                    let found = self.fanout_targets(&mut tx, &event.scope).await?;
                    let compiled = found
                        .into_iter()
                        .map(|t| {
                            let m = matcher(&t);
                            (t, m)
                        })
                        .collect();
                    targets.push((event.scope.clone(), compiled));
                    targets.len() - 1
                }
            };
            let event_id = ids::new(ids::EVENT);
            let mut n = 0;
            for (target, _) in targets[position]
                .1
                .iter()
                .filter(|(_, m)| m(&event.event_type))
            {
                deliveries.push(NewDelivery {
                    id: ids::new(ids::DELIVERY),
                    event: index,
                    event_id: event_id.clone(),
                    destination_id: target.id.clone(),
                });
                n += 1;
            }
            fresh.push((index, event_id.clone()));
            results.push(IngestedEvent {
                event_id,
                deliveries: n,
                duplicate: false,
            });
        }

        for chunk in fresh.chunks(INSERT_CHUNK) {
            let mut insert = Sql::new(
                "INSERT INTO events (id, tenant_id, sub_tenant_id, idempotency_key, type, payload, occurred_at, created_at, deliveries) VALUES ",
            );
            for (i, (index, event_id)) in chunk.iter().enumerate() {
                let event = &events[*index];
                insert
                    .push(if i == 0 { "" } else { ", " })
                    .bind_list::<Arg>([
                        event_id.into(),
                        event.scope.tenant_id().into(),
                        event.scope.sub_tenant_id().into(),
                        event.idempotency_key.clone().into(),
                        event.event_type.as_str().into(),
                        event.payload.as_str().into(),
                        event.occurred_at.into(),
                        now.into(),
                        results[*index].deliveries.into(),
                    ]);
            }
            insert.query().execute(&mut *tx).await?;
        }

        for chunk in deliveries.chunks(INSERT_CHUNK) {
            let mut insert = Sql::new(
                "INSERT INTO deliveries (id, tenant_id, sub_tenant_id, event_id, destination_id, status, next_attempt_at, created_at, updated_at) VALUES ",
            );
            for (i, delivery) in chunk.iter().enumerate() {
                let event = &events[delivery.event];
                insert
                    .push(if i == 0 { "" } else { ", " })
                    .bind_list::<Arg>([
                        (&delivery.id).into(),
                        event.scope.tenant_id().into(),
                        event.scope.sub_tenant_id().into(),
                        (&delivery.event_id).into(),
                        (&delivery.destination_id).into(),
                        "pending".into(),
                        first_attempt_at.into(),
                        now.into(),
                        now.into(),
                    ]);
            }
            insert.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(results)
    }
}

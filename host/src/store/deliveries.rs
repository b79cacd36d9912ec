use super::sql::Sql;
use super::{Backend, Store, Tx};
use crate::clock;
use crate::scope::Scope;

/// A delivery claimed by a worker, with what it takes to deliver it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: String,
    pub tenant_id: String,
    pub sub_tenant_id: String,
    pub event_id: String,
    pub destination_id: String,
    pub destination_type: String,
    /// The claim's token; the completion must present it.
    pub lease_owner: String,
    pub attempt_count: i64,
    pub retry_index: i64,
    pub event_type: String,
    pub payload: String,
    pub occurred_at: i64,
}

impl ClaimedDelivery {
    /// The scope of the delivery's own row: the engine acts for the sub-tenant that owns it.
    pub fn scope(&self) -> Scope {
        Scope::authenticated(self.tenant_id.clone(), self.sub_tenant_id.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    RetryableError,
    PermanentError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::RetryableError => "retryable_error",
            Self::PermanentError => "permanent_error",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub n: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// The result of one attempt at one delivery, and what happens next.
#[derive(Debug, Clone)]
pub struct Completion {
    pub delivery_id: String,
    pub lease_owner: String,
    /// `attempt.n` is what the claim expected; the stored number is taken from the log itself.
    pub attempt: AttemptRow,
    /// `pending` (with `next_attempt_at`), `succeeded` or `failed`.
    pub status: &'static str,
    pub next_attempt_at: Option<i64>,
    pub retry_index: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub destination_id: String,
    pub status: String,
    pub attempt_count: i64,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// While it waits on its destination's open circuit: when the next probe may go.
    pub circuit_until: Option<i64>,
}

/// One delivery as its detail shows it: the row, the event's payload (JSON text, as published)
/// and the attempts in order.
#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub delivery: DeliveryRow,
    pub payload: String,
    pub attempts: Vec<AttemptRow>,
}

#[derive(sqlx::FromRow)]
struct DeliveryWithPayload {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    payload: String,
}

#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub destination_id: Option<String>,
    pub event_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only ids before this one (the list is newest first).
    pub before_id: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct ReplayFilter {
    pub since: i64,
    pub until: i64,
    pub destination_id: Option<String>,
    pub status: String,
}

pub const TEST_EVENT_TYPE: &str = "pushrail.test";

/// Claims due work in one statement. SQLite has one writer, so the statement alone is atomic.
/// What one claim may take, so that due work is shared across destinations instead of taken
/// strictly in due order (where one destination's backlog would hold every slot).
pub struct ClaimShare<'a> {
    /// Rows in all.
    pub rows: i64,
    /// Rows of one destination that travel as one batch.
    pub batch: i64,
    /// Batches of one destination at most.
    pub batches: i64,
    /// Destinations already running all the batches they may, and destinations whose circuit
    /// is open with no probe due: none of their rows is claimed.
    pub busy: &'a [String],
    /// Destinations whose circuit is open and whose next probe is due: one row each, the probe.
    pub probing: &'a [String],
}

/// A destination whose circuit is open (see [`Store::circuits`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenCircuit {
    pub destination_id: String,
    /// When its next probe may be claimed.
    pub until: i64,
}

/// Due rows (pending and due, or delivering with a lapsed lease) ranked within their
/// destination, oldest first. Every claim ranks what is due; the claim then takes each
/// destination's first batch before any destination's second, and so on: round robin over
/// destinations, a batch at a time.
fn push_ranked_due(sql: &mut Sql, now: i64, share: &ClaimShare<'_>) {
    sql.push(
        "SELECT id FROM (
           SELECT id, due, ROW_NUMBER() OVER (PARTITION BY destination_id ORDER BY due, id) AS place
           FROM (
             SELECT id, destination_id, next_attempt_at AS due FROM deliveries
             WHERE status = 'pending' AND next_attempt_at <= ",
    );
    sql.bind(now).push(
        "
             UNION ALL
             SELECT id, destination_id, lease_until AS due FROM deliveries
             WHERE status = 'delivering' AND lease_until < ",
    );
    // A disabled destination's work waits, paused, until it is enabled again (a deleted one's is
    // claimed, and fails).
    sql.bind(now).push(
        ") due_rows WHERE destination_id NOT IN
           (SELECT id FROM destinations WHERE enabled = 0 AND deleted_at IS NULL)",
    );
    if !share.busy.is_empty() {
        sql.push(" AND destination_id NOT IN ")
            .bind_list(share.busy.iter().map(String::as_str));
    }
    sql.push(") ranked WHERE place <= ")
        .bind(share.batch * share.batches);
    // A destination with an open circuit whose probe is due gives its first row only: the probe.
    if !share.probing.is_empty() {
        sql.push(" AND (place = 1 OR destination_id NOT IN ")
            .bind_list(share.probing.iter().map(String::as_str))
            .push(")");
    }
    sql.push(" ORDER BY (place - 1) / ")
        .bind(share.batch)
        .push(", due LIMIT ")
        .bind(share.rows);
}

/// Claimed rows' ids under the claim token that holds them: an update may only move the rows
/// of its own claim.
fn by_claim(claimed: &[ClaimedDelivery]) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut by_owner: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for delivery in claimed {
        by_owner
            .entry(&delivery.lease_owner)
            .or_default()
            .push(&delivery.id);
    }
    by_owner
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.event_id, e.type AS event_type, d.destination_id, d.status, \
     d.attempt_count, d.next_attempt_at, d.created_at, d.updated_at, \
     (SELECT t.circuit_until FROM destinations t WHERE t.id = d.destination_id AND d.status = 'pending') AS circuit_until";

impl Store {
    /// Claims up to `limit` due deliveries (pending and due, or delivering with a lapsed lease)
    /// for `owner` in one statement, so two workers never hold the same delivery at once.
    pub async fn claim_due(
        &self,
        owner: &str,
        lease_ms: i64,
        share: &ClaimShare<'_>,
    ) -> sqlx::Result<Vec<ClaimedDelivery>> {
        let now = clock::now_ms();
        // A fresh token per claim: a completion can only move the rows of its own claim, even
        // if the same worker has claimed them again since.
        let owner = format!("{owner}:{}", uuid::Uuid::new_v4().simple());
        let mut claim = Sql::new("UPDATE deliveries SET status = 'delivering', lease_owner = ");
        claim
            .bind(owner.as_str())
            .push(", lease_until = ")
            .bind(now + lease_ms)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE id IN (");
        match self.backend {
            // One writer: nothing can claim between the ranking and the update.
            Backend::Sqlite => push_ranked_due(&mut claim, now, share),
            // Several hosts claim at once. Window functions and row locks do not mix, so the
            // ranked ids are locked in an outer select that checks again that they are due:
            // `SKIP LOCKED` leaves rows another host is claiming to that host.
            Backend::Postgres => {
                claim.push("SELECT id FROM deliveries WHERE id IN (");
                push_ranked_due(&mut claim, now, share);
                claim
                    .push(") AND ((status = 'pending' AND next_attempt_at <= ")
                    .bind(now)
                    .push(") OR (status = 'delivering' AND lease_until < ")
                    .bind(now)
                    .push(")) FOR UPDATE SKIP LOCKED");
            }
        }
        claim.push(") RETURNING id");
        let mut tx = self.begin().await?;
        let ids: Vec<String> = claim
            .query_as::<(String,)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = Sql::new(
            "SELECT d.id, d.tenant_id, d.sub_tenant_id, d.event_id, d.destination_id, t.type AS destination_type, d.lease_owner,
                    d.attempt_count, d.retry_index, e.type AS event_type, e.payload, e.occurred_at
             FROM deliveries d JOIN events e ON e.id = d.event_id JOIN destinations t ON t.id = d.destination_id
             WHERE d.id IN ",
        );
        select.bind_list(&ids).push(" ORDER BY d.id");
        let mut claimed: Vec<ClaimedDelivery> = select.query_as().fetch_all(&mut *tx).await?;
        let probes: std::collections::BTreeSet<&str> = claimed
            .iter()
            .map(|d| d.destination_id.as_str())
            .filter(|d| share.probing.iter().any(|p| p == d))
            .collect();
        if !probes.is_empty() {
            // A probe is out: the circuit stays open, with no further probe, until it comes back
            // (its completion opens the circuit again or closes it) or its lease lapses. The row
            // lock makes a second host that claimed a probe of the same destination wait here
            // and then find the probe taken: it puts its row back.
            let mut taken = Sql::new("UPDATE destinations SET circuit_until = ");
            taken
                .bind(now + lease_ms)
                .push(" WHERE circuit_until IS NOT NULL AND circuit_until <= ")
                .bind(now)
                .push(" AND id IN ")
                .bind_list(probes.iter().copied())
                .push(" RETURNING id");
            let won: Vec<String> = taken
                .query_as::<(String,)>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id,)| id)
                .collect();
            let lost: Vec<String> = probes
                .iter()
                .filter(|d| !won.iter().any(|w| w == *d))
                .map(|d| d.to_string())
                .collect();
            if !lost.is_empty() {
                let mut back = Sql::new(
                    "UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_until = NULL WHERE lease_owner = ",
                );
                back.bind(owner.as_str())
                    .push(" AND destination_id IN ")
                    .bind_list(lost.iter().map(String::as_str));
                back.query().execute(&mut *tx).await?;
                claimed.retain(|d| !lost.contains(&d.destination_id));
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// The destinations whose circuit is open, on every host's account (the circuit lives in
    /// the destination's row).
    pub async fn circuits(&self) -> sqlx::Result<Vec<OpenCircuit>> {
        sqlx::query_as(
            "SELECT id AS destination_id, circuit_until AS until FROM destinations WHERE circuit_until IS NOT NULL",
        )
        .fetch_all(&self.read)
        .await
    }

    /// Hands claimed deliveries back unattempted: pending again and due at `until` (for any
    /// worker), their attempt counts untouched, so the log shows them waiting, not in flight.
    pub async fn release(&self, claimed: &[ClaimedDelivery], until: i64) -> sqlx::Result<()> {
        self.put_back(claimed, Some(until)).await
    }

    /// Puts claimed deliveries back in the queue unattempted and due as before: their
    /// destination was disabled after they were claimed.
    pub async fn unclaim(&self, claimed: &[ClaimedDelivery]) -> sqlx::Result<()> {
        self.put_back(claimed, None).await
    }

    /// Claimed rows back to pending, due at `due` or as before; only rows still held by the
    /// claim's own token move.
    async fn put_back(&self, claimed: &[ClaimedDelivery], due: Option<i64>) -> sqlx::Result<()> {
        for (owner, ids) in by_claim(claimed) {
            let mut update = Sql::new(
                "UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ",
            );
            update.bind(clock::now_ms());
            if let Some(due) = due {
                update.push(", next_attempt_at = ").bind(due);
            }
            update
                .push(" WHERE status = 'delivering' AND lease_owner = ")
                .bind(owner)
                .push(" AND id IN ")
                .bind_list(ids);
            update.query().execute(&self.write).await?;
        }
        Ok(())
    }

    /// Records attempts and moves deliveries on, many in one transaction. A completion whose
    /// lease was taken over by another worker still logs its attempt but leaves the row alone.
    pub async fn complete(&self, completions: &[Completion]) -> sqlx::Result<()> {
        let mut tx = self.begin().await?;
        for c in completions {
            complete_one(&mut tx, c).await?;
        }
        tx.commit().await
    }

    /// A delivery of a test event to one destination, created already claimed by `owner` so the
    /// caller can deliver it at once and answer with the attempt.
    pub async fn insert_test_delivery(
        &self,
        scope: &Scope,
        destination_id: &str,
        payload: &str,
        owner: &str,
        lease_ms: i64,
    ) -> sqlx::Result<Option<ClaimedDelivery>> {
        let now = clock::now_ms();
        let event_id = crate::ids::new(crate::ids::EVENT);
        let delivery_id = crate::ids::new(crate::ids::DELIVERY);
        let mut tx = self.begin().await?;
        let destination_type: Option<String> = sqlx::query_scalar(
            "SELECT type FROM destinations WHERE tenant_id = $1 AND sub_tenant_id = $2 AND id = $3 AND deleted_at IS NULL",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(destination_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(destination_type) = destination_type else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO events (id, tenant_id, sub_tenant_id, type, payload, occurred_at, created_at, deliveries)
             VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
        )
        .bind(&event_id)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(TEST_EVENT_TYPE)
        .bind(payload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (id, tenant_id, sub_tenant_id, event_id, destination_id, status, lease_owner, lease_until, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'delivering', $6, $7, $8, $8)",
        )
        .bind(&delivery_id)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(&event_id)
        .bind(destination_id)
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(ClaimedDelivery {
            id: delivery_id,
            tenant_id: scope.tenant_id().to_owned(),
            sub_tenant_id: scope.sub_tenant_id().to_owned(),
            event_id,
            destination_id: destination_id.to_owned(),
            destination_type,
            lease_owner: owner.to_owned(),
            attempt_count: 0,
            retry_index: 0,
            event_type: TEST_EVENT_TYPE.to_owned(),
            payload: payload.to_owned(),
            occurred_at: now,
        }))
    }

    pub async fn list_deliveries(
        &self,
        scope: &Scope,
        filter: &DeliveryFilter,
    ) -> sqlx::Result<Vec<DeliveryRow>> {
        let mut query = Sql::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.tenant_id = "
        ));
        query.bind(scope.tenant_id().to_owned());
        query
            .push(" AND d.sub_tenant_id = ")
            .bind(scope.sub_tenant_id().to_owned());
        if let Some(status) = &filter.status {
            query.push(" AND d.status = ").bind(status.clone());
        }
        if let Some(destination_id) = &filter.destination_id {
            query
                .push(" AND d.destination_id = ")
                .bind(destination_id.clone());
        }
        if let Some(event_type) = &filter.event_type {
            query.push(" AND e.type = ").bind(event_type.clone());
        }
        if let Some(since) = filter.since {
            query.push(" AND d.created_at >= ").bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND d.created_at < ").bind(until);
        }
        if let Some(before) = &filter.before_id {
            query.push(" AND d.id < ").bind(before.clone());
        }
        query.push(" ORDER BY d.id DESC LIMIT ").bind(filter.limit);
        query.query_as().fetch_all(&self.read).await
    }

    /// One delivery of the scope's own, with its event's payload and every attempt.
    pub async fn get_delivery(
        &self,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<Option<DeliveryDetail>> {
        let row: Option<DeliveryWithPayload> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS}, e.payload FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.tenant_id = $1 AND d.sub_tenant_id = $2 AND d.id = $3"
        ))
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(DeliveryWithPayload { delivery, payload }) = row else {
            return Ok(None);
        };
        let attempts = sqlx::query_as(
            "SELECT n, started_at, duration_ms, outcome, status_code, error, response_excerpt
             FROM attempts WHERE delivery_id = $1 ORDER BY n",
        )
        .bind(&delivery.id)
        .fetch_all(&self.read)
        .await?;
        Ok(Some(DeliveryDetail {
            delivery,
            payload,
            attempts,
        }))
    }

    /// Queues one finished delivery again. `None` when it does not exist in this scope,
    /// `Some(false)` when it is still pending or in flight.
    pub async fn replay_delivery(
        &self,
        tx: &mut Tx<'_>,
        first_attempt_at: i64,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<Option<bool>> {
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM deliveries WHERE tenant_id = $1 AND sub_tenant_id = $2 AND id = $3",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        match status.as_deref() {
            None => Ok(None),
            Some("pending" | "delivering") => Ok(Some(false)),
            Some(_) => {
                let now = clock::now_ms();
                let done = sqlx::query(
                    "UPDATE deliveries SET status = 'pending', retry_index = 0, next_attempt_at = $1, updated_at = $2
                     WHERE tenant_id = $3 AND sub_tenant_id = $4 AND id = $5 AND status IN ('failed', 'succeeded')",
                )
                .bind(first_attempt_at)
                .bind(now)
                .bind(scope.tenant_id())
                .bind(scope.sub_tenant_id())
                .bind(id)
                .execute(&mut **tx)
                .await?;
                // A concurrent replay may have queued it between the read and this update.
                Ok(Some(done.rows_affected() == 1))
            }
        }
    }

    /// Queues again every delivery of the window in the given status; returns how many.
    pub async fn replay_window(
        &self,
        tx: &mut Tx<'_>,
        first_attempt_at: i64,
        scope: &Scope,
        filter: &ReplayFilter,
    ) -> sqlx::Result<u64> {
        let now = clock::now_ms();
        let mut query = Sql::new(
            "UPDATE deliveries SET status = 'pending', retry_index = 0, next_attempt_at = ",
        );
        query
            .bind(first_attempt_at)
            .push(", updated_at = ")
            .bind(now);
        query
            .push(" WHERE tenant_id = ")
            .bind(scope.tenant_id().to_owned());
        query
            .push(" AND sub_tenant_id = ")
            .bind(scope.sub_tenant_id().to_owned());
        query.push(" AND status = ").bind(filter.status.clone());
        query.push(" AND created_at >= ").bind(filter.since);
        query.push(" AND created_at < ").bind(filter.until);
        query.push(" AND destination_id IN (SELECT id FROM destinations WHERE deleted_at IS NULL AND tenant_id = ")
            .bind(scope.tenant_id().to_owned())
            .push(" AND sub_tenant_id = ")
            .bind(scope.sub_tenant_id().to_owned());
        if let Some(destination_id) = &filter.destination_id {
            query.push(" AND id = ").bind(destination_id.clone());
        }
        query.push(")");
        Ok(query.query().execute(&mut **tx).await?.rows_affected())
    }

    pub async fn insert_replay(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        id: &str,
        request: &str,
        deliveries: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO replays (id, tenant_id, sub_tenant_id, request, deliveries, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(request)
        .bind(deliveries)
        .bind(clock::now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

async fn complete_one(tx: &mut Tx<'_>, c: &Completion) -> sqlx::Result<()> {
    let a = &c.attempt;
    // Numbered from what is logged, not from the claim: a completion that lost its lease to
    // another worker still gets its own row.
    sqlx::query(
        "INSERT INTO attempts (delivery_id, n, started_at, duration_ms, outcome, status_code, error, response_excerpt)
         SELECT $1, COALESCE(MAX(n), 0) + 1, $2, $3, $4, $5, $6, $7 FROM attempts WHERE delivery_id = $1",
    )
    .bind(&c.delivery_id)
    .bind(a.started_at)
    .bind(a.duration_ms)
    .bind(&a.outcome)
    .bind(a.status_code)
    .bind(&a.error)
    .bind(&a.response_excerpt)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE deliveries SET status = $1, retry_index = $2, next_attempt_at = $3, updated_at = $4,
                attempt_count = (SELECT COUNT(*) FROM attempts WHERE delivery_id = $5),
                lease_owner = NULL, lease_until = NULL
         WHERE id = $5 AND lease_owner = $6 AND status = 'delivering'",
    )
    .bind(c.status)
    .bind(c.retry_index)
    .bind(c.next_attempt_at)
    .bind(clock::now_ms())
    .bind(&c.delivery_id)
    .bind(&c.lease_owner)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

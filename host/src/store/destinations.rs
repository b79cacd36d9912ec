use super::{Backend, Store, Tx};
use crate::clock;
use crate::scope::Scope;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DestinationRow {
    pub id: String,
    pub tenant_id: String,
    pub sub_tenant_id: String,
    #[sqlx(rename = "type")]
    pub type_id: String,
    pub name: String,
    pub config: String,
    pub credential_id: Option<String>,
    pub event_types: String,
    /// 0 or 1: booleans are stored as integers so both stores read them the same way.
    #[sqlx(rename = "enabled")]
    pub enabled_flag: i64,
    /// Why Pushrail disabled it (every batch failing for the configured window); `None` while
    /// enabled or when the customer disabled it.
    pub disabled_reason: Option<String>,
    /// Since when every batch has failed; `None` while it delivers.
    pub failing_since: Option<i64>,
    /// While its circuit is open, when the next probe may go; `None` while closed.
    pub circuit_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What recording a batch that delivered nothing found.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchFailed {
    /// This batch disabled the destination (it failed for the whole window).
    pub disabled: bool,
    /// Batches in a row that delivered nothing, this one included.
    pub failed_batches: i64,
}

impl DestinationRow {
    pub fn enabled(&self) -> bool {
        self.enabled_flag != 0
    }

    /// `open` while its circuit is open (see `circuit_until`), else `closed`.
    pub fn circuit(&self) -> &'static str {
        if self.circuit_until.is_some() {
            "open"
        } else {
            "closed"
        }
    }
}

pub struct NewDestination<'a> {
    pub id: &'a str,
    pub type_id: &'a str,
    pub name: &'a str,
    pub config: &'a str,
    pub credential_id: Option<&'a str>,
    pub event_types: &'a str,
    pub enabled: bool,
}

/// The full new state of a destination after a PATCH has been merged and validated.
pub struct DestinationPatch<'a> {
    pub name: &'a str,
    pub config: &'a str,
    pub credential_id: Option<&'a str>,
    pub event_types: &'a str,
    pub enabled: bool,
}

/// What fan-out needs to know about a destination.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FanoutTarget {
    pub id: String,
    pub event_types: String,
}

const COLUMNS: &str = "id, tenant_id, sub_tenant_id, type, name, config, credential_id, event_types, enabled, disabled_reason, failing_since, circuit_until, created_at, updated_at";

impl Store {
    pub async fn insert_destination(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        new: &NewDestination<'_>,
    ) -> sqlx::Result<()> {
        let now = clock::now_ms();
        sqlx::query(
            "INSERT INTO destinations
               (id, tenant_id, sub_tenant_id, type, name, config, credential_id, event_types, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(new.id)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(new.type_id)
        .bind(new.name)
        .bind(new.config)
        .bind(new.credential_id)
        .bind(new.event_types)
        .bind(i64::from(new.enabled))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The sub-tenant's destinations, counted for a create in `tx`. On PostgreSQL the
    /// sub-tenant's row is locked first, so concurrent creates count one after another and the
    /// limit holds (SQLite has one writer: its transactions are serial already).
    pub async fn count_destinations(&self, tx: &mut Tx<'_>, scope: &Scope) -> sqlx::Result<i64> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT id FROM sub_tenants WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
                .bind(scope.tenant_id())
                .bind(scope.sub_tenant_id())
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM destinations WHERE tenant_id = $1 AND sub_tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .fetch_one(&mut **tx)
        .await
    }

    pub async fn list_destinations(&self, scope: &Scope) -> sqlx::Result<Vec<DestinationRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM destinations
             WHERE tenant_id = $1 AND sub_tenant_id = $2 AND deleted_at IS NULL ORDER BY id DESC"
        ))
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .fetch_all(&self.read)
        .await
    }

    pub async fn get_destination(
        &self,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<Option<DestinationRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM destinations
             WHERE tenant_id = $1 AND sub_tenant_id = $2 AND id = $3 AND deleted_at IS NULL"
        ))
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .fetch_optional(&self.read)
        .await
    }

    /// Destinations by id for the engine; a deleted one comes back too, so its work can be closed.
    pub async fn destinations_for_delivery(
        &self,
        scope: &Scope,
        ids: &[String],
    ) -> sqlx::Result<Vec<(DestinationRow, bool)>> {
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<DestinationWithDeleted> = sqlx::query_as(&format!(
                "SELECT {COLUMNS}, deleted_at FROM destinations WHERE tenant_id = $1 AND sub_tenant_id = $2 AND id = $3"
            ))
            .bind(scope.tenant_id())
            .bind(scope.sub_tenant_id())
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
            if let Some(row) = row {
                rows.push((row.destination, row.deleted_at.is_some()));
            }
        }
        Ok(rows)
    }

    /// A batch of the destination delivered something: it is healthy again.
    pub async fn destination_delivered(&self, id: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE destinations SET failing_since = NULL, failed_batches = 0, circuit_until = NULL
             WHERE id = $1 AND (failing_since IS NOT NULL OR failed_batches > 0 OR circuit_until IS NOT NULL)",
        )
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A batch of the destination failed in full at `now`. Once it has failed so since
    /// `cutoff` or earlier, the destination is disabled with `reason`: its queued deliveries
    /// pause until the customer enables it again. Answers whether this call disabled it, and
    /// how many batches in a row have now delivered nothing.
    pub async fn destination_failed(
        &self,
        id: &str,
        now: i64,
        cutoff: i64,
        reason: &str,
    ) -> sqlx::Result<BatchFailed> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE destinations SET
               failing_since = COALESCE(failing_since, $1),
               failed_batches = failed_batches + 1,
               enabled = CASE WHEN COALESCE(failing_since, $1) <= $2 THEN 0 ELSE enabled END,
               disabled_reason = CASE WHEN COALESCE(failing_since, $1) <= $2 THEN $3 ELSE disabled_reason END,
               updated_at = CASE WHEN COALESCE(failing_since, $1) <= $2 THEN $1 ELSE updated_at END
             WHERE id = $4 AND deleted_at IS NULL AND enabled = 1
             RETURNING enabled, failed_batches",
        )
        .bind(now)
        .bind(cutoff)
        .bind(reason)
        .bind(id)
        .fetch_optional(&self.write)
        .await?;
        Ok(match row {
            Some((enabled, failed_batches)) => BatchFailed {
                disabled: enabled == 0,
                failed_batches,
            },
            None => BatchFailed::default(),
        })
    }

    /// Opens (or keeps open) the destination's circuit: no delivery of it is claimed before
    /// `until`, and then one at a time.
    pub async fn open_circuit(&self, id: &str, until: i64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE destinations SET circuit_until = $1 WHERE id = $2 AND failed_batches > 0",
        )
        .bind(until)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn update_destination(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        id: &str,
        patch: &DestinationPatch<'_>,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE destinations SET name = $1, config = $2, credential_id = $3, event_types = $4, enabled = $5, updated_at = $6,
                    disabled_reason = CASE WHEN $5 = 1 THEN NULL ELSE disabled_reason END,
                    failing_since = CASE WHEN $5 = 1 THEN NULL ELSE failing_since END,
                    failed_batches = CASE WHEN $5 = 1 THEN 0 ELSE failed_batches END,
                    circuit_until = CASE WHEN $5 = 1 THEN NULL ELSE circuit_until END
             WHERE tenant_id = $7 AND sub_tenant_id = $8 AND id = $9 AND deleted_at IS NULL",
        )
        .bind(patch.name)
        .bind(patch.config)
        .bind(patch.credential_id)
        .bind(patch.event_types)
        .bind(i64::from(patch.enabled))
        .bind(clock::now_ms())
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Soft delete: the delivery log keeps naming the destination. Pending work is closed as failed.
    pub async fn delete_destination(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<bool> {
        let now = clock::now_ms();
        let done = sqlx::query(
            "UPDATE destinations SET deleted_at = $1, enabled = $2
             WHERE tenant_id = $3 AND sub_tenant_id = $4 AND id = $5 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(0_i64)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = $1
             WHERE tenant_id = $2 AND sub_tenant_id = $3 AND destination_id = $4 AND status = 'pending'",
        )
        .bind(now)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(true)
    }

    pub async fn fanout_targets(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
    ) -> sqlx::Result<Vec<FanoutTarget>> {
        sqlx::query_as(
            "SELECT id, event_types FROM destinations
             WHERE tenant_id = $1 AND sub_tenant_id = $2 AND enabled = $3 AND deleted_at IS NULL",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(1_i64)
        .fetch_all(&mut **tx)
        .await
    }
}

#[derive(sqlx::FromRow)]
struct DestinationWithDeleted {
    #[sqlx(flatten)]
    destination: DestinationRow,
    deleted_at: Option<i64>,
}

use super::sql::Sql;
use super::{Store, Tx};
use crate::scope::Scope;
use crate::{clock, ids};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
}

/// Which entries of a sub-tenant's audit trail to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<ActionFilter>,
    /// From this time on (ms), inclusive.
    pub since: Option<i64>,
    /// Before this time (ms).
    pub until: Option<i64>,
    /// Only ids before this one (the cursor).
    pub before_id: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    /// One action: `credential.rotate`.
    Exact(String),
    /// Every action of a family: `credential` for `credential.*`.
    Family(String),
}

impl Store {
    /// Written in the same transaction as the change it records.
    pub async fn audit(
        &self,
        tx: &mut Tx<'_>,
        tenant_id: &str,
        sub_tenant_id: Option<&str>,
        actor: &str,
        action: &str,
        target: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, tenant_id, sub_tenant_id, actor, action, target, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ids::new(ids::AUDIT))
        .bind(tenant_id)
        .bind(sub_tenant_id)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(clock::now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records an action that has no transaction of its own to join.
    pub async fn audit_now(
        &self,
        tenant_id: &str,
        sub_tenant_id: Option<&str>,
        actor: &str,
        action: &str,
        target: &str,
    ) -> sqlx::Result<()> {
        let mut tx = self.begin().await?;
        self.audit(&mut tx, tenant_id, sub_tenant_id, actor, action, target)
            .await?;
        tx.commit().await
    }

    pub async fn list_audit(
        &self,
        scope: &Scope,
        filter: &AuditFilter,
    ) -> sqlx::Result<Vec<AuditEntry>> {
        let mut query =
            Sql::new("SELECT id, at, actor, action, target FROM audit_log WHERE tenant_id = ");
        query
            .bind(scope.tenant_id())
            .push(" AND sub_tenant_id = ")
            .bind(scope.sub_tenant_id());
        match &filter.action {
            Some(ActionFilter::Exact(action)) => {
                query.push(" AND action = ").bind(action.as_str());
            }
            Some(ActionFilter::Family(family)) => {
                // `family.%`, with LIKE's own wildcards in the name (the `_` of `sub_tenant`) escaped.
                let pattern = format!(
                    "{}.%",
                    family
                        .replace('\\', "\\\\")
                        .replace('_', "\\_")
                        .replace('%', "\\%")
                );
                query
                    .push(" AND action LIKE ")
                    .bind(pattern)
                    .push(" ESCAPE '\\'");
            }
            None => {}
        }
        if let Some(since) = filter.since {
            query.push(" AND at >= ").bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND at < ").bind(until);
        }
        if let Some(before) = &filter.before_id {
            query.push(" AND id < ").bind(before.as_str());
        }
        query.push(" ORDER BY id DESC LIMIT ").bind(filter.limit);
        query.query_as().fetch_all(&self.read).await
    }
}

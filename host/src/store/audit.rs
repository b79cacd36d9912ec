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
        before_id: Option<&str>,
        limit: i64,
    ) -> sqlx::Result<Vec<AuditEntry>> {
        let mut query =
            Sql::new("SELECT id, at, actor, action, target FROM audit_log WHERE tenant_id = ");
        query
            .bind(scope.tenant_id())
            .push(" AND sub_tenant_id = ")
            .bind(scope.sub_tenant_id());
        if let Some(before) = before_id {
            query.push(" AND id < ").bind(before);
        }
        query.push(" ORDER BY id DESC LIMIT ").bind(limit);
        query.query_as().fetch_all(&self.read).await
    }
}

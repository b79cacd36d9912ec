use super::Store;
use crate::scope::Scope;
use crate::{clock, ids};

impl Store {
    pub async fn create_tenant(&self, name: &str, key_hash: &str) -> sqlx::Result<String> {
        let tenant_id = ids::new(ids::TENANT);
        let now = clock::now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant_id)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, key_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(ids::new(ids::API_KEY))
        .bind(&tenant_id)
        .bind(key_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(tenant_id)
    }

    pub async fn tenant_for_key_hash(&self, key_hash: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await
    }

    /// The sub-tenant's id, creating it on first use.
    pub async fn ensure_sub_tenant(
        &self,
        tenant_id: &str,
        external_id: &str,
    ) -> sqlx::Result<String> {
        if let Some(id) = self.find_sub_tenant(tenant_id, external_id).await? {
            return Ok(id);
        }
        sqlx::query(
            "INSERT INTO sub_tenants (id, tenant_id, external_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, external_id) DO NOTHING",
        )
        .bind(ids::new(ids::SUB_TENANT))
        .bind(tenant_id)
        .bind(external_id)
        .bind(clock::now_ms())
        .execute(&self.write)
        .await?;
        sqlx::query_scalar("SELECT id FROM sub_tenants WHERE tenant_id = $1 AND external_id = $2")
            .bind(tenant_id)
            .bind(external_id)
            .fetch_one(&self.read)
            .await
    }

    pub async fn find_sub_tenant(
        &self,
        tenant_id: &str,
        external_id: &str,
    ) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT id FROM sub_tenants WHERE tenant_id = $1 AND external_id = $2 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .bind(external_id)
        .fetch_optional(&self.read)
        .await
    }
}

impl Store {
    /// The external id the sub-tenant's IAM roles must require, made on first use. Random, not
    /// derived, so that nothing the vendor or customer knows predicts another sub-tenant's.
    pub async fn aws_external_id(&self, scope: &Scope) -> sqlx::Result<String> {
        let read = || {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT aws_external_id FROM sub_tenants WHERE tenant_id = $1 AND id = $2",
            )
            .bind(scope.tenant_id())
            .bind(scope.sub_tenant_id())
        };
        if let Some(id) = read().fetch_one(&self.read).await? {
            return Ok(id);
        }
        let generated = format!("pushrail-{}", uuid::Uuid::new_v4().simple());
        // Two first uses at once: only one UPDATE finds the column empty; both read its value.
        sqlx::query(
            "UPDATE sub_tenants SET aws_external_id = $1
             WHERE tenant_id = $2 AND id = $3 AND aws_external_id IS NULL",
        )
        .bind(&generated)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .execute(&self.write)
        .await?;
        read()
            .fetch_one(&self.write)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

impl Store {
    /// Offboards a customer: its sessions end, its destinations are deleted (their queued work
    /// fails), its secrets are destroyed, and its external id is freed for reuse. The delivery log
    /// stays for the vendor's records.
    pub async fn delete_sub_tenant(
        &self,
        tenant_id: &str,
        external_id: &str,
    ) -> sqlx::Result<Option<String>> {
        let Some(id) = self.find_sub_tenant(tenant_id, external_id).await? else {
            return Ok(None);
        };
        let now = clock::now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE sub_tenants SET deleted_at = $1, external_id = $2 WHERE tenant_id = $3 AND id = $4")
            .bind(now)
            .bind(format!("deleted:{id}"))
            .bind(tenant_id)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for statement in [
            "UPDATE sessions SET revoked_at = $1 WHERE tenant_id = $2 AND sub_tenant_id = $3 AND revoked_at IS NULL",
            "UPDATE destinations SET deleted_at = $1, credential_id = NULL, enabled = 0
             WHERE tenant_id = $2 AND sub_tenant_id = $3 AND deleted_at IS NULL",
            "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = $1
             WHERE tenant_id = $2 AND sub_tenant_id = $3 AND status = 'pending'",
        ] {
            sqlx::query(statement).bind(now).bind(tenant_id).bind(&id).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE destinations SET credential_id = NULL WHERE tenant_id = $1 AND sub_tenant_id = $2")
            .bind(tenant_id)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND sub_tenant_id = $2")
            .bind(tenant_id)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let actor = format!("tenant:{tenant_id}");
        self.audit(
            &mut tx,
            tenant_id,
            Some(&id),
            &actor,
            "sub_tenant.delete",
            &id,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }
}

impl Store {
    /// Counts one request of `tenant_id` in the current one-second window and returns the
    /// window's count (PostgreSQL only: the table exists where several hosts share a database).
    pub async fn count_request(&self, tenant_id: &str) -> sqlx::Result<i64> {
        let window = clock::now_ms() / 1000;
        let count = sqlx::query_scalar(
            "INSERT INTO rate_windows (tenant_id, window_s, count) VALUES ($1, $2, 1)
             ON CONFLICT (tenant_id, window_s) DO UPDATE SET count = rate_windows.count + 1
             RETURNING count",
        )
        .bind(tenant_id)
        .bind(window)
        .fetch_one(&self.write)
        .await?;
        // Old windows are of no use; sweeping now and then keeps the table a few rows per tenant.
        if count == 1 && window % 60 == 0 {
            sqlx::query("DELETE FROM rate_windows WHERE window_s < $1")
                .bind(window - 60)
                .execute(&self.write)
                .await?;
        }
        Ok(count)
    }
}

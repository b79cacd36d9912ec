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

    /// The tenant whose live API key has this hash, with its own vendor API rate limit.
    pub async fn tenant_for_key_hash(
        &self,
        key_hash: &str,
    ) -> sqlx::Result<Option<(String, Option<i64>)>> {
        sqlx::query_as(
            "SELECT k.tenant_id, t.rate_limit FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await
    }

    /// Sets a tenant's own rate limits (requests per second; `None`: the host's default).
    /// False when there is no such tenant.
    pub async fn set_tenant_limits(
        &self,
        tenant_id: &str,
        rate_limit: Option<i64>,
        embed_rate_limit: Option<i64>,
    ) -> sqlx::Result<bool> {
        let done =
            sqlx::query("UPDATE tenants SET rate_limit = $1, embed_rate_limit = $2 WHERE id = $3")
                .bind(rate_limit)
                .bind(embed_rate_limit)
                .bind(tenant_id)
                .execute(&self.write)
                .await?;
        Ok(done.rows_affected() == 1)
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

    /// A sub-tenant's external id (the vendor's name for the customer).
    pub async fn sub_tenant_external_id(
        &self,
        tenant_id: &str,
        sub_tenant_id: &str,
    ) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT external_id FROM sub_tenants WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(sub_tenant_id)
            .fetch_optional(&self.read)
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
    /// Takes a token from bucket `key` (PostgreSQL only: where several hosts share the
    /// database), refilled at `rate` per second up to `burst`, in one statement so that hosts
    /// taking at once never both spend the last token. `None` when a token was taken, else the
    /// tokens the bucket holds. A refused request spends nothing.
    pub async fn take_token(&self, key: &str, rate: f64, burst: f64) -> sqlx::Result<Option<f64>> {
        let now = clock::now_ms();
        let (admitted, tokens): (bool, f64) = sqlx::query_as(
            "INSERT INTO rate_buckets (key, tokens, updated_ms, admitted) VALUES ($1, $2 - 1, $3, TRUE)
             ON CONFLICT (key) DO UPDATE SET
               tokens = LEAST($2, rate_buckets.tokens + GREATEST($3 - rate_buckets.updated_ms, 0) * $4 / 1000.0)
                        - CASE WHEN LEAST($2, rate_buckets.tokens + GREATEST($3 - rate_buckets.updated_ms, 0) * $4 / 1000.0) >= 1 THEN 1 ELSE 0 END,
               admitted = LEAST($2, rate_buckets.tokens + GREATEST($3 - rate_buckets.updated_ms, 0) * $4 / 1000.0) >= 1,
               updated_ms = GREATEST($3, rate_buckets.updated_ms)
             RETURNING admitted, tokens",
        )
        .bind(key)
        .bind(burst)
        .bind(now)
        .bind(rate)
        .fetch_one(&self.write)
        .await?;
        Ok((!admitted).then_some(tokens))
    }
}

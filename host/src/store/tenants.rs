use super::Store;
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

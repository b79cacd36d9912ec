use super::Store;
use crate::clock;

#[derive(Debug, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Why a session token's `sid` does not authorize a request.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionCheck {
    Valid {
        tenant_id: String,
        /// The tenant's own embed API rate limit, if it has one.
        embed_rate_limit: Option<i64>,
    },
    Revoked,
    Unknown,
}

/// What checking a session reads: its tenant, whether it or its sub-tenant is gone, and the
/// tenant's own embed rate limit.
#[derive(sqlx::FromRow)]
struct SessionRow {
    tenant_id: String,
    revoked_at: Option<i64>,
    deleted_at: Option<i64>,
    embed_rate_limit: Option<i64>,
}

impl Store {
    pub async fn signing_keys(&self) -> sqlx::Result<Vec<SigningKeyRow>> {
        sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at DESC")
            .fetch_all(&self.read)
            .await
    }

    /// Adds a signing key and retires every other active one, in one transaction: there is
    /// always exactly one key to sign with.
    pub async fn insert_signing_key(&self, row: &SigningKeyRow) -> sqlx::Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, public_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&row.kid)
        .bind(&row.private_key)
        .bind(&row.public_key)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
        )
        .bind(row.created_at)
        .bind(&row.kid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    pub async fn insert_session(
        &self,
        id: &str,
        tenant_id: &str,
        sub_tenant_id: &str,
        expires_at: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, tenant_id, sub_tenant_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(sub_tenant_id)
        .bind(clock::now_ms())
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Read from the write connection: a revocation must be seen by the very next request.
    pub async fn check_session(
        &self,
        sid: &str,
        sub_tenant_id: &str,
    ) -> sqlx::Result<SessionCheck> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT s.tenant_id, s.revoked_at, t.deleted_at, tn.embed_rate_limit FROM sessions s
             JOIN sub_tenants t ON t.id = s.sub_tenant_id
             JOIN tenants tn ON tn.id = s.tenant_id
             WHERE s.id = $1 AND s.sub_tenant_id = $2",
        )
        .bind(sid)
        .bind(sub_tenant_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            None => SessionCheck::Unknown,
            Some(row) if row.revoked_at.is_some() || row.deleted_at.is_some() => {
                SessionCheck::Revoked
            }
            Some(row) => SessionCheck::Valid {
                tenant_id: row.tenant_id,
                embed_rate_limit: row.embed_rate_limit,
            },
        })
    }

    pub async fn revoke_session(
        &self,
        tenant_id: &str,
        session_id: &str,
    ) -> sqlx::Result<Option<String>> {
        let sub: Option<String> = sqlx::query_scalar(
            "SELECT sub_tenant_id FROM sessions WHERE id = $1 AND tenant_id = $2",
        )
        .bind(session_id)
        .bind(tenant_id)
        .fetch_optional(&self.read)
        .await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
        .bind(clock::now_ms())
        .bind(session_id)
        .bind(tenant_id)
        .execute(&self.write)
        .await?;
        Ok(sub)
    }

    pub async fn revoke_sub_tenant_sessions(
        &self,
        tenant_id: &str,
        sub_tenant_id: &str,
    ) -> sqlx::Result<u64> {
        let now = clock::now_ms();
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1
             WHERE tenant_id = $2 AND sub_tenant_id = $3 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(sub_tenant_id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }
}

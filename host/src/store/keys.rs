//! Key maintenance across all tenants: re-wrapping sealed secrets under a new master key.

use super::Store;
use crate::scope::Scope;
use crate::vault::Sealed;

#[derive(sqlx::FromRow)]
struct SealedRow {
    tenant_id: String,
    sub_tenant_id: String,
    id: String,
    master_kid: String,
    wrapped_key: Vec<u8>,
    ciphertext: Vec<u8>,
}

pub struct SealedCredential {
    pub scope: Scope,
    pub id: String,
    pub sealed: Sealed,
}

impl Store {
    /// Credentials whose data key is still wrapped by a master key other than `current_kid`.
    pub async fn credentials_not_under(
        &self,
        current_kid: &str,
        limit: i64,
    ) -> sqlx::Result<Vec<SealedCredential>> {
        let rows: Vec<SealedRow> = sqlx::query_as(
            "SELECT tenant_id, sub_tenant_id, id, master_kid, wrapped_key, ciphertext FROM credentials
             WHERE master_kid <> $1 ORDER BY id LIMIT $2",
        )
        .bind(current_kid)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| SealedCredential {
                scope: Scope::authenticated(row.tenant_id, row.sub_tenant_id),
                id: row.id,
                sealed: Sealed {
                    master_kid: row.master_kid,
                    wrapped_key: row.wrapped_key,
                    ciphertext: row.ciphertext,
                },
            })
            .collect())
    }

    /// Swaps in a re-wrapped data key, unless the credential was rotated meanwhile (then its new
    /// ciphertext was sealed under the current key already).
    pub async fn update_wrapped_key(
        &self,
        id: &str,
        before: &Sealed,
        after: &Sealed,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE credentials SET master_kid = $1, wrapped_key = $2
             WHERE id = $3 AND master_kid = $4 AND ciphertext = $5",
        )
        .bind(&after.master_kid)
        .bind(&after.wrapped_key)
        .bind(id)
        .bind(&before.master_kid)
        .bind(&before.ciphertext)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn update_signing_private_key(
        &self,
        kid: &str,
        private_key: &[u8],
    ) -> sqlx::Result<()> {
        sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2")
            .bind(private_key)
            .bind(kid)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}

use super::{Store, Tx};
use crate::clock;
use crate::scope::Scope;
use crate::vault::Sealed;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub fingerprint: String,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}

pub struct NewCredential<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub fingerprint: &'a str,
    pub sealed: &'a Sealed,
}

const COLUMNS: &str = "id, name, kind, fingerprint, created_at, rotated_at";

impl Store {
    pub async fn insert_credential(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        new: &NewCredential<'_>,
    ) -> sqlx::Result<CredentialRow> {
        let now = clock::now_ms();
        sqlx::query(
            "INSERT INTO credentials
               (id, tenant_id, sub_tenant_id, name, kind, fingerprint, master_kid, wrapped_key, ciphertext, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new.id)
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(new.name)
        .bind(new.kind)
        .bind(new.fingerprint)
        .bind(&new.sealed.master_kid)
        .bind(&new.sealed.wrapped_key)
        .bind(&new.sealed.ciphertext)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(CredentialRow {
            id: new.id.to_owned(),
            name: new.name.to_owned(),
            kind: new.kind.to_owned(),
            fingerprint: new.fingerprint.to_owned(),
            created_at: now,
            rotated_at: None,
        })
    }

    pub async fn list_credentials(&self, scope: &Scope) -> sqlx::Result<Vec<CredentialRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM credentials WHERE tenant_id = $1 AND sub_tenant_id = $2 ORDER BY id DESC"
        ))
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .fetch_all(&self.read)
        .await
    }

    pub async fn get_credential(
        &self,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<Option<CredentialRow>> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM credentials WHERE tenant_id = $1 AND sub_tenant_id = $2 AND id = $3"
        ))
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .fetch_optional(&self.read)
        .await
    }

    /// The sealed secret and its kind, for the one delivery about to use it.
    pub async fn sealed_credential(
        &self,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<Option<(String, Sealed)>> {
        let row: Option<(String, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT kind, master_kid, wrapped_key, ciphertext FROM credentials
             WHERE tenant_id = $1 AND sub_tenant_id = $2 AND id = $3",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(kind, master_kid, wrapped_key, ciphertext)| {
            (
                kind,
                Sealed {
                    master_kid,
                    wrapped_key,
                    ciphertext,
                },
            )
        }))
    }

    /// Replaces the secret in one statement: the old ciphertext is overwritten, not kept.
    pub async fn rotate_credential(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        id: &str,
        fingerprint: &str,
        sealed: &Sealed,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "UPDATE credentials SET fingerprint = $1, master_kid = $2, wrapped_key = $3, ciphertext = $4, rotated_at = $5
             WHERE tenant_id = $6 AND sub_tenant_id = $7 AND id = $8",
        )
        .bind(fingerprint)
        .bind(&sealed.master_kid)
        .bind(&sealed.wrapped_key)
        .bind(&sealed.ciphertext)
        .bind(clock::now_ms())
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn credential_in_use(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM destinations
             WHERE tenant_id = $1 AND sub_tenant_id = $2 AND credential_id = $3 AND deleted_at IS NULL",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(n > 0)
    }

    pub async fn delete_credential(
        &self,
        tx: &mut Tx<'_>,
        scope: &Scope,
        id: &str,
    ) -> sqlx::Result<bool> {
        // Deleted destinations keep their row for the delivery log; they let go of the credential.
        sqlx::query(
            "UPDATE destinations SET credential_id = NULL
             WHERE tenant_id = $1 AND sub_tenant_id = $2 AND credential_id = $3 AND deleted_at IS NOT NULL",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        let done = sqlx::query(
            "DELETE FROM credentials WHERE tenant_id = $1 AND sub_tenant_id = $2 AND id = $3",
        )
        .bind(scope.tenant_id())
        .bind(scope.sub_tenant_id())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::api_keys::{hash_api_key, looks_like_api_key};
use crate::api::AppState;
use crate::error::ApiError;
use crate::scope::Scope;
use crate::store::{SessionCheck, Store, Tx};

/// A vendor authenticated by its tenant API key.
#[derive(Debug, Clone)]
pub struct TenantPrincipal {
    pub tenant_id: String,
}

/// A sub-tenant authenticated by a live session token.
#[derive(Debug, Clone)]
pub struct EmbedPrincipal {
    pub scope: Scope,
    pub session_id: String,
}

impl EmbedPrincipal {
    pub fn actor(&self) -> String {
        format!("session:{}", self.session_id)
    }

    /// Records `action` on `target` by this session, in the caller's transaction.
    pub async fn audit(
        &self,
        store: &Store,
        tx: &mut Tx<'_>,
        action: &str,
        target: &str,
    ) -> sqlx::Result<()> {
        let scope = &self.scope;
        store
            .audit(
                tx,
                scope.tenant_id(),
                Some(scope.sub_tenant_id()),
                &self.actor(),
                action,
                target,
            )
            .await
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing_credentials", "send Authorization: Bearer <token>")
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("missing_credentials", "send Authorization: Bearer <token>")
        })
}

impl FromRequestParts<AppState> for TenantPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if !looks_like_api_key(token) {
            return Err(ApiError::unauthorized(
                "wrong_credential_type",
                "the vendor API takes a tenant API key, not a session token",
            ));
        }
        let (tenant_id, rate_limit) = state
            .store
            .tenant_for_key_hash(&hash_api_key(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid_api_key", "the API key is not valid"))?;
        state.limits.check_vendor(&tenant_id, rate_limit).await?;
        Ok(Self { tenant_id })
    }
}

impl FromRequestParts<AppState> for EmbedPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if looks_like_api_key(token) {
            return Err(ApiError::unauthorized(
                "wrong_credential_type",
                "the embed API takes a session token, not a tenant API key",
            ));
        }
        let claims = state
            .sessions
            .verify(token)
            .await
            .map_err(|e| ApiError::unauthorized(e.code(), e.to_string()))?;
        // Checked in the database on every request: a revocation counts from the next one.
        match state.store.check_session(&claims.sid, &claims.sub).await? {
            SessionCheck::Valid {
                tenant_id,
                embed_rate_limit,
            } => {
                let scope = Scope::authenticated(tenant_id, claims.sub);
                state.limits.check_embed(&scope, embed_rate_limit).await?;
                Ok(Self {
                    scope,
                    session_id: claims.sid,
                })
            }
            SessionCheck::Revoked => Err(ApiError::unauthorized(
                "session_revoked",
                "the session has been revoked",
            )),
            SessionCheck::Unknown => Err(ApiError::unauthorized(
                "invalid_token",
                "the session does not exist",
            )),
        }
    }
}

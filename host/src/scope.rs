//! The authorization scope every sub-tenant query is keyed by.

/// One sub-tenant of one tenant, as established by authentication.
///
/// The fields are private and the only constructor is crate-internal and called by the
/// authentication extractors, so a handler cannot build a scope from request input: the store's
/// sub-tenant functions all take a `&Scope`, and every statement they run filters by both ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    tenant_id: String,
    sub_tenant_id: String,
}

impl Scope {
    pub(crate) fn authenticated(tenant_id: String, sub_tenant_id: String) -> Self {
        Self {
            tenant_id,
            sub_tenant_id,
        }
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    pub fn sub_tenant_id(&self) -> &str {
        &self.sub_tenant_id
    }
}

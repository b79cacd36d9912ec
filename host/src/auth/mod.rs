//! Who is calling: tenants by API key (vendor API), sub-tenants by session token (embed API).

mod api_keys;
mod extract;
mod sessions;

pub use api_keys::{generate_api_key, hash_api_key};
pub use extract::{EmbedPrincipal, TenantPrincipal};
pub use sessions::{Claims, SessionError, SessionSigner, MAX_TTL_SECS};

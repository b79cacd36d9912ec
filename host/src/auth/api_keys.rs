use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "pr_live_";

/// A fresh tenant API key. Shown once; only [`hash_api_key`] of it is stored.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// API keys carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force
/// that a slow hash would protect.
pub fn hash_api_key(key: &str) -> String {
    crate::vault::hex(&Sha256::digest(key.as_bytes()))
}

pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

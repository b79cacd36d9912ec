//! Identifiers: a type prefix and a UUIDv7, so ids sort by creation time and say what they name.

pub fn new(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub const TENANT: &str = "ten";
pub const API_KEY: &str = "key";
pub const SUB_TENANT: &str = "sub";
pub const SESSION: &str = "ses";
pub const CREDENTIAL: &str = "cred";
pub const DESTINATION: &str = "dst";
pub const EVENT: &str = "evt";
pub const DELIVERY: &str = "dlv";
pub const REPLAY: &str = "rpl";
pub const AUDIT: &str = "aud";

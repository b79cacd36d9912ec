//! Settings several destination types share: the timeout field with its schema and clamp, and
//! field errors for `validate`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::FieldError;

/// Bounds of a `timeout_ms` setting, in milliseconds.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1000..=60_000;
/// The default `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// For `#[serde(default = "...")]` on a `timeout_ms` field.
pub fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// A `timeout_ms` setting as a duration, clamped to [`TIMEOUT_MS`] whatever the config says.
pub fn timeout(ms: u64) -> Duration {
    Duration::from_millis(ms.clamp(*TIMEOUT_MS.start(), *TIMEOUT_MS.end()))
}

/// The JSON Schema of a `timeout_ms` setting, for a config schema's `properties`.
pub fn timeout_schema() -> Value {
    json!({
        "type": "integer", "title": "Timeout (ms)",
        "minimum": TIMEOUT_MS.start(), "maximum": TIMEOUT_MS.end(), "default": DEFAULT_TIMEOUT_MS
    })
}

impl FieldError {
    /// A validation error on `field` (a dotted path within the config).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

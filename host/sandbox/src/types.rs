//! The host's own view of what crosses the seam. Every WIT version's adapter converts into these,
//! so the engine and the API never see generated bindings.

use serde_json::Value;

/// What a plugin says about itself, parsed and checked at load.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub config_schema: Value,
    pub credential_schema: Option<Value>,
    pub credential_kinds: Vec<String>,
    pub credential_required: bool,
    pub max_batch_size: u32,
    /// The WIT package version the component was built against (`0.1.0`, `0.2.0`).
    pub wit_version: &'static str,
}

/// A plugin's self-description as the adapters read it, before the host checks it.
pub(crate) struct RawDescription {
    pub id: String,
    pub name: String,
    pub description: String,
    pub config_schema: String,
    pub credential_schema: Option<String>,
    pub credential_kinds: Vec<String>,
    pub credential_required: bool,
    pub max_batch_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A decrypted credential. Its secret is wiped when it is dropped, and `Debug` never shows it.
#[derive(Clone, zeroize::ZeroizeOnDrop)]
pub struct Credential {
    #[zeroize(skip)]
    pub kind: String,
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    /// Milliseconds since the Unix epoch.
    pub occurred_at: u64,
    pub payload: Vec<u8>,
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    pub status_code: Option<u16>,
    pub response_excerpt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Retryable,
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub status_code: Option<u16>,
    pub retry_after_ms: Option<u64>,
    pub response_excerpt: Option<String>,
}

impl Failure {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Retryable, message)
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Permanent, message)
    }

    fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status_code: None,
            retry_after_ms: None,
            response_excerpt: None,
        }
    }
}

/// What became of one event of a batch.
pub type EventResult = Result<Delivered, Failure>;

/// A plugin's answer for one event, as the plugin gave it (the engine checks it names an event
/// of the batch).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub event_id: String,
    pub result: EventResult,
}

/// A host-side connection error of the `net` interface, before a version's adapter turns it into
/// its own `net-error`.
#[derive(Debug)]
pub enum NetError {
    Denied(String),
    Unresolved(String),
    Unreachable(String),
    Timeout,
    Tls(String),
    LimitReached,
}

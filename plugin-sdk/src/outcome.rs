use std::fmt::Display;

use crate::{Delivered, Failure, FailureKind};

/// The answer of [`crate::Destination::deliver`].
pub type DeliveryResult = Result<Delivered, Failure>;

impl Failure {
    /// A failure worth retrying later (timeouts, 5xx, throttling, a peer that is down).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Retryable, message)
    }

    /// A failure that will repeat on retry (bad credentials, a refused request).
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

    pub fn with_status(mut self, status: u16) -> Self {
        self.status_code = Some(status);
        self
    }

    pub fn with_retry_after_ms(mut self, ms: Option<u64>) -> Self {
        self.retry_after_ms = ms;
        self
    }

    pub fn with_excerpt(mut self, excerpt: Option<String>) -> Self {
        self.response_excerpt = excerpt;
        self
    }
}

impl Default for Delivered {
    fn default() -> Self {
        Self {
            status_code: None,
            response_excerpt: None,
        }
    }
}

/// Turns any error into a [`Failure`] with context, the way `anyhow::Context` does.
pub trait ResultExt<T> {
    fn retryable(self, context: &str) -> Result<T, Failure>;
    fn permanent(self, context: &str) -> Result<T, Failure>;
}

impl<T, E: Display> ResultExt<T> for Result<T, E> {
    fn retryable(self, context: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::retryable(format!("{context}: {e}")))
    }

    fn permanent(self, context: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::permanent(format!("{context}: {e}")))
    }
}

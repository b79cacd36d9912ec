//! Per-tenant request rate limits, so one vendor's burst cannot starve the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::ApiError;
use crate::store::Store;

/// With one host (SQLite): a token bucket per tenant in memory, `rate` requests per second
/// sustained and `burst` at once. With several hosts sharing PostgreSQL: a per-second counter in
/// the database, so the limit holds across hosts.
pub struct RateLimits {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    shared: Option<Store>,
}

impl RateLimits {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate_per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Counts in the database instead of in this process.
    pub fn shared(rate_per_sec: u32, burst: u32, store: Store) -> Self {
        Self {
            shared: Some(store),
            ..Self::new(rate_per_sec, burst)
        }
    }

    pub async fn check(&self, tenant_id: &str) -> Result<(), ApiError> {
        let Some(store) = &self.shared else {
            return self.check_local(tenant_id);
        };
        let count = store.count_request(tenant_id).await?;
        // A fixed window admits its whole allowance at once: that allowance is the burst.
        if count as f64 <= self.burst {
            Ok(())
        } else {
            Err(ApiError::too_many_requests(1))
        }
    }

    fn check_local(&self, tenant_id: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limit lock");
        let (tokens, last) = buckets
            .entry(tenant_id.to_owned())
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64;
            Err(ApiError::too_many_requests(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_burst_per_tenant() {
        let limits = RateLimits::new(1, 2);
        assert!(limits.check_local("a").is_ok());
        assert!(limits.check_local("a").is_ok());
        let refused = limits.check_local("a").unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(
            limits.check_local("b").is_ok(),
            "another tenant has its own bucket"
        );
    }
}

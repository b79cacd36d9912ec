//! Request rate limits: a token bucket per tenant for its vendor API (ingest) and one per
//! sub-tenant for the embed API, kept apart so that one customer's dashboard cannot get the
//! vendor's ingest throttled, nor one customer another's dashboard.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::ApiError;
use crate::scope::Scope;
use crate::store::Store;

/// The same token bucket on either store: `rate` requests per second sustained and twice that
/// at once, unless the tenant has its own limits. With one host (SQLite) the buckets live in this
/// process; with several hosts sharing PostgreSQL they live in the database, so the limit holds
/// across hosts.
pub struct RateLimits {
    rate: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    shared: Option<Store>,
}

impl RateLimits {
    /// `rate_per_sec` is the host's default (`--rate-limit`).
    pub fn new(rate_per_sec: u32) -> Self {
        Self {
            rate: rate_per_sec.max(1),
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Keeps the buckets in the database instead of in this process.
    pub fn shared(rate_per_sec: u32, store: Store) -> Self {
        Self {
            shared: Some(store),
            ..Self::new(rate_per_sec)
        }
    }

    /// One request of the tenant's vendor API; `own` is the tenant's own limit, if it has one.
    pub async fn check_vendor(&self, tenant_id: &str, own: Option<i64>) -> Result<(), ApiError> {
        self.check(&format!("vendor:{tenant_id}"), own).await
    }

    /// One request of a sub-tenant's embed API; `own` is its tenant's own embed limit, if any.
    pub async fn check_embed(&self, scope: &Scope, own: Option<i64>) -> Result<(), ApiError> {
        self.check(
            &format!("embed:{}:{}", scope.tenant_id(), scope.sub_tenant_id()),
            own,
        )
        .await
    }

    async fn check(&self, key: &str, own: Option<i64>) -> Result<(), ApiError> {
        let rate = own
            .filter(|r| *r > 0)
            .map_or(f64::from(self.rate), |r| r.min(i64::from(u32::MAX)) as f64);
        let burst = rate * 2.0;
        let tokens = match &self.shared {
            Some(store) => store
                .take_token(key, rate, burst)
                .await?
                .map_or(Admitted::Yes, Admitted::No),
            None => self.take_local(key, rate, burst),
        };
        match tokens {
            Admitted::Yes => Ok(()),
            Admitted::No(tokens) => {
                let wait = ((1.0 - tokens) / rate).ceil().max(1.0) as u64;
                Err(ApiError::too_many_requests(wait))
            }
        }
    }

    fn take_local(&self, key: &str, rate: f64, burst: f64) -> Admitted {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limit lock");
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Admitted::Yes
        } else {
            Admitted::No(*tokens)
        }
    }
}

/// Whether a request got a token; when not, the tokens the bucket holds.
enum Admitted {
    Yes,
    No(f64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_burst_per_bucket() {
        let limits = RateLimits::new(1);
        assert!(matches!(limits.take_local("a", 1.0, 2.0), Admitted::Yes));
        assert!(matches!(limits.take_local("a", 1.0, 2.0), Admitted::Yes));
        assert!(matches!(limits.take_local("a", 1.0, 2.0), Admitted::No(_)));
        assert!(
            matches!(limits.take_local("b", 1.0, 2.0), Admitted::Yes),
            "another bucket is its own"
        );
    }
}

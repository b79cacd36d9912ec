//! What happens after an attempt: done, again later, or failed for good.

use std::time::Duration;

use rand::Rng as _;

use crate::config::RetrySchedule;

/// Retry-After beyond this is treated as this: a peer cannot park a delivery for a week.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The delay before the next attempt after `attempts_made` attempts since the last replay, or
/// `None` when the schedule is used up. The schedule's delay is jittered by ±20% so that a burst
/// of failures does not come back as a burst; a peer's Retry-After is a floor.
pub fn next_delay(
    schedule: &RetrySchedule,
    attempts_made: usize,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = schedule.delay_after(attempts_made)?;
    let jittered = if base.is_zero() {
        base
    } else {
        base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
    };
    Some(match retry_after {
        Some(floor) => jittered.max(floor.min(MAX_RETRY_AFTER)),
        None => jittered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule(vec![
            Duration::ZERO,
            Duration::from_secs(10),
            Duration::from_secs(100),
        ])
    }

    #[test]
    fn follows_the_schedule_with_jitter() {
        let delay = next_delay(&schedule(), 1, None).unwrap();
        assert!(
            delay >= Duration::from_secs(8) && delay <= Duration::from_secs(12),
            "{delay:?}"
        );
        assert_eq!(next_delay(&schedule(), 3, None), None);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let delay = next_delay(&schedule(), 1, Some(Duration::from_secs(60))).unwrap();
        assert_eq!(delay, Duration::from_secs(60));
        let capped = next_delay(&schedule(), 1, Some(Duration::from_secs(10_000_000))).unwrap();
        assert_eq!(capped, MAX_RETRY_AFTER);
    }
}

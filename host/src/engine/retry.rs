//! What happens after an attempt: done, again later, or failed for good.

use std::time::Duration;

use rand::Rng as _;

use crate::config::RetrySchedule;

/// Retry-After beyond this is treated as this: a peer cannot park a delivery for a week.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A factor of ±20% on the schedule's delays, so that a burst of failures does not come back as
/// a burst. One is drawn per plugin call, not per delivery: the events of a failed batch come
/// back due together and travel as one batch again, which is what lets an object-per-batch
/// type (S3) overwrite its own object on retry instead of writing a second one.
#[derive(Debug, Clone, Copy)]
pub struct Jitter(f64);

impl Jitter {
    pub fn draw() -> Self {
        Self(rand::thread_rng().gen_range(0.8..1.2))
    }

    fn apply(self, delay: Duration) -> Duration {
        if delay.is_zero() {
            delay
        } else {
            delay.mul_f64(self.0)
        }
    }
}

/// The wait before the next probe of a destination whose circuit is open, after
/// `probes_failed` failed probes (0 when it has just opened): the schedule's delays from its
/// second on, the last one repeating (a circuit is probed until it closes, it never runs out).
pub fn probe_delay(schedule: &RetrySchedule, probes_failed: usize, jitter: Jitter) -> Duration {
    let delays = &schedule.0;
    let index = (probes_failed + 1).min(delays.len().saturating_sub(1));
    jitter.apply(delays.get(index).copied().unwrap_or_default())
}

/// The delay before the next attempt after `attempts_made` attempts since the last replay, or
/// `None` when the schedule is used up. The schedule's delay is jittered; a peer's Retry-After
/// is a floor.
pub fn next_delay(
    schedule: &RetrySchedule,
    attempts_made: usize,
    retry_after: Option<Duration>,
    jitter: Jitter,
) -> Option<Duration> {
    let jittered = jitter.apply(schedule.delay_after(attempts_made)?);
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
        let delay = next_delay(&schedule(), 1, None, Jitter::draw()).unwrap();
        assert!(
            delay >= Duration::from_secs(8) && delay <= Duration::from_secs(12),
            "{delay:?}"
        );
        assert_eq!(next_delay(&schedule(), 3, None, Jitter::draw()), None);
    }

    #[test]
    fn probes_follow_the_schedule_from_its_second_delay_and_keep_its_last() {
        let one = Jitter(1.0);
        assert_eq!(probe_delay(&schedule(), 0, one), Duration::from_secs(10));
        assert_eq!(probe_delay(&schedule(), 1, one), Duration::from_secs(100));
        assert_eq!(probe_delay(&schedule(), 7, one), Duration::from_secs(100));
        let single = RetrySchedule(vec![Duration::from_secs(3)]);
        assert_eq!(probe_delay(&single, 0, one), Duration::from_secs(3));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let delay = next_delay(&schedule(), 1, Some(Duration::from_secs(60)), Jitter(1.0)).unwrap();
        assert_eq!(delay, Duration::from_secs(60));
        let capped = next_delay(
            &schedule(),
            1,
            Some(Duration::from_secs(10_000_000)),
            Jitter(1.0),
        )
        .unwrap();
        assert_eq!(capped, MAX_RETRY_AFTER);
    }
}

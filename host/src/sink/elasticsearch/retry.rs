//! When to try again: exponential backoff with full jitter, forever by default (Kafka
//! holds the events meanwhile), or bounded when the operator says so.

use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Give up after this many retries; `None` retries forever.
    pub max_retries: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            max_retries: None,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based), or `None` when retries are used
    /// up. `unit` in [0, 1) picks the jitter: the delay is uniform in [0, cap], which keeps
    /// many Weir processes from retrying in lockstep against a recovering cluster.
    pub fn delay(&self, attempt: u32, unit: f64) -> Option<Duration> {
        if self.max_retries.is_some_and(|m| attempt >= m) {
            return None;
        }
        let cap = self.initial.as_secs_f64() * self.multiplier.powi(attempt.min(64) as i32);
        let cap = cap.min(self.max.as_secs_f64());
        Some(Duration::from_secs_f64(cap * unit.clamp(0.0, 1.0)))
    }
}

/// A jitter source without a dependency: xorshift seeded from the hasher's random keys.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Default for Jitter {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        Jitter(h.finish() | 1)
    }
}

impl Jitter {
    /// The next value in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_jitter_stays_below_it() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(b.delay(3, 1.0), Some(Duration::from_millis(800)));
        assert_eq!(b.delay(30, 1.0), Some(Duration::from_secs(30)), "capped");
        let mut j = Jitter::default();
        for attempt in 0..20 {
            let d = b.delay(attempt, j.next_unit()).unwrap();
            assert!(d <= b.delay(attempt, 1.0).unwrap());
        }
    }

    #[test]
    fn bounded_retries_give_up() {
        let b = Backoff {
            max_retries: Some(2),
            ..Backoff::default()
        };
        assert!(b.delay(1, 0.5).is_some());
        assert_eq!(b.delay(2, 0.5), None);
        assert!(
            Backoff::default().delay(10_000, 0.5).is_some(),
            "forever by default"
        );
    }
}

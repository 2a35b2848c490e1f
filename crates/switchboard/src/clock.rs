//! Timestamps that follow `tokio::time`, so paused (virtual) time in tests is honoured.
//!
//! Every item and event carries a [`Timestamp`]: nanoseconds since the Unix epoch. The value is
//! taken from the wall clock once per process and then advanced with [`tokio::time::Instant`], so
//! a test running under `tokio::time::pause` sees timestamps move exactly as its virtual clock
//! moves. Timestamps are also strictly increasing within a process: two items created in the same
//! virtual instant still sort in creation order, which keeps histories deterministic.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time, in nanoseconds since the Unix epoch.
///
/// ```
/// use switchboard::clock::Timestamp;
/// let a = Timestamp::now();
/// let b = Timestamp::now();
/// assert!(b > a); // strictly increasing, even within one virtual instant
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

struct Origin {
    wall_nanos: i64,
    instant: tokio::time::Instant,
}

static ORIGIN: OnceLock<Origin> = OnceLock::new();

thread_local! {
    // Per thread, not per process: tests run many paused runtimes side by side, each on its
    // own thread with its own virtual clock, and one far ahead must not drag the others'
    // timestamps along. A session's items are created by its actor, so their order holds.
    static LAST: Cell<i64> = const { Cell::new(i64::MIN) };
}

impl Timestamp {
    /// The current time: the process's wall-clock origin plus the `tokio::time` elapsed since,
    /// bumped by one nanosecond when needed to stay strictly increasing.
    pub fn now() -> Self {
        let origin = ORIGIN.get_or_init(|| Origin {
            wall_nanos: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            instant: tokio::time::Instant::now(),
        });
        let elapsed = tokio::time::Instant::now().saturating_duration_since(origin.instant);
        let candidate = origin
            .wall_nanos
            .saturating_add(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX));
        LAST.with(|last| {
            let previous = last.get();
            // A clock more than a millisecond behind the last timestamp is another runtime's
            // (a test harness reuses threads, each test with its own paused clock): start over.
            // Within one clock, same-instant bumps never add up to a millisecond.
            let value = if candidate.saturating_add(1_000_000) < previous {
                candidate
            } else {
                candidate.max(previous.saturating_add(1))
            };
            last.set(value);
            Timestamp(value)
        })
    }

    /// A timestamp from nanoseconds since the Unix epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch, as a float (for display and JSON consumers).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// This timestamp moved later by `d` (saturating).
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// This timestamp moved earlier by `d` (saturating); used to back-date events to the
    /// audio boundary that caused them.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_virtual_time() {
        let a = Timestamp::now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let b = Timestamp::now();
        let gap = b.duration_since(a);
        assert!(gap >= Duration::from_secs(3600), "{gap:?}");
        assert!(gap < Duration::from_secs(3601), "{gap:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn strictly_increasing_within_one_instant() {
        let stamps: Vec<_> = (0..100).map(|_| Timestamp::now()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    }
}

//! When the database was last found unreachable: a pooled connection taken back before
//! then is pinged before its next use (and replaced if the outage cut it), while
//! connections in steady use skip that round trip.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A pooled connection idle this long is pinged before use anyway: it may have been cut
/// while no call was there to fail.
pub(super) const PING_IDLE: Duration = Duration::from_secs(1);

/// Milliseconds since [`start`] of the last failure, plus one; 0 while there was none.
static LOST_AT: AtomicU64 = AtomicU64::new(0);

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A call failed for want of the database (an outage, a cut connection, a full pool).
pub(super) fn lost() {
    LOST_AT.fetch_max(millis(start().elapsed()) + 1, Ordering::Relaxed);
}

/// Whether a connection idle for `idle` is pinged before use: it has been idle long, or
/// it was taken back no later than the last failure.
pub(super) fn must_ping(idle: Duration) -> bool {
    if idle >= PING_IDLE {
        return true;
    }
    let lost_at = LOST_AT.load(Ordering::Relaxed);
    let taken_back = millis(start().elapsed()).saturating_sub(millis(idle));
    taken_back < lost_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_idle_long_or_since_a_failure_are_pinged() {
        assert!(must_ping(PING_IDLE));
        lost();
        std::thread::sleep(Duration::from_millis(30));
        assert!(!must_ping(Duration::ZERO), "taken back after the failure");
        assert!(
            must_ping(Duration::from_millis(60)),
            "taken back before the failure"
        );
    }
}

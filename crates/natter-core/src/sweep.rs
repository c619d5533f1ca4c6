//! When to sweep expired entries out of an in-memory map: once it has doubled since the
//! last sweep, so sweeping costs amortised O(1) per insert even when every entry is live
//! (sweeping whenever the map is above a fixed size made each insert linear).

/// The size at which a map is next swept.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    floor: usize,
    next: usize,
}

impl Sweep {
    /// Never sweeps below `floor` entries.
    pub const fn above(floor: usize) -> Self {
        Self { floor, next: floor }
    }

    /// Whether a map holding `len` entries is due a sweep.
    pub fn due(&self, len: usize) -> bool {
        len >= self.next
    }

    /// Records that a sweep left `len` entries: the next is due at twice that.
    pub fn swept(&mut self, len: usize) {
        self.next = len.saturating_mul(2).max(self.floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_at_the_floor_then_when_doubled() {
        let mut sweep = Sweep::above(4);
        assert!(!sweep.due(3));
        assert!(sweep.due(4));
        sweep.swept(1);
        assert!(!sweep.due(3), "never below the floor");
        assert!(sweep.due(4));
        sweep.swept(10);
        assert!(!sweep.due(19));
        assert!(sweep.due(20));
    }
}

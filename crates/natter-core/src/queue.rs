//! A bounded queue with one receiver and any number of senders, sharing one allocation:
//! the mechanism under a chat connection's inbox and under each subscriber of the
//! in-process broker. What becomes of an offer that does not fit is its [`Policy`]'s
//! choice (close the receiver as too slow, or count what a topic missed).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// What a queue does with offers, and what its receiver takes.
pub trait Policy: Default {
    /// What the queue holds.
    type Item;
    /// What a sender offers.
    type Offer;
    /// What the receiver takes.
    type Taken;

    /// Slots kept while the queue is empty: one grown in a burst is freed once drained.
    const KEPT_SLOTS: usize;

    /// Puts `offer` into `items`, which should hold at most `capacity`; deciding, when it
    /// does not fit, what the receiver will be told instead. Whether the receiver has
    /// something new to take (it is woken only then).
    fn offer(
        &mut self,
        items: &mut VecDeque<Self::Item>,
        capacity: usize,
        offer: Self::Offer,
    ) -> bool;

    /// The next thing for the receiver, if any (usually `items`' front).
    fn take(&mut self, items: &mut VecDeque<Self::Item>) -> Option<Self::Taken>;
}

/// A bounded queue; see the module documentation.
pub struct Queue<P: Policy> {
    capacity: usize,
    state: Mutex<State<P>>,
    /// Woken after an offer that gave the receiver something to take (its policy says
    /// which); one waiter (the receiver), so a wake-up that finds it busy is kept for
    /// its next wait.
    offered: Notify,
}

struct State<P: Policy> {
    items: VecDeque<P::Item>,
    policy: P,
    /// The receiver is gone: offers are refused.
    closed: bool,
}

impl<P: Policy> std::fmt::Debug for Queue<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<P: Policy> Queue<P> {
    /// An empty queue holding at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::new(State {
                items: VecDeque::new(),
                policy: P::default(),
                closed: false,
            }),
            offered: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<P>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers `offer` without waiting; false when the receiver is gone.
    pub fn offer(&self, offer: P::Offer) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        let State { items, policy, .. } = &mut *state;
        let news = policy.offer(items, self.capacity, offer);
        drop(state);
        if news {
            self.offered.notify_one();
        }
        true
    }

    /// The next thing for the receiver, without waiting.
    pub fn try_take(&self) -> Option<P::Taken> {
        let mut state = self.state();
        let State { items, policy, .. } = &mut *state;
        let taken = policy.take(items)?;
        if items.is_empty() && items.capacity() > P::KEPT_SLOTS {
            *items = VecDeque::new();
        }
        Some(taken)
    }

    /// Waits for the next thing for the receiver. Cancel-safe: nothing leaves the queue
    /// until it is returned.
    pub async fn take(&self) -> P::Taken {
        loop {
            let offered = self.offered.notified();
            if let Some(taken) = self.try_take() {
                return taken;
            }
            offered.await;
        }
    }

    /// The receiver is gone: what is queued goes, and later offers are refused.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.items = VecDeque::new();
        state.policy = P::default();
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.state().items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots allocated (for tests of the memory a queue keeps).
    pub fn allocated(&self) -> usize {
        self.state().items.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drops what does not fit, counting it.
    #[derive(Default)]
    struct Counting {
        dropped: usize,
    }

    impl Policy for Counting {
        type Item = u32;
        type Offer = u32;
        type Taken = u32;
        const KEPT_SLOTS: usize = 16;

        fn offer(&mut self, items: &mut VecDeque<u32>, capacity: usize, offer: u32) -> bool {
            if items.len() >= capacity {
                self.dropped += 1;
                return false;
            }
            items.push_back(offer);
            true
        }

        fn take(&mut self, items: &mut VecDeque<u32>) -> Option<u32> {
            items.pop_front()
        }
    }

    #[tokio::test]
    async fn items_come_in_order_and_a_drained_burst_frees_its_slots() {
        let queue = std::sync::Arc::new(Queue::<Counting>::new(256));
        for i in 1..=100 {
            assert!(queue.offer(i));
        }
        for i in 1..=100 {
            assert_eq!(queue.take().await, i);
        }
        assert_eq!(queue.allocated(), 0);
        let receiver = queue.clone();
        let waiting = tokio::spawn(async move { receiver.take().await });
        tokio::task::yield_now().await;
        queue.offer(101);
        assert_eq!(waiting.await.unwrap(), 101, "a waiting receiver is woken");
    }

    #[test]
    fn the_policy_decides_what_does_not_fit() {
        let queue = Queue::<Counting>::new(2);
        for i in 0..5 {
            queue.offer(i);
        }
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.state().policy.dropped, 3);
        assert_eq!(queue.try_take(), Some(0));
    }

    #[test]
    fn a_closed_queue_refuses_offers_and_lets_its_items_go() {
        let queue = Queue::<Counting>::new(8);
        queue.offer(1);
        queue.close();
        assert!(queue.is_closed());
        assert!(!queue.offer(2));
        assert!(queue.is_empty());
        assert_eq!(queue.try_take(), None);
    }
}

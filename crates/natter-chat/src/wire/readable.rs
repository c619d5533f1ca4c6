//! Whether a socket may have something to read since its last read found nothing: the
//! waker its reads are polled with records being woken, so that a connection woken for
//! a delivery does not poll its socket's read (tungstenite's read path, two waker
//! registrations and the reactor's readiness check: ~6 % of a busy replica's CPU).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use futures::task::{ArcWake, AtomicWaker, waker_ref};

/// The waker a socket's reads are polled with: it notes that it was woken, then wakes
/// the task that polled last.
#[derive(Debug)]
pub(super) struct Readable {
    /// Set by a wake, and while the last read gave something (more may be buffered).
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Readable {
    /// Nothing read yet: the first poll reads.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        })
    }

    /// Polls `read` with this waker when the socket may have something (woken since the
    /// last read found nothing, or that read gave something); otherwise answers
    /// `Pending` at once. Either way `waker` (the caller's) is woken when it may.
    pub(super) fn poll<T>(
        self: &Arc<Self>,
        waker: &Waker,
        read: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // Registered before the flag is read: a wake after the read of the flag reaches
        // `waker`, one before it is seen in the flag.
        self.task.register(waker);
        if !self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let own = waker_ref(self);
        let polled = read(&mut Context::from_waker(&own));
        if polled.is_ready() {
            self.woken.store(true, Ordering::Release);
        }
        polled
    }
}

impl ArcWake for Readable {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures::task::noop_waker;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl ArcWake for Counting {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_read_is_polled_only_after_a_wake_or_while_it_gives() {
        let readable = Readable::new();
        let task = Arc::new(Counting::default());
        let waker = futures::task::waker(task.clone());
        let mut polls = 0;
        let mut kept = None;
        let mut pending = |cx: &mut Context<'_>| {
            polls += 1;
            kept = Some(cx.waker().clone());
            Poll::<()>::Pending
        };
        assert!(readable.poll(&waker, &mut pending).is_pending());
        for _ in 0..3 {
            assert!(readable.poll(&waker, &mut pending).is_pending());
        }
        assert_eq!(polls, 1, "not polled again before a wake");
        // The socket's wake (through the waker the read kept) reaches the task...
        kept.take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        // ...and the next poll reads; while reads give, every poll reads.
        assert!(readable.poll(&waker, |_| Poll::Ready(1)).is_ready());
        assert_eq!(readable.poll(&waker, |_| Poll::Ready(2)), Poll::Ready(2));
    }

    #[test]
    fn a_wake_after_a_poll_with_another_waker_is_seen_by_the_next_poll() {
        // The connection polls without its waker (`now_or_never`), then with it before
        // it sleeps: a wake in between went to the no-op waker, and the flag keeps it.
        let readable = Readable::new();
        let task = Arc::new(Counting::default());
        let waker = futures::task::waker(task.clone());
        let mut kept = None;
        let _ = readable.poll(&waker, |cx| {
            kept = Some(cx.waker().clone());
            Poll::<()>::Pending
        });
        assert!(
            readable
                .poll(&noop_waker(), |_| Poll::Ready(()))
                .is_pending()
        );
        kept.take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "the no-op waker had it");
        assert!(readable.poll(&waker, |_| Poll::Ready(())).is_ready());
    }
}

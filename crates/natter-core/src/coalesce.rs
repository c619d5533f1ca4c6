//! Coalesces concurrent requests that share a key into batches: per key, one batch is in
//! flight at a time and whoever asks meanwhile joins the next one (up to a bound), so a
//! burst shares one statement (or one lock and one commit) while a lone request goes at
//! once. A coalescer that [gathers](Coalescer::gathering) lets every task already woken
//! ask before its first batch is taken, for work that is cheaper in bulk even when it
//! costs a lone request a turn of the scheduler.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tracing::Instrument;

/// What a batch of requests does.
pub trait Batch: Send + Sync + 'static {
    /// What requests share to be batched together (one key: everything batches).
    type Key: Eq + Hash + Clone + Send + Sync + 'static;
    /// One caller's request.
    type Request: Send + 'static;
    /// One caller's answer.
    type Answer: Send + 'static;

    /// Answers `requests`, all of `key`, in their order: one answer each.
    fn run(
        &self,
        key: &Self::Key,
        requests: Vec<Self::Request>,
    ) -> impl Future<Output = Vec<Self::Answer>> + Send;
}

/// Runs a [`Batch`] for whoever asks. Cheap to clone; clones share the queues.
pub struct Coalescer<B: Batch> {
    shared: Arc<Shared<B>>,
}

impl<B: Batch> Clone for Coalescer<B> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<B: Batch> std::fmt::Debug for Coalescer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("most", &self.shared.most)
            .field("gathers", &self.shared.gathers)
            .finish_non_exhaustive()
    }
}

struct Shared<B: Batch> {
    batch: B,
    /// Most requests in one batch.
    most: usize,
    /// A new task yields once before its first batch (see [`Coalescer::gathering`]).
    gathers: bool,
    /// The requests waiting, by key; a key is here while a task runs its batches.
    waiting: Mutex<HashMap<B::Key, Vec<Waiter<B>>>>,
}

struct Waiter<B: Batch> {
    request: B::Request,
    answer: oneshot::Sender<B::Answer>,
    /// The caller's span: the batch's span is its child (the batch's first caller) or
    /// follows from it, so a request's trace leads to the batch that served it (whose
    /// task is not the caller's).
    span: tracing::Span,
}

impl<B: Batch> Coalescer<B> {
    /// Batches of at most `most` requests; a lone request runs as soon as its task does.
    pub fn new(batch: B, most: usize) -> Self {
        Self::with(batch, most, false)
    }

    /// Batches of at most `most` requests, the first taken only after the tasks already
    /// woken have had their turn. Without it, the runtime runs a task just spawned
    /// before the tasks woken earlier (Tokio's LIFO slot), so in a burst the first batch
    /// holds one request. The price is one trip through the scheduler for a lone
    /// request: for work whose cost per request falls steeply with the batch (signature
    /// checks), not for statements a lone request should start at once.
    pub fn gathering(batch: B, most: usize) -> Self {
        Self::with(batch, most, true)
    }

    fn with(batch: B, most: usize, gathers: bool) -> Self {
        let shared = Shared {
            batch,
            most: most.max(1),
            gathers,
            waiting: Mutex::default(),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// What runs the batches.
    pub fn batch(&self) -> &B {
        &self.shared.batch
    }

    /// The answer to `request`, run with whatever else is asked of `key` meanwhile;
    /// `None` if its batch ended without answering (its task panicked, or the runtime is
    /// shutting down).
    ///
    /// The batches run in a task of their own: a caller that gives up leaves the others'
    /// batch going.
    pub async fn ask(&self, key: B::Key, request: B::Request) -> Option<B::Answer> {
        let (answer, answered) = oneshot::channel();
        let span = tracing::Span::current();
        let waiter = Waiter {
            request,
            answer,
            span,
        };
        let start = {
            let mut waiting = self.shared.lock();
            match waiting.get_mut(&key) {
                Some(queue) => {
                    queue.push(waiter);
                    false
                }
                None => {
                    waiting.insert(key.clone(), vec![waiter]);
                    true
                }
            }
        };
        if start {
            let running = Running {
                shared: self.shared.clone(),
                key,
                ended: false,
            };
            tokio::spawn(running.run());
        }
        answered.await.ok()
    }
}

impl<B: Batch> Shared<B> {
    fn lock(&self) -> MutexGuard<'_, HashMap<B::Key, Vec<Waiter<B>>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The task that runs a key's batches. Should it end other than by finding nobody
/// waiting (a panic, or its runtime shutting down, even before its first poll), the key's
/// next caller starts a new one, and those it would have answered hear that their batch
/// ended.
struct Running<B: Batch> {
    shared: Arc<Shared<B>>,
    key: B::Key,
    /// It found nobody waiting and let the key go: the key may be another task's now.
    ended: bool,
}

impl<B: Batch> Running<B> {
    /// Runs the batches of `key`, [`Shared::most`] requests at a time, until nobody waits.
    async fn run(mut self) {
        if self.shared.gathers {
            tokio::task::yield_now().await;
        }
        while let Some(batch) = self.next_batch() {
            // A child of its first caller's span (a batch is never empty; a lone
            // request's trace is whole, as if it had run the batch itself), following
            // from the others'.
            let first = &batch[0].span;
            let span = tracing::info_span!(parent: first, "batch", batch.size = batch.len());
            for waiter in batch.iter().skip(1) {
                span.follows_from(&waiter.span);
            }
            let (requests, answers): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.request, w.answer)).unzip();
            let run = self.shared.batch.run(&self.key, requests);
            let answered = run.instrument(span).await;
            for (answer, to) in answered.into_iter().zip(answers) {
                let _ = to.send(answer);
            }
        }
    }

    /// The next batch, or `None` (and the key let go) when nobody waits.
    fn next_batch(&mut self) -> Option<Vec<Waiter<B>>> {
        let mut waiting = self.shared.lock();
        match waiting.get_mut(&self.key) {
            Some(queue) if !queue.is_empty() => {
                let taken = queue.len().min(self.shared.most);
                Some(queue.drain(..taken).collect())
            }
            _ => {
                waiting.remove(&self.key);
                self.ended = true;
                None
            }
        }
    }
}

impl<B: Batch> Drop for Running<B> {
    fn drop(&mut self) {
        if !self.ended {
            self.shared.lock().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Doubles numbers; remembers the batch sizes, and waits for a go between batches.
    struct Doubling {
        sizes: Mutex<Vec<usize>>,
        go: tokio::sync::Semaphore,
        runs: AtomicUsize,
    }

    impl Batch for Arc<Doubling> {
        type Key = &'static str;
        type Request = u32;
        type Answer = u32;

        async fn run(&self, key: &&'static str, requests: Vec<u32>) -> Vec<u32> {
            self.runs.fetch_add(1, Ordering::Relaxed);
            self.sizes.lock().unwrap().push(requests.len());
            self.go.acquire().await.unwrap().forget();
            if *key == "panics" {
                panic!("a batch that fails");
            }
            requests.into_iter().map(|n| n * 2).collect()
        }
    }

    fn doubling() -> Arc<Doubling> {
        Arc::new(Doubling {
            sizes: Mutex::default(),
            go: tokio::sync::Semaphore::new(0),
            runs: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn who_asks_while_a_batch_runs_joins_the_next_one_up_to_the_bound() {
        let batch = doubling();
        let coalescer = Coalescer::new(batch.clone(), 3);
        let first = tokio::spawn({
            let coalescer = coalescer.clone();
            async move { coalescer.ask("a", 1).await }
        });
        while batch.runs.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        // The first batch (of one) runs; five more ask meanwhile, and one of another key.
        let mut later = Vec::new();
        for n in 2..=6 {
            let coalescer = coalescer.clone();
            later.push(tokio::spawn(async move { coalescer.ask("a", n).await }));
        }
        let other = tokio::spawn({
            let coalescer = coalescer.clone();
            async move { coalescer.ask("b", 10).await }
        });
        batch.go.add_permits(4);
        assert_eq!(first.await.unwrap(), Some(2));
        for (n, asked) in (2..=6).zip(later) {
            assert_eq!(asked.await.unwrap(), Some(n * 2));
        }
        assert_eq!(other.await.unwrap(), Some(20));
        let mut sizes = batch.sizes.lock().unwrap().clone();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 1, 2, 3], "the lone b, the first a, then 3 and 2");
        assert!(coalescer.shared.lock().is_empty(), "no key is left running");
    }

    /// The sizes of the batches that answer `n` requests asked by tasks spawned together
    /// from a task of a one-worker runtime (as a storm's connections wake together).
    fn sizes_of_a_burst(gathers: bool, n: u32) -> Vec<usize> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let batch = doubling();
        batch.go.add_permits(n as usize);
        let coalescer = Coalescer::with(batch.clone(), 64, gathers);
        let answers = runtime.block_on(async move {
            let asking = (1..=n).map(move |i| {
                let coalescer = coalescer.clone();
                async move { coalescer.ask("a", i).await }
            });
            let burst = async move {
                let tasks: Vec<_> = asking.map(tokio::spawn).collect();
                futures::future::join_all(tasks).await
            };
            tokio::spawn(burst).await.unwrap()
        });
        let answers: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
        let doubled: Vec<_> = (1..=n).map(|i| Some(i * 2)).collect();
        assert_eq!(answers, doubled);
        batch.sizes.lock().unwrap().clone()
    }

    #[test]
    fn a_gathering_coalescer_takes_a_burst_in_one_batch() {
        assert_eq!(sizes_of_a_burst(true, 5), [5]);
    }

    #[test]
    fn a_coalescer_that_does_not_gather_answers_the_first_request_at_once() {
        assert_eq!(sizes_of_a_burst(false, 5)[0], 1);
    }

    #[test]
    fn a_task_dropped_unfinished_answers_none_and_lets_another_start() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let batch = doubling();
        let coalescer = Coalescer::new(batch.clone(), 8);
        let mut waiting = Box::pin(coalescer.ask("a", 1));
        // Queued, its task spawned but not yet run; then the runtime goes away.
        runtime.block_on(async { assert!(futures::poll!(waiting.as_mut()).is_pending()) });
        assert!(!coalescer.shared.lock().is_empty());
        drop(runtime);
        assert!(coalescer.shared.lock().is_empty(), "the key is let go");
        assert_eq!(futures::executor::block_on(waiting), None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        batch.go.add_permits(1);
        assert_eq!(runtime.block_on(coalescer.ask("a", 2)), Some(4));
    }

    #[tokio::test]
    async fn a_batch_that_panics_answers_none_and_the_next_caller_starts_afresh() {
        let batch = doubling();
        let coalescer = Coalescer::new(batch.clone(), 8);
        batch.go.add_permits(2);
        assert_eq!(coalescer.ask("panics", 1).await, None);
        assert!(coalescer.shared.lock().is_empty());
        assert_eq!(coalescer.ask("a", 4).await, Some(8));
    }
}

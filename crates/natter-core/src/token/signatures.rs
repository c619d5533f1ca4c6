//! Ed25519 checks of access-token signatures, batched: checks waiting at the same moment
//! share one multiscalar multiplication, so a reconnect storm's thousands of tokens new
//! to a replica cost less than half the CPU they cost one by one (in batches of 64, 8 µs
//! a signature against 33 µs, measured on the benchmark machine).
//!
//! ed25519-zebra implements ZIP 215, under which a batch accepts exactly the signatures
//! that checking each alone accepts, and it folds the terms of signatures under the same
//! key (every token of a key set's active key) into one. A batch is whatever checks were
//! queued by the time the runtime got to it: nothing waits on purpose, so a lone check
//! costs one task hop more than checking it in place. A batch holding a bad signature is
//! checked again one by one: a forged token costs its batch a quarter more than checks
//! one at a time would, and refuses no one else.

use std::sync::{Arc, Mutex, MutexGuard};

use ed25519_zebra::batch::{Item, Verifier};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

/// The most checks in one batch (the gain per signature levels off before this).
const BATCH_MAX: usize = 64;

/// Signature checks waiting for a batch. Cheap to clone: clones share the queue.
#[derive(Clone, Default)]
pub(crate) struct Signatures {
    queue: Arc<Mutex<Queue>>,
    counts: Counts,
}

/// What the drains did, for `/metrics`: their ratio is the mean batch size.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    /// Signatures checked in a drain (checks made in place are not counted).
    pub(crate) checked: Counter,
    /// Batches those were checked in (a lone check is a batch of one).
    pub(crate) batches: Counter,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A task is taking batches off the queue.
    draining: bool,
}

/// One signature to check, and where its answer goes.
struct Job {
    item: Item,
    answer: oneshot::Sender<bool>,
}

impl Signatures {
    /// Whether `item`'s signature is valid, checked in a batch with whatever other checks
    /// are queued when its turn comes. Outside a Tokio runtime it is checked in place.
    pub(crate) async fn check(&self, item: Item) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return check_one(item);
        };
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.jobs.push(Job { item, answer });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            runtime.spawn(Drain::new(self.clone()).run());
        }
        // A drain dropped before it answered (its runtime shutting down) refuses.
        answered.await.unwrap_or(false)
    }

    /// The counts of checks and batches (shared by every clone).
    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The task that answers queued checks until none is left.
struct Drain {
    signatures: Signatures,
    /// It found the queue empty and stopped draining: a later check starts another.
    ended: bool,
}

impl Drain {
    fn new(signatures: Signatures) -> Self {
        Self {
            signatures,
            ended: false,
        }
    }

    async fn run(mut self) {
        // Every task already woken queues its check before the first batch is taken:
        // that is what forms batches during a storm.
        tokio::task::yield_now().await;
        while let Some(jobs) = self.next_batch() {
            let counts = self.signatures.counts();
            counts.checked.inc_by(jobs.len() as u64);
            counts.batches.inc();
            check_all(jobs);
        }
    }

    /// The next batch, or `None` (and no longer draining) when the queue is empty.
    fn next_batch(&mut self) -> Option<Vec<Job>> {
        let mut queue = self.signatures.lock();
        if queue.jobs.is_empty() {
            queue.draining = false;
            self.ended = true;
            return None;
        }
        let n = queue.jobs.len().min(BATCH_MAX);
        Some(queue.jobs.drain(..n).collect())
    }
}

impl Drop for Drain {
    /// Dropped before it ended (its runtime shutting down): what is queued is refused,
    /// and the next check starts another drain. After it ended, the queue may already
    /// be another drain's, and is left alone.
    fn drop(&mut self) {
        if !self.ended {
            let mut queue = self.signatures.lock();
            queue.jobs.clear();
            queue.draining = false;
        }
    }
}

/// Answers every job: all valid when the batch holds, else each checked alone (a batch
/// with one bad signature says only that one is bad).
fn check_all(jobs: Vec<Job>) {
    if jobs.len() > 1 {
        let mut batch = Verifier::new();
        for job in &jobs {
            batch.queue(job.item.clone());
        }
        // The batch's random weights: a CSPRNG seeded from the OS, not a system call each.
        if batch.verify(rand::thread_rng()).is_ok() {
            for job in jobs {
                let _ = job.answer.send(true);
            }
            return;
        }
    }
    for job in jobs {
        let _ = job.answer.send(check_one(job.item));
    }
}

/// Checks one signature on its own.
pub(crate) fn check_one(item: Item) -> bool {
    item.verify_single().is_ok()
}

#[cfg(test)]
mod tests {
    use ed25519_zebra::{SigningKey, VerificationKeyBytes};

    use super::*;

    fn signed(key: &SigningKey, message: &str) -> Item {
        let public = VerificationKeyBytes::from(key);
        Item::from((public, key.sign(message.as_bytes()), message.as_bytes()))
    }

    fn forged(key: &SigningKey, message: &str) -> Item {
        let public = VerificationKeyBytes::from(key);
        let signature = key.sign(b"something else");
        Item::from((public, signature, message.as_bytes()))
    }

    /// A key, a queue, and a runtime the test drives by hand.
    fn on_one_thread() -> (SigningKey, Signatures, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let key = SigningKey::new(rand::rngs::OsRng);
        (key, Signatures::default(), runtime)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn checks_queued_together_are_answered_each_by_its_own_signature() {
        let key = SigningKey::new(rand::rngs::OsRng);
        let other = SigningKey::new(rand::rngs::OsRng);
        let signatures = Signatures::default();
        let items = (0..20).map(|i| match i % 7 {
            3 => forged(&key, &format!("token {i}")),
            5 => signed(&other, &format!("token {i}")),
            _ => signed(&key, &format!("token {i}")),
        });
        let checks = items.map(|item| signatures.check(item));
        let answers = futures::future::join_all(checks).await;
        let expected: Vec<bool> = (0..20).map(|i| i % 7 != 3).collect();
        assert_eq!(answers, expected);
        assert!(!signatures.lock().draining, "the drain ends with the queue");
        assert_eq!(signatures.counts().checked.get(), 20);
        assert_eq!(
            signatures.counts().batches.get(),
            1,
            "queued together, one batch"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn checks_started_together_share_a_batch() {
        let key = SigningKey::new(rand::rngs::OsRng);
        let signatures = Signatures::default();
        let first = signatures.check(signed(&key, "a"));
        let second = signatures.check(signed(&key, "b"));
        let (mut first, mut second) = (Box::pin(first), Box::pin(second));
        // Both queue before the drain task gets its first turn.
        assert!(futures::poll!(first.as_mut()).is_pending());
        assert!(futures::poll!(second.as_mut()).is_pending());
        assert_eq!(signatures.lock().jobs.len(), 2);
        assert!((first.await, second.await) == (true, true));
    }

    #[test]
    fn a_check_queued_as_a_drain_ends_is_left_to_the_next_drain() {
        let (key, signatures, runtime) = on_one_thread();
        // A drain finds the queue empty...
        signatures.lock().draining = true;
        let mut ending = Drain::new(signatures.clone());
        assert!(ending.next_batch().is_none());
        // ...a check arrives and starts the next drain before the first is dropped.
        let mut check = Box::pin(signatures.check(signed(&key, "a")));
        runtime.block_on(async { assert!(futures::poll!(check.as_mut()).is_pending()) });
        drop(ending);
        assert!(
            runtime.block_on(check),
            "the check was dropped with the old drain"
        );
    }

    #[test]
    fn a_drain_dropped_unfinished_refuses_what_waits_and_lets_another_start() {
        let (key, signatures, runtime) = on_one_thread();
        let mut waiting = Box::pin(signatures.check(signed(&key, "a")));
        // Queued, its drain spawned but not yet run; then the runtime goes away.
        runtime.block_on(async { assert!(futures::poll!(waiting.as_mut()).is_pending()) });
        assert!(signatures.lock().draining);
        drop(runtime);
        assert!(!signatures.lock().draining);
        assert!(signatures.lock().jobs.is_empty());
        assert!(
            !futures::executor::block_on(waiting),
            "refused, not left waiting"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(runtime.block_on(signatures.check(signed(&key, "b"))));
    }

    #[test]
    fn outside_a_runtime_a_check_is_made_in_place() {
        let key = SigningKey::new(rand::rngs::OsRng);
        let signatures = Signatures::default();
        assert!(futures::executor::block_on(
            signatures.check(signed(&key, "a"))
        ));
        assert!(!futures::executor::block_on(
            signatures.check(forged(&key, "a"))
        ));
    }
}

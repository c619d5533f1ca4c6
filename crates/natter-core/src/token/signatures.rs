//! Ed25519 checks of access-token signatures, batched: checks waiting at the same moment
//! share one multiscalar multiplication, so a reconnect storm's thousands of tokens new
//! to a replica cost less than half the CPU they cost one by one (in batches of 64, 8 µs
//! a signature against 33 µs, measured on the benchmark machine).
//!
//! ed25519-zebra implements ZIP 215, under which a batch accepts exactly the signatures
//! that checking each alone accepts, and it folds the terms of signatures under the same
//! key (every token of a key set's active key) into one. A batch is whatever checks were
//! queued by the time the runtime got to it (a [gathering](Coalescer::gathering)
//! coalescer): nothing waits on purpose, so a lone check costs one task hop more than
//! checking it in place. A batch holding a bad signature is
//! checked again one by one: a forged token costs its batch a quarter more than checks
//! one at a time would, and refuses no one else.

use ed25519_zebra::batch::{Item, Verifier};
use prometheus_client::metrics::counter::Counter;

use crate::coalesce::{Batch, Coalescer};

/// The most checks in one batch (the gain per signature levels off before this).
const BATCH_MAX: usize = 64;

/// Signature checks waiting for a batch. Cheap to clone: clones share the queue.
#[derive(Clone, Debug)]
pub(crate) struct Signatures(Coalescer<Checker>);

/// What the batches did, for `/metrics`: their ratio is the mean batch size.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    /// Signatures checked in a batch (checks made in place are not counted).
    pub(crate) checked: Counter,
    /// Batches those were checked in (a lone check is a batch of one).
    pub(crate) batches: Counter,
}

/// Checks a batch of signatures, and counts them.
struct Checker {
    counts: Counts,
}

impl Default for Signatures {
    fn default() -> Self {
        let checker = Checker {
            counts: Counts::default(),
        };
        Self(Coalescer::gathering(checker, BATCH_MAX))
    }
}

impl Signatures {
    /// Whether `item`'s signature is valid, checked in a batch with whatever other checks
    /// are queued when its turn comes. Outside a Tokio runtime it is checked in place.
    pub(crate) async fn check(&self, item: Item) -> bool {
        if tokio::runtime::Handle::try_current().is_err() {
            return check_one(item);
        }
        // A batch dropped before it answered (its runtime shutting down) refuses.
        self.0.ask((), item).await.unwrap_or(false)
    }

    /// The counts of checks and batches (shared by every clone).
    pub(crate) fn counts(&self) -> &Counts {
        &self.0.batch().counts
    }
}

impl Batch for Checker {
    type Key = ();
    type Request = Item;
    type Answer = bool;

    async fn run(&self, _: &(), items: Vec<Item>) -> Vec<bool> {
        self.counts.checked.inc_by(items.len() as u64);
        self.counts.batches.inc();
        check_all(items)
    }
}

/// Whether each signature is valid: all of them when the batch holds, else each checked
/// alone (a batch with one bad signature says only that one is bad).
fn check_all(items: Vec<Item>) -> Vec<bool> {
    if items.len() > 1 {
        let mut batch = Verifier::new();
        for item in &items {
            batch.queue(item.clone());
        }
        // The batch's random weights: a CSPRNG seeded from the OS, not a system call each.
        if batch.verify(rand::thread_rng()).is_ok() {
            return vec![true; items.len()];
        }
    }
    items.into_iter().map(check_one).collect()
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
        assert_eq!(signatures.counts().checked.get(), 20);
        assert_eq!(
            signatures.counts().batches.get(),
            1,
            "queued together, one batch"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn checks_of_tasks_woken_together_share_a_batch() {
        let key = SigningKey::new(rand::rngs::OsRng);
        let signatures = Signatures::default();
        let items: Vec<_> = (0..8).map(|i| signed(&key, &format!("t{i}"))).collect();
        let shared = signatures.clone();
        let checking = items.into_iter().map(move |item| {
            let signatures = shared.clone();
            async move { signatures.check(item).await }
        });
        // Spawned from a worker, as a storm's connections are.
        let burst = async move {
            let tasks: Vec<_> = checking.map(tokio::spawn).collect();
            futures::future::join_all(tasks).await
        };
        let answers = tokio::spawn(burst).await.unwrap();
        assert!(answers.into_iter().all(|valid| valid.unwrap()));
        assert_eq!(signatures.counts().checked.get(), 8);
        assert_eq!(signatures.counts().batches.get(), 1);
    }

    #[test]
    fn a_check_whose_runtime_goes_away_is_refused() {
        let key = SigningKey::new(rand::rngs::OsRng);
        let signatures = Signatures::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut waiting = Box::pin(signatures.check(signed(&key, "a")));
        // Queued, its batch's task spawned but not yet run; then the runtime goes away.
        runtime.block_on(async { assert!(futures::poll!(waiting.as_mut()).is_pending()) });
        drop(runtime);
        assert!(
            !futures::executor::block_on(waiting),
            "refused, not left waiting"
        );
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

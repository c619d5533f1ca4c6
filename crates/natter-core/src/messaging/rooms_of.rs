//! Reads the rooms of the users whose chat connections authenticate, many users per
//! query when many authenticate at once (a reconnect storm): one read is in flight at a
//! time and whoever asks meanwhile joins the next one (up to 64 users), so a storm's
//! authentications share statements instead of taking one each, and a lone login still
//! reads at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{MessageError, Result};
use crate::memberships::Memberships;
use crate::store::Store;

/// Most users read in one statement.
const BATCH: usize = 64;

/// Users waiting for their rooms to be read and remembered. Cheap to clone; clones share
/// the queue.
#[derive(Debug, Clone, Default)]
pub(super) struct RoomsOf {
    queue: Arc<Mutex<Queue>>,
}

/// The task reading for the queue, from `store` into `memberships`.
struct Reader {
    rooms_of: RoomsOf,
    store: Store,
    memberships: Memberships,
}

#[derive(Debug, Default)]
struct Queue {
    /// A task is reading (and will take whoever waits when it is done).
    reading: bool,
    waiting: Vec<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    user: String,
    limit: u32,
    done: oneshot::Sender<Result<()>>,
}

impl RoomsOf {
    /// Remembers in `memberships` the rooms `user` is a member of (at most `limit`), read
    /// from `store` together with those of whoever else asks meanwhile.
    ///
    /// The reading runs in a task of its own: a caller that gives up (its connection
    /// closed) leaves the others' read going.
    pub(super) async fn remember(
        &self,
        store: &Store,
        memberships: &Memberships,
        user: &str,
        limit: u32,
    ) -> Result<()> {
        let (done, answer) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            let waiter = Waiter {
                user: user.to_owned(),
                limit,
                done,
            };
            queue.waiting.push(waiter);
            !std::mem::replace(&mut queue.reading, true)
        };
        if start {
            let reader = Reader {
                rooms_of: self.clone(),
                store: store.clone(),
                memberships: memberships.clone(),
            };
            tokio::spawn(reader.read_while_waited_for());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(MessageError::Internal("the rooms read was dropped".into())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Reader {
    /// Reads for the waiting users, [`BATCH`] at a time, until nobody waits.
    async fn read_while_waited_for(self) {
        let mut reading = Reading(Some(&self.rooms_of));
        loop {
            let batch = {
                let mut queue = self.rooms_of.lock();
                if queue.waiting.is_empty() {
                    queue.reading = false;
                    reading.0 = None;
                    return;
                }
                let taken = queue.waiting.len().min(BATCH);
                queue.waiting.drain(..taken).collect::<Vec<_>>()
            };
            let outcome = self.read(&batch).await;
            for waiter in batch {
                let _ = waiter.done.send(outcome.clone());
            }
        }
    }

    /// One statement for `batch`; each user's rooms beyond their own limit are skipped.
    async fn read(&self, batch: &[Waiter]) -> Result<()> {
        let epoch = self.memberships.epoch();
        let mut left: HashMap<&str, u32> = HashMap::with_capacity(batch.len());
        for waiter in batch {
            left.insert(&waiter.user, waiter.limit);
        }
        let users: Vec<&str> = left.keys().copied().collect();
        let limit = left.values().copied().max().unwrap_or(0);
        for (user, room, kind) in self.store.member_rooms(&users, limit).await? {
            if let Some(left) = left.get_mut(user.as_str())
                && *left > 0
            {
                *left -= 1;
                self.memberships.remember(epoch, &room, kind, &user);
            }
        }
        Ok(())
    }
}

/// While a reading task runs: should it end other than by finding nobody waiting (a
/// panic, its runtime shutting down), the next caller starts a new one, and those it
/// would have answered hear that their read was dropped.
struct Reading<'a>(Option<&'a RoomsOf>);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if let Some(rooms) = self.0 {
            let mut queue = rooms.lock();
            queue.reading = false;
            queue.waiting.clear();
        }
    }
}

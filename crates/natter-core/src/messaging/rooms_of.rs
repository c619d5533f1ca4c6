//! Reads the rooms of the users whose chat connections authenticate, many users per
//! query when many authenticate at once (a reconnect storm): one read is in flight at a
//! time and whoever asks meanwhile joins the next one (up to 64 users), so a storm's
//! authentications share statements instead of taking one each, and a lone login still
//! reads at once.

use std::collections::HashMap;

use super::{Result, answered};
use crate::coalesce::{Batch, Coalescer};
use crate::memberships::Memberships;
use crate::store::Store;

/// Most users read in one statement.
const BATCH: usize = 64;

/// Users waiting for their rooms to be read and remembered. Cheap to clone; clones share
/// the queue.
#[derive(Debug, Clone)]
pub(super) struct RoomsOf(Coalescer<Reader>);

/// Reads for a batch of users, from `store` into `memberships`.
struct Reader {
    store: Store,
    memberships: Memberships,
}

impl RoomsOf {
    /// Reads from `store` into `memberships`.
    pub(super) fn new(store: Store, memberships: Memberships) -> Self {
        Self(Coalescer::new(Reader { store, memberships }, BATCH))
    }

    /// Remembers the rooms `user` is a member of (at most `limit`), read together with
    /// those of whoever else asks meanwhile.
    pub(super) async fn remember(&self, user: &str, limit: u32) -> Result<()> {
        answered(self.0.ask((), (user.to_owned(), limit)).await)
    }
}

impl Batch for Reader {
    type Key = ();
    type Request = (String, u32);
    type Answer = Result<()>;

    async fn run(&self, (): &(), users: Vec<(String, u32)>) -> Vec<Result<()>> {
        let outcome = self.read(&users).await;
        vec![outcome; users.len()]
    }
}

impl Reader {
    /// One statement for `users`; each user's rooms beyond their own limit are skipped.
    async fn read(&self, users: &[(String, u32)]) -> Result<()> {
        let epoch = self.memberships.epoch();
        let mut left: HashMap<&str, u32> = HashMap::with_capacity(users.len());
        for (user, limit) in users {
            left.insert(user, *limit);
        }
        let ids: Vec<&str> = left.keys().copied().collect();
        let limit = left.values().copied().max().unwrap_or(0);
        for (user, room, kind) in self.store.member_rooms(&ids, limit).await? {
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

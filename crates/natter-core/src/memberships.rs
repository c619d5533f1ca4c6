//! Who was found to be a member of which room, remembered so that what any member may do
//! (read, post) is decided without a database read — a reconnect storm or a busy room
//! does not queue on the pool for the same answer. Entries are forgotten when a room event
//! says the membership ended (member removed, room deleted), all at once when such events
//! may have been missed (broker gap), and after [`REMEMBER_FOR`] in any case.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::RoomKind;
use crate::sweep::Sweep;

/// How long a membership is trusted without being read again.
pub const REMEMBER_FOR: Duration = Duration::from_secs(60);
/// Entries below which expired ones are never swept (see [`Sweep`]).
const SWEEP_ABOVE: usize = 4096;

/// Remembered memberships. Cheap to clone; clones share the entries.
#[derive(Debug, Clone, Default)]
pub struct Memberships {
    inner: Arc<Inner>,
}

/// Room → (its kind, member → until when the membership is trusted).
type Rooms = HashMap<Arc<str>, (RoomKind, HashMap<Arc<str>, Instant>)>;

#[derive(Debug)]
struct Inner {
    rooms: Mutex<Rooms>,
    /// Bumped on every forget, so a read that raced with one is not remembered.
    epoch: AtomicU64,
    /// Entries held, for the sweep.
    len: AtomicU64,
    /// When expired entries are next swept (under the `rooms` lock).
    sweep: Mutex<Sweep>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            rooms: Mutex::default(),
            epoch: AtomicU64::default(),
            len: AtomicU64::default(),
            sweep: Mutex::new(Sweep::above(SWEEP_ABOVE)),
        }
    }
}

/// A point before a membership read; see [`Memberships::remember`].
#[derive(Debug, Clone, Copy)]
pub struct Epoch(u64);

impl Memberships {
    fn rooms(&self) -> std::sync::MutexGuard<'_, Rooms> {
        self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kind of `room` if `user` is remembered as its member.
    pub fn member_of(&self, room: &str, user: &str) -> Option<RoomKind> {
        let rooms = self.rooms();
        let (kind, members) = rooms.get(room)?;
        let until = members.get(user)?;
        (*until > Instant::now()).then_some(*kind)
    }

    /// Taken before reading a membership from the store.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.inner.epoch.load(Ordering::Acquire))
    }

    /// Remembers that `user` is a member of `room` (of `kind`), as read after `epoch`:
    /// unless something was forgotten since (the read may predate a removal).
    pub fn remember(&self, epoch: Epoch, room: &str, kind: RoomKind, user: &str) {
        let mut rooms = self.rooms();
        if self.inner.epoch.load(Ordering::Acquire) != epoch.0 {
            return;
        }
        let now = Instant::now();
        let mut sweep = self.inner.sweep.lock().unwrap_or_else(|e| e.into_inner());
        if sweep.due(self.inner.len.load(Ordering::Relaxed) as usize) {
            rooms.retain(|_, (_, members)| {
                members.retain(|_, until| *until > now);
                !members.is_empty()
            });
            let held = rooms
                .values()
                .map(|(_, members)| members.len())
                .sum::<usize>();
            self.inner.len.store(held as u64, Ordering::Relaxed);
            sweep.swept(held);
        }
        let (_, members) = rooms
            .entry(Arc::from(room))
            .or_insert_with(|| (kind, HashMap::new()));
        if members
            .insert(Arc::from(user), now + REMEMBER_FOR)
            .is_none()
        {
            self.inner.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `user` is no longer a member of `room`.
    pub fn forget_member(&self, room: &str, user: &str) {
        let mut rooms = self.rooms();
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some((_, members)) = rooms.get_mut(room)
            && members.remove(user).is_some()
        {
            self.inner.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `room` is gone.
    pub fn forget_room(&self, room: &str) {
        let mut rooms = self.rooms();
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some((_, members)) = rooms.remove(room) {
            self.inner
                .len
                .fetch_sub(members.len() as u64, Ordering::Relaxed);
        }
    }

    /// Forgets everything (room events may have been missed).
    pub fn forget_all(&self) {
        let mut rooms = self.rooms();
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        rooms.clear();
        self.inner.len.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn remembered_until_forgotten_or_stale() {
        let memberships = Memberships::default();
        let epoch = memberships.epoch();
        memberships.remember(epoch, "r", RoomKind::Group, "alice");
        memberships.remember(epoch, "r", RoomKind::Group, "bob");
        assert_eq!(memberships.member_of("r", "alice"), Some(RoomKind::Group));
        memberships.forget_member("r", "alice");
        assert_eq!(memberships.member_of("r", "alice"), None);
        assert_eq!(memberships.member_of("r", "bob"), Some(RoomKind::Group));
        tokio::time::advance(REMEMBER_FOR).await;
        assert_eq!(memberships.member_of("r", "bob"), None, "stale");
    }

    #[test]
    fn a_read_that_raced_with_a_removal_is_not_remembered() {
        let memberships = Memberships::default();
        let before_read = memberships.epoch();
        memberships.forget_member("r", "alice"); // committed while the read was in flight
        memberships.remember(before_read, "r", RoomKind::Group, "alice");
        assert_eq!(memberships.member_of("r", "alice"), None);
        let epoch = memberships.epoch();
        memberships.remember(epoch, "r", RoomKind::Public, "alice");
        memberships.forget_room("r");
        assert_eq!(memberships.member_of("r", "alice"), None);
        memberships.remember(memberships.epoch(), "r", RoomKind::Public, "alice");
        memberships.forget_all();
        assert_eq!(memberships.member_of("r", "alice"), None);
    }
}

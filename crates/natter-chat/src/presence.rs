//! Who is online and who is typing in a room, across replicas, coalesced: changes are
//! collected per room and handed out at most once per [`FLUSH_EVERY`] as net changes
//! (someone who came and went in between is no change), so a burst of N arrivals in a
//! room of N costs N frames per flush instead of N². Rooms with more than a configured
//! number of users online are *large*: they get counts, not names.
//!
//! Each replica counts its own users' subscriptions, announces its net changes on the
//! broker once per flush, re-announces everything it holds every [`SYNC_EVERY`], and
//! forgets another replica's users when that replica has been silent for
//! [`FORGET_AFTER`] (it crashed).
//!
//! A new subscriber is given the room as it was at the last flush, the state the next
//! flush's changes are counted from: applying them makes its list exact, and the list is
//! encoded once per room and flush, not once per subscriber.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tungstenite::Utf8Bytes;

/// How often collected presence and typing changes are handed out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How often a replica re-announces the users it holds.
pub const SYNC_EVERY: Duration = Duration::from_secs(30);
/// How long another replica's users stay online without being re-announced.
pub const FORGET_AFTER: Duration = Duration::from_secs(90);

/// Presence state of one replica. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Presence {
    state: Arc<Mutex<State>>,
    /// Rooms with more users online than this are large (counts only).
    list_max: usize,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<Arc<str>, Room>,
    /// Rooms with something to hand out at the next flush.
    dirty: HashSet<Arc<str>>,
    /// This replica's own users whose local state may have changed since the last
    /// announcement: room → user → online on this replica at that announcement.
    unannounced: HashMap<Arc<str>, HashMap<Arc<str>, bool>>,
}

#[derive(Debug, Default)]
struct Room {
    /// Online users, in the order lists name them (a subscription's list is taken as
    /// it is, not sorted and copied name by name).
    users: BTreeMap<Arc<str>, Seen>,
    /// Users whose state may have changed since the last flush → online at that flush.
    changed: HashMap<Arc<str>, bool>,
    /// Who typed since the last flush, in order.
    typing: Vec<Arc<str>>,
    /// The count handed out at the last flush.
    count_sent: usize,
    /// The room's `presence_list` frame as of the last flush, once a subscriber asked.
    listed: Option<Utf8Bytes>,
}

/// Where one user is online in one room.
#[derive(Debug, Default)]
struct Seen {
    /// Subscriptions on this replica.
    local: u32,
    /// Other replicas that announced the user, and until when that counts.
    remote: Vec<(Arc<str>, Instant)>,
}

/// One room's changes at a flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomUpdate {
    /// Replace the list: the room became small (everyone online, sorted) or large (no
    /// names, only `count`).
    List {
        /// Who is online (empty when the room is large).
        user_ids: Vec<Arc<str>>,
        /// How many are online.
        count: usize,
    },
    /// Net changes since the last flush (names empty in a large room).
    Changes {
        /// Who came online.
        online: Vec<String>,
        /// Who went offline.
        offline: Vec<String>,
        /// Who typed.
        typing: Vec<String>,
        /// How many are online now.
        count: usize,
    },
}

/// What a flush hands out.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Per room with something new, its update for local subscribers.
    pub updates: Vec<(Arc<str>, RoomUpdate)>,
    /// This replica's own net changes by room, to announce to the others.
    pub announce: HashMap<String, Changes>,
}

/// What replicas tell each other on the presence topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Announcement {
    /// A user came online or went offline in a room on `node` (the previous release's
    /// announcement; still understood).
    Change {
        /// The announcing replica.
        node: String,
        /// The room.
        room_id: String,
        /// The user.
        user_id: String,
        /// Online or not.
        online: bool,
    },
    /// Net changes on `node` since its previous batch, by room.
    Batch {
        /// The announcing replica.
        node: String,
        /// Room id → who came online and who went offline there.
        rooms: HashMap<String, Changes>,
    },
    /// Everyone online on `node`, by room.
    Sync {
        /// The announcing replica.
        node: String,
        /// Room id → user ids.
        rooms: HashMap<String, Vec<String>>,
    },
}

/// Who came online and who went offline in one room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Came online.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub online: Vec<String>,
    /// Went offline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offline: Vec<String>,
}

impl Seen {
    fn is_online(&self) -> bool {
        self.local > 0 || !self.remote.is_empty()
    }
}

impl Room {
    /// Notes that `user` may change state (online before: `was`).
    fn touch(&mut self, user: &Arc<str>, was: bool) {
        self.changed.entry(user.clone()).or_insert(was);
    }

    /// Drops `user` when nothing keeps them online; true when they went.
    fn forget_if_gone(&mut self, user: &Arc<str>) -> bool {
        if self.users.get(user).is_some_and(Seen::is_online) {
            return false;
        }
        self.users.remove(user);
        true
    }

    /// Applies another replica's word on `user`.
    fn remote(&mut self, node: &str, user: &str, until: Option<Instant>) {
        if until.is_none() && !self.users.contains_key(user) {
            return;
        }
        let user = interned(self.users.get_key_value(user), user);
        let seen = self.users.entry(user.clone()).or_default();
        let was = seen.is_online();
        seen.remote.retain(|(n, _)| &**n != node);
        if let Some(until) = until {
            seen.remote.push((Arc::from(node), until));
        }
        if was != seen.is_online() {
            self.touch(&user, was);
        }
        self.forget_if_gone(&user);
    }

    /// Drops other replicas' word that is older than [`FORGET_AFTER`]; true when
    /// someone went.
    fn expire(&mut self, now: Instant) -> bool {
        let mut gone = Vec::new();
        for (user, seen) in &mut self.users {
            seen.remote.retain(|(_, until)| *until > now);
            if !seen.is_online() {
                gone.push(user.clone());
            }
        }
        for user in &gone {
            self.users.remove(user);
            self.touch(user, true);
        }
        !gone.is_empty()
    }

    /// The update to hand out, if any, resetting what was collected.
    fn flush(&mut self, list_max: usize) -> Option<RoomUpdate> {
        self.listed = None;
        let count = self.users.len();
        let (was_large, large) = (self.count_sent > list_max, count > list_max);
        let changed = std::mem::take(&mut self.changed);
        let typing = std::mem::take(&mut self.typing);
        let previous = std::mem::replace(&mut self.count_sent, count);
        if was_large != large {
            let user_ids = if large { Vec::new() } else { self.sorted() };
            return Some(RoomUpdate::List { user_ids, count });
        }
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        if !large {
            for (user, was) in changed {
                match (was, self.users.contains_key(&user)) {
                    (false, true) => online.push(String::from(&*user)),
                    (true, false) => offline.push(String::from(&*user)),
                    _ => {}
                }
            }
            online.sort_unstable();
            offline.sort_unstable();
        }
        let typing: Vec<String> = match large {
            true => Vec::new(),
            false => typing.iter().map(|u| String::from(&**u)).collect(),
        };
        if online.is_empty() && offline.is_empty() && typing.is_empty() && previous == count {
            return None;
        }
        Some(RoomUpdate::Changes {
            online,
            offline,
            typing,
            count,
        })
    }

    /// Everyone online, sorted.
    fn sorted(&self) -> Vec<Arc<str>> {
        self.users.keys().cloned().collect()
    }

    /// Who was online at the last flush, sorted (nobody by name if the room was large),
    /// and how many: those online now whose state has not changed since, and those
    /// whose state has and who were online then.
    fn as_flushed(&self, list_max: usize) -> (Vec<Arc<str>>, usize) {
        if self.count_sent > list_max {
            return (Vec::new(), self.count_sent);
        }
        let stayed = (self.users.keys()).filter(|u| self.changed.get(*u) != Some(&false));
        let mut users: Vec<Arc<str>> = stayed.cloned().collect();
        let online = users.len();
        let went = self
            .changed
            .iter()
            .filter(|(u, was)| **was && !self.users.contains_key(*u));
        users.extend(went.map(|(u, _)| u.clone()));
        if users.len() > online {
            users.sort_unstable();
        }
        let count = users.len();
        (users, count)
    }
}

impl State {
    fn room(&mut self, room: &str) -> (Arc<str>, &mut Room) {
        let key = interned(self.rooms.get_key_value(room), room);
        (key.clone(), self.rooms.entry(key).or_default())
    }

    /// Notes that this replica's own state of `user` in `room` may change (`was`:
    /// online here before).
    fn unannounced(&mut self, room: &Arc<str>, user: &Arc<str>, was: bool) {
        let users = self.unannounced.entry(room.clone()).or_default();
        users.entry(user.clone()).or_insert(was);
    }

    /// Forgets a room nobody is online in and that has nothing left to hand out.
    fn tidy(&mut self, room: &str) {
        if self.rooms.get(room).is_some_and(|r| {
            r.users.is_empty() && r.changed.is_empty() && r.typing.is_empty() && r.count_sent == 0
        }) {
            self.rooms.remove(room);
        }
    }
}

impl Presence {
    /// Presence where rooms with more than `list_max` users online are large.
    pub fn new(list_max: usize) -> Self {
        Self {
            state: Arc::default(),
            list_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more subscription of `user` to `room` on this replica.
    pub fn join(&self, room: &str, user: &str) {
        let mut state = self.lock();
        let (room_id, entry) = state.room(room);
        let user = interned(entry.users.get_key_value(user), user);
        let seen = entry.users.entry(user.clone()).or_default();
        let (was, was_here) = (seen.is_online(), seen.local > 0);
        seen.local += 1;
        if !was {
            entry.touch(&user, was);
        }
        if !was_here {
            state.unannounced(&room_id, &user, false);
        }
        state.dirty.insert(room_id);
    }

    /// Counts one subscription of `user` to `room` on this replica less.
    pub fn leave(&self, room: &str, user: &str) {
        let mut state = self.lock();
        let Some((room_id, _)) = state.rooms.get_key_value(room) else {
            return;
        };
        let room_id = room_id.clone();
        let entry = state.rooms.get_mut(room).expect("present");
        let Some(seen) = entry.users.get_mut(user).filter(|seen| seen.local > 0) else {
            return;
        };
        seen.local -= 1;
        if seen.local > 0 {
            return;
        }
        let user = interned(entry.users.get_key_value(user), user);
        if entry.forget_if_gone(&user) {
            entry.touch(&user, true);
        }
        state.unannounced(&room_id, &user, true);
        state.dirty.insert(room_id);
    }

    /// Someone typed in `room` (on any replica): handed out at the next flush.
    pub fn typing(&self, room: &str, user: &str) {
        let mut state = self.lock();
        let (room_id, entry) = state.room(room);
        if !entry.typing.iter().any(|u| &**u == user) {
            entry.typing.push(Arc::from(user));
        }
        state.dirty.insert(room_id);
    }

    /// The `presence_list` frame of `room` as `encode` makes it from who was online in
    /// it on any replica at its last flush (sorted; nobody by name when it was large)
    /// and how many. The changes handed out at the next flush are counted from that
    /// state, so a subscriber that applies them is exact (a list of the moment would miss
    /// whoever left and came back before the flush, and keep whoever came and left). The
    /// frame is made once per room and flush and shared by every subscriber until the
    /// next (a list of 100 names cost a reconnect storm an encoding per subscriber).
    pub fn list_frame(
        &self,
        room: &str,
        encode: impl FnOnce(Vec<Arc<str>>, usize) -> Utf8Bytes,
    ) -> Utf8Bytes {
        let mut state = self.lock();
        let Some(room) = state.rooms.get_mut(room) else {
            return encode(Vec::new(), 0);
        };
        if let Some(frame) = &room.listed {
            return frame.clone();
        }
        let (user_ids, count) = room.as_flushed(self.list_max);
        room.listed.insert(encode(user_ids, count)).clone()
    }

    /// What [`list_frame`](Self::list_frame) lists, unencoded.
    #[cfg(test)]
    fn list(&self, room: &str) -> (Vec<Arc<str>>, usize) {
        let state = self.lock();
        state
            .rooms
            .get(room)
            .map_or((Vec::new(), 0), |r| r.as_flushed(self.list_max))
    }

    /// Whether `user` is online in `room` on any replica.
    pub fn is_online(&self, room: &str, user: &str) -> bool {
        let state = self.lock();
        state
            .rooms
            .get(room)
            .is_some_and(|r| r.users.contains_key(user))
    }

    /// Hands out what changed since the last flush, by room; and this replica's own net
    /// changes to announce to the others.
    pub fn flush(&self) -> Flushed {
        let mut state = self.lock();
        let now = Instant::now();
        let dirty = std::mem::take(&mut state.dirty);
        let mut updates = Vec::new();
        for room_id in dirty {
            if let Some(room) = state.rooms.get_mut(&room_id) {
                room.expire(now);
                if let Some(update) = room.flush(self.list_max) {
                    updates.push((room_id.clone(), update));
                }
            }
            state.tidy(&room_id);
        }
        let unannounced = std::mem::take(&mut state.unannounced);
        let mut announce = HashMap::new();
        for (room_id, users) in unannounced {
            let room = state.rooms.get(&room_id);
            let here = |user: &str| {
                room.and_then(|r| r.users.get(user))
                    .is_some_and(|s| s.local > 0)
            };
            let mut changes = Changes::default();
            for (user, was) in users {
                match (was, here(&user)) {
                    (false, true) => changes.online.push(String::from(&*user)),
                    (true, false) => changes.offline.push(String::from(&*user)),
                    _ => {}
                }
            }
            if !changes.online.is_empty() || !changes.offline.is_empty() {
                announce.insert(room_id.to_string(), changes);
            }
        }
        Flushed { updates, announce }
    }

    /// Forgets other replicas' users that were not re-announced in time, handing their
    /// departure out at the next flush.
    pub fn expire(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        let mut gone = Vec::new();
        for (room_id, room) in &mut state.rooms {
            if room.expire(now) {
                gone.push(room_id.clone());
            }
        }
        state.dirty.extend(gone);
    }

    /// This replica's users by room, for a [`Announcement::Sync`].
    pub fn snapshot(&self) -> HashMap<String, Vec<String>> {
        let state = self.lock();
        let here = |room: &Room| -> Vec<String> {
            let local = room.users.iter().filter(|(_, seen)| seen.local > 0);
            local.map(|(user, _)| String::from(&**user)).collect()
        };
        state
            .rooms
            .iter()
            .map(|(room_id, room)| (room_id.to_string(), here(room)))
            .filter(|(_, users)| !users.is_empty())
            .collect()
    }

    /// Records another replica's announcement.
    pub fn apply(&self, announcement: &Announcement) {
        let until = Instant::now() + FORGET_AFTER;
        let mut state = self.lock();
        let record = |state: &mut State, node: &str, room: &str, user: &str, on: bool| {
            let (room_id, entry) = state.room(room);
            entry.remote(node, user, on.then_some(until));
            state.dirty.insert(room_id.clone());
            state.tidy(&room_id);
        };
        match announcement {
            Announcement::Change {
                node,
                room_id,
                user_id,
                online,
            } => record(&mut state, node, room_id, user_id, *online),
            Announcement::Batch { node, rooms } => {
                for (room, changes) in rooms {
                    for user in &changes.online {
                        record(&mut state, node, room, user, true);
                    }
                    for user in &changes.offline {
                        record(&mut state, node, room, user, false);
                    }
                }
            }
            Announcement::Sync { node, rooms } => {
                for (room, users) in rooms {
                    for user in users {
                        record(&mut state, node, room, user, true);
                    }
                }
            }
        }
    }
}

/// `key` as a map already holds it (`held`: one allocation per distinct id), or a new one.
fn interned<V>(held: Option<(&Arc<str>, V)>, key: &str) -> Arc<str> {
    held.map_or_else(|| Arc::from(key), |(key, _)| key.clone())
}

#[cfg(test)]
mod tests;

//! The node's fan-out: which local connections subscribe to which rooms, and delivery of
//! one shared encoded frame to each of them through their bounded queues.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use natter_core::events::pb;
use natter_core::queue::{Policy, Queue};
use natter_core::store::Level;
use tungstenite::Utf8Bytes;

/// Something a connection must hear about a room.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stored message: its room, sequence number and encoded `message` frame (shared by
    /// every recipient).
    Message {
        /// The room.
        room_id: Arc<str>,
        /// Its sequence number.
        seq: i64,
        /// When it was stored (Unix ms), for the delivery latency.
        created_ms: i64,
        /// The encoded frame (validated UTF-8 once, shared by every recipient).
        frame: Utf8Bytes,
        /// The trace of the send, when it is sampled: each delivery joins it.
        trace: Option<opentelemetry::Context>,
        /// The message itself, for the counts and notifications of members' streams.
        message: Arc<pb::Message>,
    },
    /// A member's read marker moved (to that member's own streams, and in a room that
    /// shows receipts to its subscribers).
    Read {
        /// The room.
        room_id: Arc<str>,
        /// The reader.
        user_id: Arc<str>,
        /// The marker.
        seq: i64,
        /// Whether other members may see it.
        shared: bool,
    },
    /// The user of a stream became a member of a room.
    MemberAdded {
        /// The room.
        room_id: Arc<str>,
        /// The new member.
        user_id: Arc<str>,
    },
    /// The room was renamed.
    Renamed {
        /// The room.
        room_id: Arc<str>,
        /// Its new name.
        name: Arc<str>,
    },
    /// The user of a stream chose a notification level for a room (`None`: the
    /// default).
    Level {
        /// The room.
        room_id: Arc<str>,
        /// The chosen level.
        level: Option<Level>,
    },
    /// The user of a stream moved their marker in a thread.
    ThreadRead {
        /// The room.
        room_id: Arc<str>,
        /// The thread's root.
        root: i64,
        /// The marker.
        seq: i64,
    },
    /// A thread rooted at a message of the user of a stream got a reply (the starter
    /// follows it from the first one).
    ThreadRoot {
        /// The room.
        room_id: Arc<str>,
        /// The thread's root.
        root: i64,
    },
    /// An unsequenced frame for the room's subscribers (typing, message updates).
    Signal {
        /// The room.
        room_id: Arc<str>,
        /// The encoded frame.
        frame: Utf8Bytes,
    },
    /// Presence and typing in a room since the previous flush, in both forms a
    /// connection may have asked for.
    Presence {
        /// The room.
        room_id: Arc<str>,
        /// One `presence_changes` (or `presence_list`) frame.
        batched: Utf8Bytes,
        /// The same as `presence`, `typing` (or `presence_list`) frames.
        singles: Arc<[Utf8Bytes]>,
    },
    /// The room was deleted.
    RoomDeleted(Arc<str>),
    /// A member left or was removed.
    MemberRemoved {
        /// The room.
        room_id: Arc<str>,
        /// The former member.
        user_id: Arc<str>,
    },
    /// Every message of the room up to `seq` is committed: a subscriber that has not
    /// seen them all fetches the rest from the store (sent after a broker outage, a
    /// re-subscription or dropped frames, when no later message may come to reveal the
    /// gap).
    Head {
        /// The room.
        room_id: Arc<str>,
        /// Its newest sequence number.
        seq: i64,
    },
    /// The connection's session was logged out or revoked.
    SessionRevoked,
    /// The broker connection was lost for a while: a revocation may have been missed, so
    /// the connection checks its token against the deny-list again.
    Recheck,
}

/// How the hub reaches one connection: the connection's bounded queue. One shared
/// allocation per connection (a tokio channel with its own overflow flag and waker took
/// ~870 bytes on every idle socket, mostly its cache-padded halves and first block).
#[derive(Debug, Clone)]
pub struct Inbox(Arc<Queue<TooSlow>>);

/// A connection's end of its inbox.
#[derive(Debug)]
pub struct Mailbox(Arc<Queue<TooSlow>>);

/// What a connection takes from its mailbox.
#[derive(Debug)]
pub enum Taken {
    /// The next event, in delivery order.
    Event(Arc<Event>),
    /// An event had to be dropped because the queue was full: the connection is too slow
    /// (reported before any event still queued).
    Overflowed,
}

/// An inbox's policy: an event that does not fit marks the connection as too slow, lets
/// the queued events go and refuses later ones (the connection resumes from the store).
#[derive(Debug, Default)]
struct TooSlow {
    overflowed: bool,
}

impl Policy for TooSlow {
    type Item = Arc<Event>;
    type Offer = Arc<Event>;
    type Taken = Taken;
    /// A larger queue (after a burst) is freed once drained.
    const KEPT_SLOTS: usize = 16;

    fn offer(
        &mut self,
        events: &mut VecDeque<Arc<Event>>,
        capacity: usize,
        event: Arc<Event>,
    ) -> bool {
        if self.overflowed {
            return false;
        }
        if events.len() < capacity {
            events.push_back(event);
        } else {
            self.overflowed = true;
            *events = VecDeque::new();
        }
        true
    }

    fn take(&mut self, events: &mut VecDeque<Arc<Event>>) -> Option<Taken> {
        if self.overflowed {
            return Some(Taken::Overflowed);
        }
        events.pop_front().map(Taken::Event)
    }
}

/// A new inbox holding at most `capacity` undelivered events.
pub fn inbox(capacity: usize) -> (Inbox, Mailbox) {
    let queue = Arc::new(Queue::new(capacity));
    (Inbox(queue.clone()), Mailbox(queue))
}

impl Mailbox {
    /// The next event or the overflow, without waiting.
    pub fn try_take(&self) -> Option<Taken> {
        self.0.try_take()
    }

    /// Waits for the next event or the overflow. Cancel-safe: nothing is taken until it
    /// is returned. The queue's own future, not one wrapping it: every waiting
    /// connection holds it.
    pub fn take(&self) -> impl Future<Output = Taken> + '_ {
        self.0.take()
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Slots a map of subscribers keeps however few it holds: shrinking a small map saves
/// less than the rehash costs.
const SHRINK_ABOVE: usize = 64;

/// The local connections under one key (a room, a session, a user) by connection id.
/// Most sessions and users have one, kept inline: a map of one cost ~190 bytes per socket.
#[derive(Debug)]
enum Subscribers {
    One(u64, Inbox),
    Many(HashMap<u64, Inbox>),
}

impl Subscribers {
    fn insert(&mut self, id: u64, inbox: Inbox) {
        match self {
            Self::One(one, first) if *one == id => *first = inbox,
            Self::One(one, first) => {
                let map = HashMap::from([(*one, first.clone()), (id, inbox)]);
                *self = Self::Many(map);
            }
            Self::Many(map) => {
                map.insert(id, inbox);
            }
        }
    }

    /// Removes connection `id`; whether none is left. A map that has emptied to a quarter
    /// of its capacity gives half back: a room of 10,000 that its members leave would
    /// otherwise keep ~300 KB of slots until its last member goes.
    fn remove(&mut self, id: u64) -> bool {
        match self {
            Self::One(one, _) => *one == id,
            Self::Many(map) => {
                map.remove(&id);
                if map.capacity() > SHRINK_ABOVE && map.len() * 4 < map.capacity() {
                    map.shrink_to(map.len() * 2);
                }
                map.is_empty()
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::One(..) => 1,
            Self::Many(map) => map.len(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &Inbox)> {
        let (one, many) = match self {
            Self::One(id, inbox) => (Some((*id, inbox)), None),
            Self::Many(map) => (None, Some(map.iter().map(|(id, inbox)| (*id, inbox)))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// Local subscribers by room (a user's event stream is subscribed to each of the user's
/// rooms), local connections by session, and local event streams by user. Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    rooms: Arc<RwLock<HashMap<Arc<str>, Subscribers>>>,
    sessions: Arc<RwLock<HashMap<Arc<str>, Subscribers>>>,
    users: Arc<RwLock<HashMap<Arc<str>, Subscribers>>>,
}

impl Hub {
    /// Starts delivering `room`'s events to connection `id`; the room's id as the hub
    /// keeps it, for the connection to key its own subscription with. One copy shared by
    /// every local subscriber: no allocation each, and a delivery's lookup of the room in
    /// the connection's subscriptions compares against bytes already in cache.
    pub fn subscribe(&self, room: &str, id: u64, inbox: Inbox) -> Arc<str> {
        insert(&self.rooms, room, id, inbox)
    }

    /// Stops delivering `room`'s events to connection `id`.
    pub fn unsubscribe(&self, room: &str, id: u64) {
        remove(&self.rooms, room, id);
    }

    /// Connection `id` is authenticated in `session`: it hears of the session's
    /// revocation.
    pub fn enter_session(&self, session: &str, id: u64, inbox: Inbox) {
        insert(&self.sessions, session, id, inbox);
    }

    /// Connection `id` no longer belongs to `session`.
    pub fn leave_session(&self, session: &str, id: u64) {
        remove(&self.sessions, session, id);
    }

    /// Connection `id` has `user`'s event stream: it hears of the user's own events.
    pub fn watch_user(&self, user: &str, id: u64, inbox: Inbox) {
        insert(&self.users, user, id, inbox);
    }

    /// Connection `id` no longer has `user`'s event stream.
    pub fn unwatch_user(&self, user: &str, id: u64) {
        remove(&self.users, user, id);
    }

    /// Local connections with `user`'s event stream.
    pub fn watchers(&self, user: &str) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(user).map_or(0, Subscribers::len)
    }

    /// The users whose event streams have local connections.
    pub fn users(&self) -> Vec<Arc<str>> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.keys().cloned().collect()
    }

    /// Queues `event` for every local event stream of `user`.
    pub fn dispatch_user(&self, user: &str, event: Event) {
        send_to(&self.users, user, event);
    }

    /// Tells every local connection of `session` that it was revoked.
    pub fn revoke_session(&self, session: &str) {
        send_to(&self.sessions, session, Event::SessionRevoked);
    }

    /// Asks every authenticated local connection to check its token again.
    pub fn recheck_sessions(&self) {
        let event = Arc::new(Event::Recheck);
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        for (_, inbox) in sessions.values().flat_map(Subscribers::iter) {
            inbox.offer(&event);
        }
    }

    /// The rooms that have local subscribers.
    pub fn rooms(&self) -> Vec<Arc<str>> {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.keys().cloned().collect()
    }

    /// Local subscriptions of `room`.
    pub fn subscribers(&self, room: &str) -> usize {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        rooms.get(room).map_or(0, Subscribers::len)
    }

    /// Events queued for connections and not yet written (each connection counted once,
    /// however many rooms it subscribed to).
    pub fn queued(&self) -> usize {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        rooms
            .values()
            .flat_map(Subscribers::iter)
            .filter(|(id, _)| seen.insert(*id))
            .map(|(_, inbox)| inbox.0.len())
            .sum()
    }

    /// Queues `event` for every local subscriber of its room without waiting (each gets
    /// a pointer to the one shared event); a full queue marks that connection as too slow
    /// (it is then closed and resumes later).
    pub fn dispatch(&self, room: &str, event: Event) {
        send_to(&self.rooms, room, event);
    }
}

impl Inbox {
    /// Queues `event` without waiting; a full queue flags the connection as too slow.
    fn offer(&self, event: &Arc<Event>) {
        self.0.offer(Arc::clone(event));
    }
}

type Index = RwLock<HashMap<Arc<str>, Subscribers>>;

/// Adds connection `id` under `key`; the key as the index keeps it.
fn insert(index: &Index, key: &str, id: u64, inbox: Inbox) -> Arc<str> {
    let mut index = index.write().unwrap_or_else(|e| e.into_inner());
    if let Some(kept) = index.get_key_value(key).map(|(kept, _)| Arc::clone(kept)) {
        if let Some(members) = index.get_mut(key) {
            members.insert(id, inbox);
        }
        return kept;
    }
    let kept = Arc::<str>::from(key);
    index.insert(kept.clone(), Subscribers::One(id, inbox));
    kept
}

fn remove(index: &Index, key: &str, id: u64) {
    let mut index = index.write().unwrap_or_else(|e| e.into_inner());
    if index.get_mut(key).is_some_and(|members| members.remove(id)) {
        index.remove(key);
    }
}

fn send_to(index: &Index, key: &str, event: Event) {
    let event = Arc::new(event);
    let index = index.read().unwrap_or_else(|e| e.into_inner());
    for (_, inbox) in index.get(key).into_iter().flat_map(Subscribers::iter) {
        inbox.offer(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: i64) -> Event {
        Event::Message {
            room_id: Arc::from("r"),
            seq,
            created_ms: 0,
            frame: Utf8Bytes::from_static("{}"),
            trace: None,
            message: Arc::default(),
        }
    }

    #[tokio::test]
    async fn delivers_to_subscribers_of_the_room_only() {
        let hub = Hub::default();
        let (a, a_box) = inbox(8);
        let (b, b_box) = inbox(8);
        hub.subscribe("r", 1, a);
        hub.subscribe("other", 2, b);
        hub.dispatch("r", message(1));
        assert!(matches!(
            a_box.take().await,
            Taken::Event(event) if matches!(*event, Event::Message { seq: 1, .. })
        ));
        assert!(b_box.try_take().is_none());
        hub.unsubscribe("r", 1);
        assert_eq!(hub.subscribers("r"), 0);
    }

    #[test]
    fn a_room_its_members_leave_gives_its_slots_back() {
        let hub = Hub::default();
        let boxes: Vec<_> = (0..1_000).map(|_| inbox(1)).collect();
        for (id, (inbox, _)) in (0..).zip(&boxes) {
            hub.subscribe("r", id, inbox.clone());
        }
        let capacity = |hub: &Hub| match hub.rooms.read().unwrap().get("r") {
            Some(Subscribers::Many(map)) => map.capacity(),
            other => panic!("expected a map of subscribers, got {other:?}"),
        };
        let full = capacity(&hub);
        for id in 10..1_000 {
            hub.unsubscribe("r", id);
        }
        assert_eq!(
            hub.subscribers("r"),
            10,
            "the ten who stayed are still there"
        );
        assert!(
            capacity(&hub) <= SHRINK_ABOVE * 2,
            "{} slots kept for 10 members (were {full})",
            capacity(&hub)
        );
        hub.dispatch("r", message(1));
        for (_, mailbox) in &boxes[..10] {
            assert!(mailbox.try_take().is_some(), "every member left is reached");
        }
    }

    #[test]
    fn subscribers_of_a_room_share_one_copy_of_its_id() {
        let hub = Hub::default();
        let (a, _a_box) = inbox(8);
        let (b, _b_box) = inbox(8);
        let first = hub.subscribe("r", 1, a);
        let second = hub.subscribe("r", 2, b);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(hub.subscribers("r"), 2, "both are subscribers");
    }

    #[tokio::test]
    async fn a_full_queue_flags_the_connection_instead_of_growing() {
        let hub = Hub::default();
        let (slow, slow_box) = inbox(2);
        hub.subscribe("r", 1, slow);
        for seq in 1..=2 {
            hub.dispatch("r", message(seq));
        }
        assert_eq!(hub.queued(), 2);
        hub.dispatch("r", message(3));
        assert_eq!(hub.queued(), 0, "an overflowed queue lets its events go");
        assert!(matches!(slow_box.take().await, Taken::Overflowed));
        hub.dispatch("r", message(4));
        assert_eq!(hub.queued(), 0, "nothing more is queued for it");
    }

    #[tokio::test]
    async fn events_come_in_order_and_a_drained_burst_frees_its_slots() {
        let (inbox, mailbox) = inbox(256);
        for seq in 1..=100 {
            inbox.offer(&Arc::new(message(seq)));
        }
        for seq in 1..=100 {
            let Taken::Event(event) = mailbox.take().await else {
                panic!("no overflow below the capacity");
            };
            assert!(matches!(*event, Event::Message { seq: s, .. } if s == seq));
        }
        assert_eq!(inbox.0.allocated(), 0);
        let waiting = tokio::spawn(async move { mailbox.take().await });
        tokio::task::yield_now().await;
        inbox.offer(&Arc::new(message(101)));
        let taken = waiting.await.unwrap();
        assert!(matches!(taken, Taken::Event(e) if matches!(*e, Event::Message { seq: 101, .. })));
    }

    #[test]
    fn a_closed_mailbox_takes_nothing_more() {
        let (inbox, mailbox) = inbox(8);
        inbox.offer(&Arc::new(message(1)));
        drop(mailbox);
        inbox.offer(&Arc::new(message(2)));
        assert!(inbox.0.is_empty());
    }

    #[test]
    fn a_session_of_one_or_several_connections_hears_its_revocation() {
        let hub = Hub::default();
        let (a, a_box) = inbox(8);
        let (b, b_box) = inbox(8);
        let revoked =
            |taken| matches!(taken, Some(Taken::Event(e)) if matches!(*e, Event::SessionRevoked));
        hub.enter_session("s", 1, a.clone());
        hub.enter_session("s", 2, b);
        hub.leave_session("s", 2);
        hub.revoke_session("s");
        assert!(revoked(a_box.try_take()));
        assert!(b_box.try_take().is_none());
        hub.leave_session("s", 1);
        assert!(hub.sessions.read().unwrap().is_empty());
        hub.enter_session("s", 1, a);
        hub.leave_session("s", 3);
        hub.revoke_session("s");
        assert!(revoked(a_box.try_take()), "one left after another's leave");
    }
}

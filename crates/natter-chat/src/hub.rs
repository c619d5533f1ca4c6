//! The node's fan-out: which local connections subscribe to which rooms, and delivery of
//! one shared encoded frame to each of them through their bounded queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use natter_core::events::pb;
use natter_core::store::Level;
use tokio::sync::{Notify, mpsc};
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

/// How the hub reaches one connection.
#[derive(Debug, Clone)]
pub struct Inbox {
    sender: mpsc::Sender<Arc<Event>>,
    overflowed: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

/// A connection's end of its inbox.
#[derive(Debug)]
pub struct Mailbox {
    /// Events in delivery order.
    pub events: mpsc::Receiver<Arc<Event>>,
    /// Signalled when an event had to be dropped.
    pub overflow: Overflow,
}

/// Tells a connection that its queue overflowed.
#[derive(Debug)]
pub struct Overflow {
    overflowed: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

/// One room's local subscribers by connection id.
type Subscribers = HashMap<u64, Inbox>;

/// Local subscribers by room (a user's event stream is subscribed to each of the user's
/// rooms), local connections by session, and local event streams by user. Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    rooms: Arc<RwLock<HashMap<Arc<str>, Subscribers>>>,
    sessions: Arc<RwLock<HashMap<Arc<str>, Subscribers>>>,
    users: Arc<RwLock<HashMap<Arc<str>, Subscribers>>>,
}

/// A new inbox holding at most `capacity` undelivered events.
pub fn inbox(capacity: usize) -> (Inbox, Mailbox) {
    let (sender, events) = mpsc::channel(capacity);
    let overflowed = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let inbox = Inbox {
        sender,
        overflowed: overflowed.clone(),
        wake: wake.clone(),
    };
    let overflow = Overflow { overflowed, wake };
    (inbox, Mailbox { events, overflow })
}

impl Overflow {
    /// Resolves when the hub had to drop an event because the queue was full.
    pub async fn happened(&self) {
        loop {
            let notified = self.wake.notified();
            if self.overflowed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl Hub {
    /// Starts delivering `room`'s events to connection `id`.
    pub fn subscribe(&self, room: &str, id: u64, inbox: Inbox) {
        insert(&self.rooms, room, id, inbox);
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
        users.get(user).map_or(0, HashMap::len)
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
        for inbox in sessions.values().flat_map(HashMap::values) {
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
        rooms.get(room).map_or(0, HashMap::len)
    }

    /// Events queued for connections and not yet written (each connection counted once,
    /// however many rooms it subscribed to).
    pub fn queued(&self) -> usize {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        rooms
            .values()
            .flat_map(HashMap::iter)
            .filter(|(id, _)| seen.insert(**id))
            .map(|(_, inbox)| inbox.sender.max_capacity() - inbox.sender.capacity())
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
        if self.sender.try_send(Arc::clone(event)).is_err() {
            self.overflowed.store(true, Ordering::Release);
            self.wake.notify_one();
        }
    }
}

type Index = RwLock<HashMap<Arc<str>, Subscribers>>;

fn insert(index: &Index, key: &str, id: u64, inbox: Inbox) {
    let mut index = index.write().unwrap_or_else(|e| e.into_inner());
    index.entry(Arc::from(key)).or_default().insert(id, inbox);
}

fn remove(index: &Index, key: &str, id: u64) {
    let mut index = index.write().unwrap_or_else(|e| e.into_inner());
    if let Some(members) = index.get_mut(key) {
        members.remove(&id);
        if members.is_empty() {
            index.remove(key);
        }
    }
}

fn send_to(index: &Index, key: &str, event: Event) {
    let event = Arc::new(event);
    let index = index.read().unwrap_or_else(|e| e.into_inner());
    for inbox in index.get(key).into_iter().flat_map(HashMap::values) {
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
        let (a, mut a_box) = inbox(8);
        let (b, mut b_box) = inbox(8);
        hub.subscribe("r", 1, a);
        hub.subscribe("other", 2, b);
        hub.dispatch("r", message(1));
        assert!(matches!(
            a_box.events.recv().await,
            Some(event) if matches!(*event, Event::Message { seq: 1, .. })
        ));
        assert!(b_box.events.try_recv().is_err());
        hub.unsubscribe("r", 1);
        assert_eq!(hub.subscribers("r"), 0);
    }

    #[tokio::test]
    async fn a_full_queue_flags_the_connection_instead_of_growing() {
        let hub = Hub::default();
        let (slow, slow_box) = inbox(2);
        hub.subscribe("r", 1, slow);
        for seq in 1..=3 {
            hub.dispatch("r", message(seq));
        }
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            slow_box.overflow.happened(),
        )
        .await
        .expect("overflow is signalled");
        assert_eq!(
            slow_box.events.len(),
            2,
            "the queue never exceeds its bound"
        );
    }
}

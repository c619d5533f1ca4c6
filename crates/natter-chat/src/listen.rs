//! Which rooms' events this replica receives from the broker: those it has local
//! subscribers in, each on the room's own topic, so a replica's broker traffic follows the
//! rooms it serves rather than every room (and the own topics of the users whose event
//! streams it serves). The first local subscription to a room adds
//! the room's topic to the relay's topic set and waits until the broker delivers it —
//! before the subscriber reads the store, so nothing committed in between goes unheard;
//! when the last one leaves, the topic is removed. Adds and removes are applied one at a
//! time, in order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use natter_core::broker::Topics;
use natter_core::events;

use crate::service::Chat;

/// The relay's topic set (none while it reconnects) and the topics in it.
#[derive(Debug, Default)]
pub(crate) struct Listening {
    topics: Option<Box<dyn Topics>>,
    names: HashSet<String>,
}

/// Shared by the relay and the connections; one change at a time.
pub(crate) type Listener = Arc<tokio::sync::Mutex<Listening>>;

/// The newest sequence number known per listened room: read from the store when
/// listening began, then advanced by every message and head this replica sees of it. A
/// subscription without `since` starts after it without reading the store; a head that
/// lags a message in flight only means the subscriber also gets that message.
#[derive(Debug, Default)]
pub(crate) struct Heads(Mutex<HashMap<Arc<str>, i64>>);

impl Heads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, i64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest known seq of `room`, if it is listened to.
    pub(crate) fn get(&self, room: &str) -> Option<i64> {
        self.lock().get(room).copied()
    }

    /// `room` has a message `seq` (ignored for rooms not listened to).
    pub(crate) fn advance(&self, room: &str, seq: i64) {
        if let Some(head) = self.lock().get_mut(room) {
            *head = (*head).max(seq);
        }
    }

    /// Starts following `room` from `seq`, read from the store.
    pub(crate) fn start(&self, room: &str, seq: i64) {
        let mut heads = self.lock();
        let head = heads.entry(Arc::from(room)).or_insert(seq);
        *head = (*head).max(seq);
    }

    fn stop(&self, room: &str) {
        self.lock().remove(room);
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

impl Chat {
    /// Receives `room`'s events from other replicas from now on. Without a broker
    /// connection it returns at once: the relay listens to every subscribed room when it
    /// reconnects, then catches them up from the store.
    pub(crate) async fn listen(&self, room: &str) {
        if !self.listen_to(events::room_topic(room)).await {
            return;
        }
        self.metrics.listened_rooms.inc();
        // Read outside the lock: a slow store must not hold up other rooms' listening
        // (a head set after the room was left again is only ever lower than the truth).
        if let Ok(heads) = self.store.room_heads(&[room]).await {
            for (room, seq) in heads {
                self.heads.start(&room, seq);
            }
        }
    }

    /// Receives the events of `user`'s own topic from now on (for their event stream).
    pub(crate) async fn listen_user(&self, user: &str) {
        self.listen_to(events::user_topic(user)).await;
    }

    /// Adds `topic` to the relay's set; true when it was added now.
    async fn listen_to(&self, topic: String) -> bool {
        let mut listening = self.listener.lock().await;
        if listening.names.contains(&topic) {
            return false;
        }
        let Some(topics) = &listening.topics else {
            return false;
        };
        if let Err(error) = topics.add(&topic).await {
            tracing::warn!(%error, "listening to a topic failed; the relay reconnects");
            return false;
        }
        listening.names.insert(topic);
        true
    }

    /// Stops local subscription `id` to `room`; stops receiving the room's events when it
    /// was the last.
    pub(crate) fn leave_room(&self, room: &str, id: u64) {
        self.hub.unsubscribe(room, id);
        if self.hub.subscribers(room) > 0 {
            return;
        }
        let chat = self.clone();
        let room = room.to_owned();
        tokio::spawn(async move {
            // Someone may have subscribed again meanwhile.
            let unheard = || chat.hub.subscribers(&room) == 0;
            if chat
                .stop_listening(events::room_topic(&room), unheard)
                .await
            {
                chat.metrics.listened_rooms.dec();
                chat.heads.stop(&room);
            }
        });
    }

    /// Ends connection `id`'s event stream of `user`; stops receiving the user's topic
    /// when it was the last.
    pub(crate) fn unwatch_user(&self, user: &str, id: u64) {
        self.hub.unwatch_user(user, id);
        if self.hub.watchers(user) > 0 {
            return;
        }
        let chat = self.clone();
        let user = user.to_owned();
        tokio::spawn(async move {
            let unheard = || chat.hub.watchers(&user) == 0;
            chat.stop_listening(events::user_topic(&user), unheard)
                .await;
        });
    }

    /// Removes `topic` from the relay's set if `unheard` still holds under the lock;
    /// true when it was removed.
    async fn stop_listening(&self, topic: String, unheard: impl Fn() -> bool) -> bool {
        let mut listening = self.listener.lock().await;
        if !unheard() || !listening.names.remove(&topic) {
            return false;
        }
        if let Some(topics) = &listening.topics {
            let _ = topics.remove(&topic).await;
        }
        true
    }

    /// Makes `topics` (a new broker connection's) the relay's set, listening to every
    /// room that has local subscribers and every user with a local event stream.
    pub(crate) async fn listen_all(&self, topics: Box<dyn Topics>) -> Result<(), String> {
        let mut listening = self.listener.lock().await;
        listening.topics = None;
        listening.names.clear();
        // Read again by the catch-up that follows.
        self.heads.clear();
        let (rooms, users) = (self.hub.rooms(), self.hub.users());
        let names = (rooms.iter().map(|room| events::room_topic(room)))
            .chain(users.iter().map(|user| events::user_topic(user)));
        for name in names {
            topics.add(&name).await.map_err(|e| e.to_string())?;
            listening.names.insert(name);
        }
        listening.topics = Some(topics);
        (self.metrics.listened_rooms).set(rooms.len() as i64);
        Ok(())
    }
}

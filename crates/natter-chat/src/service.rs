//! The chat service's state and its operations: authorize, store-then-acknowledge sends,
//! edits, read markers, history for resuming subscribers, and fan-out to local
//! subscribers (the relay to other replicas is in `relay.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use natter_core::broker::Broker;
use natter_core::events::{self, Kind, pb};
use natter_core::memberships::Memberships;
use natter_core::messaging::{Messages, Post};
use natter_core::outbox::{Outbox, OutboxParts};
use natter_core::policy::Action;
use natter_core::shutdown::Shutdown;
use natter_core::store::{HistoryOrder, Level, MessageRecord, Posted, RoomRecord, Store};
use natter_core::token::TokenVerifier;

use crate::error::ChatError;
use crate::hub::{Event, Hub};
use crate::listen::{Heads, Listener};
use crate::local::{self, Subscribers};
use crate::metrics::ChatMetrics;
use crate::presence::Presence;
use crate::protocol::{Mention, ServerFrame, Thread};

/// Most messages replayed to a resuming subscriber; more are left to the history API.
pub const REPLAY_LIMIT: u32 = 500;

/// The chat service. Cheap to clone: one pointer (each connection holds one).
#[derive(Debug, Clone)]
pub struct Chat(Arc<Shared>);

/// What the chat service holds.
#[derive(Debug)]
pub struct Shared {
    pub(crate) store: Store,
    pub(crate) verifier: TokenVerifier,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) hub: Hub,
    pub(crate) shutdown: Shutdown,
    pub(crate) limits: Limits,
    next_connection: Arc<AtomicU64>,
    pub(crate) relaying: tokio::sync::watch::Sender<bool>,
    /// The owner of messages' life; its outbox publishes to the other replicas.
    pub(crate) messages: Messages,
    pub(crate) presence: Presence,
    /// The rooms whose events this replica receives from the broker.
    pub(crate) listener: Listener,
    /// Memberships the messages' owner remembers; the relay forgets them on room events.
    pub(crate) memberships: Memberships,
    pub(crate) metrics: ChatMetrics,
    /// The newest seq of each listened room.
    pub(crate) heads: Arc<Heads>,
    /// Authentications and subscriptions being processed; more wait for a turn.
    admission: Arc<tokio::sync::Semaphore>,
}

/// A turn to process an authentication or subscription (see [`Limits::in_flight`]).
pub(crate) type Turn = tokio::sync::OwnedSemaphorePermit;

impl std::ops::Deref for Chat {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Undelivered frames a connection may have queued before it is closed as too slow.
    pub queue: usize,
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Sends per second allowed (token bucket refill rate).
    pub sends_per_sec: f64,
    /// Sends allowed in a burst (token bucket size).
    pub send_burst: f64,
    /// Refused sends in a row after which the connection is closed as abusive.
    pub abuse_after: u32,
    /// Seconds a new connection has to send `auth`.
    pub auth_timeout_secs: u64,
    /// Rooms one connection may subscribe to at once.
    pub max_subscriptions: usize,
    /// Longest one write to a client may block (its TCP window full) before it is closed
    /// as too slow.
    pub write_stall: std::time::Duration,
    /// Rooms with more users online than this are large: their subscribers get counts,
    /// not names, and no typing.
    pub presence_list_max: usize,
    /// Authentications and subscriptions processed at once; more wait for a turn (a
    /// reconnect storm queues here, not inside the store's and deny-list's timeouts, and
    /// holds memory for this many requests only).
    pub in_flight: usize,
    /// Rooms with more members show no read receipts (every read there is a frame to
    /// each subscriber).
    pub receipts_max_members: i64,
    /// How often a connection is pinged.
    pub heartbeat: std::time::Duration,
    /// Silence after which a connection is closed as dead (4002).
    pub idle_limit: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            queue: 256,
            max_frame_bytes: 64 * 1024,
            sends_per_sec: 10.0,
            send_burst: 20.0,
            abuse_after: 100,
            auth_timeout_secs: 10,
            max_subscriptions: 1000,
            write_stall: std::time::Duration::from_secs(10),
            presence_list_max: 100,
            // With 64, a PostgreSQL+Redis storm's authentications waited for the Redis
            // and PostgreSQL round trips of their batches, not for CPU (docs/latency.md).
            in_flight: 256,
            receipts_max_members: natter_core::messaging::RECEIPTS_UP_TO,
            heartbeat: std::time::Duration::from_secs(20),
            idle_limit: std::time::Duration::from_secs(60),
        }
    }
}

impl Chat {
    /// The service over `store`, fanning out through `broker`; stops on `shutdown`.
    pub fn new(
        store: Store,
        verifier: TokenVerifier,
        broker: Arc<dyn Broker>,
        shutdown: Shutdown,
        limits: Limits,
    ) -> Self {
        let metrics = ChatMetrics::default();
        let memberships = Memberships::default();
        let outbox = Outbox::start(OutboxParts {
            depth: metrics.outbox_depth.clone(),
            dropped: metrics.outbox_dropped.clone(),
            ..OutboxParts::new(broker.clone(), "chat", shutdown.clone())
        });
        let subscribers = Arc::new(Subscribers {
            hub: Hub::default(),
            heads: Arc::default(),
        });
        Self(Arc::new(Shared {
            admission: Arc::new(tokio::sync::Semaphore::new(limits.in_flight)),
            messages: Messages::new(store.clone(), outbox)
                .remembering(memberships.clone())
                .with_receipts_up_to(limits.receipts_max_members)
                .delivering_locally(subscribers.clone()),
            memberships,
            store,
            verifier,
            broker,
            hub: subscribers.hub.clone(),
            shutdown,
            limits,
            next_connection: Arc::new(AtomicU64::new(1)),
            relaying: tokio::sync::watch::Sender::new(false),
            presence: Presence::new(limits.presence_list_max),
            listener: Listener::default(),
            heads: subscribers.heads.clone(),
            metrics,
        }))
    }

    /// Adds this service's metrics to `metrics` (served at `/metrics`).
    pub fn register_metrics(&self, metrics: &natter_core::http::Metrics) {
        metrics.register(|registry| self.metrics.register(registry));
        let hub = self.hub.clone();
        metrics.gauge_fn(
            "chat_queued_events",
            "Events waiting in connections' queues to be written to their sockets",
            move || i64::try_from(hub.queued()).ok(),
        );
    }

    /// This replica: the origin of the events it publishes.
    pub(crate) fn node(&self) -> &Arc<str> {
        self.messages.outbox().origin()
    }

    pub(crate) fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits for a turn to process an authentication or subscription.
    pub(crate) async fn admit(&self) -> Turn {
        let admission = Arc::clone(&self.admission);
        admission
            .acquire_owned()
            .await
            .expect("the admission semaphore is never closed")
    }

    /// May `user` do `action` in `room`? Non-members of private rooms learn nothing.
    pub(crate) async fn check(
        &self,
        user: &str,
        room: &str,
        action: Action,
    ) -> Result<(), ChatError> {
        Ok(self.messages.allowed(user, room, action).await?)
    }

    /// [`Chat::check`], returning the room as read (its `last_seq` included).
    pub(crate) async fn checked_room(
        &self,
        user: &str,
        room: &str,
        action: Action,
    ) -> Result<RoomRecord, ChatError> {
        Ok(self.messages.authorized(user, room, action).await?)
    }

    /// Where a subscription of `user` to `room` without `since` starts: after the room's
    /// newest message — without a store read when the membership and the head are known.
    pub(crate) async fn start_of(&self, user: &str, room: &str) -> Result<i64, ChatError> {
        let read = Action::ReadHistory;
        if let Some(head) = self.heads.get(room)
            && self.messages.remembered(user, room, read)
        {
            return Ok(head + 1);
        }
        Ok(self.checked_room(user, room, read).await?.last_seq + 1)
    }

    /// Stores a send through the messages' owner, which publishes it to the other
    /// replicas and delivers it to this replica's subscribers ([`Subscribers`]); returns
    /// the stored message and whether it was new. Nothing is acknowledged that was not
    /// committed.
    pub(crate) async fn send(&self, post: Post<'_>) -> Result<Posted, ChatError> {
        Ok(self.messages.post_wire(post).await?.0)
    }

    /// A thread's root changed: its author's local event streams follow the thread from
    /// its first reply on (a root's edit or pin tells them nothing new).
    pub(crate) fn tell_starter(&self, room: &str, root: &pb::Message) {
        local::tell_starter(&self.hub, room, root);
    }

    /// Moves `user`'s marker in a thread; the user's local streams recount it (the
    /// published event reaches the other replicas').
    pub(crate) async fn read_thread(
        &self,
        user: &str,
        room: &str,
        root: i64,
        seq: i64,
    ) -> Result<(), ChatError> {
        self.messages.read_thread(user, room, root, seq).await?;
        let room_id = Arc::from(room);
        let event = Event::ThreadRead { room_id, root, seq };
        self.hub.dispatch_user(user, event);
        Ok(())
    }

    /// Applies an edit (`body` given) or a deletion of `user`'s message and tells the
    /// room's subscribers.
    pub(crate) async fn update(
        &self,
        user: &str,
        room: &str,
        seq: i64,
        body: Option<&str>,
    ) -> Result<(), ChatError> {
        let message = self.messages.update(user, room, seq, body).await?;
        let frame = ServerFrame::updated(&message);
        self.dispatch_signal(room, &frame);
        Ok(())
    }

    /// Adds or removes `user`'s reaction and tells the room's subscribers.
    pub(crate) async fn react(
        &self,
        user: &str,
        room: &str,
        seq: i64,
        emoji: &str,
        add: bool,
    ) -> Result<(), ChatError> {
        let reaction = self.messages.react(user, room, seq, emoji, add).await?;
        let frame = ServerFrame::reaction(room, &events::reaction(&reaction));
        self.dispatch_signal(room, &frame);
        Ok(())
    }

    /// Pins or unpins a message and tells the room's subscribers.
    pub(crate) async fn pin(
        &self,
        user: &str,
        room: &str,
        seq: i64,
        pin: bool,
    ) -> Result<(), ChatError> {
        let message = self.messages.pin(user, room, seq, pin).await?;
        let frame = ServerFrame::updated(&message);
        self.dispatch_signal(room, &frame);
        Ok(())
    }

    /// Moves `user`'s read marker; returns the marker in effect.
    pub(crate) async fn mark_read(
        &self,
        user: &str,
        room: &str,
        seq: i64,
    ) -> Result<i64, ChatError> {
        let marked = self.messages.mark_read(user, room, seq).await?;
        if marked.moved {
            self.dispatch_read(Arc::from(room), user, marked.seq, marked.shared);
        }
        Ok(marked.seq)
    }

    /// Sets `user`'s level in `room` and tells the user's local streams (the published
    /// event reaches the other replicas' only).
    pub(crate) async fn set_level(
        &self,
        user: &str,
        room: &str,
        level: Option<Level>,
    ) -> Result<Level, ChatError> {
        let effective = self.messages.set_level(user, room, level).await?;
        let room_id = Arc::from(room);
        self.hub
            .dispatch_user(user, Event::Level { room_id, level });
        Ok(effective)
    }

    /// Hands a moved read marker to the reader's local event streams and, when others
    /// may see it, to the room's local subscribers.
    pub(crate) fn dispatch_read(&self, room_id: Arc<str>, user: &str, seq: i64, shared: bool) {
        let event = Event::Read {
            room_id: room_id.clone(),
            user_id: Arc::from(user),
            seq,
            shared,
        };
        if shared {
            self.hub.dispatch(&room_id, event.clone());
        }
        self.hub.dispatch_user(user, event);
    }

    /// `user` is typing in `room`: the room's subscribers here hear of it at the next
    /// presence flush, the other replicas' through the broker.
    pub(crate) fn typing(&self, room: &str, user: &str) {
        self.presence.typing(room, user);
        let typing = Kind::Typing(pb::Typing {
            user_id: user.to_owned(),
        });
        self.messages.outbox().publish(room, typing, None);
    }

    /// Sends an unsequenced frame to this replica's subscribers of `room`.
    fn dispatch_signal(&self, room: &str, frame: &ServerFrame) {
        local::dispatch_signal(&self.hub, room, frame);
    }

    /// Messages of `room` after `after`, oldest first, at most `limit`.
    pub(crate) async fn after(
        &self,
        room: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, ChatError> {
        self.store
            .history(room, HistoryOrder::OldestFirst, Some(after), None, limit)
            .await
            .map_err(ChatError::from)
    }

    /// The newest `limit` messages of `room`, oldest first.
    pub(crate) async fn newest(
        &self,
        room: &str,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, ChatError> {
        let mut page = self
            .store
            .history(room, HistoryOrder::NewestFirst, None, None, limit)
            .await
            .map_err(ChatError::from)?;
        page.reverse();
        Ok(page)
    }
}

/// The `message` frame of a message.
pub(crate) fn message_frame(message: &pb::Message) -> ServerFrame {
    ServerFrame::Message {
        room_id: message.room_id.clone(),
        seq: message.seq,
        sender_id: message.sender_id.clone(),
        client_id: message.client_id.clone(),
        body: message.body.clone(),
        created_at: message.created_at,
        reply_to: message.reply_to,
        html: message.html.clone(),
        mentions: Mention::all(&message.mentions),
        mentions_room: message.mentions_room,
        thread_root: message.thread_root,
        also_to_room: message.also_to_room,
        thread: Thread::of(message),
    }
}

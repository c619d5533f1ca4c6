//! The chat service's state and its operations: authorize, store-then-acknowledge sends,
//! edits, read markers, history for resuming subscribers, and fan-out to local
//! subscribers (the relay to other replicas is in `relay.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use natter_core::broker::Broker;
use natter_core::events::{self, Kind, pb};
use natter_core::policy::{Action, Denial, Viewer, authorize};
use natter_core::shutdown::Shutdown;
use natter_core::store::{HistoryOrder, MessageRecord, NewMessage, RoomRecord, Store, StoreError};
use natter_core::text;
use natter_core::time::now_ms;
use natter_core::token::TokenVerifier;

use crate::hub::{Event, Hub};
use crate::metrics::ChatMetrics;
use crate::presence::Presence;
use crate::protocol::ServerFrame;
use crate::relay::{self, Missed, OUTBOX, Outbox, Outgoing};
use crate::trace;

/// Most messages replayed to a resuming subscriber; more are left to the history API.
pub const REPLAY_LIMIT: u32 = 500;

/// Why a request on a connection failed; becomes an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: &'static str,
    /// Explanation.
    pub message: String,
}

/// The chat service's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Chat {
    pub(crate) store: Store,
    pub(crate) verifier: TokenVerifier,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) hub: Hub,
    pub(crate) shutdown: Shutdown,
    pub(crate) limits: Limits,
    /// This replica, the origin of the events it publishes.
    pub(crate) node: Arc<str>,
    next_connection: Arc<AtomicU64>,
    pub(crate) relaying: tokio::sync::watch::Sender<bool>,
    pub(crate) outbox: tokio::sync::mpsc::Sender<Outgoing>,
    pub(crate) missed: Missed,
    pub(crate) presence: Presence,
    pub(crate) metrics: ChatMetrics,
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
        }
    }
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A store failure: `unavailable` (retry later) when the database could not be
    /// reached, `internal` (do not retry the same request) otherwise.
    fn store(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "chat storage unavailable");
            return Self::new("unavailable", "temporarily unavailable, retry");
        }
        tracing::error!(%error, "chat internal error");
        Self::new("internal", "internal error")
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
        let (outbox, pending) = tokio::sync::mpsc::channel(OUTBOX);
        let metrics = ChatMetrics::default();
        let missed = Missed::default();
        let node: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        tokio::spawn(relay::forward(Outbox {
            broker: broker.clone(),
            pending,
            missed: missed.clone(),
            depth: metrics.outbox_depth.clone(),
            shutdown: shutdown.clone(),
            node: node.clone(),
        }));
        Self {
            store,
            verifier,
            broker,
            outbox,
            missed,
            hub: Hub::default(),
            shutdown,
            limits,
            node,
            next_connection: Arc::new(AtomicU64::new(1)),
            relaying: tokio::sync::watch::Sender::new(false),
            presence: Presence::default(),
            metrics,
        }
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

    pub(crate) fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// May `user` do `action` in `room`? Non-members of private rooms learn nothing.
    pub(crate) async fn check(
        &self,
        user: &str,
        room: &str,
        action: Action,
    ) -> Result<(), Refusal> {
        self.checked_room(user, room, action).await.map(drop)
    }

    /// [`Chat::check`], returning the room as read (its `last_seq` included).
    #[tracing::instrument(name = "chat authorize", skip_all)]
    pub(crate) async fn checked_room(
        &self,
        user: &str,
        room: &str,
        action: Action,
    ) -> Result<RoomRecord, Refusal> {
        let found = self
            .store
            .room_with_role(room, user)
            .await
            .map_err(Refusal::store)?;
        let Some((found, role)) = found else {
            return Err(Refusal::new("not_found", "room not found"));
        };
        authorize(found.kind, Viewer::SignedIn(role), action).map_err(|denial| match denial {
            Denial::NotFound => Refusal::new("not_found", "room not found"),
            Denial::Forbidden => Refusal::new("forbidden", "not allowed in this room"),
            Denial::Unauthenticated => Refusal::new("unauthenticated", "authenticate first"),
        })?;
        Ok(found)
    }

    /// Stores a send (idempotent per client id), then fans it out; returns the stored
    /// message and whether it was new. Nothing is acknowledged that was not committed.
    pub(crate) async fn send(
        &self,
        user: &str,
        room: &str,
        client_id: &str,
        body: &str,
    ) -> Result<(MessageRecord, bool), Refusal> {
        if client_id.is_empty()
            || client_id.len() > 64
            || !client_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Refusal::new(
                "invalid_client_id",
                "client_id must be 1 to 64 printable ASCII characters",
            ));
        }
        if !text::is_message_body(body) {
            return Err(Refusal::new("invalid_body", text::MESSAGE_RULE));
        }
        self.check(user, room, Action::Post).await?;
        let new = NewMessage {
            room_id: room,
            sender_id: user,
            client_id,
            body,
            now: now_ms(),
        };
        let posted = self.store.post_message(new).await.map_err(Refusal::store)?;
        if posted.created {
            self.fan_out(&posted.message);
        }
        Ok((posted.message, posted.created))
    }

    /// Applies an edit (`body` given) or a deletion of `user`'s message and tells the
    /// room's subscribers.
    pub(crate) async fn update(
        &self,
        user: &str,
        room: &str,
        seq: i64,
        body: Option<&str>,
    ) -> Result<(), Refusal> {
        if let Some(body) = body
            && !text::is_message_body(body)
        {
            return Err(Refusal::new("invalid_body", text::MESSAGE_RULE));
        }
        self.check(user, room, Action::Post).await?;
        let updated = match body {
            Some(body) => {
                self.store
                    .edit_message(room, seq, user, body, now_ms())
                    .await
            }
            None => self.store.delete_message(room, seq, user, now_ms()).await,
        };
        let updated = updated.map_err(Refusal::store)?;
        let Some(message) = updated else {
            return Err(Refusal::new("not_found", "no such message of yours"));
        };
        let message = events::message(&message);
        let frame = ServerFrame::updated(&message);
        self.signal(room, &frame, Kind::Updated(message));
        Ok(())
    }

    /// Moves `user`'s read marker; returns the marker in effect.
    pub(crate) async fn mark_read(&self, user: &str, room: &str, seq: i64) -> Result<i64, Refusal> {
        self.check(user, room, Action::ReadHistory).await?;
        self.store
            .mark_read(room, user, seq)
            .await
            .map_err(Refusal::store)
    }

    /// Sends an unsequenced event to the room's subscribers: `frame` to this replica's,
    /// `kind` to the other replicas (which make the same frame of it).
    pub(crate) fn signal(&self, room: &str, frame: &ServerFrame, kind: Kind) {
        let event = Event::Signal {
            room_id: Arc::from(room),
            frame: Utf8Bytes::from(frame.encode()),
        };
        self.hub.dispatch(room, event);
        self.publish(events::event(&self.node, room, kind), None);
    }

    /// Delivers a stored message to local subscribers at once and to other replicas
    /// through the broker (a broker outage leaves local delivery working).
    fn fan_out(&self, message: &MessageRecord) {
        let message = events::message(message);
        let frame = Utf8Bytes::from(message_frame(&message).encode());
        let trace = trace::sampled();
        let event = Event::Message {
            room_id: Arc::from(message.room_id.as_str()),
            seq: message.seq,
            created_ms: message.created_at,
            frame,
            trace: trace.clone(),
        };
        self.hub.dispatch(&message.room_id, event);
        let room = message.room_id.clone();
        let posted = events::event(&self.node, &room, Kind::Posted(message));
        self.publish(posted, trace.as_ref());
    }

    /// Messages of `room` after `after`, oldest first, at most `limit`.
    pub(crate) async fn after(
        &self,
        room: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, Refusal> {
        self.store
            .history(room, HistoryOrder::OldestFirst, Some(after), limit)
            .await
            .map_err(Refusal::store)
    }

    /// The newest `limit` messages of `room`, oldest first.
    pub(crate) async fn newest(
        &self,
        room: &str,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, Refusal> {
        let mut page = self
            .store
            .history(room, HistoryOrder::NewestFirst, None, limit)
            .await
            .map_err(Refusal::store)?;
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
    }
}

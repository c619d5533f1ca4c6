//! The chat service's state and its operations: authorize, store-then-acknowledge sends,
//! replay for resuming subscribers, and fan-out locally and across replicas.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use futures::StreamExt;
use natter_core::broker::{Broker, Delivery};
use natter_core::policy::{Action, Denial, Viewer, authorize};
use natter_core::shutdown::Shutdown;
use natter_core::store::{HistoryOrder, MessageRecord, NewMessage, RoomRecord, Store, StoreError};
use natter_core::text;
use natter_core::time::now_ms;
use natter_core::token::{REVOCATIONS_TOPIC, Revocation, TokenVerifier};
use prometheus_client::metrics::gauge::Gauge;

use crate::hub::{Event, Hub};
use crate::metrics::ChatMetrics;
use crate::presence::{Announcement, Presence, SYNC_EVERY};
use crate::protocol::ServerFrame;
use crate::trace;
use opentelemetry::Context;
use tracing::Instrument;

/// Broker topic carrying every stored message between replicas.
pub const MESSAGES_TOPIC: &str = "natter.messages";
/// Broker topic of presence announcements between replicas.
pub const PRESENCE_TOPIC: &str = "natter.presence";
/// Broker topic of room life-cycle events (published by the website service).
pub const ROOM_EVENTS_TOPIC: &str = "natter.rooms";
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
    node: Arc<str>,
    next_connection: Arc<AtomicU64>,
    relaying: tokio::sync::watch::Sender<bool>,
    outbox: tokio::sync::mpsc::Sender<Outgoing>,
    missed: Missed,
    pub(crate) presence: Presence,
    pub(crate) metrics: ChatMetrics,
}

/// The broker topics a replica relays.
#[derive(Debug, Clone, Copy)]
enum Topic {
    Messages,
    Rooms,
    Presence,
    Revocations,
}

/// Room life-cycle events on [`ROOM_EVENTS_TOPIC`] (the website publishes deletions and
/// removals, chat replicas publish heads); unknown types are ignored, so replicas of two
/// releases can run side by side.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RoomEvent {
    RoomDeleted { room_id: String },
    MemberRemoved { room_id: String, user_id: String },
    Head { room_id: String, seq: i64 },
}

/// Frames waiting for the broker before new ones are dropped.
const OUTBOX: usize = 8192;
/// Longest pause between two attempts to subscribe to the broker again.
const RESUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Longest pause between two attempts to publish a frame the broker refused.
const PUBLISH_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where a broker frame belongs: room, sequence number (0: unsequenced), and when the
/// message was stored (Unix ms, 0 for unsequenced frames).
#[derive(Debug, Clone, Copy)]
struct Stamp<'a> {
    room: &'a str,
    seq: i64,
    created_ms: i64,
}

/// A frame for the broker: topic, payload, and the sampled trace it belongs to.
type Outgoing = (&'static str, Bytes, Option<Context>);

/// The newest sequence number per room whose message could not be queued for the broker
/// (the outbox was full): announced as a `head` once the broker takes frames again, so
/// other replicas fetch what they missed from the store.
#[derive(Debug, Clone, Default)]
struct Missed(Arc<Mutex<HashMap<Arc<str>, i64>>>);

impl Missed {
    fn record(&self, room: &str, seq: i64) {
        let mut missed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let newest = missed.entry(Arc::from(room)).or_insert(seq);
        *newest = (*newest).max(seq);
    }

    fn take(&self) -> HashMap<Arc<str>, i64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Publishes queued frames in order. A frame the broker refuses is retried with backoff
/// until it is published or the service stops (frames behind it wait in the bounded
/// outbox), so an outage delays fan-out instead of losing it; logs once when the broker
/// fails and once when it works again.
async fn forward(
    broker: Arc<dyn Broker>,
    mut pending: tokio::sync::mpsc::Receiver<Outgoing>,
    missed: Missed,
    depth: Gauge,
    shutdown: Shutdown,
) {
    let mut failing = false;
    while let Some((topic, payload, trace)) = pending.recv().await {
        depth.dec();
        let sent = publish_until_sent(&*broker, topic, &payload, trace, &mut failing, &shutdown);
        if !sent.await {
            return;
        }
        for (room_id, seq) in missed.take() {
            let head = RoomEvent::Head {
                room_id: room_id.to_string(),
                seq,
            };
            let payload = Bytes::from(serde_json::to_vec(&head).expect("room events serialise"));
            let sent = publish_until_sent(
                &*broker,
                ROOM_EVENTS_TOPIC,
                &payload,
                None,
                &mut failing,
                &shutdown,
            );
            if !sent.await {
                return;
            }
        }
    }
}

/// Publishes one frame, retrying with backoff; false when shutdown came first.
async fn publish_until_sent(
    broker: &dyn Broker,
    topic: &str,
    payload: &Bytes,
    trace: Option<Context>,
    failing: &mut bool,
    shutdown: &Shutdown,
) -> bool {
    let mut pause = Duration::from_millis(100);
    loop {
        let publish = broker.publish(topic, payload.clone());
        let published = match &trace {
            Some(context) => {
                let span = trace::span("publish", "producer", "redis", Some(context.clone()));
                publish.instrument(span).await
            }
            None => publish.await,
        };
        match published {
            Ok(()) => {
                if std::mem::take(failing) {
                    tracing::info!("publishing to the broker again");
                }
                return true;
            }
            Err(error) => {
                if !std::mem::replace(failing, true) {
                    tracing::warn!(%error, "broker unavailable: local delivery continues, other replicas get the frames when it returns");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.clone().wait() => return false,
        }
        pause = (pause * 2).min(PUBLISH_BACKOFF_MAX);
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
        tokio::spawn(forward(
            broker.clone(),
            pending,
            missed.clone(),
            metrics.outbox_depth.clone(),
            shutdown.clone(),
        ));
        Self {
            store,
            verifier,
            broker,
            outbox,
            missed,
            hub: Hub::default(),
            shutdown,
            limits,
            node: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
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
            self.fan_out(&posted.message).await;
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
        let frame = ServerFrame::MessageUpdated {
            room_id: room.into(),
            seq,
            body: message.visible_body().to_owned(),
            edited_at: message.edited_at,
            deleted: message.is_deleted(),
        };
        self.signal(room, &frame).await;
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

    /// Sends an unsequenced frame to the room's subscribers on every replica.
    pub(crate) async fn signal(&self, room: &str, frame: &ServerFrame) {
        let frame = Utf8Bytes::from(frame.encode());
        let event = Event::Signal {
            room_id: Arc::from(room),
            frame: frame.clone(),
        };
        self.hub.dispatch(room, event);
        let stamp = Stamp {
            room,
            seq: 0,
            created_ms: 0,
        };
        self.publish(stamp, &frame, None).await;
    }

    /// Queues a frame for the other replicas. Publishing happens in order on one task, so
    /// a slow or absent broker never delays an acknowledgement; when the queue is full a
    /// message frame is dropped and its room's head announced later (remote subscribers
    /// fill the gap from the store).
    /// The payload is `node \n room \n seq \n created_ms \n traceparent \n tracestate \n
    /// frame` (`-` for an absent trace field).
    async fn publish(&self, stamp: Stamp<'_>, frame: &Utf8Bytes, trace: Option<&Context>) {
        let w3c = trace.and_then(natter_core::telemetry::w3c_of);
        let (traceparent, tracestate) = match &w3c {
            Some((parent, state)) if state.is_empty() => (parent.as_str(), "-"),
            Some((parent, state)) => (parent.as_str(), state.as_str()),
            None => ("-", "-"),
        };
        let Stamp {
            room,
            seq,
            created_ms,
        } = stamp;
        let payload = format!(
            "{}\n{room}\n{seq}\n{created_ms}\n{traceparent}\n{tracestate}\n{}",
            self.node,
            frame.as_str()
        );
        if !self.enqueue(MESSAGES_TOPIC, Bytes::from(payload), trace.cloned()) && seq > 0 {
            self.missed.record(room, seq);
        }
    }

    /// Queues a payload for the broker; false when the outbox was full and it was dropped.
    fn enqueue(&self, topic: &'static str, payload: Bytes, trace: Option<Context>) -> bool {
        self.metrics.outbox_depth.inc();
        if self.outbox.try_send((topic, payload, trace)).is_err() {
            self.metrics.outbox_depth.dec();
            self.metrics.outbox_dropped.inc();
            tracing::debug!("broker outbox full; the room's head is announced later");
            return false;
        }
        true
    }

    /// Delivers a stored message to local subscribers at once and to other replicas
    /// through the broker (a broker outage leaves local delivery working).
    async fn fan_out(&self, message: &MessageRecord) {
        let frame = Utf8Bytes::from(message_frame(message).encode());
        let trace = trace::sampled();
        let event = Event::Message {
            room_id: Arc::from(message.room_id.as_str()),
            seq: message.seq,
            created_ms: message.created_at,
            frame: frame.clone(),
            trace: trace.clone(),
        };
        self.hub.dispatch(&message.room_id, event);
        let stamp = Stamp {
            room: &message.room_id,
            seq: message.seq,
            created_ms: message.created_at,
        };
        self.publish(stamp, &frame, trace.as_ref()).await;
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

    /// Relays other replicas' messages and room events to local subscribers until
    /// shutdown, resubscribing with backoff when the broker connection drops.
    pub async fn relay(self) {
        tokio::spawn(self.clone().sync_presence());
        let mut pause = Duration::from_millis(100);
        while !self.shutdown.is_triggered() {
            match self.relay_once().await {
                Ok(()) => pause = Duration::from_millis(100),
                Err(error) => tracing::warn!(%error, "broker subscription lost; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shutdown.clone().wait() => return,
            }
            pause = (pause * 2).min(RESUBSCRIBE_BACKOFF_MAX);
        }
    }

    /// Counts a new subscription of `user` to `room`, announcing them when they just came
    /// online.
    pub(crate) fn joined(&self, room: &str, user: &str) {
        if self.presence.join(room, user) {
            self.announce(room, user, true);
        }
    }

    /// Counts a subscription less, announcing `user` offline when it was their last.
    pub(crate) fn left(&self, room: &str, user: &str) {
        if self.presence.leave(room, user) {
            self.announce(room, user, false);
        }
    }

    fn announce(&self, room: &str, user: &str, online: bool) {
        self.dispatch_presence(room, user, online);
        let change = Announcement::Change {
            node: self.node.to_string(),
            room_id: room.into(),
            user_id: user.into(),
            online,
        };
        let payload = serde_json::to_vec(&change).expect("announcements serialise");
        let _ = self.enqueue(PRESENCE_TOPIC, Bytes::from(payload), None);
    }

    fn dispatch_presence(&self, room: &str, user: &str, online: bool) {
        let frame = ServerFrame::Presence {
            room_id: room.into(),
            user_id: user.into(),
            online,
        };
        let event = Event::Signal {
            room_id: Arc::from(room),
            frame: Utf8Bytes::from(frame.encode()),
        };
        self.hub.dispatch(room, event);
    }

    /// Re-announces this replica's online users every [`SYNC_EVERY`] until shutdown.
    async fn sync_presence(self) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SYNC_EVERY) => {}
                _ = self.shutdown.clone().wait() => return,
            }
            let sync = Announcement::Sync {
                node: self.node.to_string(),
                rooms: self.presence.snapshot(),
            };
            let payload = serde_json::to_vec(&sync).expect("announcements serialise");
            let _ = self.enqueue(PRESENCE_TOPIC, Bytes::from(payload), None);
        }
    }

    fn relay_presence(&self, payload: &[u8]) {
        let Ok(announcement) = serde_json::from_slice::<Announcement>(payload) else {
            return;
        };
        let node = match &announcement {
            Announcement::Change { node, .. } | Announcement::Sync { node, .. } => node,
        };
        if node.as_str() == &*self.node {
            return;
        }
        self.presence.apply(&announcement);
        if let Announcement::Change {
            room_id,
            user_id,
            online,
            ..
        } = &announcement
        {
            self.dispatch_presence(room_id, user_id, *online);
        }
    }

    /// Resolves once the relay is subscribed to the broker (other replicas' messages
    /// reach this one from then on).
    pub async fn relaying(&self) {
        let _ = self.relaying.subscribe().wait_for(|ready| *ready).await;
    }

    async fn relay_once(&self) -> Result<(), String> {
        self.relaying.send_replace(false);
        let mut streams = Vec::new();
        for (kind, topic) in [
            (Topic::Messages, MESSAGES_TOPIC),
            (Topic::Rooms, ROOM_EVENTS_TOPIC),
            (Topic::Presence, PRESENCE_TOPIC),
            (Topic::Revocations, REVOCATIONS_TOPIC),
        ] {
            let stream = self
                .broker
                .subscribe(topic)
                .await
                .map_err(|e| e.to_string())?;
            streams.push(stream.map(move |delivery| (kind, delivery)));
        }
        // Subscribed first, then caught up: whatever was published while this replica
        // was not listening is committed before the heads are read.
        self.catch_up().await?;
        self.relaying.send_replace(true);
        let mut merged = futures::stream::select_all(streams);
        loop {
            let next = tokio::select! {
                next = merged.next() => next,
                _ = self.shutdown.clone().wait() => return Ok(()),
            };
            match next {
                None => return Err("broker stream ended".into()),
                Some((_, Delivery::Lagged(n))) => {
                    self.metrics.relay_missed.inc_by(n);
                    tracing::warn!(dropped = n, "relay lagged; catching up from the store");
                    self.catch_up().await?;
                }
                Some((Topic::Messages, Delivery::Message(payload))) => self.relay_message(payload),
                Some((Topic::Rooms, Delivery::Message(payload))) => self.relay_room_event(&payload),
                Some((Topic::Presence, Delivery::Message(payload))) => {
                    self.relay_presence(&payload)
                }
                Some((Topic::Revocations, Delivery::Message(payload))) => {
                    if let Ok(Revocation::SessionRevoked { session_id }) =
                        serde_json::from_slice(&payload)
                    {
                        self.hub.revoke_session(&session_id);
                    }
                }
            }
        }
    }

    /// After frames from the broker may have been missed: every local subscriber learns
    /// its rooms' newest sequence numbers (and fetches what it lacks from the store), and
    /// every connection checks its token against the deny-list again. Fails when the
    /// store cannot say; the relay then re-subscribes and tries again.
    async fn catch_up(&self) -> Result<(), String> {
        self.hub.recheck_sessions();
        let rooms = self.hub.rooms();
        if rooms.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = rooms.iter().map(|room| &**room).collect();
        let heads = self
            .store
            .room_heads(&ids)
            .await
            .map_err(|e| format!("reading room heads to catch up: {e}"))?;
        for (room, seq) in heads {
            let room_id = Arc::from(room.as_str());
            self.hub.dispatch(&room, Event::Head { room_id, seq });
        }
        Ok(())
    }

    fn relay_message(&self, payload: Bytes) {
        let mut parts = payload.splitn(7, |b| *b == b'\n');
        let mut next = || parts.next();
        let (node, room, seq, created, traceparent, tracestate) =
            (next(), next(), next(), next(), next(), next());
        let (
            Some(node),
            Some(room),
            Some(seq),
            Some(created),
            Some(traceparent),
            Some(tracestate),
            Some(frame),
        ) = (node, room, seq, created, traceparent, tracestate, next())
        else {
            return;
        };
        let created_ms = std::str::from_utf8(created)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if node == self.node.as_bytes() {
            return;
        }
        if created_ms > 0 {
            self.metrics.observe_relay(created_ms);
        }
        let (Ok(room), Some(seq)) = (
            std::str::from_utf8(room),
            std::str::from_utf8(seq).ok().and_then(|s| s.parse().ok()),
        ) else {
            return;
        };
        let start = payload.len() - frame.len();
        let Ok(frame) = Utf8Bytes::try_from(payload.slice(start..)) else {
            return;
        };
        let room_id = Arc::from(room);
        let event = if seq == 0 {
            Event::Signal { room_id, frame }
        } else {
            Event::Message {
                room_id,
                seq,
                frame,
                created_ms,
                trace: trace::relayed(traceparent, tracestate),
            }
        };
        self.hub.dispatch(room, event);
    }

    fn relay_room_event(&self, payload: &[u8]) {
        let (room_id, event) = match serde_json::from_slice::<RoomEvent>(payload) {
            Ok(RoomEvent::RoomDeleted { room_id }) => {
                let room_id: Arc<str> = Arc::from(room_id);
                (room_id.clone(), Event::RoomDeleted(room_id))
            }
            Ok(RoomEvent::MemberRemoved { room_id, user_id }) => {
                let room_id: Arc<str> = Arc::from(room_id);
                let user_id = Arc::from(user_id);
                let event = Event::MemberRemoved {
                    room_id: room_id.clone(),
                    user_id,
                };
                (room_id, event)
            }
            Ok(RoomEvent::Head { room_id, seq }) => {
                let room_id: Arc<str> = Arc::from(room_id);
                let event = Event::Head {
                    room_id: room_id.clone(),
                    seq,
                };
                (room_id, event)
            }
            Err(error) => return tracing::debug!(%error, "unknown room event"),
        };
        self.hub.dispatch(&room_id, event);
    }
}

/// The `message` frame of a stored message.
pub(crate) fn message_frame(message: &MessageRecord) -> ServerFrame {
    ServerFrame::Message {
        room_id: message.room_id.clone(),
        seq: message.seq,
        sender_id: message.sender_id.clone(),
        client_id: message.client_id.clone(),
        body: message.visible_body().to_owned(),
        created_at: message.created_at,
    }
}

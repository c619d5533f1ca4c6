//! Between replicas: the outbox that publishes room events (`natter_core::events`) and
//! presence announcements to the broker in order, retrying through outages; the relay
//! that hands other replicas' events to local subscribers and catches up after any gap;
//! and presence across replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use futures::StreamExt;
use natter_core::broker::{Broker, Delivery};
use natter_core::events::{self, Kind, pb};
use natter_core::shutdown::Shutdown;
use natter_core::token::{REVOCATIONS_TOPIC, Revocation};
use opentelemetry::Context;
use prometheus_client::metrics::gauge::Gauge;
use tracing::Instrument;

use crate::hub::Event;
use crate::presence::{Announcement, SYNC_EVERY};
use crate::protocol::ServerFrame;
use crate::service::{Chat, message_frame};
use crate::trace;

/// Broker topic of presence announcements between replicas.
pub const PRESENCE_TOPIC: &str = "natter.presence";
/// Frames waiting for the broker before new ones are dropped.
pub(crate) const OUTBOX: usize = 8192;
/// Longest pause between two attempts to subscribe to the broker again.
const RESUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Longest pause between two attempts to publish a frame the broker refused.
const PUBLISH_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A payload for the broker: topic, bytes, and the sampled trace it belongs to.
pub(crate) type Outgoing = (&'static str, Bytes, Option<Context>);

/// The broker topics a replica relays.
#[derive(Debug, Clone, Copy)]
enum Topic {
    /// Room events: the envelope, and the previous release's two formats.
    Room(&'static str),
    Presence,
    Revocations,
}

/// The newest sequence number per room whose message could not be queued for the broker
/// (the outbox was full): announced as a head once the broker takes frames again, so
/// other replicas fetch what they missed from the store.
#[derive(Debug, Clone, Default)]
pub(crate) struct Missed(Arc<Mutex<HashMap<Arc<str>, i64>>>);

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

/// What the outbox task works with.
pub(crate) struct Outbox {
    pub broker: Arc<dyn Broker>,
    pub pending: tokio::sync::mpsc::Receiver<Outgoing>,
    pub missed: Missed,
    pub depth: Gauge,
    pub shutdown: Shutdown,
    /// This replica, the origin of the heads it announces.
    pub node: Arc<str>,
}

/// Publishes queued payloads in order. A payload the broker refuses is retried with
/// backoff until it is published or the service stops (payloads behind it wait in the
/// bounded outbox), so an outage delays fan-out instead of losing it; logs once when the
/// broker fails and once when it works again.
pub(crate) async fn forward(mut outbox: Outbox) {
    let mut failing = false;
    while let Some((topic, payload, trace)) = outbox.pending.recv().await {
        outbox.depth.dec();
        let sent = publish_until_sent(&outbox, topic, &payload, trace, &mut failing);
        if !sent.await {
            return;
        }
        for (room, seq) in outbox.missed.take() {
            let head = events::event(&outbox.node, &room, Kind::Head(pb::Head { seq }));
            let payload = events::encode(&head);
            let sent = publish_until_sent(&outbox, events::TOPIC, &payload, None, &mut failing);
            if !sent.await {
                return;
            }
        }
    }
}

/// Publishes one payload, retrying with backoff; false when shutdown came first.
async fn publish_until_sent(
    outbox: &Outbox,
    topic: &str,
    payload: &Bytes,
    trace: Option<Context>,
    failing: &mut bool,
) -> bool {
    let mut pause = Duration::from_millis(100);
    loop {
        let publish = outbox.broker.publish(topic, payload.clone());
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
                    tracing::warn!(%error, "broker unavailable: local delivery continues, other replicas get the events when it returns");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = outbox.shutdown.clone().wait() => return false,
        }
        pause = (pause * 2).min(PUBLISH_BACKOFF_MAX);
    }
}

impl Chat {
    /// Queues a room event for the other replicas, with the trace it belongs to.
    /// Publishing happens in order on one task, so a slow or absent broker never delays
    /// an acknowledgement; when the queue is full a posted message is dropped and its
    /// room's head announced later (remote subscribers fill the gap from the store).
    pub(crate) fn publish(&self, mut event: pb::RoomEvent, trace: Option<&Context>) {
        if let Some((parent, state)) = trace.and_then(natter_core::telemetry::w3c_of) {
            event.traceparent = parent;
            event.tracestate = state;
        }
        let posted = match &event.kind {
            Some(Kind::Posted(message)) => Some(message.seq),
            _ => None,
        };
        let queued = self.enqueue(events::TOPIC, events::encode(&event), trace.cloned());
        if let (false, Some(seq)) = (queued, posted) {
            self.missed.record(&event.room_id, seq);
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

    /// Relays other replicas' room events and presence to local subscribers until
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

    /// Resolves once the relay is subscribed to the broker (other replicas' messages
    /// reach this one from then on).
    pub async fn relaying(&self) {
        let _ = self.relaying.subscribe().wait_for(|ready| *ready).await;
    }

    async fn relay_once(&self) -> Result<(), String> {
        self.relaying.send_replace(false);
        let mut streams = Vec::new();
        for (kind, topic) in [
            (Topic::Room(events::TOPIC), events::TOPIC),
            (
                Topic::Room(events::LEGACY_MESSAGES_TOPIC),
                events::LEGACY_MESSAGES_TOPIC,
            ),
            (
                Topic::Room(events::LEGACY_ROOMS_TOPIC),
                events::LEGACY_ROOMS_TOPIC,
            ),
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
                Some((Topic::Room(topic), Delivery::Message(payload))) => {
                    if let Some(event) = events::decode(topic, &payload) {
                        self.relay_event(event);
                    }
                }
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

    /// Hands another replica's (or service's) room event to the local subscribers of
    /// its room.
    fn relay_event(&self, event: pb::RoomEvent) {
        if event.origin == *self.node {
            return; // delivered locally already
        }
        let room_id: Arc<str> = Arc::from(event.room_id.as_str());
        let signal = |frame: ServerFrame| Event::Signal {
            room_id: room_id.clone(),
            frame: Utf8Bytes::from(frame.encode()),
        };
        let local = match event.kind {
            Some(Kind::Posted(message)) => {
                if message.created_at > 0 {
                    self.metrics.observe_relay(message.created_at);
                }
                Event::Message {
                    room_id: room_id.clone(),
                    seq: message.seq,
                    created_ms: message.created_at,
                    frame: Utf8Bytes::from(message_frame(&message).encode()),
                    trace: trace::relayed(&event.traceparent, &event.tracestate),
                }
            }
            Some(Kind::Updated(message)) => signal(ServerFrame::updated(&message)),
            Some(Kind::Typing(typing)) => signal(ServerFrame::Typing {
                room_id: event.room_id.clone(),
                user_id: typing.user_id,
            }),
            Some(Kind::RoomDeleted(_)) => Event::RoomDeleted(room_id.clone()),
            Some(Kind::MemberRemoved(removed)) => Event::MemberRemoved {
                room_id: room_id.clone(),
                user_id: Arc::from(removed.user_id),
            },
            Some(Kind::Head(head)) => Event::Head {
                room_id: room_id.clone(),
                seq: head.seq,
            },
            None => return,
        };
        self.hub.dispatch(&room_id, local);
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
}

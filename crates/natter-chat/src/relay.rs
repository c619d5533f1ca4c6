//! Between replicas: the relay that hands other replicas' room events
//! (`natter_core::events`) to local subscribers and catches up after any gap, and
//! presence across replicas. (What this replica publishes goes out through the messages
//! owner's outbox, `natter_core::outbox`.)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natter_core::broker::Delivery;
use natter_core::events::{self, Kind, pb};
use natter_core::store::Level;
use natter_core::token::{REVOCATIONS_TOPIC, Revocation};
use tungstenite::Utf8Bytes;

use crate::hub::Event;
use crate::presence::{Announcement, FLUSH_EVERY, Flushed, RoomUpdate, SYNC_EVERY};
use crate::protocol::ServerFrame;
use crate::service::{Chat, message_frame};
use crate::trace;

/// Broker topic of presence announcements between replicas.
pub const PRESENCE_TOPIC: &str = "natter.presence";
/// Longest pause between two attempts to subscribe to the broker again.
const RESUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The broker topics a replica relays.
#[derive(Debug, Clone, Copy)]
enum Topic {
    /// Room events: the envelope, and the previous release's two formats.
    Room(&'static str),
    Presence,
    Revocations,
}

impl Chat {
    /// Relays other replicas' room events and presence to local subscribers until
    /// shutdown, resubscribing with backoff when the broker connection drops.
    pub async fn relay(self) {
        tokio::spawn(self.clone().flush_presence());
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
        let (topics, rooms) = self
            .broker
            .subscribe_set()
            .await
            .map_err(|e| e.to_string())?;
        self.listen_all(topics).await?;
        streams.push(
            rooms
                .map(|(_, delivery)| (Topic::Room(events::TOPIC), delivery))
                .boxed(),
        );
        for (kind, topic) in [
            // Where replicas of the previous release publish.
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
            streams.push(stream.map(move |delivery| (kind, delivery)).boxed());
        }
        // Subscribed first, then caught up: whatever was published while this replica
        // was not listening is committed before the heads are read. A membership may
        // have ended meanwhile, unheard of.
        self.memberships.forget_all();
        self.hub.recheck_sessions();
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
                Some((topic, Delivery::Lagged(n))) => {
                    self.metrics.relay_missed.inc_by(n);
                    tracing::warn!(dropped = n, ?topic, "relay lagged");
                    // Only what that topic carried can have been missed: room events are
                    // caught up from the store, revocations by checking every token again;
                    // presence is re-announced by every replica every 30 s anyway.
                    match topic {
                        Topic::Room(_) => {
                            self.memberships.forget_all();
                            self.catch_up().await?
                        }
                        Topic::Revocations => self.hub.recheck_sessions(),
                        Topic::Presence => {}
                    }
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

    /// After room events from the broker may have been missed: every local subscriber
    /// learns its rooms' newest sequence numbers (and fetches what it lacks from the
    /// store). Fails when the store cannot say; the relay then re-subscribes and tries
    /// again.
    async fn catch_up(&self) -> Result<(), String> {
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
            self.heads.start(&room, seq);
            let room_id = Arc::from(room.as_str());
            self.hub.dispatch(&room, Event::Head { room_id, seq });
        }
        Ok(())
    }

    /// Hands another replica's (or service's) room event to the local subscribers of
    /// its room.
    fn relay_event(&self, event: pb::RoomEvent) {
        if event.origin == **self.node() {
            return; // delivered locally already
        }
        self.metrics.relay_events.inc();
        let room_id: Arc<str> = Arc::from(event.room_id.as_str());
        let signal = |frame: ServerFrame| Event::Signal {
            room_id: room_id.clone(),
            frame: Utf8Bytes::from(frame.encode()),
        };
        let local = match event.kind {
            Some(Kind::Posted(message)) => {
                self.heads.advance(&room_id, message.seq);
                if message.created_at > 0 {
                    self.metrics.observe_relay(message.created_at);
                }
                Event::Message {
                    room_id: room_id.clone(),
                    seq: message.seq,
                    created_ms: message.created_at,
                    frame: Utf8Bytes::from(message_frame(&message).encode()),
                    trace: trace::relayed(&event.traceparent, &event.tracestate),
                    message: Arc::new(message),
                }
            }
            Some(Kind::Updated(message)) => {
                self.tell_starter(&room_id, &message);
                signal(ServerFrame::updated(&message))
            }
            Some(Kind::Reacted(reaction)) => signal(ServerFrame::reaction(&room_id, &reaction)),
            Some(Kind::Typing(typing)) => {
                self.presence.typing(&room_id, &typing.user_id);
                return;
            }
            Some(Kind::RoomDeleted(_)) => {
                self.memberships.forget_room(&room_id);
                Event::RoomDeleted(room_id.clone())
            }
            Some(Kind::MemberRemoved(removed)) => {
                self.memberships.forget_member(&room_id, &removed.user_id);
                Event::MemberRemoved {
                    room_id: room_id.clone(),
                    user_id: Arc::from(removed.user_id),
                }
            }
            Some(Kind::Read(read)) => {
                self.dispatch_read(room_id, &read.user_id, read.seq, read.shared);
                return;
            }
            Some(Kind::MemberAdded(added)) => {
                let user_id: Arc<str> = Arc::from(added.user_id.as_str());
                let event = Event::MemberAdded { room_id, user_id };
                self.hub.dispatch_user(&added.user_id, event);
                return;
            }
            Some(Kind::Renamed(renamed)) => Event::Renamed {
                room_id: room_id.clone(),
                name: Arc::from(renamed.name),
            },
            Some(Kind::ThreadRead(read)) => {
                let event = Event::ThreadRead {
                    room_id,
                    root: read.root,
                    seq: read.seq,
                };
                self.hub.dispatch_user(&read.user_id, event);
                return;
            }
            Some(Kind::NotifyLevel(chosen)) => {
                let level = Level::parse(&chosen.level);
                let event = Event::Level { room_id, level };
                self.hub.dispatch_user(&chosen.user_id, event);
                return;
            }
            Some(Kind::Head(head)) => {
                self.heads.advance(&room_id, head.seq);
                Event::Head {
                    room_id: room_id.clone(),
                    seq: head.seq,
                }
            }
            None => return,
        };
        self.hub.dispatch(&room_id, local);
    }

    /// Every [`FLUSH_EVERY`] until shutdown, hands out presence and typing changes to
    /// local subscribers and announces this replica's own to the others; every
    /// [`SYNC_EVERY`] re-announces everyone it holds and forgets silent replicas' users.
    async fn flush_presence(self) {
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync = tokio::time::interval(SYNC_EVERY);
        sync.tick().await;
        loop {
            tokio::select! {
                _ = flush.tick() => self.flush_once(),
                _ = sync.tick() => {
                    self.presence.expire();
                    let rooms = self.presence.snapshot();
                    self.announce(Announcement::Sync { node: self.node().to_string(), rooms });
                }
                _ = self.shutdown.clone().wait() => return,
            }
        }
    }

    fn flush_once(&self) {
        let Flushed { updates, announce } = self.presence.flush();
        for (room_id, update) in updates {
            let event = presence_event(room_id.clone(), update);
            self.hub.dispatch(&room_id, event);
        }
        if !announce.is_empty() {
            let node = self.node().to_string();
            self.announce(Announcement::Batch {
                node,
                rooms: announce,
            });
        }
    }

    fn announce(&self, announcement: Announcement) {
        let payload = serde_json::to_vec(&announcement).expect("announcements serialise");
        let _ = self
            .messages
            .outbox()
            .enqueue(PRESENCE_TOPIC, Bytes::from(payload), None);
    }

    fn relay_presence(&self, payload: &[u8]) {
        let Ok(announcement) = serde_json::from_slice::<Announcement>(payload) else {
            return;
        };
        let node = match &announcement {
            Announcement::Change { node, .. }
            | Announcement::Batch { node, .. }
            | Announcement::Sync { node, .. } => node,
        };
        if node.as_str() != &**self.node() {
            self.presence.apply(&announcement);
        }
    }
}

/// The frames of one room's presence update, in both forms connections may ask for.
fn presence_event(room_id: Arc<str>, update: RoomUpdate) -> Event {
    let text = |frame: ServerFrame| Utf8Bytes::from(frame.encode());
    let room = room_id.to_string();
    let (batched, singles) = match update {
        RoomUpdate::List { user_ids, count } => {
            let list = text(ServerFrame::PresenceList {
                room_id: room,
                user_ids,
                count,
            });
            (list.clone(), vec![list])
        }
        RoomUpdate::Changes {
            online,
            offline,
            typing,
            count,
        } => {
            let presence = |user_id: &String, online: bool| {
                text(ServerFrame::Presence {
                    room_id: room.clone(),
                    user_id: user_id.clone(),
                    online,
                })
            };
            let typer = |user_id: &String| {
                text(ServerFrame::Typing {
                    room_id: room.clone(),
                    user_id: user_id.clone(),
                })
            };
            let singles = (online.iter().map(|u| presence(u, true)))
                .chain(offline.iter().map(|u| presence(u, false)))
                .chain(typing.iter().map(typer))
                .collect();
            let batched = text(ServerFrame::PresenceChanges {
                room_id: room.clone(),
                online,
                offline,
                typing,
                count,
            });
            (batched, singles)
        }
    };
    Event::Presence {
        room_id,
        batched,
        singles: Arc::from(singles),
    }
}

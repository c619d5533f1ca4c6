//! A user's own event stream on a connection (subscribing to `me`): the user's rooms with
//! unread and mention counts kept live from room events, changes to the room list, the
//! notifications due by the user's levels; and the read receipts of subscribed rooms
//! that show them. Counts follow from sequence numbers and read markers, so an event seen
//! twice (by two topics, or after a refresh) changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use natter_core::events::pb;
use natter_core::store::{Level, RoomCounts, RoomKind};

use super::{Closing, Connection, Socket, error_frame};
use crate::error::ChatError;
use crate::protocol::{Receipt, RoomState, ServerFrame};

/// The room id a client subscribes to for its own event stream.
pub(super) const ME: &str = "me";
/// Longest excerpt of a message in a `notify` frame, in characters.
const EXCERPT_CHARS: usize = 140;

/// What a connection holds beyond its subscriptions, allocated when first needed (most
/// connections never do).
#[derive(Debug, Default)]
pub(super) struct Extra {
    /// The user's rooms with their counts, while the event stream is on.
    watched: Option<HashMap<Arc<str>, Counted>>,
    /// Subscribed rooms whose read receipts this connection receives.
    receipts: HashSet<Arc<str>>,
    /// The threads the user follows, while the event stream is on (empty otherwise).
    pub(super) threads: super::followed::Threads,
}

impl Extra {
    /// Whether the user's event stream is on.
    pub(super) fn streaming(&self) -> bool {
        self.watched.is_some()
    }
}

/// One room's counts in an event stream.
#[derive(Debug)]
struct Counted {
    kind: RoomKind,
    last_seq: i64,
    read_seq: i64,
    /// Messages after the marker that mention the user (not kept in direct rooms).
    mentioned: Vec<i64>,
    chosen: Option<Level>,
}

impl Counted {
    fn of(counts: RoomCounts) -> Self {
        Self {
            kind: counts.room.kind,
            last_seq: counts.room.last_seq,
            read_seq: counts.read_seq,
            mentioned: counts.mentioned,
            chosen: counts.chosen,
        }
    }

    fn unread(&self) -> i64 {
        (self.last_seq - self.read_seq).max(0)
    }

    fn mentions(&self) -> i64 {
        match self.kind {
            RoomKind::Direct => self.unread(),
            _ => self.mentioned.len() as i64,
        }
    }

    fn level(&self) -> Level {
        (self.chosen).unwrap_or_else(|| Level::default_for(self.kind))
    }

    fn unread_frame(&self, room_id: &str) -> ServerFrame {
        ServerFrame::Unread {
            room_id: room_id.into(),
            last_seq: self.last_seq,
            read_seq: self.read_seq,
            unread: self.unread(),
            mentions: self.mentions(),
        }
    }

    fn state(&self, room_id: &str, name: Option<String>) -> RoomState {
        RoomState {
            room_id: room_id.into(),
            kind: self.kind.as_str().into(),
            name,
            last_seq: self.last_seq,
            read_seq: self.read_seq,
            unread: self.unread(),
            mentions: self.mentions(),
            level: self.level().as_str().into(),
        }
    }

    /// Counts a message of the room; `None` when it is read already, else the reason
    /// it is due a notification, if it is. Messages may arrive out of order (one
    /// replica's own before another's earlier one): the newest seq is kept, and each
    /// unread mention is counted once.
    fn add(&mut self, message: &pb::Message, me: &str) -> Option<Option<&'static str>> {
        let seq = message.seq;
        self.last_seq = self.last_seq.max(seq);
        if seq <= self.read_seq {
            return None;
        }
        if message.sender_id.as_deref() == Some(me) {
            // Counted like any (the client's `read` moves the marker); never notified.
            return Some(None);
        }
        let named = message.mentions.iter().any(|m| m.user_id == me);
        let counts_mention = (named || message.mentions_room) && self.kind != RoomKind::Direct;
        if counts_mention && let Err(at) = self.mentioned.binary_search(&seq) {
            self.mentioned.insert(at, seq);
        }
        let thread_only = message.thread_root.is_some() && !message.also_to_room;
        Some(match self.level() {
            Level::Nothing => None,
            _ if named => Some("mention"),
            _ if thread_only => None,
            _ if message.mentions_room => Some("room"),
            Level::All if self.kind == RoomKind::Direct => Some("direct"),
            Level::All => Some("all"),
            Level::Mentions => None,
        })
    }

    /// Moves the marker forward; false when it was there already.
    fn read(&mut self, seq: i64) -> bool {
        if seq <= self.read_seq {
            return false;
        }
        self.read_seq = seq;
        self.mentioned.retain(|&mentioned| mentioned > seq);
        true
    }
}

impl Connection {
    /// Whether the event stream counts `room`.
    pub(super) fn watching(&self, room: &str) -> bool {
        let watched = self.extra.as_ref().and_then(|e| e.watched.as_ref());
        watched.is_some_and(|w| w.contains_key(room))
    }

    fn watched(&mut self) -> Option<&mut HashMap<Arc<str>, Counted>> {
        self.extra.as_mut().and_then(|e| e.watched.as_mut())
    }

    /// Stops hearing of `room` unless a subscription or the event stream still needs it.
    pub(super) fn release(&self, room: &str) {
        if !self.watching(room) && !self.subscriptions.contains_key(room) {
            self.chat.leave_room(room, self.id);
        }
    }

    /// Starts (or refreshes) the user's event stream: every room of the user with its
    /// counts in one `my_rooms` frame, then changes as they happen.
    pub(super) async fn watch<S: Socket>(&mut self, socket: &mut S) -> Result<(), Closing> {
        let user = self.user_id().to_owned();
        self.chat.hub.watch_user(&user, self.id, self.inbox.clone());
        self.chat.listen_user(&user).await;
        let limit = u32::try_from(self.chat.limits.max_subscriptions).unwrap_or(u32::MAX);
        let turn = self.chat.admit().await;
        let counts = self.chat.messages.room_counts(&user, limit).await;
        drop(turn);
        let counts = match counts {
            Ok(counts) => counts,
            Err(error) => {
                if self.watched().is_none() {
                    self.chat.unwatch_user(&user, self.id);
                }
                let refusal = error_frame(ChatError::from(error), Some(ME));
                return self.send(socket, refusal).await;
            }
        };
        let mut watched = HashMap::with_capacity(counts.len());
        let mut rooms = Vec::with_capacity(counts.len());
        for room in counts {
            let id = self
                .chat
                .hub
                .subscribe(&room.room.id, self.id, self.inbox.clone());
            self.chat.listen(&id).await;
            let name = room.room.name.clone();
            let mut counted = Counted::of(room);
            // A message committed between the read and listening is counted (its
            // mention, if any, by the next refresh).
            let head = self.chat.heads.get(&id).unwrap_or(0);
            counted.last_seq = counted.last_seq.max(head);
            rooms.push(counted.state(&id, name));
            watched.insert(id, counted);
        }
        let previous = (self.extra.get_or_insert_with(Box::default).watched).replace(watched);
        for room in previous.iter().flat_map(HashMap::keys) {
            self.release(room);
        }
        self.send(socket, ServerFrame::MyRooms { rooms }).await?;
        self.watch_threads(socket).await
    }

    /// Ends the event stream.
    pub(super) fn unwatch(&mut self) {
        let Some(watched) = self.extra.as_mut().and_then(|e| e.watched.take()) else {
            return;
        };
        if let Some(extra) = &mut self.extra {
            extra.threads = Default::default();
        }
        self.chat.unwatch_user(self.user_id(), self.id);
        for room in watched.keys() {
            self.release(room);
        }
    }

    /// Counts a message of a watched room: its counts (unless this connection is
    /// subscribed to the room and has the message itself) and a notification when due.
    pub(super) async fn count<S: Socket>(
        &mut self,
        socket: &mut S,
        message: &pb::Message,
    ) -> Result<(), Closing> {
        let me = self.user.as_ref().map_or("", |u| u.sub.as_str());
        let watched = self.extra.as_mut().and_then(|e| e.watched.as_mut());
        let Some(counted) = watched.and_then(|w| w.get_mut(message.room_id.as_str())) else {
            return Ok(());
        };
        let Some(due) = counted.add(message, me) else {
            return Ok(());
        };
        let counts = counted.unread_frame(&message.room_id);
        if !self.subscriptions.contains_key(message.room_id.as_str()) {
            self.send(socket, counts).await?;
        }
        let Some(reason) = due else {
            return Ok(());
        };
        let notify = ServerFrame::Notify {
            room_id: message.room_id.clone(),
            seq: message.seq,
            sender_id: message.sender_id.clone(),
            reason: reason.into(),
            excerpt: message.body.chars().take(EXCERPT_CHARS).collect(),
        };
        self.send(socket, notify).await
    }

    /// A read marker moved: the user's own recounts the room; another member's is a
    /// receipt for a subscription that receives them.
    pub(super) async fn on_read<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        user_id: &str,
        seq: i64,
    ) -> Result<(), Closing> {
        if user_id == self.user_id() {
            let Some(counted) = self.watched().and_then(|w| w.get_mut(room)) else {
                return Ok(());
            };
            if !counted.read(seq) {
                return Ok(());
            }
            let frame = counted.unread_frame(room);
            return self.send(socket, frame).await;
        }
        let receives = self
            .extra
            .as_ref()
            .is_some_and(|e| e.receipts.contains(room));
        if !receives || !self.subscriptions.contains_key(room) {
            return Ok(());
        }
        let receipt = ServerFrame::ReadReceipt {
            room_id: room.into(),
            user_id: user_id.into(),
            seq,
        };
        self.send(socket, receipt).await
    }

    /// The user became a member of `room`: the stream counts it from now on.
    pub(super) async fn on_added<S: Socket>(
        &mut self,
        socket: &mut S,
        room: Arc<str>,
    ) -> Result<(), Closing> {
        if self.watched().is_none() || self.watching(&room) {
            return Ok(());
        }
        self.chat.hub.subscribe(&room, self.id, self.inbox.clone());
        self.chat.listen(&room).await;
        let user = self.user_id().to_owned();
        let counts = match self.chat.messages.room_count(&user, &room).await {
            Ok(Some(counts)) => counts,
            outcome => {
                if let Err(error) = outcome {
                    // Heard of again by the next refresh (a broker or store recovery).
                    tracing::debug!(%error, "a new room of a stream was not read");
                }
                self.release(&room);
                return Ok(());
            }
        };
        let name = counts.room.name.clone();
        let counted = Counted::of(counts);
        let state = counted.state(&room, name);
        if let Some(watched) = self.watched() {
            watched.insert(room, counted);
        }
        self.send(socket, ServerFrame::RoomAdded { room: state })
            .await
    }

    /// The user is no longer in `room` (`reason`: `removed`, `room_deleted`).
    pub(super) async fn on_gone<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        reason: &str,
    ) -> Result<(), Closing> {
        if self.watched().and_then(|w| w.remove(room)).is_none() {
            return Ok(());
        }
        self.forget_threads(room);
        self.release(room);
        let frame = ServerFrame::RoomRemoved {
            room_id: room.into(),
            reason: reason.into(),
        };
        self.send(socket, frame).await
    }

    /// Every message of `room` up to `seq` is committed: a stream that counted fewer
    /// missed some, and reads the room's counts again.
    pub(super) async fn on_head<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        seq: i64,
    ) -> Result<(), Closing> {
        let behind = self.watched().and_then(|w| w.get(room));
        if behind.is_none_or(|counted| counted.last_seq >= seq) {
            return Ok(());
        }
        let user = self.user_id().to_owned();
        let Ok(Some(counts)) = self.chat.messages.room_count(&user, room).await else {
            return Ok(());
        };
        let counted = Counted::of(counts);
        let frame = counted.unread_frame(room);
        if let Some(slot) = self.watched().and_then(|w| w.get_mut(room)) {
            *slot = counted;
        }
        self.send(socket, frame).await
    }

    /// The user chose a level for `room` (here or on another device).
    pub(super) async fn on_level<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        level: Option<Level>,
    ) -> Result<(), Closing> {
        let Some(counted) = self.watched().and_then(|w| w.get_mut(room)) else {
            return Ok(());
        };
        if counted.chosen == level {
            return Ok(());
        }
        counted.chosen = level;
        let frame = ServerFrame::NotifyLevel {
            room_id: room.into(),
            level: counted.level().as_str().into(),
        };
        self.send(socket, frame).await
    }

    /// Sets the user's level in `room` from a `notify_level` frame and answers it.
    pub(super) async fn choose_level<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        level: Option<&str>,
    ) -> Result<(), Closing> {
        let user = self.user_id().to_owned();
        let chosen = natter_core::messaging::level_named(level);
        let set = match chosen {
            Ok(chosen) => (self.chat.set_level(&user, room, chosen).await).map(|l| (chosen, l)),
            Err(error) => Err(error.into()),
        };
        let (chosen, effective) = match set {
            Ok(set) => set,
            Err(refusal) => return self.send(socket, error_frame(refusal, Some(room))).await,
        };
        if let Some(counted) = self.watched().and_then(|w| w.get_mut(room)) {
            counted.chosen = chosen;
        }
        let frame = ServerFrame::NotifyLevel {
            room_id: room.into(),
            level: effective.as_str().into(),
        };
        self.send(socket, frame).await
    }

    /// After `subscribed`, for a subscription that asked for them: the room's read
    /// receipts, when the room shows them (none are sent otherwise).
    pub(super) async fn send_receipts<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
    ) -> Result<(), Closing> {
        let user = self.user_id().to_owned();
        let receipts = match self.chat.messages.receipts(&user, room).await {
            Ok(Some(receipts)) => receipts,
            Ok(None) => {
                self.forget_receipts(room);
                return Ok(());
            }
            Err(error) => {
                let refusal = error_frame(ChatError::from(error), Some(room));
                return self.send(socket, refusal).await;
            }
        };
        let extra = self.extra.get_or_insert_with(Box::default);
        extra.receipts.insert(Arc::from(room));
        let receipts = (receipts.into_iter())
            .map(|(user_id, seq)| Receipt { user_id, seq })
            .collect();
        let frame = ServerFrame::ReadReceipts {
            room_id: room.into(),
            receipts,
        };
        self.send(socket, frame).await
    }

    /// No more receipts of `room` (unsubscribed).
    pub(super) fn forget_receipts(&mut self, room: &str) {
        if let Some(extra) = &mut self.extra {
            extra.receipts.remove(room);
        }
    }
}

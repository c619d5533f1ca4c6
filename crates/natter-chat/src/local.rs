//! This replica's own subscribers, as the messages' owner hands them what this replica
//! stores: each message at once (the broker's copy is for the other replicas, and a
//! broker outage leaves local delivery working) and in seq order per room.

use std::sync::Arc;

use natter_core::events::pb;
use natter_core::messaging::{Local, Stored};
use tungstenite::Utf8Bytes;

use crate::hub::{Event, Hub};
use crate::listen::Heads;
use crate::protocol::ServerFrame;
use crate::service::message_frame;

/// The hub of this replica's connections and the heads of its rooms.
#[derive(Debug)]
pub(crate) struct Subscribers {
    pub(crate) hub: Hub,
    pub(crate) heads: Arc<Heads>,
}

impl Local for Subscribers {
    fn stored(&self, stored: Stored<'_>) {
        let (message, room) = (stored.wire, stored.wire.room_id.as_str());
        let event = Event::Message {
            room_id: Arc::from(room),
            seq: message.seq,
            created_ms: message.created_at,
            frame: Utf8Bytes::from(message_frame(message).encode()),
            trace: stored.trace.cloned(),
            message: message.clone(),
        };
        self.heads.advance(room, message.seq);
        self.hub.dispatch(room, event);
        if let Some(root) = stored.root {
            tell_starter(&self.hub, room, root);
            dispatch_signal(&self.hub, room, &ServerFrame::updated(root));
        }
    }
}

/// A thread's root changed: its author's local event streams follow the thread from its
/// first reply on (a root's edit or pin tells them nothing new).
pub(crate) fn tell_starter(hub: &Hub, room: &str, root: &pb::Message) {
    let (Some(starter), Some(_)) = (&root.sender_id, &root.thread) else {
        return;
    };
    let event = Event::ThreadRoot {
        room_id: Arc::from(room),
        root: root.seq,
    };
    hub.dispatch_user(starter, event);
}

/// Sends an unsequenced frame to this replica's subscribers of `room`.
pub(crate) fn dispatch_signal(hub: &Hub, room: &str, frame: &ServerFrame) {
    let event = Event::Signal {
        room_id: Arc::from(room),
        frame: Utf8Bytes::from(frame.encode()),
    };
    hub.dispatch(room, event);
}

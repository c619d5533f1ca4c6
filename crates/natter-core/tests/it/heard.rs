//! `Messages` publishing through an in-memory broker, with one room's events heard as
//! they are published: what the cases on publication order share.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use natter_core::broker::{Broker, Delivery, MemoryBroker};
use natter_core::events::{self, Kind};
use natter_core::messaging::Messages;
use natter_core::outbox::{Outbox, OutboxParts};
use natter_core::shutdown::{Shutdown, ShutdownTrigger};
use natter_core::store::Store;

/// `Messages` over a store and the events of one room it publishes.
pub struct Heard {
    pub messages: Messages,
    room: String,
    events: BoxStream<'static, Delivery>,
    /// Keeps the outbox running.
    _stop: ShutdownTrigger,
}

impl Heard {
    /// `Messages` over `store`, hearing `room`'s events from now on.
    pub async fn new(store: &Store, room: &str) -> Self {
        let broker = Arc::new(MemoryBroker::default());
        let events = broker.subscribe(&events::room_topic(room)).await.unwrap();
        let (stop, shutdown) = Shutdown::new();
        let parts = OutboxParts::new(broker, "test", shutdown);
        Self {
            messages: Messages::new(store.clone(), Outbox::start(parts)),
            room: room.to_owned(),
            events,
            _stop: stop,
        }
    }

    /// What `pick` takes from the room's next events, until it took `count`.
    pub async fn next(&mut self, count: usize, pick: fn(Kind) -> Option<i64>) -> Vec<i64> {
        let mut heard = Vec::new();
        while heard.len() < count {
            let Some(Delivery::Message(payload)) = self.events.next().await else {
                panic!("the room's events end or lag");
            };
            let event = events::decode(&events::room_topic(&self.room), &payload).unwrap();
            heard.extend(event.kind.and_then(pick));
        }
        heard
    }
}

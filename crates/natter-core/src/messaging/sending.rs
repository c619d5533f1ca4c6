//! Messages sent to one room that arrive together are stored together: whoever sends to
//! a room while a send to it is being stored joins the next transaction (one lock of the
//! room's row, and of a thread's root, and one commit; a burst of a hundred took a
//! hundred commits one after the other), and they are published in the order of their
//! seqs and handed, in that order, to the replica's own subscribers (handed over by each
//! sender after its answer, they came out of order, and each subscriber read the store to
//! fill the gap). A lone send is stored at once, as before.

use std::sync::Arc;

use opentelemetry::Context;

use super::{Local, Result, Stored, answered, published_update};
use crate::coalesce::{Batch, Coalescer};
use crate::events::{self, Kind};
use crate::outbox::Outbox;
use crate::store::{NewMessage, Posted, Store};

/// Most messages stored in one transaction.
const BATCH: usize = 64;

/// Sends waiting to be stored, by room. Cheap to clone; clones share the queues.
#[derive(Debug, Clone)]
pub(super) struct Sends(Coalescer<Storer>);

/// Stores a batch of messages to one room, publishes them and hands them to the
/// replica's own subscribers.
struct Storer {
    store: Store,
    outbox: Outbox,
    local: Option<Arc<dyn Local>>,
}

/// A [`NewMessage`] waiting for its batch (owned, its room the batch's key), with the
/// trace its publication carries.
struct Waiting {
    sender_id: String,
    client_id: String,
    body: String,
    reply_to: Option<i64>,
    mentions: Vec<(String, String)>,
    mentions_room: bool,
    thread_root: Option<i64>,
    also_to_room: bool,
    now: i64,
    trace: Option<Context>,
}

/// A send's answer: what was stored, and a new message in its wire shape as published.
pub(super) type Sent = Result<(Posted, Option<Arc<events::pb::Message>>)>;

impl Sends {
    /// Sends stored in `store`, published through `outbox` and handed to `local`.
    pub(super) fn new(store: Store, outbox: Outbox, local: Option<Arc<dyn Local>>) -> Self {
        let storer = Storer {
            store,
            outbox,
            local,
        };
        Self(Coalescer::new(storer, BATCH))
    }

    /// Stores `new` (idempotent per client id), with whatever else is sent to its room
    /// meanwhile, and publishes it with `trace`.
    pub(super) async fn post(&self, new: &NewMessage<'_>, trace: Option<Context>) -> Sent {
        let waiting = Waiting {
            sender_id: new.sender_id.to_owned(),
            client_id: new.client_id.to_owned(),
            body: new.body.to_owned(),
            reply_to: new.reply_to,
            mentions: new.mentions.to_vec(),
            mentions_room: new.mentions_room,
            thread_root: new.thread_root,
            also_to_room: new.also_to_room,
            now: new.now,
            trace,
        };
        let asked = self.0.ask(new.room_id.to_owned(), waiting);
        answered(asked.await)
    }
}

impl Waiting {
    fn new_message<'a>(&'a self, room_id: &'a str) -> NewMessage<'a> {
        NewMessage {
            room_id,
            sender_id: &self.sender_id,
            client_id: &self.client_id,
            body: &self.body,
            reply_to: self.reply_to,
            mentions: &self.mentions,
            mentions_room: self.mentions_room,
            thread_root: self.thread_root,
            also_to_room: self.also_to_room,
            now: self.now,
        }
    }
}

impl Batch for Storer {
    type Key = String;
    type Request = Waiting;
    type Answer = Sent;

    async fn run(&self, room: &String, asked: Vec<Waiting>) -> Vec<Sent> {
        let news: Vec<NewMessage<'_>> = asked.iter().map(|w| w.new_message(room)).collect();
        let stored = self.store(&news).await;
        let traces = asked.iter().map(|w| w.trace.as_ref());
        (stored.into_iter().zip(traces))
            .map(|(posted, trace)| Ok(self.publish(room, posted?, trace)))
            .collect()
    }
}

impl Storer {
    /// Stores `news` together; one by one when the batch failed for any reason but the
    /// database's absence (a retry in it, or a message the database refused), so each
    /// gets its own answer and no send fails for another's sake.
    async fn store(&self, news: &[NewMessage<'_>]) -> Vec<Result<Posted>> {
        if let [new] = news {
            return vec![self.store.post_message(*new).await.map_err(Into::into)];
        }
        match self.store.post_together(news).await {
            Ok(posted) => posted.into_iter().map(Ok).collect(),
            Err(error) if error.is_unavailable() => vec![Err(error.into()); news.len()],
            Err(_) => {
                let mut each = Vec::with_capacity(news.len());
                for new in news {
                    each.push(self.store.post_message(*new).await.map_err(Into::into));
                }
                each
            }
        }
    }

    /// Publishes a new message (and its thread's root as the message left it), and hands
    /// both to the replica's own subscribers.
    fn publish(
        &self,
        room: &str,
        posted: Posted,
        trace: Option<&Context>,
    ) -> (Posted, Option<Arc<events::pb::Message>>) {
        if !posted.created {
            return (posted, None);
        }
        let wire = Arc::new(events::message(&posted.message));
        let kind = Kind::Posted(events::pb::Message::clone(&wire));
        self.outbox.publish(room, kind, trace);
        let root = (posted.root.as_ref()).map(|root| published_update(&self.outbox, room, root));
        if let Some(local) = &self.local {
            local.stored(Stored {
                wire: &wire,
                root: root.as_ref(),
                trace,
            });
        }
        (posted, Some(wire))
    }
}

//! Reactions to one message that arrive together are applied together: whoever reacts
//! to it while a change is being stored joins the next transaction (one lock of the
//! message, one commit; a burst of a hundred took a hundred commits one after the other),
//! and the changes are published in the order their counts were handed out.

use super::rich::{MAX_DISTINCT_REACTIONS, Reaction};
use super::{MessageError, Result, answered};
use crate::coalesce::{Batch, Coalescer};
use crate::events::{self, Kind};
use crate::outbox::Outbox;
use crate::store::{Reacted, ReactionChange, Store};
use crate::time::now_ms;

/// Most reactions applied in one transaction.
const BATCH: usize = 64;

/// Reactions waiting to be applied, by message. Cheap to clone; clones share the queues.
#[derive(Debug, Clone)]
pub(super) struct Reactions(Coalescer<Applier>);

/// Applies a batch of reactions to one message and publishes them.
struct Applier {
    store: Store,
    outbox: Outbox,
}

/// One change: who, which emoji, add or remove.
type Change = (String, &'static str, bool);

impl Reactions {
    /// Reactions stored in `store` and published through `outbox`.
    pub(super) fn new(store: Store, outbox: Outbox) -> Self {
        Self(Coalescer::new(Applier { store, outbox }, BATCH))
    }

    /// Adds (or removes) `user`'s `emoji` on message `seq` of `room`, with whatever
    /// else is asked of that message meanwhile, and publishes it.
    pub(super) async fn apply(
        &self,
        (room, seq): (&str, i64),
        user: &str,
        emoji: &'static str,
        add: bool,
    ) -> Result<Reaction> {
        let asked = self
            .0
            .ask((room.to_owned(), seq), (user.to_owned(), emoji, add));
        answered(asked.await)
    }
}

impl Batch for Applier {
    type Key = (String, i64);
    type Request = Change;
    type Answer = Result<Reaction>;

    async fn run(&self, (room, seq): &(String, i64), asked: Vec<Change>) -> Vec<Result<Reaction>> {
        let now = now_ms();
        let changes: Vec<ReactionChange<'_>> = (asked.iter())
            .map(|(user, emoji, add)| ReactionChange {
                room_id: room,
                seq: *seq,
                user_id: user,
                emoji,
                add: *add,
                max_distinct: MAX_DISTINCT_REACTIONS,
                now,
            })
            .collect();
        let reacted = match self.store.react_together(&changes).await {
            Ok(reacted) => reacted,
            Err(error) => return vec![Err(error.into()); asked.len()],
        };
        let answers = asked.into_iter().zip(reacted);
        answers
            .map(|((user_id, emoji, added), reacted)| {
                let count = counted(reacted)?;
                let reaction = Reaction {
                    seq: *seq,
                    emoji: emoji.to_owned(),
                    user_id,
                    added,
                    count,
                };
                let kind = Kind::Reacted(events::reaction(&reaction));
                self.outbox.publish(room, kind, None);
                Ok(reaction)
            })
            .collect()
    }
}

/// The count a change left, or why it was refused.
fn counted(reacted: Reacted) -> Result<i64> {
    match reacted {
        Reacted::Count(count) => Ok(count),
        Reacted::NoMessage => Err(MessageError::NoSuchMessage),
        Reacted::TooMany => Err(MessageError::Unmet {
            code: "too_many_reactions",
            message: "this message has the most different reactions allowed (20)",
        }),
    }
}

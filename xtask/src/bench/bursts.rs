//! `bench chat`'s bursts on one message, the hot spots of rich messages: every member of
//! one room reacts with the same emoji to it at once, or replies in its thread at once.
//! Each member times every update frame (`reaction`, or the root's `message_updated` with
//! the thread's reply count) from the start of the burst; no update is lost when every
//! member sees each count 1..=N exactly once (each change counted every earlier one).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::swarm::{Command, Report, Swarm};

/// What a burst showed.
#[derive(Debug, Default)]
pub(super) struct Burst {
    /// Members of the room, each reacting once.
    pub(super) members: usize,
    /// When each update frame arrived, from the start of the burst.
    pub(super) frames: Vec<Duration>,
    /// How many members saw each count.
    counts: BTreeMap<i64, usize>,
}

impl Burst {
    /// Update frames due: every member hears of every change.
    pub(super) fn expected(&self) -> usize {
        self.members * self.members
    }

    /// Counts 1..=members that some member did not see (or saw twice): lost updates.
    pub(super) fn wrong_counts(&self) -> usize {
        (1..=self.members as i64)
            .filter(|count| self.counts.get(count) != Some(&self.members))
            .count()
    }
}

/// Members `room`, `room + rooms`, … (the members of room `room`) each get `command` for
/// message `seq` at once.
pub(super) async fn burst(
    swarm: &mut Swarm,
    (rooms, room): (usize, usize),
    command: fn(i64) -> Command,
    seq: i64,
) -> Burst {
    let members: Vec<usize> = (room..swarm.len()).step_by(rooms.max(1)).collect();
    *swarm.burst.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    for &member in &members {
        swarm.tell(member, command(seq));
    }
    let mut burst = Burst {
        members: members.len(),
        ..Burst::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while burst.frames.len() < burst.expected() {
        match tokio::time::timeout_at(deadline, swarm.reports.recv()).await {
            Ok(Some(Report::Update(count, after))) => {
                burst.frames.push(after);
                *burst.counts.entry(count).or_default() += 1;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    burst.frames.sort();
    burst
}

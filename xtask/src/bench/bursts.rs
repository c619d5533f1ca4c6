//! `bench chat`'s bursts on one room, its hot spots: every member of one room sends to it
//! at once, reacts with the same emoji to one message at once, or replies in its thread
//! at once. Each member times every message (from its send) or update frame (`reaction`,
//! or the root's `message_updated` with the thread's reply count, from the start of the
//! burst); nothing is lost when every member gets each message, or sees each count
//! 1..=N, exactly once (each change counted every earlier one).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::swarm::{Command, Report, Swarm};

/// What a burst showed.
#[derive(Debug, Default)]
pub(super) struct Burst {
    /// Members of the room, each acting once.
    pub(super) members: usize,
    /// When each message (from its send) or update frame (from the start of the burst)
    /// arrived.
    pub(super) frames: Vec<Duration>,
    /// How many members saw each count.
    counts: BTreeMap<i64, usize>,
}

impl Burst {
    /// Update frames due: every member hears of every change.
    pub(super) fn expected(&self) -> usize {
        self.members * self.members
    }

    /// Counts (or messages) 1..=members that some member did not see, or saw twice.
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
    let members = members(swarm, (rooms, room));
    *swarm.burst.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    for &member in &members {
        swarm.tell(member, command(seq));
    }
    let updates = |report| match report {
        Report::Update(count, after) => Some((count, after)),
        _ => None,
    };
    collect(swarm, members.len(), updates).await
}

/// The members of room `room` each send one message to it at once, with ids from
/// `*next_id` on (which moves past them); each message's deliveries are timed from its
/// send and counted by its place, 1..=N.
pub(super) async fn sends(
    swarm: &mut Swarm,
    (rooms, room): (usize, usize),
    next_id: &mut u64,
) -> Burst {
    let members = members(swarm, (rooms, room));
    let first = *next_id;
    for &member in &members {
        swarm.tell(member, Command::Send(*next_id));
        *next_id += 1;
    }
    let delivered = |report| match report {
        Report::Delivered(id, after) if id >= first => Some(((id - first) as i64 + 1, after)),
        _ => None,
    };
    collect(swarm, members.len(), delivered).await
}

/// The clients of room `room`'s members: `room`, `room + rooms`, …
fn members(swarm: &Swarm, (rooms, room): (usize, usize)) -> Vec<usize> {
    (room..swarm.len()).step_by(rooms.max(1)).collect()
}

/// Reads reports until every one of `members` heard of every one's act (or 10 s passed);
/// `timed` picks the burst's frames out of them, as (count, time).
async fn collect(
    swarm: &mut Swarm,
    members: usize,
    timed: impl Fn(Report) -> Option<(i64, Duration)>,
) -> Burst {
    let mut burst = Burst {
        members,
        ..Burst::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while burst.frames.len() < burst.expected() {
        match tokio::time::timeout_at(deadline, swarm.reports.recv()).await {
            Ok(Some(report)) => {
                if let Some((count, after)) = timed(report) {
                    burst.frames.push(after);
                    *burst.counts.entry(count).or_default() += 1;
                }
            }
            _ => break,
        }
    }
    burst.frames.sort();
    burst
}

//! The push worker, run by every website replica (and the standalone process): each tick
//! it looks at new messages room by room (one replica per range, by the room's cursor)
//! and queues a push per recipient due one — a mention, `@room`, a direct message, a room
//! at level `all`, for members with a push subscription who have not read it — due after
//! a short delay; then it sends what is due and still unread, retrying with backoff, and
//! forgets subscriptions their push service calls gone. Nothing of this runs inside a
//! send: a message to a room of 10,000 costs its sender nothing here.

use std::time::Duration;

use super::{Delivery, Payload, Sender};
use crate::shutdown::Shutdown;
use crate::store::{Channel, DuePush, PushContent, Store};
use crate::time::now_ms;

/// Pushes claimed per tick.
const CLAIM: u32 = 100;
/// How long a claimed push is its sender's.
const LEASE_MS: i64 = 60_000;
/// Tries before a push is given up.
const MAX_ATTEMPTS: i64 = 6;
/// Longest text of a push.
const BODY_CHARS: usize = 140;
/// Messages older than this when looked at are not pushed (a room whose cursor waited,
/// a worker that was down).
const MAX_AGE_MS: i64 = 60 * 60 * 1000;

/// When and how often the worker acts.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// A message read within this delay is not pushed.
    pub delay: Duration,
    /// Pause between ticks.
    pub every: Duration,
    /// The first retry's wait; each next one waits twice as long.
    pub retry_after: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(15),
            every: Duration::from_secs(1),
            retry_after: Duration::from_secs(2),
        }
    }
}

/// Produces and sends pushes from the store's outbox.
#[derive(Debug, Clone)]
pub struct PushWorker {
    store: Store,
    sender: Sender,
    settings: WorkerSettings,
}

impl PushWorker {
    /// A worker over `store` sending with `sender`.
    pub fn new(store: Store, sender: Sender, settings: WorkerSettings) -> Self {
        Self {
            store,
            sender,
            settings,
        }
    }

    /// Ticks until shutdown; a failing store is logged and tried again next tick.
    pub async fn run(self, shutdown: Shutdown) {
        let every = self.settings.every;
        shutdown.every(every, "push worker", || self.tick()).await;
    }

    /// One round: queue what new messages made due, then send what is due now.
    pub async fn tick(&self) -> crate::store::Result<()> {
        self.produce().await?;
        self.send_due().await
    }

    async fn produce(&self) -> crate::store::Result<()> {
        let now = now_ms();
        let due_at = now + self.settings.delay.as_millis() as i64;
        (self.store)
            .produce_behind(Channel::Push, now - MAX_AGE_MS, due_at)
            .await
    }

    async fn send_due(&self) -> crate::store::Result<()> {
        let now = now_ms();
        for push in self.store.claim_pushes(now, LEASE_MS, CLAIM).await? {
            self.deliver(&push, now).await?;
        }
        Ok(())
    }

    /// Sends one claimed push to every subscription of its recipient, unless it was read
    /// meanwhile; finishes it, or schedules another try when a push service asked for one.
    async fn deliver(&self, push: &DuePush, now: i64) -> crate::store::Result<()> {
        let content = match self.store.push_content(push).await? {
            Some(content) if content.settled == 0 => content,
            _ => return self.store.finish_push(push).await,
        };
        let payload = payload(push, content);
        let urgent = push.reason != "all";
        let mut again = false;
        for subscription in self.store.push_subscriptions(&push.user_id).await? {
            let delivery = match self.sender.send(&subscription, &payload, urgent, now).await {
                Ok(delivery) => delivery,
                Err(error) => {
                    tracing::debug!(%error, "a push could not be made");
                    Delivery::Refused
                }
            };
            match delivery {
                Delivery::Gone => {
                    let endpoint = &subscription.endpoint;
                    self.store.delete_push_subscription(endpoint, None).await?;
                }
                Delivery::Retry => again = true,
                Delivery::Sent | Delivery::Refused => {}
            }
        }
        if again && push.attempts < MAX_ATTEMPTS {
            let first = self.settings.retry_after.as_millis() as i64;
            let backoff = first * 2_i64.pow(push.attempts.clamp(1, 10) as u32 - 1);
            return self.store.retry_push(push, now + backoff).await;
        }
        self.store.finish_push(push).await
    }
}

fn payload(push: &DuePush, content: PushContent) -> Payload {
    let sender = content.sender.unwrap_or_else(|| "someone".into());
    let place = match content.room_name {
        Some(room) => format!("{sender} in {room}"),
        None => sender,
    };
    let title = match push.reason.as_str() {
        "mention" => format!("{place} mentioned you"),
        _ => place,
    };
    Payload {
        room_id: push.room_id.clone(),
        seq: push.seq,
        title,
        body: content.body.chars().take(BODY_CHARS).collect(),
        url: format!("/rooms/{}", push.room_id),
        tag: format!("{}:{}", push.room_id, push.seq),
    }
}

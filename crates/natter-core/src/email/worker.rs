//! The digest worker, run by every website replica (and the standalone process) when
//! digests are enabled: each tick it queues new mentions, `@room` and direct messages of
//! users who can get digests (room by room, one replica per range by the room's
//! cursor), then claims users whose queued messages waited the delay — one replica per
//! user by a lease — and sends each one email of what is still unread. A user gets at
//! most one digest per delay; an SMTP failure is tried again a minute later.

use std::time::Duration;

use super::Mailer;
use crate::secret::random_token;
use crate::shutdown::Shutdown;
use crate::store::{Channel, DueDigest, Store};
use crate::time::now_ms;

/// Users claimed per tick.
const CLAIM: u32 = 50;
/// How long a claimed user is their sender's.
const LEASE_MS: i64 = 120_000;
/// Wait before a digest the SMTP server refused is tried again.
const RETRY_MS: i64 = 60_000;
/// Messages older than this when looked at are not put into digests.
const MAX_AGE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Queues and sends email digests.
#[derive(Debug, Clone)]
pub struct DigestWorker {
    store: Store,
    mailer: Mailer,
    /// How long a message waits unread before a digest takes it; also the least time
    /// between two digests to one user.
    delay: Duration,
    /// Pause between ticks.
    every: Duration,
}

impl DigestWorker {
    /// A worker over `store` sending with `mailer`; messages wait `delay`.
    pub fn new(store: Store, mailer: Mailer, delay: Duration) -> Self {
        Self {
            store,
            mailer,
            delay,
            every: Duration::from_secs(10),
        }
    }

    /// Ticks every `every` instead (tests).
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Ticks until shutdown; a failing store is logged and tried again next tick.
    pub async fn run(self, shutdown: Shutdown) {
        let every = self.every;
        shutdown.every(every, "digest worker", || self.tick()).await;
    }

    /// One round: queue what new messages made due, then send the digests due now.
    pub async fn tick(&self) -> crate::store::Result<()> {
        let now = now_ms();
        let delay = self.delay.as_millis() as i64;
        (self.store)
            .produce_behind(Channel::Email, now - MAX_AGE_MS, delay)
            .await?;
        let token = || random_token("");
        for due in self
            .store
            .claim_digests(now, LEASE_MS, CLAIM, token)
            .await?
        {
            self.send(&due, now, delay).await?;
        }
        Ok(())
    }

    /// Sends `due` their digest, unless everything in it was read meanwhile.
    async fn send(&self, due: &DueDigest, now: i64, delay: i64) -> crate::store::Result<()> {
        let (items, total) = self.store.digest_items(&due.user_id, now).await?;
        if items.is_empty() {
            return self.store.finish_digest(&due.user_id, now, None).await;
        }
        let message = match self.mailer.compose(due, &items, total) {
            Ok(message) => message,
            Err(error) => {
                // Nothing to try again: the address itself is unusable.
                tracing::warn!(%error, user = %due.user_id, "a digest could not be composed");
                return self.store.finish_digest(&due.user_id, now, None).await;
            }
        };
        match self.mailer.send(message).await {
            Ok(()) => {
                tracing::debug!(user = %due.user_id, total, "digest sent");
                (self.store)
                    .finish_digest(&due.user_id, now, Some(now + delay))
                    .await
            }
            Err(error) => {
                tracing::warn!(%error, user = %due.user_id, "a digest was not sent; trying again later");
                self.store.retry_digest(&due.user_id, now + RETRY_MS).await
            }
        }
    }
}

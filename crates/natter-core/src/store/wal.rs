//! SQLite's write-ahead log checkpointed beside the writer, not by it: a commit that
//! takes the log past its threshold otherwise copies the log into the database and syncs
//! both files before it returns, and every send queued behind the one writer waits for
//! that (at 450 messages a second, once a second: the sends' ack p99).

use std::time::Duration;

use super::{Backend, Result, Store};
use crate::shutdown::Shutdown;

/// How often the log is checkpointed. A checkpoint of a log with nothing new to copy
/// looks at the log's index and syncs nothing.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The log may reach 10,000 pages before a commit checkpoints it after all (4 KiB each:
/// 40 MB; SQLite's default is 1,000). Far above what a second of writes adds, so only a
/// checkpointer that stopped or fell behind leaves it to the writer.
pub(super) const AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 10000";

/// Frames in the log, and frames of it copied into the database, after a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// Frames in the log.
    pub log: i64,
    /// Of them, frames now in the database.
    pub copied: i64,
}

impl Store {
    /// Copies what it can of SQLite's log into the database without waiting for readers
    /// or the writer (a passive checkpoint), on a reading connection. `None` on
    /// PostgreSQL, which has no such log to tend.
    pub async fn checkpoint(&self) -> Result<Option<Checkpointed>> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let (_busy, log, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&self.pool)
                .await?;
        Ok(Some(Checkpointed { log, copied }))
    }

    /// Checkpoints SQLite's log every [`CHECKPOINT_EVERY`] until `shutdown`; returns at
    /// once on PostgreSQL.
    pub async fn keep_checkpointed(self, shutdown: Shutdown) {
        if self.backend != Backend::Sqlite {
            return;
        }
        shutdown
            .every(CHECKPOINT_EVERY, "WAL checkpoint", || async {
                self.checkpoint().await.map(|_| ())
            })
            .await;
    }
}

//! Messages to one room stored together: a burst of sends (or of replies in one thread)
//! takes the room's row lock, and each root's, once and commits once, instead of queuing
//! one transaction after the other on those locks.

use std::collections::HashSet;

use super::messages::{insert_mentions, insert_message_pg, insert_message_sqlite};
use super::{Backend, NewMessage, Posted, Result, Store, StoreError};

impl Store {
    /// Stores `news`, all to one room, in one transaction: each takes the room's next seq
    /// in their order and, in a thread, adds to its root's summary (each `root` is the
    /// root as that reply leaves it). All or nothing: a client id stored before, or twice
    /// in `news`, fails the whole batch with [`StoreError::Conflict`]; storing each with
    /// [`Store::post_message`] then answers the retries with what they stored.
    ///
    /// # Panics
    ///
    /// If the messages are not all to one room: only its row is locked.
    #[tracing::instrument(name = "db.post_messages", skip_all, fields(otel.kind = "client", db.system.name = self.system(), db.operation.name = "INSERT", db.operation.batch.size = news.len()))]
    pub async fn post_together(&self, news: &[NewMessage<'_>]) -> Result<Vec<Posted>> {
        let Some(first) = news.first() else {
            return Ok(Vec::new());
        };
        assert!(
            news.iter().all(|new| new.room_id == first.room_id),
            "messages stored together are to one room"
        );
        let mut ids = HashSet::with_capacity(news.len());
        if !news
            .iter()
            .all(|new| ids.insert((new.sender_id, new.client_id)))
        {
            return Err(StoreError::Conflict(
                "one client id twice in a batch".into(),
            ));
        }
        let mut tx = self.writer.begin().await?;
        // The roots first, in the order of their seqs (two batches of a room lock them in
        // the same order, so they never wait for each other crosswise), each updated once
        // for all its replies; the room's row last, from the first insert to the commit,
        // as for a lone reply.
        let mut replies: Vec<(i64, usize)> = (news.iter().enumerate())
            .filter_map(|(at, new)| Some((new.thread_root?, at)))
            .collect();
        replies.sort_unstable();
        let mut roots = vec![None; news.len()];
        for thread in replies.chunk_by(|a, b| a.0 == b.0) {
            let of_root: Vec<&NewMessage<'_>> = thread.iter().map(|&(_, at)| &news[at]).collect();
            let updated = self.thread_replies(&mut tx, thread[0].0, &of_root).await?;
            for (&(_, at), root) in thread.iter().zip(updated) {
                roots[at] = Some(root);
            }
        }
        let mut posted = Vec::with_capacity(news.len());
        for (new, root) in news.iter().zip(roots) {
            let seq = match self.backend {
                Backend::Postgres => insert_message_pg(&mut *tx, new).await?,
                Backend::Sqlite => {
                    let seq = insert_message_sqlite(&mut *tx, new).await?;
                    insert_mentions(&mut tx, new.room_id, seq, new.mentions).await?;
                    seq
                }
            };
            let message = new.stored(seq);
            let created = true;
            posted.push(Posted {
                message,
                created,
                root,
            });
        }
        tx.commit().await?;
        Ok(posted)
    }
}

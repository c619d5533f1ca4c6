//! A fixed set of password-hashing threads, each keeping its argon2 working memory
//! between hashes. A burst of logins then costs `threads × m` KiB once and never more:
//! hashing on tokio's blocking pool instead allocated `m` KiB per hash on whichever of
//! its (up to 512) threads ran it, and the allocator kept those blocks in per-thread
//! arenas long after the burst.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use argon2::Block;

use crate::AuthError;

/// Work for a hashing thread, given that thread's memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The hashing threads; they stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct HashPool {
    jobs: Sender<Job>,
}

impl HashPool {
    /// `threads` hashing threads (at least one).
    pub fn new(threads: usize) -> Result<Self, AuthError> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("natter-argon2-{index}"))
                .spawn(move || work(&queue))
                .map_err(|e| AuthError::Internal(format!("hashing thread: {e}")))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `job` on the next free hashing thread with that thread's memory.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let stopped = || AuthError::Internal("password hashing stopped".into());
        let (done, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory| {
                let _ = done.send(job(memory));
            }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else {
            return;
        };
        job(&mut memory);
    }
}

/// `memory` as `blocks` blocks for one hash, grown when a hash needs more.
pub fn blocks_for(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

/// Shrinks `memory` back to `keep` blocks after a hash that needed more (a stored hash at
/// older, larger parameters does not pin its size).
pub fn shrink_to(memory: &mut Vec<Block>, keep: usize) {
    if memory.len() > keep {
        memory.truncate(keep);
        memory.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_threads_and_keep_their_memory() {
        let pool = HashPool::new(1).unwrap();
        let grown = pool
            .run(|memory| Ok(blocks_for(memory, 8).len()))
            .await
            .unwrap();
        assert_eq!(grown, 8);
        let (kept, thread) = pool
            .run(|memory| {
                Ok((
                    memory.len(),
                    std::thread::current().name().map(str::to_owned),
                ))
            })
            .await
            .unwrap();
        assert_eq!(kept, 8, "the thread's memory outlives a hash");
        assert_eq!(thread.as_deref(), Some("natter-argon2-0"));
        let shrunk = pool
            .run(|memory| {
                shrink_to(memory, 2);
                Ok(memory.len())
            })
            .await
            .unwrap();
        assert_eq!(shrunk, 2);
    }
}

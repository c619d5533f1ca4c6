//! The threads a user follows, in their event stream: `my_threads` after `my_rooms`, then
//! `thread_unread` as replies arrive, as the user's marker in a thread moves on any
//! device, and as the user starts following a thread (they replied in it, a reply
//! mentioned them, or someone replied to their message: then the thread is read from
//! the store, which holds who follows what). Unread replies are kept as seqs, so a reply
//! seen twice counts once.

use std::collections::HashMap;
use std::sync::Arc;

use natter_core::events::pb;
use natter_core::store::ThreadUnread;

use super::{Closing, Connection, Socket};
use crate::protocol::{ServerFrame, ThreadState};

/// Followed threads by room, then root (looked up by the message's `&str` room id: no
/// allocation per message).
pub(super) type Threads = HashMap<Arc<str>, HashMap<i64, Counted>>;

/// One followed thread's marker and unread replies by others.
#[derive(Debug, Default)]
pub(super) struct Counted {
    read_seq: i64,
    unread: Vec<i64>,
}

impl Counted {
    fn of(thread: &mut ThreadUnread) -> Self {
        Self {
            read_seq: thread.read_seq,
            unread: std::mem::take(&mut thread.unread),
        }
    }

    fn state(&self, room: &str, root: i64) -> ThreadState {
        ThreadState {
            room_id: room.into(),
            root,
            read_seq: self.read_seq,
            unread: self.unread.len() as i64,
        }
    }

    /// Counts a reply by someone else; false when it was counted or read already.
    fn add(&mut self, seq: i64) -> bool {
        if seq <= self.read_seq {
            return false;
        }
        match self.unread.binary_search(&seq) {
            Ok(_) => false,
            Err(at) => {
                self.unread.insert(at, seq);
                true
            }
        }
    }

    /// Moves the marker forward; false when it was there already.
    fn read(&mut self, seq: i64) -> bool {
        if seq <= self.read_seq {
            return false;
        }
        self.read_seq = seq;
        self.unread.retain(|&reply| reply > seq);
        true
    }
}

impl Connection {
    /// The followed threads, while the event stream is on.
    fn threads(&mut self) -> Option<&mut Threads> {
        let extra = self.extra.as_mut().filter(|e| e.streaming())?;
        Some(&mut extra.threads)
    }

    /// Counts `thread` as followed; its state.
    fn keep(&mut self, mut thread: ThreadUnread) -> Option<ThreadState> {
        let counted = Counted::of(&mut thread);
        let state = counted.state(&thread.room_id, thread.root_seq);
        let threads = self.threads()?;
        let room = threads.entry(Arc::from(thread.room_id)).or_default();
        room.insert(thread.root_seq, counted);
        Some(state)
    }

    /// Reads the followed threads for a starting (or refreshed) stream and sends them
    /// in `my_threads`.
    pub(super) async fn watch_threads<S: Socket>(&mut self, socket: &mut S) -> Result<(), Closing> {
        let user = self.user_id().to_owned();
        let threads = match self.chat.messages.thread_counts(&user, None).await {
            Ok(threads) => threads,
            Err(error) => {
                // The rooms' counts went out; threads come with the next refresh.
                tracing::debug!(%error, "a stream's threads were not read");
                Vec::new()
            }
        };
        if let Some(kept) = self.threads() {
            kept.clear();
        }
        let states = threads.into_iter().filter_map(|t| self.keep(t)).collect();
        self.send(socket, ServerFrame::MyThreads { threads: states })
            .await
    }

    /// A thread message arrived: a followed thread counts a reply by someone else; a
    /// thread the user now follows (their own reply, or one that mentions them) is read.
    pub(super) async fn count_reply<S: Socket>(
        &mut self,
        socket: &mut S,
        message: &pb::Message,
    ) -> Result<(), Closing> {
        let Some(root) = message.thread_root else {
            return Ok(());
        };
        let me = self.user_id();
        let own = message.sender_id.as_deref() == Some(me);
        let named = message.mentions.iter().any(|m| m.user_id == me);
        let room = message.room_id.as_str();
        let Some(threads) = self.threads() else {
            return Ok(());
        };
        let Some(counted) = threads.get_mut(room).and_then(|t| t.get_mut(&root)) else {
            return match own || named {
                true => self.follow(socket, room, root).await,
                false => Ok(()),
            };
        };
        if own || !counted.add(message.seq) {
            return Ok(());
        }
        let state = counted.state(room, root);
        self.send(socket, ServerFrame::ThreadUnread(state)).await
    }

    /// Someone replied to a message of the user's: the thread is followed from now on.
    pub(super) async fn on_thread_root<S: Socket>(
        &mut self,
        socket: &mut S,
        room: Arc<str>,
        root: i64,
    ) -> Result<(), Closing> {
        let threads = self.threads();
        let followed = threads
            .and_then(|t| t.get(&room))
            .map(|t| t.contains_key(&root));
        match followed {
            Some(true) => Ok(()),
            _ => self.follow(socket, &room, root).await,
        }
    }

    /// Reads a thread the user has started following and sends its counts.
    async fn follow<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        root: i64,
    ) -> Result<(), Closing> {
        let user = self.user_id().to_owned();
        let only = Some((room, root));
        let thread = match self.chat.messages.thread_counts(&user, only).await {
            Ok(mut found) => found.pop(),
            Err(error) => {
                tracing::debug!(%error, "a newly followed thread was not read");
                None
            }
        };
        match thread.and_then(|t| self.keep(t)) {
            Some(state) => self.send(socket, ServerFrame::ThreadUnread(state)).await,
            None => Ok(()),
        }
    }

    /// The user's marker in a thread moved (here or on another device).
    pub(super) async fn on_thread_read<S: Socket>(
        &mut self,
        socket: &mut S,
        room: Arc<str>,
        root: i64,
        seq: i64,
    ) -> Result<(), Closing> {
        let threads = self.threads().and_then(|t| t.get_mut(&room));
        let Some(counted) = threads.and_then(|t| t.get_mut(&root)) else {
            return Ok(());
        };
        if !counted.read(seq) {
            return Ok(());
        }
        let state = counted.state(&room, root);
        self.send(socket, ServerFrame::ThreadUnread(state)).await
    }

    /// The user left `room`: its threads are no longer counted.
    pub(super) fn forget_threads(&mut self, room: &str) {
        if let Some(threads) = self.threads() {
            threads.remove(room);
        }
    }
}

//! One WebSocket connection: authentication, subscriptions with in-order exactly-once
//! delivery per room (replay on resume, gap fill, duplicate drop), sends with their
//! acknowledgements, limits, heartbeats, and the close codes of docs/protocol.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{Either, ready};
use futures::{FutureExt as _, Sink, SinkExt, Stream, StreamExt};
use natter_core::events;
use natter_core::messaging::Post;
use natter_core::policy::Action;
use natter_core::store::MessageRecord;
use natter_core::token::{AccessClaims, TokenError};
use tokio::time::Instant;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, Utf8Bytes};

use tracing::Instrument;

use crate::error::ChatError;
use crate::hub::{Event, Inbox, Mailbox, Taken, inbox};
use crate::protocol::{ClientFrame, ServerFrame, VERSION, close};
use crate::service::{Chat, REPLAY_LIMIT, Turn, message_frame};
use crate::trace;
use subscriptions::Subscriptions;

/// Most queued events handled in a row before the connection looks at anything else.
const STREAK: u32 = 32;

/// What a connection talks over: a [`crate::wire::Wire`] in production, channels in tests.
pub trait Socket:
    Stream<Item = Result<Message, tungstenite::Error>>
    + Sink<Message, Error = tungstenite::Error>
    + Unpin
    + Send
{
}

impl<T> Socket for T where
    T: Stream<Item = Result<Message, tungstenite::Error>>
        + Sink<Message, Error = tungstenite::Error>
        + Unpin
        + Send
{
}

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
struct Closing(u16, &'static str);

/// The connection ends without a close frame of ours (the client closed or went away).
const ENDED: Closing = Closing(0, "");

/// What reading the socket gives: a frame, a read failure, or `None` at its end.
type Received = Option<Result<Message, tungstenite::Error>>;

/// Where a message stands in a subscriber's order of its room.
enum Order {
    /// Not subscribed, or already delivered.
    Skip,
    /// The one expected next.
    Next,
    /// Later than the one expected (given): those between come from the store first.
    Gap(i64),
}

/// The connection loop's bookkeeping.
struct Pace {
    /// When the client last sent something.
    last_heard: Instant,
    /// When the next ping is due.
    ping_at: Instant,
    /// Events and frames handled in a row without waiting.
    streak: u32,
    /// Whether the last thing handled was a client frame: then a frame the socket already
    /// holds is handled before the flush.
    read_last: bool,
    /// Whether frames were read after the authentication deadline passed.
    late_read: bool,
}

impl Pace {
    fn new(heartbeat: Duration) -> Self {
        let now = Instant::now();
        Self {
            last_heard: now,
            ping_at: now + heartbeat,
            streak: 0,
            read_last: false,
            late_read: false,
        }
    }
}

/// What a connection with nothing queued woke for.
enum Woke {
    /// The service is shutting down.
    Stop,
    /// The timer: the token's expiry (or the authentication deadline), or a ping due.
    Timer,
    /// The socket gave a frame, or ended.
    Received(Received),
    /// The mailbox gave an event, or overflowed.
    Taken(Taken),
}

/// A client that does not keep up: its queue overflowed or a write stalled.
const TOO_SLOW: Closing = Closing(close::SLOW_CONSUMER, "too slow: resume with since");

struct Connection {
    chat: Chat,
    id: u64,
    inbox: Inbox,
    /// The authenticated user's claims, shared with the token cache.
    user: Option<Arc<AccessClaims>>,
    /// Next sequence number expected per subscribed room.
    subscriptions: Subscriptions,
    tokens: f64,
    refilled: Instant,
    refused_in_row: u32,
    /// When this connection last relayed `typing` per room.
    typed: HashMap<Arc<str>, Instant>,
    /// Whether the client asked for `presence_changes` frames.
    presence_changes: bool,
    /// Until when the connection may go on: the access token's expiry, and before
    /// authentication the time to authenticate by.
    deadline: Instant,
    /// The user's event stream and read receipts, once asked for.
    extra: Option<Box<me::Extra>>,
}

/// A change to an existing message a client asks for.
enum Change<'a> {
    /// New text (`Some`) or deletion.
    Text { seq: i64, body: Option<&'a str> },
    /// A reaction added or removed.
    React { seq: i64, emoji: &'a str, add: bool },
    /// Pinned or unpinned.
    Pin { seq: i64, pin: bool },
}

/// Least time between two relayed `typing` frames of one connection in one room.
const TYPING_EVERY: Duration = Duration::from_secs(3);

/// Serves one upgraded socket until it closes.
///
/// A function returning an `async` block rather than an `async fn`: an `async fn` keeps
/// its arguments in its future beside the locals they are moved to, and this future is
/// held by every open socket (the socket's own 400 bytes twice).
#[allow(clippy::manual_async_fn)]
pub fn serve<S: Socket>(chat: Chat, mut socket: S) -> impl Future<Output = ()> + Send {
    // Made before the future, which then holds the connection and not `chat` beside it.
    let (inbox, mailbox) = inbox(chat.limits.queue);
    let mut connection = Connection {
        id: chat.connection_id(),
        tokens: chat.limits.send_burst,
        refilled: Instant::now(),
        deadline: Instant::now() + Duration::from_secs(chat.limits.auth_timeout_secs),
        chat,
        inbox,
        user: None,
        subscriptions: Subscriptions::default(),
        refused_in_row: 0,
        typed: HashMap::new(),
        presence_changes: false,
        extra: None,
    };
    async move {
        // The metrics are reached through `chat` on either side of the wait, not cloned
        // into this future (held by every open socket: 112 bytes).
        connection.chat.metrics.connections.inc();
        let closing = connection.run(&mut socket, mailbox).await;
        let metrics = &connection.chat.metrics;
        metrics.connections.dec();
        metrics.closed.inc();
        metrics
            .subscriptions
            .dec_by(connection.subscriptions.len() as i64);
        if matches!(closing, Some(Closing(close::SLOW_CONSUMER, _))) {
            metrics.slow_consumers.inc();
        }
        connection.unwatch();
        for room in connection.subscriptions.keys() {
            connection.chat.leave_room(room, connection.id);
            connection.chat.presence.leave(room, connection.user_id());
        }
        if let Some(claims) = &connection.user {
            connection
                .chat
                .hub
                .leave_session(&claims.sid, connection.id);
        }
        let stall = connection.chat.limits.write_stall;
        match closing {
            Some(Closing(code, reason)) => {
                let frame = CloseFrame {
                    code: code.into(),
                    reason: Utf8Bytes::from_static(reason),
                };
                let _ = tokio::time::timeout(stall, socket.send(Message::Close(Some(frame)))).await;
            }
            // The client closed, or went away: tungstenite holds the answer to its close
            // frame, which the socket owes it (RFC 6455 §5.5.1; without it browsers
            // report 1006, an abnormal closure, for every close of their own).
            None => {
                let _ = tokio::time::timeout(stall, socket.flush()).await;
            }
        }
    }
}

impl Connection {
    /// Serves the socket until the connection ends: `Some` close to send, `None` when the
    /// client closed or went away. Not an `async fn`: its arguments would be kept twice in
    /// the future every open socket holds, and so is nothing known elsewhere (the limits,
    /// the timer's deadline).
    #[allow(clippy::manual_async_fn)]
    fn run<'a, S: Socket>(
        &'a mut self,
        socket: &'a mut S,
        mailbox: Mailbox,
    ) -> impl Future<Output = Option<Closing>> + Send + use<'a, S> {
        async move {
            let hello = ServerFrame::Hello {
                protocol: VERSION,
                auth_timeout_secs: self.chat.limits.auth_timeout_secs,
            };
            if self.send(socket, hello).await.is_err() {
                return None;
            }
            let stop = self.chat.shutdown.clone().wait();
            tokio::pin!(stop);
            let mut pace = Pace::new(self.chat.limits.heartbeat);
            // One timer for the connection's life, due at the earlier of its deadline (the
            // token's expiry) and the next ping: not one per frame (registering one costs
            // a lock, on every delivery), nor a second one for the heartbeat (~0.1 KiB on
            // every idle socket).
            let timer = tokio::time::sleep_until(self.deadline.min(pace.ping_at));
            tokio::pin!(timer);
            loop {
                aim(timer.as_mut(), self.deadline.min(pace.ping_at));
                // A queued event is taken without polling every branch below first (waking
                // for one delivery used to poll six, ~6 % of a busy replica's CPU); after
                // STREAK events in a row the full select runs, so shutdown, the timer and
                // the client's own frames wait for at most that many.
                let outcome = if pace.streak < STREAK
                    && let Some(taken) = mailbox.try_take()
                {
                    pace.streak += 1;
                    pace.read_last = false;
                    self.on_taken(socket, taken).await
                } else if pace.read_last
                    && pace.streak < STREAK
                    && let Some(received) = ready_frame(socket)
                {
                    // A frame the client sent together with the one just handled (`auth`
                    // and its `subscribe`) is handled before the replies are flushed: one
                    // write and one wake-up of the client for both, not one each.
                    pace.streak += 1;
                    pace.last_heard = Instant::now();
                    self.on_received(socket, received).await
                } else if let Err(closing) = flush(socket, self.chat.limits.write_stall).await {
                    // The frames queued since the last wait go out before the next one, in
                    // one write when there are several.
                    Err(closing)
                } else {
                    (pace.streak, pace.read_last) = (0, false);
                    let woke = tokio::select! {
                        biased;
                        _ = &mut stop => Woke::Stop,
                        _ = &mut timer => Woke::Timer,
                        received = socket.next() => Woke::Received(received),
                        taken = mailbox.take() => Woke::Taken(taken),
                    };
                    // Taken apart before its handling is awaited: neither what woke the
                    // connection nor a frame read is kept beside that future.
                    let handling = match self.on_woke(socket, woke, &mut pace) {
                        Ok(handling) => handling,
                        Err(closing) => return Some(closing),
                    };
                    handling.await
                };
                match outcome {
                    Ok(()) => {}
                    Err(ENDED) => return None,
                    Err(closing) => return Some(closing),
                }
            }
        }
    }

    /// What to do for what woke a waiting connection: the handling to await, or the close
    /// to end with.
    fn on_woke<'a, S: Socket>(
        &'a mut self,
        socket: &'a mut S,
        woke: Woke,
        pace: &mut Pace,
    ) -> Result<impl Future<Output = Result<(), Closing>> + Send + use<'a, S>, Closing> {
        let ping = match woke {
            Woke::Stop => return Err(Closing(close::SERVICE_RESTART, "service restart")),
            Woke::Received(received) => {
                pace.last_heard = Instant::now();
                pace.read_last = true;
                return Ok(Either::Left(self.on_received(socket, received)));
            }
            Woke::Taken(taken) => {
                return Ok(Either::Right(Either::Left(self.on_taken(socket, taken))));
            }
            Woke::Timer if self.deadline <= pace.ping_at => {
                let received = self.late_frame(socket, pace)?;
                return Ok(Either::Left(self.on_received(socket, received)));
            }
            Woke::Timer if pace.last_heard.elapsed() > self.chat.limits.idle_limit => {
                return Err(Closing(close::HEARTBEAT_TIMEOUT, "no heartbeat"));
            }
            Woke::Timer => Message::Ping(Default::default()),
        };
        pace.ping_at = Instant::now() + self.chat.limits.heartbeat;
        let stall = self.chat.limits.write_stall;
        Ok(Either::Right(Either::Right(write(socket, ping, stall))))
    }

    /// The connection's deadline has passed: the token expired, or the client did not
    /// authenticate in time, unless its `auth` is already here.
    ///
    /// A busy replica may poll a connection after its deadline with the `auth` it was
    /// sent in time already readable: that frame (and those right behind it) is handled,
    /// not refused. Once: a client that keeps sending is not kept unauthenticated.
    fn late_frame<S: Socket>(&self, socket: &mut S, pace: &mut Pace) -> Result<Received, Closing> {
        if self.user.is_some() {
            return Err(Closing(close::TOKEN_EXPIRED, "token expired"));
        }
        let late = match pace.late_read {
            false => ready_frame(socket),
            true => None,
        };
        pace.late_read = true;
        let Some(received) = late else {
            return Err(Closing(close::AUTH_TIMEOUT, "authenticate first"));
        };
        pace.last_heard = Instant::now();
        pace.read_last = true;
        Ok(received)
    }

    /// Handles what the socket gave: a client frame, or its end ([`ENDED`] when it
    /// ends without a close frame of ours).
    ///
    /// Not `async`: what was read is not kept in the caller's future (every idle
    /// connection's), only a text frame's boxed handling.
    fn on_received<'a, S: Socket>(
        &'a mut self,
        socket: &'a mut S,
        received: Received,
    ) -> impl Future<Output = Result<(), Closing>> + use<'a, S> {
        let now = match received {
            Some(Ok(Message::Text(text))) => {
                return Either::Left(Box::pin(self.on_text(socket, text)));
            }
            Some(Ok(Message::Binary(_))) => Err(Closing(close::PROTOCOL_ERROR, "text frames only")),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
            Some(Err(error)) => Err(read_failure(error)),
            Some(Ok(Message::Close(_))) | None => Err(ENDED),
        };
        Either::Right(ready(now))
    }

    /// Parses a client frame, letting its text go (it pins the socket's read buffer,
    /// which would otherwise grow for the next frame), and answers one that does not
    /// parse. Not `async`: the future is boxed for every frame read, and one that kept
    /// the text or the parse's result beside the frame was 528 bytes.
    fn on_text<'a, S: Socket>(
        &'a mut self,
        socket: &'a mut S,
        text: Utf8Bytes,
    ) -> impl Future<Output = Result<(), Closing>> + Send + use<'a, S> {
        let parsed = serde_json::from_str::<ClientFrame>(text.as_str());
        drop(text);
        match parsed {
            Ok(frame) => Either::Left(self.admitted(socket, frame)),
            Err(error) => {
                let refusal = error_frame(ChatError::BadFrame(error.to_string()), None);
                Either::Right(self.send(socket, refusal))
            }
        }
    }

    /// For an `auth` or a subscription, waits for an admission turn before boxing the
    /// frame's handling: requests await the store, and a connection waiting for its turn
    /// in a reconnect storm should not hold the space for those futures (a storm's
    /// 10,000 waiting subscriptions held 12 MB of them). A subscription takes its turn
    /// after it listens to the room, so that a slow broker cannot hold every turn.
    #[allow(clippy::manual_async_fn)]
    fn admitted<'a, S: Socket>(
        &'a mut self,
        socket: &'a mut S,
        frame: ClientFrame,
    ) -> impl Future<Output = Result<(), Closing>> + Send + use<'a, S> {
        async move {
            let turn = match &frame {
                ClientFrame::Auth { .. } => Some(self.chat.admit().await),
                ClientFrame::Subscribe { room_id, .. } if self.may_subscribe(room_id) => {
                    Some(self.listen_for(room_id).await)
                }
                _ => None,
            };
            Box::pin(self.on_frame(socket, frame, turn)).await
        }
    }

    /// Whether a subscription to `room` would be taken up (not refused before it
    /// listens): the connection is authenticated, and under its limit or already
    /// subscribed. Its own event stream (`me`) listens elsewhere.
    fn may_subscribe(&self, room: &str) -> bool {
        let limit = self.chat.limits.max_subscriptions;
        self.user.is_some()
            && room != me::ME
            && (self.subscriptions.len() < limit || self.subscriptions.contains_key(room))
    }

    /// The first steps of subscribing to `room`: other replicas' events of the room
    /// reach this one (before the store is read), then a turn to read the store.
    async fn listen_for(&self, room: &str) -> Turn {
        Box::pin(self.chat.listen(room)).await;
        self.chat.admit().await
    }

    /// Handles one parsed client frame; an `auth` or a subscription comes with its
    /// admission turn (see [`Self::admitted`]). The rarer arms are boxed: this future's
    /// size is its largest arm's (1,264 bytes, an inline `authenticate`), and it is
    /// boxed for every frame handled.
    async fn on_frame<S: Socket>(
        &mut self,
        socket: &mut S,
        frame: ClientFrame,
        turn: Option<Turn>,
    ) -> Result<(), Closing> {
        match frame {
            ClientFrame::Auth {
                token,
                presence_changes,
            } => {
                self.presence_changes = presence_changes;
                self.authenticate(socket, &token, turn).await
            }
            ClientFrame::Ping => self.send(socket, ServerFrame::Pong).await,
            _ if self.user.is_none() => {
                let refusal = error_frame(ChatError::Unauthenticated, None);
                self.send(socket, refusal).await
            }
            ClientFrame::Subscribe { room_id, .. } if room_id == me::ME => {
                Box::pin(self.watch(socket)).await
            }
            ClientFrame::Subscribe {
                room_id,
                since,
                receipts,
            } => {
                self.subscribe(socket, &room_id, since, turn).await?;
                match receipts && self.subscriptions.contains_key(room_id.as_str()) {
                    true => Box::pin(self.send_receipts(socket, &room_id)).await,
                    false => Ok(()),
                }
            }
            ClientFrame::Unsubscribe { room_id } => {
                if room_id == me::ME {
                    self.unwatch();
                } else if self.subscriptions.remove(room_id.as_str()).is_some() {
                    self.chat.metrics.subscriptions.dec();
                    self.forget_receipts(&room_id);
                    self.release(&room_id);
                    self.chat.presence.leave(&room_id, self.user_id());
                }
                let reason = "requested".to_owned();
                self.send(socket, ServerFrame::Unsubscribed { room_id, reason })
                    .await
            }
            ClientFrame::Send {
                room_id,
                client_id,
                body,
                reply_to,
                thread_root,
                also_to_room,
                traceparent,
                tracestate,
            } => {
                let parent = trace::from_w3c(traceparent.as_deref(), tracestate.as_deref());
                let span = trace::span("send", "server", "natter", parent);
                let post = Post {
                    user: "",
                    room: &room_id,
                    client_id: &client_id,
                    body: &body,
                    reply_to,
                    thread_root,
                    also_to_room,
                };
                self.send_message(socket, post).instrument(span).await
            }
            ClientFrame::Typing { room_id } => self.typing(&room_id).await,
            read @ (ClientFrame::Pins { .. }
            | ClientFrame::Edits { .. }
            | ClientFrame::Threads { .. }
            | ClientFrame::ReadThread { .. }) => Box::pin(self.answer(socket, read)).await,
            ClientFrame::NotifyLevel { room_id, level } => {
                Box::pin(self.choose_level(socket, &room_id, level.as_deref())).await
            }
            ClientFrame::Read { room_id, seq } => {
                Box::pin(self.mark_read(socket, room_id, seq)).await
            }
            ClientFrame::Edit { room_id, seq, body } => {
                let edit = Change::Text {
                    seq,
                    body: Some(&body),
                };
                self.change(socket, &room_id, edit).await
            }
            ClientFrame::Delete { room_id, seq } => {
                self.change(socket, &room_id, Change::Text { seq, body: None })
                    .await
            }
            ClientFrame::React {
                room_id,
                seq,
                emoji,
                add,
            } => {
                let react = Change::React {
                    seq,
                    emoji: &emoji,
                    add,
                };
                self.change(socket, &room_id, react).await
            }
            ClientFrame::Pin {
                room_id,
                seq,
                pinned,
            } => {
                let pin = Change::Pin { seq, pin: pinned };
                self.change(socket, &room_id, pin).await
            }
        }
    }

    async fn authenticate<S: Socket>(
        &mut self,
        socket: &mut S,
        token: &str,
        turn: Option<Turn>,
    ) -> Result<(), Closing> {
        let claims = self.chat.verifier.verify_shared(token).await;
        if let (Ok(claims), None) = (&claims, &self.user) {
            // Every room of the user at once: their subscriptions need no access read.
            let limit = u32::try_from(self.chat.limits.max_subscriptions).unwrap_or(u32::MAX);
            let messages = &self.chat.messages;
            if let Err(error) = messages.remember_rooms_of(&claims.sub, limit).await {
                tracing::debug!(%error, "rooms not remembered; subscriptions read them");
            }
        }
        drop(turn);
        let claims = claims.map_err(|error| match error {
            TokenError::Unavailable(_) => {
                Closing(close::TRY_AGAIN_LATER, "token check unavailable: retry")
            }
            _ => Closing(close::AUTH_FAILED, "invalid token"),
        })?;
        if self.user.as_ref().is_some_and(|u| u.sub != claims.sub) {
            return Err(Closing(
                close::AUTH_FAILED,
                "a connection belongs to one user",
            ));
        }
        let frame = ServerFrame::Authenticated {
            user_id: claims.sub.clone(),
            expires_at: claims.exp,
        };
        // The connection hears of its session's revocation (a logout on any device).
        let hub = &self.chat.hub;
        if let Some(previous) = self.user.as_ref().filter(|u| u.sid != claims.sid) {
            hub.leave_session(&previous.sid, self.id);
        }
        hub.enter_session(&claims.sid, self.id, self.inbox.clone());
        let left = claims.exp.saturating_sub(natter_core::time::now_secs());
        self.deadline = Instant::now() + Duration::from_secs(left.max(0) as u64);
        self.user = Some(claims);
        self.send(socket, frame).await
    }

    /// After a broker outage: is this connection's session still allowed? A deny-list
    /// that cannot answer keeps the connection (its next `auth` is checked again).
    async fn recheck(&self) -> Result<(), Closing> {
        let Some(claims) = &self.user else {
            return Ok(());
        };
        match self.chat.verifier.denylist().is_denied(claims).await {
            Ok(true) => Err(Closing(close::AUTH_FAILED, "session revoked")),
            Ok(false) => Ok(()),
            Err(error) => {
                tracing::debug!(%error, "deny-list unavailable for a recheck");
                Ok(())
            }
        }
    }

    /// Writes one frame, bounded by the configured write stall like every write.
    ///
    /// Not `async`: the frame is encoded at once and not kept in the caller's future,
    /// only its text (a connection's futures are held by every idle or waiting socket).
    fn send<'s, S: Socket>(
        &self,
        socket: &'s mut S,
        frame: ServerFrame,
    ) -> impl Future<Output = Result<(), Closing>> + use<'s, S> {
        let text = Message::Text(frame.encode().into());
        write(socket, text, self.chat.limits.write_stall)
    }

    fn user_id(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.sub.as_str())
    }

    async fn subscribe<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        since: Option<i64>,
        turn: Option<Turn>,
    ) -> Result<(), Closing> {
        // Without a turn the subscription was not taken up (see `may_subscribe`): the
        // connection is at its limit (the unauthenticated are refused before).
        let Some(turn) = turn else {
            let refusal = error_frame(ChatError::TooManySubscriptions, Some(room));
            return self.send(socket, refusal).await;
        };
        // Listen first (`listen_for` did, before it took the turn), then read (the room
        // and its position come with the access check): whatever commits meanwhile
        // arrives as an event and is ordered against the replay by sequence number;
        // events of a room not (yet) subscribed are ignored.
        let listening = self.subscriptions.contains_key(room);
        let room_id = self.chat.hub.subscribe(room, self.id, self.inbox.clone());
        let start = Box::pin(self.start(room, since)).await;
        drop(turn);
        let (messages, from_seq, truncated) = match start {
            Ok(start) => start,
            Err(refusal) => {
                if !listening {
                    self.release(room);
                }
                return self.send(socket, error_frame(refusal, Some(room))).await;
            }
        };
        let next = messages.last().map_or(from_seq, |m| m.seq + 1);
        if self.subscriptions.insert(room_id, next).is_none() {
            self.chat.metrics.subscriptions.inc();
            self.chat.presence.join(room, self.user_id());
        }
        let subscribed = ServerFrame::Subscribed {
            room_id: room.into(),
            from_seq,
            truncated,
        };
        self.send(socket, subscribed).await?;
        let online = self.chat.presence.list_frame(room, |user_ids, count| {
            let list = ServerFrame::PresenceList {
                room_id: room.into(),
                user_ids,
                count,
            };
            list.encode().into()
        });
        write(socket, Message::Text(online), self.chat.limits.write_stall).await?;
        for message in &messages {
            self.send(socket, message_frame(&events::message(message)))
                .await?;
            self.chat.metrics.delivered.inc();
        }
        Ok(())
    }

    /// Where a subscription to `room` starts, and the messages it has missed since `since`.
    async fn start(
        &self,
        room: &str,
        since: Option<i64>,
    ) -> Result<(Vec<MessageRecord>, i64, bool), ChatError> {
        match since {
            None => (self.chat.start_of(self.user_id(), room).await)
                .map(|from_seq| (Vec::new(), from_seq, false)),
            Some(since) => self.replay(room, since).await,
        }
    }

    /// Messages after `since`, at most [`REPLAY_LIMIT`]: when more were missed, the newest
    /// ones, flagged as truncated.
    async fn replay(
        &self,
        room: &str,
        since: i64,
    ) -> Result<(Vec<MessageRecord>, i64, bool), ChatError> {
        // The messages are read anyway; a remembered membership suffices for the check.
        self.chat
            .check(self.user_id(), room, Action::ReadHistory)
            .await?;
        let mut messages = self.chat.after(room, since, REPLAY_LIMIT + 1).await?;
        let truncated = messages.len() > REPLAY_LIMIT as usize;
        if truncated {
            messages = self.chat.newest(room, REPLAY_LIMIT).await?;
        }
        let from_seq = messages.first().map_or(since + 1, |m| m.seq);
        Ok((messages, from_seq, truncated))
    }

    /// Stores `post` as this connection's user (its `user` is ignored) and acknowledges it.
    async fn send_message<S: Socket>(
        &mut self,
        socket: &mut S,
        post: Post<'_>,
    ) -> Result<(), Closing> {
        let Post {
            room, client_id, ..
        } = post;
        if !self.take_token() {
            self.refused_in_row += 1;
            if self.refused_in_row > self.chat.limits.abuse_after {
                return Err(Closing(close::ABUSE, "too many frames"));
            }
            let refusal = error_frame(ChatError::RateLimited, Some(client_id));
            return self.send(socket, refusal).await;
        }
        self.refused_in_row = 0;
        let user = self.user_id().to_owned();
        let post = Post {
            user: &user,
            ..post
        };
        // Boxed, like every store call of `on_frame` (see there); only what the ack
        // needs is kept across its write.
        let posted = Box::pin(self.chat.send(post)).await;
        let ack = match posted.map(|posted| (posted.message.seq, posted.created)) {
            Ok((seq, created)) => {
                let counter = match created {
                    true => &self.chat.metrics.received,
                    false => &self.chat.metrics.duplicates,
                };
                counter.inc();
                ServerFrame::Ack {
                    room_id: room.into(),
                    client_id: client_id.into(),
                    seq,
                    duplicate: !created,
                }
            }
            Err(refusal) => error_frame(refusal, Some(client_id)),
        };
        self.send(socket, ack).await
    }

    /// Answers a read of a room's pins, edits or threads, or of a thread.
    async fn answer<S: Socket>(&self, socket: &mut S, read: ClientFrame) -> Result<(), Closing> {
        let user = self.user_id().to_owned();
        let answer = match self.chat.answer(&user, read).await {
            Ok(answer) => answer,
            Err((refusal, about)) => error_frame(refusal, about.as_deref()),
        };
        self.send(socket, answer).await
    }

    /// Moves the user's read marker in `room` and answers with where it is now.
    async fn mark_read<S: Socket>(
        &self,
        socket: &mut S,
        room_id: String,
        seq: i64,
    ) -> Result<(), Closing> {
        let user = self.user_id().to_owned();
        let frame = match self.chat.mark_read(&user, &room_id, seq).await {
            Ok(seq) => ServerFrame::ReadMarker { room_id, seq },
            Err(refusal) => error_frame(refusal, Some(&room_id)),
        };
        self.send(socket, frame).await
    }

    /// A change to a message of `room` (edit, deletion, reaction, pin), rate-limited like
    /// sends: success is heard as the room's update frame, a refusal is answered.
    async fn change<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        change: Change<'_>,
    ) -> Result<(), Closing> {
        if !self.take_token() {
            let refusal = error_frame(ChatError::RateLimited, Some(room));
            return self.send(socket, refusal).await;
        }
        let user = self.user_id().to_owned();
        // Boxed, like every store call of `on_frame` (see there).
        let done = Box::pin(async {
            match change {
                Change::Text { seq, body } => self.chat.update(&user, room, seq, body).await,
                Change::React { seq, emoji, add } => {
                    self.chat.react(&user, room, seq, emoji, add).await
                }
                Change::Pin { seq, pin } => self.chat.pin(&user, room, seq, pin).await,
            }
        });
        match done.await {
            Ok(()) => Ok(()),
            Err(refusal) => self.send(socket, error_frame(refusal, Some(room))).await,
        }
    }

    /// Relays `typing` for a subscribed room, at most once per [`TYPING_EVERY`].
    async fn typing(&mut self, room: &str) -> Result<(), Closing> {
        let Some((room_id, _)) = self.subscriptions.get_key_value(room) else {
            return Ok(());
        };
        let room_id = room_id.clone();
        let now = Instant::now();
        if self
            .typed
            .get(&room_id)
            .is_some_and(|at| now.duration_since(*at) < TYPING_EVERY)
        {
            return Ok(());
        }
        self.typed.insert(room_id, now);
        self.chat.typing(room, self.user_id());
        Ok(())
    }

    fn take_token(&mut self) -> bool {
        let limits = self.chat.limits;
        let now = Instant::now();
        let refill = now.duration_since(self.refilled).as_secs_f64() * limits.sends_per_sec;
        self.tokens = (self.tokens + refill).min(limits.send_burst);
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// An event taken from the mailbox, or the end of a connection too slow to keep up.
    ///
    /// Not `async`: a plain delivery (almost every event) is decided here and only its
    /// write is awaited; every other event is boxed. This future is part of every
    /// waiting connection's, and nested `async fn`s kept their arguments at each level.
    fn on_taken<'a, S: Socket>(
        &'a mut self,
        socket: &'a mut S,
        taken: Taken,
    ) -> impl Future<Output = Result<(), Closing>> + Send + 'a {
        let event = match taken {
            Taken::Event(event) => event,
            Taken::Overflowed => return Either::Left(ready(Err(TOO_SLOW))),
        };
        let plain = plain_message(&event).filter(|_| self.extra.is_none());
        let Some((room, seq, created_ms, frame)) = plain else {
            let other = Box::pin(self.on_other_event(socket, event));
            return Either::Right(Either::Right(other));
        };
        let delivery = self.deliver(socket, room, seq, created_ms, frame.clone());
        Either::Right(Either::Left(delivery))
    }

    /// Where message `seq` of `room` stands, moving the expected one past it unless it
    /// is skipped: moved before writing, since a failed write or gap fill ends the
    /// connection and its client resumes from the last message it has. One lookup per
    /// delivery: hashing and comparing the room id twice was ~2 % of a busy replica's
    /// CPU (docs/latency.md).
    fn order(&mut self, room: &str, seq: i64) -> Order {
        let Some(next) = self.subscriptions.get_mut(room) else {
            return Order::Skip;
        };
        let expected = *next;
        if seq < expected {
            return Order::Skip;
        }
        *next = seq + 1;
        match expected < seq {
            true => Order::Gap(expected),
            false => Order::Next,
        }
    }

    async fn on_other_event<S: Socket>(
        &mut self,
        socket: &mut S,
        event: Arc<Event>,
    ) -> Result<(), Closing> {
        match Arc::unwrap_or_clone(event) {
            Event::Message {
                room_id,
                seq,
                created_ms,
                frame,
                trace,
                message,
            } => {
                if self.extra.is_some() {
                    Box::pin(self.count(socket, &message)).await?;
                    Box::pin(self.count_reply(socket, &message)).await?;
                }
                let delivery = self.deliver(socket, &room_id, seq, created_ms, frame);
                match trace {
                    // Only sampled sends carry a trace: the delivery joins it.
                    Some(trace) => {
                        let span = trace::span("deliver", "producer", "natter", Some(trace));
                        delivery.instrument(span).await
                    }
                    None => delivery.await,
                }
            }
            Event::Signal { room_id, frame } => {
                if !self.subscriptions.contains_key(&room_id) {
                    return Ok(());
                }
                write(socket, Message::Text(frame), self.chat.limits.write_stall).await
            }
            Event::Presence {
                room_id,
                batched,
                singles,
            } => {
                if !self.subscriptions.contains_key(&room_id) {
                    return Ok(());
                }
                let stall = self.chat.limits.write_stall;
                if self.presence_changes {
                    return write(socket, Message::Text(batched), stall).await;
                }
                for frame in singles.iter() {
                    write(socket, Message::Text(frame.clone()), stall).await?;
                }
                Ok(())
            }
            Event::Head { room_id, seq } => {
                if self.extra.is_some() {
                    Box::pin(self.on_head(socket, &room_id, seq)).await?;
                }
                self.catch_up(socket, room_id, seq).await
            }
            Event::SessionRevoked => Err(Closing(close::AUTH_FAILED, "session revoked")),
            Event::Recheck => {
                Box::pin(self.recheck()).await?;
                match self.extra.as_ref().is_some_and(|e| e.streaming()) {
                    true => Box::pin(self.watch(socket)).await,
                    false => Ok(()),
                }
            }
            Event::RoomDeleted(room_id) => {
                Box::pin(self.on_gone(socket, &room_id, "room_deleted")).await?;
                self.drop_subscription(socket, &room_id, "room_deleted")
                    .await
            }
            Event::Read {
                room_id,
                user_id,
                seq,
                ..
            } => Box::pin(self.on_read(socket, &room_id, &user_id, seq)).await,
            Event::MemberAdded { room_id, .. } => Box::pin(self.on_added(socket, room_id)).await,
            Event::Renamed { room_id, name } => {
                if !self.watching(&room_id) && !self.subscriptions.contains_key(&room_id) {
                    return Ok(());
                }
                let frame = ServerFrame::RoomRenamed {
                    room_id: room_id.to_string(),
                    name: name.to_string(),
                };
                self.send(socket, frame).await
            }
            Event::ThreadRead { room_id, root, seq } => {
                Box::pin(self.on_thread_read(socket, room_id, root, seq)).await
            }
            Event::ThreadRoot { room_id, root } => {
                Box::pin(self.on_thread_root(socket, room_id, root)).await
            }
            Event::Level { room_id, level } => {
                Box::pin(self.on_level(socket, &room_id, level)).await
            }
            Event::MemberRemoved { room_id, user_id } => {
                if user_id.as_ref() == self.user_id() {
                    Box::pin(self.on_gone(socket, &room_id, "removed")).await?;
                }
                if user_id.as_ref() != self.user_id() || !self.subscriptions.contains_key(&room_id)
                {
                    return Ok(());
                }
                let still_allowed = Box::pin(self.chat.check(
                    self.user_id(),
                    &room_id,
                    Action::ReadHistory,
                ));
                if still_allowed.await.is_ok() {
                    return Ok(());
                }
                self.drop_subscription(socket, &room_id, "removed").await
            }
        }
    }

    /// Delivers a message once and in order: earlier-than-expected ones are duplicates,
    /// later-than-expected ones first bring the missing ones from the store. Not
    /// `async`, like [`Self::on_taken`]: only the write of a delivery in order is
    /// awaited inline; a gap fill is boxed.
    fn deliver<'a, S: Socket>(
        &'a mut self,
        socket: &'a mut S,
        room: &Arc<str>,
        seq: i64,
        created_ms: i64,
        frame: Utf8Bytes,
    ) -> impl Future<Output = Result<(), Closing>> + Send + use<'a, S> {
        match self.order(room, seq) {
            Order::Skip => Either::Left(ready(Ok(()))),
            Order::Next => Either::Right(Either::Left(delivered(
                socket, &self.chat, frame, created_ms,
            ))),
            Order::Gap(expected) => {
                let room = room.clone();
                let fill = self.fill_and_write(socket, room, expected, seq, frame, created_ms);
                Either::Right(Either::Right(Box::pin(fill)))
            }
        }
    }

    /// Sends `room`'s messages from `expected` up to `seq` from the store, then `frame`
    /// (message `seq`). Rare (a reordering between replicas or a dropped broker frame):
    /// always boxed, so the store read does not enlarge every idle connection.
    async fn fill_and_write<S: Socket>(
        &mut self,
        socket: &mut S,
        room: Arc<str>,
        expected: i64,
        seq: i64,
        frame: Utf8Bytes,
        created_ms: i64,
    ) -> Result<(), Closing> {
        self.fill_gap(socket, &room, expected, seq).await?;
        delivered(socket, &self.chat, frame, created_ms).await
    }

    /// Brings a subscriber of `room` up to its head `seq` (every message up to it is
    /// committed) when it has not seen them all.
    async fn catch_up<S: Socket>(
        &mut self,
        socket: &mut S,
        room: Arc<str>,
        seq: i64,
    ) -> Result<(), Closing> {
        let Some(&next) = self.subscriptions.get(&room) else {
            return Ok(());
        };
        if next > seq {
            return Ok(());
        }
        Box::pin(self.fill_gap(socket, &room, next, seq + 1)).await?;
        self.subscriptions.insert(room, seq + 1);
        Ok(())
    }

    /// Sends `room`'s messages `next` … `seq` - 1 from the store. A subscriber never
    /// skips a sequence number: when the store cannot give them now, the connection is
    /// closed with 1013 and the client resumes from the last one it has.
    async fn fill_gap<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        mut next: i64,
        seq: i64,
    ) -> Result<(), Closing> {
        const UNAVAILABLE: Closing = Closing(
            close::TRY_AGAIN_LATER,
            "storage unavailable: resume with since",
        );
        while next < seq {
            let missing = u32::try_from(seq - next).unwrap_or(u32::MAX).min(100);
            let page = match self.chat.after(room, next - 1, missing).await {
                Ok(page) if page.first().is_some_and(|m| m.seq == next) => page,
                // Sequence numbers are committed in order, so a short or empty page
                // means the store failed to answer, not that the messages are absent.
                _ => return Err(UNAVAILABLE),
            };
            for message in page.iter().take_while(|m| m.seq < seq) {
                self.send(socket, message_frame(&events::message(message)))
                    .await?;
                self.chat.metrics.delivered.inc();
                next = message.seq + 1;
            }
        }
        Ok(())
    }

    async fn drop_subscription<S: Socket>(
        &mut self,
        socket: &mut S,
        room: &str,
        reason: &str,
    ) -> Result<(), Closing> {
        if self.subscriptions.remove(room).is_none() {
            return Ok(());
        }
        self.chat.metrics.subscriptions.dec();
        self.forget_receipts(room);
        self.release(room);
        self.chat.presence.leave(room, self.user_id());
        self.send(
            socket,
            ServerFrame::Unsubscribed {
                room_id: room.into(),
                reason: reason.into(),
            },
        )
        .await
    }
}

/// A frame over the size limit is answered with 1009, a text frame that is not UTF-8
/// with 1007; other read failures (the connection is gone) end quietly.
fn read_failure(error: tungstenite::Error) -> Closing {
    match error {
        tungstenite::Error::Capacity(_) => Closing(close::TOO_BIG, "frame too large"),
        tungstenite::Error::Utf8(_) => Closing(close::INVALID_DATA, "text is not UTF-8"),
        _ => ENDED,
    }
}

/// The one mapping of a refusal to its `error` frame (`about`: the room or client id).
fn error_frame(error: ChatError, about: Option<&str>) -> ServerFrame {
    error.log();
    ServerFrame::error(error.code(), error.to_string(), about)
}

/// The message of a plain delivery, if `event` is one: a message without a trace (its
/// room, seq, creation time in Unix ms and frame).
fn plain_message(event: &Event) -> Option<(&Arc<str>, i64, i64, &Utf8Bytes)> {
    match event {
        Event::Message {
            room_id,
            seq,
            created_ms,
            frame,
            trace: None,
            ..
        } => Some((room_id, *seq, *created_ms, frame)),
        _ => None,
    }
}

/// Writes a message's `frame` and counts its delivery (and, when its creation time
/// `created_ms` is known, its latency). Its future is the write's, with nothing beside it
/// (an `async` block awaiting the write would hold the write's future twice).
fn delivered<'a, S: Socket>(
    socket: &'a mut S,
    chat: &'a Chat,
    frame: Utf8Bytes,
    created_ms: i64,
) -> impl Future<Output = Result<(), Closing>> + Send + use<'a, S> {
    let writing = write(socket, Message::Text(frame), chat.limits.write_stall);
    writing.map(move |written| {
        written?;
        chat.metrics.delivered.inc();
        if created_ms > 0 {
            chat.metrics.observe_delivery(created_ms);
        }
        Ok(())
    })
}

/// Sets `timer` to `due` unless it is already (a reset registers the timer again). Not
/// inline in the loop, whose future would keep `due` across its waits.
fn aim(timer: std::pin::Pin<&mut tokio::time::Sleep>, due: Instant) {
    if due != timer.deadline() {
        timer.reset(due);
    }
}

/// What the socket has ready now (`None` when nothing is). Not `async`, so that nothing
/// is kept in the caller's future; polled without the task's waker, which the loop's
/// wait registers again before the task sleeps.
fn ready_frame<S: Socket>(socket: &mut S) -> Option<Received> {
    socket.next().now_or_never()
}

/// Queues one frame on the socket; it goes out with the next [`flush`] (the loop flushes
/// before it waits), together with whatever else was queued meanwhile.
fn write<'s, S: Socket>(
    socket: &'s mut S,
    message: Message,
    stall: Duration,
) -> impl Future<Output = Result<(), Closing>> + use<'s, S> {
    within(stall, socket.feed(message))
}

/// Writes out the frames queued on the socket.
fn flush<S: Socket>(
    socket: &mut S,
    stall: Duration,
) -> impl Future<Output = Result<(), Closing>> + use<'_, S> {
    within(stall, socket.flush())
}

/// A write to the socket, bounded. A client that stops reading fills its TCP window and
/// the write blocks: after `stall` it is closed as a slow consumer instead of holding its
/// task (and queue) forever.
///
/// The timer is set (and boxed) only for a write that has to wait: most complete at once,
/// and this future is part of every waiting connection's (a timer is 112 bytes).
/// Not an `async fn`, whose future would keep its arguments beside the locals they move
/// to (this one's was 208 bytes, with the first poll's result kept across the wait).
#[allow(clippy::manual_async_fn)]
fn within<F>(stall: Duration, mut writing: F) -> impl Future<Output = Result<(), Closing>>
where
    F: Future<Output = Result<(), tungstenite::Error>> + Unpin,
{
    async move {
        if let std::task::Poll::Ready(written) = futures::poll!(&mut writing) {
            return written.map_err(|_| ENDED);
        }
        let waited = Box::pin(tokio::time::timeout(stall, writing)).await;
        waited.map_err(|_| TOO_SLOW)?.map_err(|_| ENDED)
    }
}

mod followed;
mod me;
#[cfg(test)]
mod rich_tests;
mod subscriptions;
#[cfg(test)]
mod tests;

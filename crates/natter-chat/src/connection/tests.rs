//! The connection's protocol behaviour without a network: a [`Socket`] made of two
//! channels, a chat service over a SQLite file and the in-memory broker.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{Sink, SinkExt, Stream, StreamExt};
use natter_core::broker::MemoryBroker;
use natter_core::kv::MemoryKv;
use natter_core::shutdown::{Shutdown, ShutdownTrigger};
use natter_core::store::{Backend, NewMessage, NewUser, RoomKind, Store};
use natter_core::token::{Denylist, KeySet, TokenSigner, TokenVerifier};
use serde_json::{Value, json};
use tungstenite::Message;

use crate::{Chat, Limits};

/// The server's end: what the client said, and where the server's frames go. Like a
/// real socket's, frames sent without a flush are held until the next one, so a frame
/// the connection forgets to flush never reaches the client.
struct Duplex {
    incoming: mpsc::UnboundedReceiver<Result<Message, tungstenite::Error>>,
    outgoing: mpsc::UnboundedSender<Message>,
    held: Vec<Message>,
    /// What each flush wrote (a real socket's writes): the types of its text frames.
    writes: Writes,
    /// The client's frames do not wake the connection: a replica too busy to poll it
    /// until something else (its timer) does.
    unwoken: bool,
}

impl Stream for Duplex {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let waker = match self.unwoken {
            true => Waker::noop(),
            false => cx.waker(),
        };
        self.incoming
            .poll_next_unpin(&mut Context::from_waker(waker))
    }
}

impl Sink<Message> for Duplex {
    type Error = tungstenite::Error;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.held.push(item);
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let Self {
            outgoing,
            held,
            writes,
            ..
        } = &mut *self;
        if !held.is_empty() {
            let types = held.iter().map(frame_type).collect();
            writes.lock().unwrap().push(types);
        }
        for message in held.drain(..) {
            outgoing
                .unbounded_send(message)
                .map_err(|e| closed(e.into_send_error()))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.as_mut().poll_flush(cx))?;
        self.get_mut().outgoing.close_channel();
        Poll::Ready(Ok(()))
    }
}

/// The server's writes to one client, oldest first: each the types of its text frames.
type Writes = Arc<Mutex<Vec<Vec<String>>>>;

/// A text frame's `type`; empty for other frames.
fn frame_type(message: &Message) -> String {
    let Message::Text(text) = message else {
        return String::new();
    };
    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
    frame["type"].as_str().unwrap_or_default().to_owned()
}

/// The channel to the client is gone, as a socket's error.
fn closed(error: mpsc::SendError) -> tungstenite::Error {
    tungstenite::Error::Io(std::io::Error::other(error))
}

/// The client's end of one connection.
pub(super) struct Client {
    says: mpsc::UnboundedSender<Result<Message, tungstenite::Error>>,
    hears: mpsc::UnboundedReceiver<Message>,
    /// The server's writes to this client so far.
    writes: Writes,
}

impl Client {
    pub(super) async fn say(&mut self, frame: Value) {
        let text = Message::Text(frame.to_string().into());
        self.says.send(Ok(text)).await.unwrap();
    }

    /// The next text frame as JSON, skipping presence; `{"close": code}` for a close.
    pub(super) async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.hears.next())
                .await
                .expect("a frame within 5 s")
                .expect("the connection is open");
            let frame = match message {
                Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
                Message::Close(close) => json!({"close": close.map_or(0, |c| u16::from(c.code))}),
                _ => continue,
            };
            if !matches!(frame["type"].as_str(), Some("presence" | "presence_list")) {
                return frame;
            }
        }
    }
}

/// A chat service over a fresh SQLite store, and a signer for its users' tokens.
pub(super) struct Setup {
    chat: Chat,
    pub(super) store: Store,
    signer: TokenSigner,
    _stop: ShutdownTrigger,
    _dir: natter_testkit::TestStore,
}

impl Setup {
    pub(super) async fn new() -> Self {
        Self::with(Limits::default()).await
    }

    pub(super) async fn with(limits: Limits) -> Self {
        let test_store = natter_testkit::store(Backend::Sqlite).await;
        let keys = KeySet::generate(natter_core::time::now_secs());
        let denylist = Denylist::new(Arc::new(MemoryKv::default()));
        let verifier = TokenVerifier::new(&keys.jwks().unwrap(), "natter", "natter", denylist);
        let (stop, shutdown) = Shutdown::new();
        let broker = Arc::new(MemoryBroker::default());
        let store = test_store.store.clone();
        let chat = Chat::new(store.clone(), verifier, broker, shutdown, limits);
        Self {
            chat,
            store,
            signer: TokenSigner::new(&keys, "natter", "natter", 900).unwrap(),
            _stop: stop,
            _dir: test_store,
        }
    }

    /// A registered user: id and access token (session `sid`).
    pub(super) async fn user(&self, name: &str, sid: &str) -> (String, String) {
        let new = NewUser {
            username: name,
            email: None,
            password_hash: "$argon2id$x",
        };
        let id = self.store.create_user(new).await.unwrap().id;
        let now = natter_core::time::now_secs();
        let token = self.signer.sign(&id, name, sid, now).token;
        (id, token)
    }

    /// A new user `name` with a group room of theirs, connected and subscribed to it.
    pub(super) async fn in_own_group(&self, name: &str) -> (String, String, Client) {
        let (user, token) = self.user(name, "s1").await;
        let room = self.group(&user).await;
        let mut client = self.signed_in(&token).await;
        client
            .say(json!({"type": "subscribe", "room_id": room}))
            .await;
        assert_eq!(client.next().await["type"], "subscribed");
        (user, room, client)
    }

    /// A new group room of `owner`'s.
    pub(super) async fn group(&self, owner: &str) -> String {
        let room = self.store.create_room(RoomKind::Group, "g", owner).await;
        room.unwrap().id
    }

    /// A connection being served; its `hello` already read.
    pub(super) async fn connect(&self) -> Client {
        self.connect_woken(true).await
    }

    /// [`Setup::connect`]; unless `woken`, the client's frames do not wake the server.
    async fn connect_woken(&self, woken: bool) -> Client {
        let (says, incoming) = mpsc::unbounded();
        let (outgoing, hears) = mpsc::unbounded();
        let writes = Writes::default();
        tokio::spawn(super::serve(
            self.chat.clone(),
            Duplex {
                incoming,
                outgoing,
                held: Vec::new(),
                writes: writes.clone(),
                unwoken: !woken,
            },
        ));
        let mut client = Client {
            says,
            hears,
            writes,
        };
        assert_eq!(client.next().await["type"], "hello");
        client
    }

    pub(super) async fn signed_in(&self, token: &str) -> Client {
        let mut client = self.connect().await;
        client.say(json!({"type": "auth", "token": token})).await;
        assert_eq!(client.next().await["type"], "authenticated");
        client
    }
}

#[tokio::test]
async fn only_auth_and_ping_come_before_authenticating() {
    let setup = Setup::new().await;
    let mut client = setup.connect().await;
    client.say(json!({"type": "ping"})).await;
    assert_eq!(client.next().await["type"], "pong");
    client
        .say(json!({"type": "subscribe", "room_id": "r"}))
        .await;
    assert_eq!(client.next().await["code"], "unauthenticated");
    client
        .say(json!({"type": "auth", "token": "not a token"}))
        .await;
    assert_eq!(client.next().await["close"], 4003);
}

#[tokio::test]
async fn bad_frames_are_answered_and_binary_ones_close() {
    let setup = Setup::new().await;
    let (_, token) = setup.user("alice", "s1").await;
    let mut client = setup.signed_in(&token).await;
    client
        .say(json!({"type": "subscribe", "room": "misspelt"}))
        .await;
    assert_eq!(client.next().await["code"], "bad_frame");
    client.say(json!({"type": "ping"})).await;
    assert_eq!(client.next().await["type"], "pong", "still open");
    client
        .says
        .send(Ok(Message::Binary(vec![1].into())))
        .await
        .unwrap();
    assert_eq!(client.next().await["close"], 4400);
}

#[tokio::test]
async fn a_send_is_acknowledged_then_delivered_and_a_gap_is_filled_first() {
    let setup = Setup::new().await;
    let (alice, room, mut client) = setup.in_own_group("alice").await;
    // Stored without being announced (as if its broker frame were lost).
    let lost = NewMessage::text(&room, &alice, "lost", "unannounced", 1);
    setup.store.post_message(lost).await.unwrap();
    client
        .say(json!({"type": "send", "room_id": room, "client_id": "c2", "body": "hi"}))
        .await;
    let mut frames = Vec::new();
    for _ in 0..3 {
        let frame = client.next().await;
        frames.push((frame["type"].clone(), frame["seq"].clone()));
    }
    assert_eq!(
        frames,
        [
            (json!("ack"), json!(2)),
            (json!("message"), json!(1)),
            (json!("message"), json!(2)),
        ]
    );
}

#[tokio::test]
async fn a_reply_names_the_message_it_answers_which_must_exist() {
    let setup = Setup::new().await;
    let (_, room, mut client) = setup.in_own_group("alice").await;
    let send = |client_id: &str, reply_to: Option<i64>| json!({"type": "send", "room_id": room, "client_id": client_id, "body": "x", "reply_to": reply_to});
    client.say(send("c0", Some(1))).await;
    let refusal = client.next().await;
    assert_eq!(
        (refusal["code"].clone(), refusal["about"].clone()),
        (json!("invalid_reply_to"), json!("c0"))
    );
    client.say(send("c1", None)).await;
    assert_eq!(client.next().await["type"], "ack");
    let first = client.next().await;
    assert!(first.get("reply_to").is_none(), "absent, not null: {first}");
    client.say(send("c2", Some(1))).await;
    assert_eq!(client.next().await["seq"], 2);
    let reply = client.next().await;
    assert_eq!(
        (reply["type"].clone(), reply["reply_to"].clone()),
        (json!("message"), json!(1))
    );
}

#[tokio::test]
async fn reactions_reach_every_subscriber_and_strangers_learn_nothing() {
    let setup = Setup::new().await;
    let (alice, alice_token) = setup.user("alice", "s1").await;
    let (bob, bob_token) = setup.user("bob", "s2").await;
    let (_, carol_token) = setup.user("carol", "s3").await;
    let room = setup.group(&alice).await;
    setup
        .store
        .add_member(&room, &bob, natter_core::store::Role::Member)
        .await
        .unwrap();
    let first = NewMessage::text(&room, &alice, "c1", "lunch?", 1);
    setup.store.post_message(first).await.unwrap();
    let (mut a, mut b) = (
        setup.signed_in(&alice_token).await,
        setup.signed_in(&bob_token).await,
    );
    for client in [&mut a, &mut b] {
        client
            .say(json!({"type": "subscribe", "room_id": room, "since": 1}))
            .await;
        assert_eq!(client.next().await["type"], "subscribed");
    }
    let react = |emoji: &str, add: bool| json!({"type": "react", "room_id": room, "seq": 1, "emoji": emoji, "add": add});
    b.say(react("👍", true)).await;
    let expected = json!({"type": "reaction", "room_id": room, "seq": 1, "emoji": "👍",
        "user_id": bob, "added": true, "count": 1});
    assert_eq!(a.next().await, expected);
    assert_eq!(b.next().await, expected);
    // One emoji however it is written: "✌" is stored as its fully-qualified "✌️".
    a.say(json!({"type": "react", "room_id": room, "seq": 1, "emoji": "✌"}))
        .await;
    assert_eq!(b.next().await["emoji"], "✌\u{fe0f}");
    assert_eq!(a.next().await["emoji"], "✌\u{fe0f}");
    b.say(react("👍", false)).await;
    let removed = a.next().await;
    assert_eq!(b.next().await, removed);
    assert_eq!(
        (removed["added"].clone(), removed["count"].clone()),
        (json!(false), json!(0))
    );
    b.say(react("not an emoji", true)).await;
    assert_eq!(b.next().await["code"], "invalid_emoji");
    b.say(json!({"type": "react", "room_id": room, "seq": 99, "emoji": "👍"}))
        .await;
    assert_eq!(b.next().await["code"], "not_found", "no such message");
    let mut c = setup.signed_in(&carol_token).await;
    c.say(react("👍", true)).await;
    assert_eq!(c.next().await["code"], "not_found", "not a member");
    a.say(json!({"type": "ping"})).await;
    assert_eq!(a.next().await["type"], "pong", "nothing reached the room");
}

#[tokio::test]
async fn a_revoked_session_is_closed_and_others_stay() {
    let setup = Setup::new().await;
    let (_, first) = setup.user("alice", "s1").await;
    let (_, second) = setup.user("bob", "s2").await;
    let mut revoked = setup.signed_in(&first).await;
    let mut kept = setup.signed_in(&second).await;
    setup.chat.hub.revoke_session("s1");
    assert_eq!(revoked.next().await["close"], 4003);
    kept.say(json!({"type": "ping"})).await;
    assert_eq!(kept.next().await["type"], "pong");
}

#[tokio::test]
async fn a_subscriber_whose_queue_overflows_is_closed_as_too_slow() {
    let setup = Setup::new().await;
    let (_, room, mut client) = setup.in_own_group("alice").await;
    let frame = tungstenite::Utf8Bytes::from_static(r#"{"type":"typing"}"#);
    // Queued at once, with no turn for the connection in between (one-threaded runtime).
    for _ in 0..=setup.chat.limits.queue {
        let signal = crate::hub::Event::Signal {
            room_id: Arc::from(room.as_str()),
            frame: frame.clone(),
        };
        setup.chat.hub.dispatch(&room, signal);
    }
    assert_eq!(client.next().await["close"], 4008);
    assert_eq!(setup.chat.metrics.slow_consumers.get(), 1);
    assert_eq!(setup.chat.hub.queued(), 0, "its queued events are let go");
}

/// The next frame, whatever its kind.
async fn any_frame(client: &mut Client) -> Message {
    let frame = tokio::time::timeout(Duration::from_secs(5), client.hears.next()).await;
    frame
        .expect("a frame within 5 s")
        .expect("the connection is open")
}

#[tokio::test]
async fn a_connection_is_pinged_and_closed_only_after_its_silence() {
    let heartbeat = Duration::from_millis(100);
    let setup = Setup::with(Limits {
        heartbeat,
        idle_limit: heartbeat * 3,
        ..Limits::default()
    })
    .await;
    let (_, token) = setup.user("alice", "s1").await;
    let mut talking = setup.signed_in(&token).await;
    let mut silent = setup.signed_in(&token).await;
    let silent_since = std::time::Instant::now();
    // The talking client answers each ping, for longer than the idle limit.
    for _ in 0..5 {
        assert!(matches!(any_frame(&mut talking).await, Message::Ping(_)));
        talking
            .says
            .send(Ok(Message::Pong(Default::default())))
            .await
            .unwrap();
    }
    let mut pings = 0;
    let close = loop {
        match any_frame(&mut silent).await {
            Message::Ping(_) => pings += 1,
            Message::Close(close) => break close.map(|c| u16::from(c.code)),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close, Some(4002));
    assert!(pings >= 2, "pinged every heartbeat before closing: {pings}");
    assert!(
        silent_since.elapsed() >= heartbeat * 2,
        "closed before its idle limit"
    );
    talking.say(json!({"type": "ping"})).await;
    assert_eq!(talking.next().await["type"], "pong");
}

#[tokio::test]
async fn replies_to_frames_sent_together_go_out_in_one_write() {
    let setup = Setup::new().await;
    let (user, token) = setup.user("alice", "s1").await;
    let room = setup.group(&user).await;
    let mut client = setup.connect().await;
    // Both frames are queued before the connection runs again.
    client.say(json!({"type": "auth", "token": token})).await;
    client
        .say(json!({"type": "subscribe", "room_id": room}))
        .await;
    assert_eq!(client.next().await["type"], "authenticated");
    assert_eq!(client.next().await["type"], "subscribed");
    let writes = client.writes.lock().unwrap().clone();
    assert_eq!(writes[0], ["hello"]);
    assert_eq!(
        writes[1][..3],
        ["authenticated", "subscribed", "presence_list"]
    );
}

#[tokio::test]
async fn an_auth_sent_in_time_but_read_after_the_deadline_is_still_handled() {
    let setup = with_a_short_deadline().await;
    let (_, token) = setup.user("alice", "s1").await;
    // Nothing wakes the connection until its deadline's timer does.
    let mut late = setup.connect_woken(false).await;
    late.say(json!({"type": "auth", "token": token})).await;
    assert_eq!(late.next().await["type"], "authenticated");
    // With nothing sent, the deadline still closes it.
    let mut silent = setup.connect_woken(false).await;
    assert_eq!(silent.next().await["close"], 4001);
}

#[tokio::test]
async fn a_client_that_keeps_sending_without_auth_is_closed_at_its_deadline() {
    let setup = with_a_short_deadline().await;
    let mut client = setup.connect_woken(false).await;
    // More frames than the connection reads in a row are waiting when the deadline
    // fires: however many there are, what it reads late is bounded.
    for _ in 0..1_000 {
        let ping = Message::text(json!({"type": "ping"}).to_string());
        client.says.unbounded_send(Ok(ping)).unwrap();
    }
    let mut pongs = 0;
    let close = loop {
        let frame = client.next().await;
        match frame["type"].as_str() {
            Some("pong") => pongs += 1,
            _ => break frame["close"].clone(),
        }
    };
    assert_eq!(close, 4001);
    // The frame read late, and at most a streak of frames right behind it.
    let most = super::STREAK + 1;
    assert!(pongs <= most, "{pongs} frames read after the deadline");
}

/// A chat service whose connections must authenticate within 1 s.
async fn with_a_short_deadline() -> Setup {
    let limits = Limits {
        auth_timeout_secs: 1,
        ..Limits::default()
    };
    Setup::with(limits).await
}

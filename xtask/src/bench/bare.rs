//! The reference `bench chat` measures Natter against: a bare WebSocket broadcast server
//! (tokio-tungstenite, no storage, no presence, no authentication) that speaks enough of
//! docs/protocol.md for the same clients — `auth`, `subscribe`, `unsubscribe`, `send`
//! answered with `ack` and a `message` to every subscriber of the room (a thread reply
//! also with the root's `message_updated`, its in-memory reply count), `react` answered
//! with a `reaction` (count of the in-memory set) to every subscriber — with the same
//! bounded per-connection queue (256 frames, close 4008 when full). It runs as its own
//! process (`cargo xtask bench bare-server`) so it competes for the cores as Natter does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Frames a connection may have queued before it is closed as too slow (as Natter).
const QUEUE: usize = 256;

/// How the server reaches one connection.
#[derive(Clone)]
struct Outbox {
    queue: mpsc::Sender<Utf8Bytes>,
    /// Set when a frame had to be dropped: the connection closes as too slow.
    slow: Arc<AtomicBool>,
}

/// Room → its last sequence number, and connection id → its queue.
type Subscribers = HashMap<String, (i64, HashMap<u64, Outbox>)>;

/// (room, seq, emoji) → who reacted.
type Reactions = HashMap<(String, i64, String), std::collections::HashSet<String>>;

#[derive(Default)]
struct Rooms {
    rooms: Mutex<Subscribers>,
    reactions: Mutex<Reactions>,
    /// (room, root) → replies in its thread.
    threads: Mutex<HashMap<(String, i64), i64>>,
    next_id: AtomicU64,
}

/// Serves on `addr` until killed.
pub fn serve(addr: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // The same accept queue as Natter's (std's 128 overflows in a connect storm).
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr.parse()?)?;
        let listener = socket.listen(4096)?;
        let rooms = Arc::new(Rooms::default());
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(stream, rooms.clone()));
        }
    })
}

async fn connection(stream: tokio::net::TcpStream, rooms: Arc<Rooms>) {
    // Natter's buffer sizes, so the memory compared is what each does beyond them.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(4 * 1024);
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let id = rooms.next_id.fetch_add(1, Ordering::Relaxed);
    let (queue, mut queued) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let outbox = Outbox {
        queue,
        slow: Arc::default(),
    };
    let (mut sink, mut frames) = socket.split();
    let hello = r#"{"type":"hello","protocol":1,"auth_timeout_secs":10}"#;
    if sink.send(Message::text(hello)).await.is_err() {
        return;
    }
    let mut joined: Vec<String> = Vec::new();
    // The token names the user (there is no authentication).
    let mut user = String::new();
    loop {
        if outbox.slow.load(Ordering::Relaxed) {
            break;
        }
        tokio::select! {
            frame = frames.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Message::Text(text) = frame else { continue };
                let connection = Connection { id, outbox: &outbox, joined: &mut joined, user: &mut user };
                let Some(reply) = rooms.handle(connection, &text) else { continue };
                if sink.send(Message::text(reply)).await.is_err() {
                    break;
                }
            }
            out = queued.recv() => {
                let Some(out) = out else { break };
                if sink.send(Message::Text(out)).await.is_err() {
                    break;
                }
            }
        }
    }
    rooms.leave_all(id, &joined);
    if outbox.slow.load(Ordering::Relaxed) {
        let close = CloseFrame {
            code: CloseCode::from(4008),
            reason: "too slow".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
    }
}

/// One connection's state, as a frame needs it.
struct Connection<'a> {
    id: u64,
    outbox: &'a Outbox,
    joined: &'a mut Vec<String>,
    user: &'a mut String,
}

impl Rooms {
    /// Answers one client frame (the answer, if any, goes to that client directly).
    fn handle(&self, connection: Connection<'_>, text: &str) -> Option<String> {
        let Connection {
            id,
            outbox,
            joined,
            user,
        } = connection;
        let frame: Value = serde_json::from_str(text).ok()?;
        let room = frame["room_id"].as_str().unwrap_or_default().to_owned();
        match frame["type"].as_str()? {
            "auth" => {
                *user = frame["token"].as_str().unwrap_or_default().to_owned();
                Some(r#"{"type":"authenticated","user_id":"u","expires_at":0}"#.into())
            }
            "ping" => Some(r#"{"type":"pong"}"#.into()),
            "subscribe" => {
                let mut rooms = self.lock();
                let (last, members) = rooms.entry(room.clone()).or_default();
                members.insert(id, outbox.clone());
                let from = *last + 1;
                joined.push(room.clone());
                Some(format!(
                    r#"{{"type":"subscribed","room_id":{},"from_seq":{from},"truncated":false}}"#,
                    quoted(&room)
                ))
            }
            "unsubscribe" => {
                self.leave_all(id, std::slice::from_ref(&room));
                joined.retain(|r| *r != room);
                Some(format!(
                    r#"{{"type":"unsubscribed","room_id":{},"reason":"requested"}}"#,
                    quoted(&room)
                ))
            }
            "send" => {
                let ack = self.broadcast(&room, &frame);
                if let Some(root) = frame["thread_root"].as_i64() {
                    self.thread_reply(&room, root);
                }
                Some(ack)
            }
            "react" => {
                self.react(&room, &frame, user);
                None
            }
            _ => None,
        }
    }

    /// Adds `user`'s reaction and queues the `reaction` frame for every subscriber.
    fn react(&self, room: &str, frame: &Value, user: &str) {
        let seq = frame["seq"].as_i64().unwrap_or_default();
        let emoji = frame["emoji"].as_str().unwrap_or_default().to_owned();
        let mut reactions = self.reactions.lock().unwrap_or_else(|e| e.into_inner());
        let who = reactions
            .entry((room.to_owned(), seq, emoji.clone()))
            .or_default();
        who.insert(user.to_owned());
        let reaction = Utf8Bytes::from(format!(
            r#"{{"type":"reaction","room_id":{},"seq":{seq},"emoji":{},"user_id":{},"added":true,"count":{}}}"#,
            quoted(room),
            quoted(&emoji),
            quoted(user),
            who.len()
        ));
        drop(reactions);
        self.queue(room, &reaction);
    }

    /// Counts a reply in the thread of `root` and queues the root's `message_updated`
    /// for every subscriber.
    fn thread_reply(&self, room: &str, root: i64) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let replies = threads.entry((room.to_owned(), root)).or_default();
        *replies += 1;
        let updated = Utf8Bytes::from(format!(
            r#"{{"type":"message_updated","room_id":{},"seq":{root},"body":"","html":"","edited_at":null,"deleted":false,"thread":{{"replies":{replies},"last_reply_at":0,"participants":[]}}}}"#,
            quoted(room)
        ));
        drop(threads);
        self.queue(room, &updated);
    }

    /// Queues `frame` for every subscriber of `room`.
    fn queue(&self, room: &str, frame: &Utf8Bytes) {
        if let Some((_, members)) = self.lock().get(room) {
            queue_to(members, frame);
        }
    }

    /// Gives a send the room's next sequence number and queues it for every subscriber;
    /// returns the sender's `ack`.
    fn broadcast(&self, room: &str, frame: &Value) -> String {
        let client_id = quoted(frame["client_id"].as_str().unwrap_or_default());
        let body = quoted(frame["body"].as_str().unwrap_or_default());
        let mut rooms = self.lock();
        let (last, members) = rooms.entry(room.to_owned()).or_default();
        *last += 1;
        let seq = *last;
        let message = Utf8Bytes::from(format!(
            r#"{{"type":"message","room_id":{},"seq":{seq},"sender_id":"u","client_id":{client_id},"body":{body},"created_at":0}}"#,
            quoted(room)
        ));
        queue_to(members, &message);
        format!(
            r#"{{"type":"ack","room_id":{},"client_id":{client_id},"seq":{seq},"duplicate":false}}"#,
            quoted(room)
        )
    }

    fn leave_all(&self, id: u64, joined: &[String]) {
        let mut rooms = self.lock();
        for room in joined {
            if let Some((_, members)) = rooms.get_mut(room) {
                members.remove(&id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Queues `frame` for each of `members`; a full queue marks its connection too slow.
fn queue_to(members: &HashMap<u64, Outbox>, frame: &Utf8Bytes) {
    for member in members.values() {
        if member.queue.try_send(frame.clone()).is_err() {
            member.slow.store(true, Ordering::Relaxed);
        }
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}

//! `bench chat`'s clients: one WebSocket per member (a distinct user), each authenticated
//! and subscribed to its room, reading every frame; told by the driver to send (the
//! body and client id carry the send time, so deliveries and acks are timed) or to move to
//! another room. They report what they saw on one channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Clients per source address (see [`Client::connect`]).
const SOCKETS_PER_SOURCE: usize = 10_000;

/// Who a client is and where it starts.
#[derive(Debug, Clone)]
pub struct Member {
    /// Access token (anything for the bare server).
    pub token: String,
    /// The room it subscribes to first.
    pub room: String,
    /// Which of the servers it connects to.
    pub server: usize,
}

/// What the driver tells a client.
#[derive(Debug)]
pub enum Command {
    /// Send message `id` to the current room.
    Send(u64),
    /// Leave the current room for this one.
    Move(String),
    /// React with 👍 to message `seq` of the current room.
    React(i64),
    /// Reply in the thread of message `seq` of the current room.
    ThreadReply(i64),
}

/// What clients report.
#[derive(Debug)]
pub enum Report {
    /// Subscribed (true) or failed to (false).
    Ready(bool),
    /// Message `id` arrived this long after it was sent.
    Delivered(u64, Duration),
    /// A send was acknowledged this long after it was sent.
    Acked(Duration),
    /// The server closed the connection with this code.
    Closed(u16),
    /// An update frame with this count (a `reaction`'s, or the thread reply count of a
    /// root's `message_updated`) arrived this long after its burst started.
    Update(i64, Duration),
}

/// Running clients.
pub struct Swarm {
    commands: Vec<mpsc::UnboundedSender<Command>>,
    /// Everything the clients report.
    pub reports: mpsc::UnboundedReceiver<Report>,
    /// Presence and typing frames received.
    pub presence_frames: Arc<AtomicU64>,
    /// `reaction` frames are timed from this instant, once set.
    pub burst: Burst,
}

impl Swarm {
    /// Starts one client per member against its server of `urls` (`ws://host:port/ws`),
    /// all at once, from source addresses 127.0.0.`first_source` and up (a run's sockets
    /// linger in TIME_WAIT: the next run uses other addresses, or it would run out of
    /// ports).
    pub fn start(urls: &[String], members: Vec<Member>, first_source: u8) -> Self {
        let origin = Instant::now();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let presence_frames = Arc::new(AtomicU64::new(0));
        let burst = Burst::default();
        let mut commands = Vec::with_capacity(members.len());
        for (index, member) in members.into_iter().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            commands.push(tx);
            let client = Client {
                index,
                first_source,
                url: urls[member.server % urls.len()].clone(),
                member,
                origin,
                commands: rx,
                reports: reports_tx.clone(),
                presence_frames: presence_frames.clone(),
                burst: burst.clone(),
            };
            tokio::spawn(client.run());
        }
        Self {
            commands,
            reports,
            presence_frames,
            burst,
        }
    }

    /// Tells client `index` to do `command`.
    pub fn tell(&self, index: usize, command: Command) {
        let _ = self.commands[index].send(command);
    }

    /// How many clients there are.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Waits until `n` clients reported `Ready` (or a pause of `patience` without any
    /// report); returns how many were ready and how many failed, and prints the close
    /// codes of those that were closed meanwhile.
    pub async fn ready(&mut self, n: usize, patience: Duration) -> (usize, usize) {
        let (mut ready, mut failed) = (0, 0);
        let mut closes = std::collections::BTreeMap::<u16, usize>::new();
        while ready + failed < n {
            match tokio::time::timeout(patience, self.reports.recv()).await {
                Ok(Some(Report::Ready(true))) => ready += 1,
                Ok(Some(Report::Ready(false))) => failed += 1,
                Ok(Some(Report::Closed(code))) => *closes.entry(code).or_default() += 1,
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if !closes.is_empty() {
            println!("closed while subscribing (code: sockets): {closes:?}");
        }
        (ready, failed)
    }
}

struct Client {
    index: usize,
    first_source: u8,
    url: String,
    member: Member,
    origin: Instant,
    commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedSender<Report>,
    presence_frames: Arc<AtomicU64>,
    burst: Burst,
}

/// When the burst being timed started (set before any member acts).
pub type Burst = Arc<std::sync::Mutex<Option<Instant>>>;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Client {
    /// Connects from 127.0.0.(first + n / 10,000): one source address has about 28,000
    /// ephemeral ports, and finding a free one for `bind` slows as they fill (19,000
    /// sockets from one address took the clients 9.5–10.8 s to connect, against 0.8 s for
    /// 10,000), so large runs spread over several.
    async fn connect(&self) -> anyhow::Result<Socket> {
        let server: std::net::SocketAddr = self
            .url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .parse()?;
        let tcp = tokio::net::TcpSocket::new_v4()?;
        let last = u8::try_from(self.index / SOCKETS_PER_SOURCE)
            .ok()
            .and_then(|n| self.first_source.checked_add(n))
            .ok_or_else(|| anyhow::anyhow!("more clients than 127.0.0.x addresses"))?;
        let source = [127, 0, 0, last];
        tcp.bind(std::net::SocketAddr::from((source, 0)))?;
        let stream = tcp.connect(server).await?;
        stream.set_nodelay(true)?;
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4096);
        let (socket, _) = tokio_tungstenite::client_async_with_config(
            self.url.as_str(),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
            Some(config),
        )
        .await?;
        Ok(socket)
    }

    fn now(&self) -> u128 {
        self.origin.elapsed().as_nanos()
    }

    fn since(&self, nanos: u64) -> Duration {
        self.origin
            .elapsed()
            .saturating_sub(Duration::from_nanos(nanos))
    }

    async fn run(mut self) {
        let Ok(mut socket) = self.connect().await else {
            let _ = self.reports.send(Report::Ready(false));
            return;
        };
        let auth = json!({"type": "auth", "token": self.member.token, "presence_changes": true});
        let subscribe = json!({"type": "subscribe", "room_id": self.member.room});
        for frame in [auth, subscribe] {
            if socket.send(Message::text(frame.to_string())).await.is_err() {
                let _ = self.reports.send(Report::Ready(false));
                return;
            }
        }
        let mut room = self.member.room.clone();
        let mut waiting = true;
        loop {
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if self.on_text(text.as_str()) && waiting {
                            waiting = false;
                            let _ = self.reports.send(Report::Ready(true));
                        }
                    }
                    Some(Ok(Message::Close(close))) => {
                        let code = close.map_or(1005, |c| u16::from(c.code));
                        let _ = self.reports.send(Report::Closed(code));
                        break;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                command = self.commands.recv() => {
                    let frames = match command {
                        None => break,
                        Some(Command::Send(id)) => {
                            let now = self.now();
                            vec![json!({"type": "send", "room_id": room, "client_id": format!("{id}-{now}"), "body": format!("b={id}:{now}")})]
                        }
                        Some(Command::React(seq)) => {
                            vec![json!({"type": "react", "room_id": room, "seq": seq, "emoji": "👍"})]
                        }
                        Some(Command::ThreadReply(root)) => {
                            let client_id = format!("thread-{}", self.now());
                            vec![json!({"type": "send", "room_id": room, "client_id": client_id, "body": "in the thread", "thread_root": root})]
                        }
                        Some(Command::Move(to)) => {
                            waiting = true;
                            let from = std::mem::replace(&mut room, to);
                            vec![
                                json!({"type": "unsubscribe", "room_id": from}),
                                json!({"type": "subscribe", "room_id": room}),
                            ]
                        }
                    };
                    for frame in frames {
                        let _ = socket.send(Message::text(frame.to_string())).await;
                    }
                }
            }
        }
        if waiting {
            let _ = self.reports.send(Report::Ready(false));
        }
    }

    /// Reports a timed frame; true for `subscribed`.
    fn on_text(&self, text: &str) -> bool {
        if text.starts_with(r#"{"type":"message""#) {
            if let Some((id, sent)) = stamp(text, r#""body":"b="#, ':') {
                let _ = self.reports.send(Report::Delivered(id, self.since(sent)));
            }
        } else if text.starts_with(r#"{"type":"ack""#) {
            if let Some((_, sent)) = stamp(text, r#""client_id":""#, '-') {
                let _ = self.reports.send(Report::Acked(self.since(sent)));
            }
        } else if text.starts_with(r#"{"type":"subscribed""#) {
            return true;
        } else if (text.starts_with(r#"{"type":"reaction""#)
            || text.starts_with(r#"{"type":"message_updated""#))
            && let Some(start) = *self.burst.lock().unwrap_or_else(|e| e.into_inner())
        {
            let frame: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            let count = (frame["count"].as_i64())
                .or(frame["thread"]["replies"].as_i64())
                .unwrap_or(-1);
            let _ = self.reports.send(Report::Update(count, start.elapsed()));
        } else if text.starts_with(r#"{"type":"presence"#)
            || text.starts_with(r#"{"type":"typing""#)
        {
            self.presence_frames.fetch_add(1, Ordering::Relaxed);
        }
        false
    }
}

/// The `<id><split><nanos>` after `key` in a frame, up to the closing quote.
fn stamp(frame: &str, key: &str, split: char) -> Option<(u64, u64)> {
    let start = frame.find(key)? + key.len();
    let rest = &frame[start..];
    let (id, nanos) = rest[..rest.find('"')?].split_once(split)?;
    Some((id.parse().ok()?, nanos.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_are_read_from_bodies_and_client_ids() {
        let message = r#"{"type":"message","room_id":"r","seq":1,"client_id":"7-99","body":"b=7:123","created_at":0}"#;
        assert_eq!(super::stamp(message, r#""body":"b="#, ':'), Some((7, 123)));
        assert_eq!(
            super::stamp(message, r#""client_id":""#, '-'),
            Some((7, 99))
        );
        assert_eq!(
            super::stamp(r#"{"body":"hello"}"#, r#""body":"b="#, ':'),
            None
        );
    }
}

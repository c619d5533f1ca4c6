//! `cargo xtask bench chat`: N WebSocket clients across M rooms against the real binary
//! (standalone mode on PostgreSQL): connections held, deliveries per second, send →
//! deliver latency, server memory per connection, and the time for one message to reach
//! every member of a 10,000-member room.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::{SinkExt, StreamExt};
use natter_proto::auth::v1 as auth_pb;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use natter_proto::website::v1 as pb;
use natter_proto::website::v1::website_service_client::WebsiteServiceClient;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::Natter;
use crate::servers::Servers;

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Client sockets.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Rooms the sockets are spread over.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Messages sent per second in total (each reaches sockets/rooms subscribers).
    #[arg(long, default_value_t = 450)]
    rate: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Messages sent to the one big room (all sockets) to time the last delivery.
    #[arg(long, default_value_t = 20)]
    big_room_messages: usize,
}

const USERS: usize = 100;
const PASSWORD: &str = "bench-password-1";

/// What a client socket is told to do.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Rooms,
    BigRoom(String),
}

pub fn run(
    root: &Path,
    servers: &Servers,
    runtime: &tokio::runtime::Runtime,
    args: &ChatArgs,
) -> anyhow::Result<()> {
    let env = [
        ("NATTER_AUTH_ARGON2_MEMORY_KIB", "256".to_owned()),
        ("NATTER_WEBSITE_WRITE_LIMIT", "1000000".to_owned()),
    ];
    let server = Natter::start(root, servers, "standalone", &env)?;
    let pid = server.pid();
    runtime.block_on(drive(server.url(), pid, args))
}

struct Setup {
    tokens: Vec<String>,
    rooms: Vec<String>,
    big_room: String,
}

async fn setup(url: &str, rooms: usize) -> anyhow::Result<Setup> {
    let mut auth = AuthServiceClient::connect(url.to_owned()).await?;
    let mut tokens = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let username = format!("chatbench{i}");
        let register = auth_pb::RegisterRequest {
            username: username.clone(),
            password: PASSWORD.into(),
            email: None,
            ..Default::default()
        };
        let _ = auth.register(register).await;
        let login = auth_pb::LoginRequest {
            login: username,
            password: PASSWORD.into(),
            client: None,
        };
        tokens.push(auth.login(login).await?.into_inner().access_token);
    }
    let mut website = WebsiteServiceClient::connect(url.to_owned()).await?;
    let mut room_ids = Vec::with_capacity(rooms);
    for i in 0..=rooms {
        let request = pb::CreateRoomRequest {
            kind: pb::RoomKind::Public.into(),
            name: format!("bench {i} {}", std::process::id()),
        };
        let mut request = tonic::Request::new(request);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", tokens[0]).parse()?);
        room_ids.push(website.create_room(request).await?.into_inner().id);
    }
    let big_room = room_ids.pop().context("rooms")?;
    Ok(Setup {
        tokens,
        rooms: room_ids,
        big_room,
    })
}

async fn drive(url: String, pid: u32, args: &ChatArgs) -> anyhow::Result<()> {
    let setup = setup(&url, args.rooms).await?;
    let ws_url = format!("{}/ws", url.replace("http://", "ws://"));
    let rss_before = rss_kib(pid);
    let origin = Instant::now();
    let (phase_tx, phase_rx) = watch::channel(Phase::Rooms);
    let (samples_tx, mut samples_rx) = mpsc::unbounded_channel::<(bool, u64, Duration)>();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<bool>();
    let connect_started = Instant::now();
    for i in 0..args.sockets {
        let token = setup.tokens[i % USERS].clone();
        let room = setup.rooms[i % setup.rooms.len()].clone();
        let client = Client {
            index: i,
            url: ws_url.clone(),
            token,
            room,
            origin,
            phase: phase_rx.clone(),
            samples: samples_tx.clone(),
            ready: ready_tx.clone(),
        };
        tokio::spawn(client.run());
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut held = 0;
    let mut failed = 0;
    while held + failed < args.sockets {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(true)) => held += 1,
            Ok(Some(false)) => failed += 1,
            _ => break,
        }
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_kib(pid);
    println!(
        "\nchat over WebSocket: {held} sockets held ({failed} failed) in {connect_secs:.1} s, {} rooms",
        setup.rooms.len()
    );
    println!(
        "server RSS: {rss_before} KiB before, {rss_idle} KiB with the sockets idle = {:.1} KiB per socket",
        (rss_idle.saturating_sub(rss_before)) as f64 / held.max(1) as f64
    );

    let senders = open_senders(&ws_url, &setup.tokens[0], &setup.rooms, origin).await?;
    let duration = Duration::from_secs(args.duration);
    let started = Instant::now();
    let mut busy_rss = 0;
    let sent = send_at_rate(&senders, args.rate, duration, &mut busy_rss, pid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    while let Ok((big, _, latency)) = samples_rx.try_recv() {
        if !big {
            latencies.push(latency);
        }
    }
    let elapsed = started.elapsed().as_secs_f64() - 2.0;
    println!(
        "sent {sent} messages at {} /s for {} s: {} deliveries = {:.0} deliveries/s; server RSS busy {busy_rss} KiB ({:.1} KiB per socket)",
        args.rate,
        args.duration,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        (busy_rss.saturating_sub(rss_before)) as f64 / held.max(1) as f64
    );
    print_percentiles("send → deliver", &mut latencies);

    phase_tx.send_replace(Phase::BigRoom(setup.big_room.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    while samples_rx.try_recv().is_ok() {}
    let big_sender = open_senders(
        &ws_url,
        &setup.tokens[0],
        std::slice::from_ref(&setup.big_room),
        origin,
    )
    .await?;
    let mut last_member = Vec::new();
    for index in 0..args.big_room_messages {
        big_sender[0].send(index as u64).await;
        let mut got = 0;
        let mut slowest = Duration::ZERO;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < held && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(10), samples_rx.recv()).await {
                Ok(Some((true, id, latency))) if id == index as u64 => {
                    got += 1;
                    slowest = slowest.max(latency);
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if got == held {
            last_member.push(slowest);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!(
        "one message to a {held}-member room, until the last member has it ({} of {} complete):",
        last_member.len(),
        args.big_room_messages
    );
    print_percentiles("last member", &mut last_member);
    Ok(())
}

fn print_percentiles(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        if samples.is_empty() {
            return "-".to_owned();
        }
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        format!("{:.1}ms", samples[index].as_secs_f64() * 1000.0)
    };
    println!(
        "  {name}: n={} p50 {} p90 {} p99 {} max {}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

/// The resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One receiving client socket.
struct Client {
    index: usize,
    url: String,
    token: String,
    room: String,
    origin: Instant,
    phase: watch::Receiver<Phase>,
    samples: mpsc::UnboundedSender<(bool, u64, Duration)>,
    ready: mpsc::UnboundedSender<bool>,
}

impl Client {
    /// Connects from 127.0.0.(2 + n / 20,000): one source address has about 28,000
    /// ephemeral ports, so large runs spread over several.
    async fn connect(&self) -> anyhow::Result<Socket> {
        let server: std::net::SocketAddr = self
            .url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .parse()?;
        let source = std::net::SocketAddr::from(([127, 0, 0, 2 + (self.index / 20_000) as u8], 0));
        let tcp = tokio::net::TcpSocket::new_v4()?;
        tcp.bind(source)?;
        let stream = tcp.connect(server).await?;
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

    async fn run(mut self) {
        let Ok(mut socket) = self.connect().await else {
            let _ = self.ready.send(false);
            return;
        };
        let auth = json!({"type": "auth", "token": self.token}).to_string();
        let subscribe = json!({"type": "subscribe", "room_id": self.room}).to_string();
        if socket.send(Message::Text(auth.into())).await.is_err()
            || socket.send(Message::Text(subscribe.into())).await.is_err()
        {
            let _ = self.ready.send(false);
            return;
        }
        let mut announced = false;
        let mut big = false;
        loop {
            tokio::select! {
                frame = socket.next() => {
                    let Some(Ok(Message::Text(text))) = frame else {
                        if matches!(frame, Some(Ok(_))) { continue; }
                        if !announced { let _ = self.ready.send(false); }
                        return;
                    };
                    let text = text.as_str();
                    if !announced && text.contains("\"subscribed\"") {
                        announced = true;
                        let _ = self.ready.send(true);
                    }
                    if let Some((id, sent_at)) = stamp(text) {
                        let latency = self.origin.elapsed().saturating_sub(Duration::from_nanos(sent_at));
                        let _ = self.samples.send((big, id, latency));
                    }
                }
                changed = self.phase.changed() => {
                    if changed.is_err() { return; }
                    let phase = self.phase.borrow_and_update().clone();
                    if let Phase::BigRoom(room) = phase {
                        big = true;
                        let unsubscribe = json!({"type": "unsubscribe", "room_id": self.room}).to_string();
                        let subscribe = json!({"type": "subscribe", "room_id": room}).to_string();
                        let _ = socket.send(Message::Text(unsubscribe.into())).await;
                        let _ = socket.send(Message::Text(subscribe.into())).await;
                    }
                }
            }
        }
    }
}

/// The `b=<id>:<nanos>` stamp a benchmark message carries in its body.
fn stamp(frame: &str) -> Option<(u64, u64)> {
    let start = frame.find("\"body\":\"b=")? + 10;
    let rest = &frame[start..];
    let end = rest.find('"')?;
    let (id, nanos) = rest[..end].split_once(':')?;
    Some((id.parse().ok()?, nanos.parse().ok()?))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A sending socket for one room (sends are acknowledged; acks are read and dropped).
struct Sender {
    socket: tokio::sync::Mutex<
        futures::stream::SplitSink<
            tokio_tungstenite::WebSocketStream<
                tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
            >,
            Message,
        >,
    >,
    room: String,
    origin: Instant,
    counter: std::sync::atomic::AtomicU64,
}

impl Sender {
    async fn send(&self, id: u64) {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = format!("b={id}:{}", self.origin.elapsed().as_nanos());
        let frame = json!({"type": "send", "room_id": self.room, "client_id": format!("s{n}"), "body": body}).to_string();
        let _ = self
            .socket
            .lock()
            .await
            .send(Message::Text(frame.into()))
            .await;
    }
}

/// One authenticated sending socket per room, with a generous send limit (it is the
/// owner's; the server limits each connection to 10 sends/s, so several are opened).
async fn open_senders(
    url: &str,
    token: &str,
    rooms: &[String],
    origin: Instant,
) -> anyhow::Result<Vec<Arc<Sender>>> {
    let mut senders = Vec::with_capacity(rooms.len());
    for room in rooms {
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
        socket
            .send(Message::Text(
                json!({"type": "auth", "token": token}).to_string().into(),
            ))
            .await?;
        let (sink, mut stream) = socket.split();
        tokio::spawn(async move { while stream.next().await.is_some() {} });
        senders.push(Arc::new(Sender {
            socket: tokio::sync::Mutex::new(sink),
            room: room.clone(),
            origin,
            counter: Default::default(),
        }));
    }
    Ok(senders)
}

/// Sends `rate` messages per second round-robin over the rooms for `duration`; samples
/// the server's RSS half-way. Returns how many were sent.
async fn send_at_rate(
    senders: &[Arc<Sender>],
    rate: u32,
    duration: Duration,
    busy_rss: &mut u64,
    pid: u32,
) -> u64 {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < duration {
        ticker.tick().await;
        let sender = senders[sent as usize % senders.len()].clone();
        let id = sent;
        tokio::spawn(async move { sender.send(id).await });
        sent += 1;
        if *busy_rss == 0 && started.elapsed() > duration / 2 {
            *busy_rss = rss_kib(pid);
        }
    }
    sent
}

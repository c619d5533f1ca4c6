//! `cargo xtask bench fanout`: Natter in cluster mode (auth, website and 1, 2, 4 chat
//! replicas over PostgreSQL and Redis) under the `bench chat` workload, with members
//! connected to the replica that serves their room and each room's senders connected to
//! another replica (people in many rooms), so every message crosses the broker. Prints,
//! per replica, the rooms it listens to, the room events it received from the broker and
//! its CPU per delivered message: with per-room topics a replica's broker traffic follows
//! the rooms it serves; with one topic for all rooms every replica received everything.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::Natter;
use super::chat;
use super::people;
use super::swarm::{Member, Swarm};
use super::usage::{self, Counting};
use crate::servers::Servers;

#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Chat replicas, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    replicas: Vec<usize>,
    /// Rooms.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Users per room.
    #[arg(long, default_value_t = 20)]
    room_size: usize,
    /// Senders per room (connected to another replica than the room's members).
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Messages per second in total.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds of sending per run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
}

pub fn run(
    root: &Path,
    servers: &Servers,
    runtime: &tokio::runtime::Runtime,
    args: &FanoutArgs,
) -> anyhow::Result<()> {
    let redis = ("NATTER_REDIS_URL", servers.redis_url.clone());
    let quick = [
        ("NATTER_AUTH_ARGON2_MEMORY_KIB", "256".to_owned()),
        redis.clone(),
    ];
    let auth = Natter::start(root, servers, "auth", &quick)?;
    let to_auth = ("NATTER_AUTH_GRPC_URL", auth.url());
    let website = Natter::start(
        root,
        servers,
        "website",
        &[
            to_auth.clone(),
            redis.clone(),
            ("NATTER_WEBSITE_WRITE_LIMIT", "1000000".to_owned()),
        ],
    )?;
    let people = runtime.block_on(people::make(
        &auth.url(),
        &website.url(),
        args.rooms,
        args.room_size,
    ))?;
    println!(
        "\n{} rooms × {} users, {} senders per room on another replica, {} msgs/s for {} s",
        args.rooms, args.room_size, args.senders, args.rate, args.duration
    );
    println!(
        "{:>8} {:>7} {:>8} {:>14} {:>11} {:>8} {:>16}",
        "replicas", "replica", "rooms", "broker events", "deliveries", "cpu s", "cpu µs/delivery"
    );
    for (run, &n) in args.replicas.iter().enumerate() {
        let env = [
            to_auth.clone(),
            ("NATTER_REDIS_URL", servers.redis_url.clone()),
        ];
        let chats = (0..n)
            .map(|_| Natter::start(root, servers, "chat", &env))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let members = route(&people.members, args, n);
        let first_source = u8::try_from(100 + 16 * run)?;
        runtime.block_on(measure(&chats, members, args, first_source))?;
    }
    Ok(())
}

/// Members of room `r` on replica `r % n`; its senders on replica `(r + 1) % n`.
fn route(members: &[Member], args: &FanoutArgs, n: usize) -> Vec<Member> {
    let members = members.iter().enumerate().map(|(i, member)| {
        let room = i % args.rooms;
        let sender = i / args.rooms < args.senders;
        Member {
            server: (room + usize::from(sender)) % n,
            ..member.clone()
        }
    });
    members.collect()
}

async fn measure(
    chats: &[Natter],
    members: Vec<Member>,
    args: &FanoutArgs,
    first_source: u8,
) -> anyhow::Result<()> {
    let urls: Vec<String> = chats
        .iter()
        .map(|c| format!("{}/ws", c.http_url().replace("http://", "ws://")))
        .collect();
    let mut swarm = Swarm::start(&urls, members, first_source);
    let (ready, failed) = swarm.ready(swarm.len(), Duration::from_secs(30)).await;
    anyhow::ensure!(failed == 0, "{failed} of {} sockets failed", ready + failed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<Sample> = chats.iter().map(Sample::take).collect();
    let senders = chat::senders(args.rooms, args.room_size, args.senders);
    let offer = chat::Offer {
        senders: &senders,
        recipients: args.room_size,
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
    };
    let usage = Counting::start(chats[0].pid(), false);
    let (step, _) = chat::send_at(&mut swarm, usage, offer, &mut 0).await;
    for (i, (chat, before)) in chats.iter().zip(&before).enumerate() {
        let after = Sample::take(chat);
        let deliveries = after.delivered - before.delivered;
        let cpu = after.cpu - before.cpu;
        println!(
            "{:>8} {:>7} {:>8} {:>14} {:>11} {:>8.2} {:>16.1}",
            chats.len(),
            i,
            after.rooms,
            after.relayed - before.relayed,
            deliveries,
            cpu,
            cpu * 1e6 / deliveries.max(1.0)
        );
    }
    println!(
        "{:>8} {:>7} messages sent {}, deliveries lost {}",
        chats.len(),
        "all",
        step.sent,
        step.lost()
    );
    Ok(())
}

/// One replica's counters and CPU at a moment.
struct Sample {
    rooms: f64,
    relayed: f64,
    delivered: f64,
    cpu: f64,
}

impl Sample {
    fn take(chat: &Natter) -> Self {
        let text = metrics(chat).unwrap_or_default();
        let value = |name: &str| {
            let line = text
                .lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
            line.and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0.0)
        };
        Self {
            rooms: value("natter_chat_listened_rooms"),
            relayed: value("natter_chat_relay_events_total"),
            delivered: value("natter_chat_messages_delivered_total"),
            cpu: usage::cpu_seconds(chat.pid()),
        }
    }
}

/// The replica's `/metrics` text.
fn metrics(chat: &Natter) -> anyhow::Result<String> {
    let address = chat.http_url().trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address)?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

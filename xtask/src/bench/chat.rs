//! `cargo xtask bench chat`: the workload users create — rooms of distinct users (one
//! socket each, presence on), several senders per room — against a bare broadcast server
//! of our own (`bare.rs`, no storage) and Natter standalone on SQLite and on
//! PostgreSQL+Redis, in the same run, one after the other, so Natter's figures print as
//! ratios of the bare server's: the connect storm, memory per idle socket, delivery and
//! ack latency and deliveries per server CPU-second at rising rates, and one room of
//! every user.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::bursts::{self, Burst};
use super::people::{self, People};
use super::rounds::{self, Table};
use super::swarm::{Command, Report, Swarm};
use super::usage::{Counting, Usage, quantile};
use super::{Natter, Process};
use crate::servers::Servers;

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Rooms (each of `room-size` distinct users, one socket each).
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Users per room.
    #[arg(long, default_value_t = 100)]
    room_size: usize,
    /// Members of each room who send.
    #[arg(long, default_value_t = 3)]
    senders: usize,
    /// Messages per second offered in total, one step each.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 200, 300, 450])]
    rates: Vec<u32>,
    /// Seconds per rate.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Messages sent to the room of all users, to time the last member.
    #[arg(long, default_value_t = 20)]
    big_room_messages: usize,
    /// What to measure, in this order.
    #[arg(long, value_delimiter = ',', default_values_t = [Target::Bare, Target::Sqlite, Target::Postgres])]
    targets: Vec<Target>,
    /// Times to measure every target, taking turns; more than one adds each figure's
    /// median over the rounds and the spread of its ratio, a round's ratios being
    /// taken within that round (a slow spell of the machine then moves one round).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    rounds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The bare broadcast server.
    Bare,
    /// Natter standalone on SQLite, in-memory broker.
    Sqlite,
    /// Natter standalone on PostgreSQL and Redis.
    Postgres,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Target::Bare => "bare",
            Target::Sqlite => "sqlite",
            Target::Postgres => "postgres",
        };
        f.write_str(name)
    }
}

/// One rate step's outcome.
pub(super) struct Step {
    rate: u32,
    /// Messages sent.
    pub(super) sent: usize,
    /// Deliveries due: every member of the room, for every message.
    expected: usize,
    /// Each delivery's latency, sorted.
    pub(super) delivered: Vec<Duration>,
    /// Each ack's latency, sorted.
    pub(super) acks: Vec<Duration>,
    usage: Usage,
}

/// Everything measured of one target.
struct Figures {
    target: Target,
    sockets: usize,
    failed: usize,
    connect: Duration,
    /// CPU seconds the server (and PostgreSQL and Redis, when they serve it) used
    /// while the sockets connected: unlike `connect`, not shared with the clients.
    connect_usage: Usage,
    presence_frames: u64,
    kib_per_socket: f64,
    steps: Vec<Step>,
    big_move: Duration,
    big_failed: usize,
    /// Per message into the room of all, when its last member had it; sorted.
    last_member: Vec<Duration>,
    big_complete: usize,
    slow_closes: usize,
    /// Every member of one room sending to it at once.
    send_burst: Burst,
    /// Every member of one room reacting to one message at once.
    burst: Burst,
    /// Every member of one room replying in one message's thread at once.
    thread_burst: Burst,
}

pub fn run(
    root: &Path,
    servers: &Servers,
    runtime: &tokio::runtime::Runtime,
    args: &ChatArgs,
) -> anyhow::Result<()> {
    // Sockets of a finished run linger in TIME_WAIT for a minute, holding their source
    // ports: each target of each round, and each run, connects from other addresses.
    let run = std::process::id() as usize % 8;
    let mut tables = Vec::new();
    let count = args.targets.len();
    for round in 0..args.rounds as usize {
        let mut all = Vec::with_capacity(count);
        for (i, at) in rounds::order(round, count).enumerate() {
            let target = args.targets[at];
            let data = tempfile::tempdir()?;
            let server = start(root, servers, target, data.path())?;
            let turn = run * 4 + round * count + i;
            let first_source = u8::try_from(2 + 8 * (turn % 31))?;
            let database = (target == Target::Postgres).then_some(servers.database_url.as_str());
            let figures =
                runtime.block_on(measure(&server, target, args, first_source, database))?;
            print_target(&figures, args);
            all.push((at, figures));
        }
        // The table's columns in the order the targets were given (the reference first).
        all.sort_by_key(|&(at, _)| at);
        let all: Vec<Figures> = all.into_iter().map(|(_, figures)| figures).collect();
        let table = table(&all);
        let heading = match args.rounds {
            1 => "same run".to_owned(),
            n => format!("round {} of {n}, same run", round + 1),
        };
        table.print(&heading);
        tables.push(table);
    }
    if tables.len() > 1 {
        rounds::print_medians(&tables);
    }
    Ok(())
}

fn start(root: &Path, servers: &Servers, target: Target, data: &Path) -> anyhow::Result<Process> {
    let mut env = vec![
        ("NATTER_AUTH_ARGON2_MEMORY_KIB", "256".to_owned()),
        ("NATTER_WEBSITE_WRITE_LIMIT", "1000000".to_owned()),
    ];
    match target {
        Target::Bare => return Process::bare_server(root),
        Target::Sqlite => {
            let url = format!("sqlite://{}/bench.db?mode=rwc", data.display());
            env.push(("NATTER_DATABASE_URL", url));
        }
        Target::Postgres => env.push(("NATTER_REDIS_URL", servers.redis_url.clone())),
    }
    Ok(Process::Natter(Natter::start(
        root,
        servers,
        "standalone",
        &env,
    )?))
}

async fn measure(
    server: &Process,
    target: Target,
    args: &ChatArgs,
    first_source: u8,
    database: Option<&str>,
) -> anyhow::Result<Figures> {
    let people = match target {
        Target::Bare => people::unchecked(args.rooms, args.room_size),
        _ => {
            let url = server.url();
            people::make(&url, &url, args.rooms, args.room_size).await?
        }
    };
    if let Some(url) = database {
        // A live database has statistics (autovacuum analyzes a table once a tenth of it
        // has changed); these tables were filled a moment ago. Without statistics the
        // planner scans every membership for the storm's batched rooms read: 3 ms per 64
        // users against 0.06 ms (docs/latency.md).
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || super::history::psql(&url, "ANALYZE")).await??;
    }
    let People { members, big_room } = people;
    let ws = format!("{}/ws", server.url().replace("http://", "ws://"));
    let rss_before = server.rss_kib();
    let started = Instant::now();
    let usage = Counting::start(server.pid(), target == Target::Postgres);
    let mut swarm = Swarm::start(&[ws], members, first_source);
    let (sockets, failed) = swarm.ready(swarm.len(), Duration::from_secs(30)).await;
    let connect = started.elapsed();
    let usage = usage.stop();
    let slow_closes = settle(&mut swarm, Duration::from_secs(2)).await;
    let presence_frames = swarm
        .presence_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    let kib_per_socket = server.rss_kib().saturating_sub(rss_before) as f64 / sockets.max(1) as f64;
    let mut figures = Figures {
        target,
        sockets,
        failed,
        connect,
        connect_usage: usage,
        presence_frames,
        kib_per_socket,
        steps: Vec::new(),
        big_move: Duration::ZERO,
        big_failed: 0,
        last_member: Vec::new(),
        big_complete: 0,
        slow_closes,
        send_burst: Burst::default(),
        burst: Burst::default(),
        thread_burst: Burst::default(),
    };
    let senders = senders(args.rooms, args.room_size, args.senders);
    let mut next_id = 0;
    for &rate in &args.rates {
        let duration = Duration::from_secs(args.duration);
        let usage = Counting::start(server.pid(), target == Target::Postgres);
        let offer = Offer {
            senders: &senders,
            recipients: args.room_size,
            rate,
            duration,
        };
        let (step, closes) = send_at(&mut swarm, usage, offer, &mut next_id).await;
        figures.slow_closes += closes;
        figures.steps.push(step);
    }
    figures.send_burst = bursts::sends(&mut swarm, (args.rooms, 0), &mut next_id).await;
    // Room 0 has had messages since the first step: its members react to the first.
    figures.burst = bursts::burst(&mut swarm, (args.rooms, 0), Command::React, 1).await;
    figures.thread_burst =
        bursts::burst(&mut swarm, (args.rooms, 0), Command::ThreadReply, 1).await;
    big_room_phase(&mut swarm, &mut figures, &big_room, args, next_id).await;
    Ok(figures)
}

/// Reads reports for `pause`, counting slow-consumer closes.
async fn settle(swarm: &mut Swarm, pause: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + pause;
    let mut closes = 0;
    while let Ok(Some(report)) = tokio::time::timeout_at(deadline, swarm.reports.recv()).await {
        closes += usize::from(matches!(report, Report::Closed(4008)));
    }
    closes
}

/// Member `s * rooms + r` is room `r`'s sender `s`: the first `per_room` of each room.
pub(super) fn senders(rooms: usize, room_size: usize, per_room: usize) -> Vec<usize> {
    let per_room = per_room.min(room_size);
    (0..per_room)
        .flat_map(|s| (0..rooms).map(move |r| s * rooms + r))
        .collect()
}

/// A load step: `rate` messages per second round-robin over `senders` for `duration`,
/// each due to `recipients` members.
pub(super) struct Offer<'a> {
    pub(super) senders: &'a [usize],
    pub(super) recipients: usize,
    pub(super) rate: u32,
    pub(super) duration: Duration,
}

/// Runs `offer`, then waits 2 s for the last deliveries; also returns the slow-consumer
/// closes seen meanwhile.
pub(super) async fn send_at(
    swarm: &mut Swarm,
    usage: Counting,
    offer: Offer<'_>,
    next_id: &mut u64,
) -> (Step, usize) {
    let Offer {
        senders,
        recipients,
        rate,
        duration,
    } = offer;
    let first = *next_id;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let (mut delivered, mut acks, mut closes) = (Vec::new(), Vec::new(), 0);
    let started = tokio::time::Instant::now();
    let drained = started + duration + Duration::from_secs(2);
    loop {
        tokio::select! {
            _ = ticker.tick(), if started.elapsed() < duration => {
                let sender = senders[(*next_id - first) as usize % senders.len()];
                swarm.tell(sender, Command::Send(*next_id));
                *next_id += 1;
            }
            report = tokio::time::timeout_at(drained, swarm.reports.recv()) => match report {
                Ok(Some(Report::Delivered(id, latency))) if id >= first => delivered.push(latency),
                Ok(Some(Report::Acked(latency))) => acks.push(latency),
                Ok(Some(Report::Closed(4008))) => closes += 1,
                Ok(Some(_)) => {}
                _ => break,
            },
        }
    }
    let sent = (*next_id - first) as usize;
    delivered.sort_unstable();
    acks.sort_unstable();
    let step = Step {
        rate,
        sent,
        expected: sent * recipients,
        delivered,
        acks,
        usage: usage.stop(),
    };
    (step, closes)
}

/// Moves every socket into the one room of all users, then times single messages until
/// the last member has each.
async fn big_room_phase(
    swarm: &mut Swarm,
    figures: &mut Figures,
    room: &str,
    args: &ChatArgs,
    mut next_id: u64,
) {
    let moved = Instant::now();
    for index in 0..swarm.len() {
        swarm.tell(index, Command::Move(room.to_owned()));
    }
    let (ready, failed) = swarm.ready(figures.sockets, Duration::from_secs(30)).await;
    figures.big_move = moved.elapsed();
    figures.big_failed = failed + figures.sockets.saturating_sub(ready + failed);
    figures.slow_closes += settle(swarm, Duration::from_secs(2)).await;
    for _ in 0..args.big_room_messages {
        let id = next_id;
        next_id += 1;
        swarm.tell(0, Command::Send(id));
        let (mut got, mut slowest) = (0, Duration::ZERO);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while got < ready {
            match tokio::time::timeout_at(deadline, swarm.reports.recv()).await {
                Ok(Some(Report::Delivered(seen, latency))) if seen == id => {
                    got += 1;
                    slowest = slowest.max(latency);
                }
                Ok(Some(Report::Closed(4008))) => figures.slow_closes += 1,
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if got == ready {
            figures.big_complete += 1;
            figures.last_member.push(slowest);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    figures.last_member.sort_unstable();
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl Step {
    fn per_cpu_second(&self, with_dependencies: bool) -> f64 {
        let cpu = match with_dependencies {
            true => self.usage.total(),
            false => self.usage.server,
        };
        self.delivered.len() as f64 / cpu.max(1e-9)
    }

    /// Deliveries due that did not arrive.
    pub(super) fn lost(&self) -> usize {
        self.expected.saturating_sub(self.delivered.len())
    }

    fn passes(&self) -> bool {
        self.lost() == 0 && quantile(&self.delivered, 0.99) <= Duration::from_millis(100)
    }
}

fn print_target(f: &Figures, args: &ChatArgs) {
    println!(
        "\n== {}: {} rooms × {} distinct users, {} senders per room",
        f.target, args.rooms, args.room_size, args.senders
    );
    println!(
        "connect + auth + subscribe: {} sockets ({} failed) in {:.2} s (server cpu {:.2} s, of which PostgreSQL and Redis {:.2} s); {} presence and typing frames; {:.1} KiB per idle socket",
        f.sockets,
        f.failed,
        f.connect.as_secs_f64(),
        f.connect_usage.total(),
        f.connect_usage.dependencies,
        f.presence_frames,
        f.kib_per_socket
    );
    println!(
        "{:>6} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11} {:>11}",
        "rate",
        "delivered",
        "lost",
        "p50",
        "p99",
        "ack p50",
        "ack p99",
        "cpu s",
        "deliv/cpu-s",
        "+deps"
    );
    for step in &f.steps {
        println!(
            "{:>6} {:>10} {:>8} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>8.2} {:>11.0} {:>11.0}",
            step.rate,
            step.delivered.len(),
            step.lost(),
            ms(quantile(&step.delivered, 0.5)),
            ms(quantile(&step.delivered, 0.99)),
            ms(quantile(&step.acks, 0.5)),
            ms(quantile(&step.acks, 0.99)),
            step.usage.server,
            step.per_cpu_second(false),
            step.per_cpu_second(true),
        );
    }
    println!(
        "one room of all {}: moved in {:.2} s ({} failed); last member p50 {:.1}ms p99 {:.1}ms ({} of {} messages reached everyone); 4008 closes: {}",
        f.sockets,
        f.big_move.as_secs_f64(),
        f.big_failed,
        ms(quantile(&f.last_member, 0.5)),
        ms(quantile(&f.last_member, 0.99)),
        f.big_complete,
        args.big_room_messages,
        f.slow_closes
    );
    for (b, what) in [
        (&f.send_burst, "send to one room at once: message"),
        (&f.burst, "react to one message at once: reaction"),
        (&f.thread_burst, "reply in one thread at once: root update"),
    ] {
        println!(
            "{} members {what} frames {} of {}, p50 {:.1}ms p99 {:.1}ms last {:.1}ms; not seen exactly once by everyone: {}",
            b.members,
            b.frames.len(),
            b.expected(),
            ms(quantile(&b.frames, 0.5)),
            ms(quantile(&b.frames, 0.99)),
            ms(b.frames.last().copied().unwrap_or_default()),
            b.wrong_counts()
        );
    }
}

/// The compared figures of one round's targets.
fn table(all: &[Figures]) -> Table {
    let mut table = Table::new(all.iter().map(|f| f.target.to_string()).collect());
    let mut row = |name: &str, value: &dyn Fn(&Figures) -> f64, unit| {
        table.push(name, unit, all.iter().map(value).collect());
    };
    row(
        "connect + subscribe all",
        &|f| f.connect.as_secs_f64(),
        " s",
    );
    let storm_cpu = |f: &Figures| f.connect_usage.total();
    row("connect + subscribe: server cpu", &storm_cpu, " s");
    row("KiB per idle socket", &|f| f.kib_per_socket, "");
    row("highest rate, p99 ≤ 100 ms", &|f| highest(f) as f64, "/s");
    let rates = all
        .first()
        .map(|f| f.steps.iter().map(|s| s.rate).collect::<Vec<_>>());
    for (i, rate) in rates.unwrap_or_default().into_iter().enumerate() {
        let step = |f: &Figures, read: &dyn Fn(&Step) -> f64| f.steps.get(i).map_or(0.0, read);
        let p99 = |f: &Figures| step(f, &|s| ms(quantile(&s.delivered, 0.99)));
        row(&format!("p99 at {rate}/s"), &p99, " ms");
        let ack = |f: &Figures| step(f, &|s| ms(quantile(&s.acks, 0.99)));
        row(&format!("ack p99 at {rate}/s"), &ack, " ms");
        // With PostgreSQL's and Redis's CPU, and without: the server's own, as the
        // issue's load tool counted it.
        let per_cpu = |f: &Figures| step(f, &|s| s.per_cpu_second(true));
        row(&format!("deliveries per cpu-s at {rate}/s"), &per_cpu, "");
        let per_own = |f: &Figures| step(f, &|s| s.per_cpu_second(false));
        row(&format!("  by the server alone at {rate}/s"), &per_own, "");
    }
    row("one room of all: move", &|f| f.big_move.as_secs_f64(), " s");
    let last = |f: &Figures| ms(quantile(&f.last_member, 0.99));
    row("one room of all: last member p99", &last, " ms");
    let sent = |f: &Figures| ms(quantile(&f.send_burst.frames, 0.99));
    row("send burst: message p99", &sent, " ms");
    let reaction = |f: &Figures| ms(quantile(&f.burst.frames, 0.99));
    row("reaction burst: frame p99", &reaction, " ms");
    let thread = |f: &Figures| ms(quantile(&f.thread_burst.frames, 0.99));
    row("thread burst: root update p99", &thread, " ms");
    table
}

fn highest(f: &Figures) -> u32 {
    f.steps
        .iter()
        .filter(|s| s.passes())
        .map(|s| s.rate)
        .max()
        .unwrap_or(0)
}

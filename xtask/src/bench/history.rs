//! `cargo xtask bench history`: pages of a 1,000,000-message room (newest, and deep by
//! cursor) and room search over 100,000 public rooms, through the website's gRPC API with
//! PostgreSQL underneath.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use natter_proto::auth::v1 as auth_pb;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use natter_proto::website::v1 as pb;
use natter_proto::website::v1::website_service_client::WebsiteServiceClient;
use tonic::transport::Channel;

use super::Natter;
use super::load::{Report, closed_loop};
use crate::servers::Servers;

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Messages in the benchmark room.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Public rooms to search.
    #[arg(long, default_value_t = 100_000)]
    rooms: u64,
    /// Seconds each query is repeated for (one caller, back to back).
    #[arg(long, default_value_t = 5)]
    duration: u64,
}

/// The benchmark room (ids are UUIDs: another shape is refused as no such room).
const ROOM: &str = "00000000-0000-4000-8000-00000000be9c";

pub fn run(
    root: &Path,
    servers: &Servers,
    runtime: &tokio::runtime::Runtime,
    args: &HistoryArgs,
) -> anyhow::Result<()> {
    let database = format!("natter_bench_{}", std::process::id());
    psql(
        &servers.database_url,
        &format!("CREATE DATABASE {database}"),
    )?;
    let url = match servers.database_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => bail!("DATABASE_URL must end in /<database>"),
    };
    let bench_servers = Servers::with_urls(url.clone(), servers.redis_url.clone());
    let server = Natter::start(root, &bench_servers, "standalone", &[])?;
    let token = runtime.block_on(sign_in(server.url()))?;
    let user_id = token.1.clone();
    let started = Instant::now();
    psql(&url, &seed_sql(&user_id, args))?;
    println!(
        "seeded {} messages and {} rooms in {:.1} s",
        args.messages,
        args.rooms,
        started.elapsed().as_secs_f64()
    );
    let result = runtime.block_on(drive(server.url(), &token.0, args));
    drop(server);
    psql(&servers.database_url, &format!("DROP DATABASE {database}"))?;
    result
}

fn seed_sql(user_id: &str, args: &HistoryArgs) -> String {
    format!(
        "INSERT INTO rooms (id, kind, name, name_key, created_by, created_at, last_seq) \
           VALUES ('{ROOM}', 'group', 'bench room', 'bench room', '{user_id}', 0, {messages});
         INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES ('{ROOM}', '{user_id}', 'owner', 0);
         INSERT INTO messages (room_id, seq, sender_id, client_id, body, created_at)
           SELECT '{ROOM}', g, '{user_id}', 'c' || g, 'message number ' || g || ' with some ordinary chat text', g
           FROM generate_series(1, {messages}) g;
         INSERT INTO rooms (id, kind, name, name_key, created_by, created_at)
           SELECT 'room-' || lpad(g::text, 7, '0'), 'public', 'room ' || md5(g::text),
             'room ' || md5(g::text), '{user_id}', g
           FROM generate_series(1, {rooms}) g;
         ANALYZE;",
        messages = args.messages,
        rooms = args.rooms,
    )
}

pub(super) fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let status = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .status()
        .context("running psql (apt-get install -y postgresql-client)")?;
    if !status.success() {
        bail!("psql failed");
    }
    Ok(())
}

/// Registers and signs in the benchmark user: (access token, user id).
async fn sign_in(url: String) -> anyhow::Result<(String, String)> {
    let mut auth = AuthServiceClient::connect(url).await?;
    let password = "bench-password-1".to_owned();
    let registered = auth
        .register(auth_pb::RegisterRequest {
            username: "bench".into(),
            password: password.clone(),
            email: None,
            ..Default::default()
        })
        .await?
        .into_inner();
    let pair = auth
        .login(auth_pb::LoginRequest {
            login: "bench".into(),
            password,
            client: None,
        })
        .await?
        .into_inner();
    Ok((
        pair.access_token,
        registered.user.map(|u| u.id).unwrap_or_default(),
    ))
}

async fn drive(url: String, token: &str, args: &HistoryArgs) -> anyhow::Result<()> {
    let channel = Channel::from_shared(url)?.connect().await?;
    let client = WebsiteServiceClient::new(channel);
    let duration = Duration::from_secs(args.duration);
    let deep = i64::try_from(args.messages / 2).unwrap_or(i64::MAX);
    println!(
        "\nwebsite over gRPC, one caller back to back, {} s per query\n",
        args.duration
    );
    println!("{}", Report::header());
    let history = |before: Option<i64>, after: Option<i64>| {
        let (client, token) = (client.clone(), token.to_owned());
        move || {
            let mut client = client.clone();
            let request = authed(
                natter_proto::common::v1::HistoryRequest {
                    room_id: ROOM.into(),
                    before,
                    after,
                    limit: 50,
                    thread: None,
                },
                &token,
            );
            async move { client.get_history(request).await.map(drop) }
        }
    };
    let search = |query: &'static str| {
        let (client, token) = (client.clone(), token.to_owned());
        move || {
            let mut client = client.clone();
            let request = authed(
                pb::ListRoomsRequest {
                    query: query.into(),
                    cursor: String::new(),
                    limit: 50,
                },
                &token,
            );
            async move { client.list_public_rooms(request).await.map(drop) }
        }
    };
    // Timed calls that all fail would print as errors only: fail now, saying why.
    (history(None, None))()
        .await
        .context("reading the benchmark room's history")?;
    let runs: Vec<(&str, Report)> = vec![
        (
            "newest 50",
            closed_loop(duration, 1, history(None, None)).await,
        ),
        (
            "50 before mid",
            closed_loop(duration, 1, history(Some(deep), None)).await,
        ),
        (
            "50 after 10",
            closed_loop(duration, 1, history(None, Some(10))).await,
        ),
        (
            "search 'ab1'",
            closed_loop(duration, 1, search("ab1")).await,
        ),
        (
            "search 'room'",
            closed_loop(duration, 1, search("room")).await,
        ),
        (
            "search miss",
            closed_loop(duration, 1, search("no such room")).await,
        ),
    ];
    for (name, report) in runs {
        println!("{}", report.line(name, report.achieved));
    }
    Ok(())
}

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().expect("a token is ASCII");
    request.metadata_mut().insert("authorization", value);
    request
}

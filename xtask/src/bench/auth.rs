//! `cargo xtask bench auth`: ValidateToken, RefreshToken and Login at a fixed rate, then
//! the ValidateToken ceiling.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use natter_proto::auth::v1 as pb;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use super::Natter;
use super::load::{Report, closed_loop, open_loop};
use super::spans::{SpanSink, print_breakdown};
use crate::servers::Servers;

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Requests per second offered to each RPC.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds each RPC is driven for.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Most requests in flight at once; a tick finding all busy is counted as missed.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Argon2id memory in KiB for the server (default: OWASP's 19456).
    #[arg(long, default_value_t = 19456)]
    argon2_memory_kib: u32,
    /// A second Login run at this lower rate, below the password hash's capacity.
    #[arg(long, default_value_t = 40)]
    login_rate: u32,
    /// Run only these RPCs (comma-separated: validate, refresh, login, jwks, max).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "jwks,validate,refresh,login,max"
    )]
    only: Vec<String>,
    /// Export the server's spans to an in-process collector and print, per RPC, each
    /// span's duration percentiles (tracing every request costs some of its own).
    #[arg(long)]
    spans: bool,
}

pub fn run(
    root: &Path,
    servers: &Servers,
    runtime: &tokio::runtime::Runtime,
    args: &AuthArgs,
) -> anyhow::Result<()> {
    let mut env = vec![
        ("NATTER_REDIS_URL", servers.redis_url.clone()),
        (
            "NATTER_AUTH_ARGON2_MEMORY_KIB",
            args.argon2_memory_kib.to_string(),
        ),
    ];
    let sink = match args.spans {
        true => Some(runtime.block_on(SpanSink::start())?),
        false => None,
    };
    env.extend(sink.iter().flat_map(SpanSink::env));
    let server = Natter::start(root, servers, "auth", &env)?;
    runtime.block_on(drive(server.url(), args, sink.as_ref()))
}

/// With a sink, what the server's spans say about the run just reported.
async fn breakdown(sink: Option<&SpanSink>) {
    if let Some(sink) = sink {
        print_breakdown(&sink.take().await);
    }
}

async fn drive(url: String, args: &AuthArgs, sink: Option<&SpanSink>) -> anyhow::Result<()> {
    let channel = Channel::from_shared(url)?.connect().await?;
    let client = AuthServiceClient::new(channel);
    let sessions = setup_sessions(&client, args.concurrency).await?;
    let access = sessions[0].access_token.clone();
    if let Some(sink) = sink {
        sink.take().await; // the set-up's spans
    }
    let refresh_pool = Arc::new(Mutex::new(
        sessions
            .iter()
            .map(|s| s.refresh_token.clone())
            .collect::<Vec<_>>(),
    ));
    let wants = |name: &str| args.only.iter().any(|o| o == name);
    let rate = f64::from(args.rate);
    let duration = Duration::from_secs(args.duration);
    println!(
        "auth over gRPC, {} s per RPC, at most {} in flight\n",
        args.duration, args.concurrency
    );
    println!("{}", Report::header());
    let jwks = {
        let client = client.clone();
        move || {
            let mut client = client.clone();
            async move { client.get_jwks(pb::GetJwksRequest {}).await.map(|_| ()) }
        }
    };
    let validate = {
        let client = client.clone();
        move || {
            let mut client = client.clone();
            let access_token = access.clone();
            async move {
                let request = pb::ValidateTokenRequest { access_token };
                client.validate_token(request).await.map(|_| ())
            }
        }
    };
    let refresh = {
        let client = client.clone();
        move || {
            let mut client = client.clone();
            let pool = refresh_pool.clone();
            async move {
                let refresh_token = pool.lock().await.pop().unwrap_or_default();
                let request = pb::RefreshTokenRequest {
                    refresh_token,
                    client: None,
                };
                let pair = client.refresh_token(request).await?.into_inner();
                pool.lock().await.push(pair.refresh_token);
                Ok(())
            }
        }
    };
    let login = move || {
        let mut client = client.clone();
        async move {
            let request = pb::LoginRequest {
                login: "bench0".into(),
                password: PASSWORD.into(),
                client: None,
            };
            client.login(request).await.map(|_| ())
        }
    };
    if wants("jwks") {
        let report = open_loop(rate, duration, args.concurrency, jwks).await;
        println!("{}", report.line("GetJwks", rate));
        breakdown(sink).await;
    }
    if wants("validate") {
        let report = open_loop(rate, duration, args.concurrency, validate.clone()).await;
        println!("{}", report.line("ValidateToken", rate));
        breakdown(sink).await;
    }
    if wants("refresh") {
        let report = open_loop(rate, duration, args.concurrency, refresh).await;
        println!("{}", report.line("RefreshToken", rate));
        breakdown(sink).await;
    }
    if wants("login") {
        let report = open_loop(rate, duration, args.concurrency, login.clone()).await;
        println!("{}", report.line("Login", rate));
        breakdown(sink).await;
        let gentle = f64::from(args.login_rate);
        let report = open_loop(gentle, duration, args.concurrency, login).await;
        println!("{}", report.line("Login", gentle));
        breakdown(sink).await;
    }
    if wants("max") {
        let max = closed_loop(duration, args.concurrency, validate.clone()).await;
        println!(
            "\nValidateToken, closed loop with {} callers: {:.0} requests/s; offered 80% of that:",
            args.concurrency, max.achieved
        );
        let sustained = max.achieved * 0.8;
        let report = open_loop(sustained, duration, args.concurrency, validate).await;
        println!("{}", report.line("ValidateToken", sustained));
    }
    Ok(())
}

pub(super) const PASSWORD: &str = "bench-password-1";

pub(super) async fn setup_sessions(
    client: &AuthServiceClient<Channel>,
    count: usize,
) -> anyhow::Result<Vec<pb::TokenPair>> {
    let mut sessions = Vec::with_capacity(count);
    for i in 0..count.max(1) {
        let mut client = client.clone();
        let username = format!("bench{}", i % 8);
        if i < 8 {
            let request = pb::RegisterRequest {
                username: username.clone(),
                password: PASSWORD.into(),
                email: None,
                ..Default::default()
            };
            let _ = client.register(request).await;
        }
        let request = pb::LoginRequest {
            login: username,
            password: PASSWORD.into(),
            client: None,
        };
        sessions.push(client.login(request).await?.into_inner());
    }
    Ok(sessions)
}

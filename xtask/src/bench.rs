//! `cargo xtask bench auth`: drives the real `natter auth` process over gRPC at a fixed
//! rate against throwaway PostgreSQL and Redis and prints latency percentiles per RPC.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use natter_proto::auth::v1 as pb;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use tokio::sync::{Mutex, Semaphore};
use tonic::transport::Channel;

use crate::servers::Servers;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// The auth service: ValidateToken, RefreshToken and Login at a fixed rate each, then
    /// the highest sustainable ValidateToken rate.
    Auth(AuthArgs),
}

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
}

pub fn run(root: &Path, bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Auth(args) => auth(root, args),
    }
}

fn auth(root: &Path, args: AuthArgs) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--package",
            "natter",
            "--package",
            "xtask",
        ])
        .status()?;
    if !status.success() {
        bail!("building natter and xtask failed");
    }
    if cfg!(debug_assertions) {
        // The load generator must not be the bottleneck: run the optimised build of
        // this same command.
        let status = Command::new(root.join("target/release/xtask"))
            .args(std::env::args_os().skip(1))
            .status()
            .context("running the optimised xtask")?;
        if !status.success() {
            bail!("benchmark failed");
        }
        return Ok(());
    }
    let servers = Servers::from_env_or_start()?;
    let server = AuthProcess::start(root, &servers, &args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(drive(server.grpc_url(), &args));
    drop(server);
    result
}

struct AuthProcess {
    child: Child,
    grpc_port: u16,
    _data: tempfile::TempDir,
}

impl AuthProcess {
    fn start(root: &Path, servers: &Servers, args: &AuthArgs) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let grpc_port = free_port()?;
        let binary = root.join("target/release/natter");
        let configure = |command: &mut Command| {
            command
                .env("NATTER_DATABASE_URL", &servers.database_url)
                .env("NATTER_REDIS_URL", &servers.redis_url)
                .env("NATTER_DATA_DIR", data.path())
                .env("NATTER_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
                .env("NATTER_HTTP_ADDR", "127.0.0.1:0")
                .env("NATTER_AUTH_LOGIN_LIMIT_PER_IP", "1000000")
                .env("NATTER_AUTH_LOGIN_LIMIT_PER_USERNAME", "1000000")
                .env(
                    "NATTER_AUTH_ARGON2_MEMORY_KIB",
                    args.argon2_memory_kib.to_string(),
                )
                .env("RUST_LOG", "warn");
        };
        let mut migrate = Command::new(&binary);
        migrate.arg("migrate");
        configure(&mut migrate);
        if !migrate.status()?.success() {
            bail!("natter migrate failed");
        }
        let mut serve = Command::new(&binary);
        serve.arg("auth").stdout(Stdio::null());
        configure(&mut serve);
        let child = serve.spawn().context("starting natter auth")?;
        let process = Self {
            child,
            grpc_port,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_err() {
            if Instant::now() > deadline {
                bail!("natter auth did not start listening");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(process)
    }

    fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }
}

impl Drop for AuthProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn drive(url: String, args: &AuthArgs) -> anyhow::Result<()> {
    let channel = Channel::from_shared(url)?.connect().await?;
    let client = AuthServiceClient::new(channel);
    let sessions = setup_sessions(&client, args.concurrency).await?;
    let access = sessions[0].access_token.clone();
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
    }
    if wants("validate") {
        let report = open_loop(rate, duration, args.concurrency, validate.clone()).await;
        println!("{}", report.line("ValidateToken", rate));
    }
    if wants("refresh") {
        let report = open_loop(rate, duration, args.concurrency, refresh).await;
        println!("{}", report.line("RefreshToken", rate));
    }
    if wants("login") {
        let report = open_loop(rate, duration, args.concurrency, login.clone()).await;
        println!("{}", report.line("Login", rate));
        let gentle = f64::from(args.login_rate);
        let report = open_loop(gentle, duration, args.concurrency, login).await;
        println!("{}", report.line("Login", gentle));
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

const PASSWORD: &str = "bench-password-1";

async fn setup_sessions(
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

/// Latencies of one run.
struct Report {
    latencies: Vec<Duration>,
    errors: usize,
    missed: usize,
    achieved: f64,
}

impl Report {
    fn header() -> String {
        format!(
            "{:<14} {:>9} {:>10} {:>7} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "rpc", "target/s", "achieved/s", "ok", "errors", "missed", "p50", "p90", "p99", "max"
        )
    }

    fn line(&self, name: &str, target: f64) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| -> String {
            if sorted.is_empty() {
                return "-".into();
            }
            let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            format!("{:.3}ms", sorted[index].as_secs_f64() * 1000.0)
        };
        format!(
            "{:<14} {:>9.0} {:>10.1} {:>7} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}",
            name,
            target,
            self.achieved,
            sorted.len(),
            self.errors,
            self.missed,
            at(0.50),
            at(0.90),
            at(0.99),
            at(1.0)
        )
    }
}

/// Offers `rate` requests per second for `duration`, each on its own task, whatever the
/// latency of earlier ones (so queueing shows in the percentiles).
async fn open_loop<F, Fut>(rate: f64, duration: Duration, concurrency: usize, call: F) -> Report
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut missed = 0;
    while started.elapsed() < duration {
        ticker.tick().await;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            missed += 1;
            continue;
        };
        let request = call();
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            let outcome = request.await;
            drop(permit);
            (begun.elapsed(), outcome.is_ok())
        }));
    }
    collect(tasks, started, missed).await
}

/// `callers` loops issuing requests back to back for `duration`: the throughput ceiling.
async fn closed_loop<F, Fut>(duration: Duration, callers: usize, call: F) -> Report
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let started = Instant::now();
    let workers: Vec<_> = (0..callers)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while started.elapsed() < duration {
                    let begun = Instant::now();
                    let ok = call().await.is_ok();
                    seen.push((begun.elapsed(), ok));
                }
                seen
            })
        })
        .collect();
    let mut report = Report {
        latencies: Vec::new(),
        errors: 0,
        missed: 0,
        achieved: 0.0,
    };
    for worker in workers {
        for (latency, ok) in worker.await.unwrap_or_default() {
            report.add(latency, ok);
        }
    }
    report.achieved = report.latencies.len() as f64 / started.elapsed().as_secs_f64();
    report
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(Duration, bool)>>,
    started: Instant,
    missed: usize,
) -> Report {
    let mut report = Report {
        latencies: Vec::with_capacity(tasks.len()),
        errors: 0,
        missed,
        achieved: 0.0,
    };
    for task in tasks {
        if let Ok((latency, ok)) = task.await {
            report.add(latency, ok);
        }
    }
    report.achieved = report.latencies.len() as f64 / started.elapsed().as_secs_f64();
    report
}

impl Report {
    fn add(&mut self, latency: Duration, ok: bool) {
        if ok {
            self.latencies.push(latency);
        } else {
            self.errors += 1;
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

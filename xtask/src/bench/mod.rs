//! `cargo xtask bench …`: benchmarks that run the release binary as a real process
//! against throwaway PostgreSQL and Redis, drive it over gRPC from an optimised load
//! generator, and print latency percentiles.

mod auth;
mod bare;
mod bursts;
mod chat;
mod fanout;
mod history;
mod load;
mod notify;
mod people;
mod rounds;
mod spans;
mod swarm;
mod usage;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::servers::Servers;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// The auth service: ValidateToken, RefreshToken and Login at a fixed rate each, then
    /// the highest sustainable ValidateToken rate.
    Auth(auth::AuthArgs),
    /// WebSocket delivery: rooms of distinct users with several senders, at rising rates,
    /// then one room of everyone; a bare broadcast server, Natter on SQLite and on
    /// PostgreSQL+Redis in the same run, printed as ratios.
    Chat(chat::ChatArgs),
    /// Chat replicas in cluster mode (PostgreSQL, Redis): broker messages received and
    /// CPU per delivered message per replica, with 1, 2 and 4 replicas.
    Fanout(fanout::FanoutArgs),
    /// The bare broadcast server `bench chat` compares against (run by it).
    #[command(hide = true)]
    BareServer {
        /// Address to listen on.
        #[arg(long)]
        addr: String,
    },
    /// History pages in a room of 1,000,000 messages and room search over 100,000 rooms,
    /// through the website's gRPC API on PostgreSQL.
    History(history::HistoryArgs),
    /// Who is due a notification, per message, in one room of 10,000 distinct members
    /// (plain, a mention, @room), beside the send, on SQLite and PostgreSQL.
    Notify(notify::NotifyArgs),
}

pub fn run(root: &Path, bench: Bench) -> anyhow::Result<()> {
    if let Bench::BareServer { addr } = &bench {
        return bare::serve(addr);
    }
    if rerun_optimised(root)? {
        return Ok(());
    }
    let _alone = exclusive(root)?;
    let servers = Servers::from_env_or_start()?;
    let runtime = tokio::runtime::Runtime::new()?;
    match bench {
        Bench::Auth(args) => auth::run(root, &servers, &runtime, &args),
        Bench::History(args) => history::run(root, &servers, &runtime, &args),
        Bench::Chat(args) => chat::run(root, &servers, &runtime, &args),
        Bench::Fanout(args) => fanout::run(root, &servers, &runtime, &args),
        Bench::Notify(args) => notify::run(&servers, &runtime, &args),
        Bench::BareServer { .. } => unreachable!("served above"),
    }
}

/// A lock held while a benchmark runs: two at once share the two cores and silently spoil
/// each other's figures (seen: the bare server's connect storm took 12 s instead of 0.9).
fn exclusive(root: &Path) -> anyhow::Result<std::fs::File> {
    let path = root.join("target/bench.lock");
    let file = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!(
                "another benchmark is running ({} is locked)",
                path.display()
            )
        }
        Err(std::fs::TryLockError::Error(error)) => Err(error.into()),
    }
}

/// Builds the release binaries; from a debug xtask, re-runs this command with the
/// optimised one (a debug-build load generator was the bottleneck: 1.2 cores for 9k
/// requests/s) and returns true.
fn rerun_optimised(root: &Path) -> anyhow::Result<bool> {
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
    if !cfg!(debug_assertions) {
        return Ok(false);
    }
    let status = Command::new(root.join("target/release/xtask"))
        .args(std::env::args_os().skip(1))
        .status()
        .context("running the optimised xtask")?;
    if !status.success() {
        bail!("benchmark failed");
    }
    Ok(true)
}

/// A `natter` subcommand running as a process, killed when dropped.
struct Natter {
    child: Child,
    port: u16,
    http_port: u16,
    _data: tempfile::TempDir,
}

impl Natter {
    /// Runs `natter migrate`, then `natter <subcommand>` with `env`, and waits until its
    /// gRPC port (or, in standalone mode, its only port) accepts connections.
    fn start(
        root: &Path,
        servers: &Servers,
        subcommand: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let port = free_port()?;
        let http_port = match subcommand {
            "standalone" => port,
            _ => free_port()?,
        };
        // NATTER_BENCH_BINARY runs another build (e.g. an older commit's) against the
        // same load, to compare builds on this noisy machine run by run.
        let binary = std::env::var_os("NATTER_BENCH_BINARY")
            .map_or_else(|| root.join("target/release/natter"), PathBuf::from);
        let configure = |command: &mut Command| {
            command
                .env("NATTER_DATABASE_URL", &servers.database_url)
                .env("NATTER_DATA_DIR", data.path())
                .env("NATTER_GRPC_ADDR", format!("127.0.0.1:{port}"))
                .env("NATTER_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
                .env("NATTER_AUTH_LOGIN_LIMIT_PER_IP", "1000000")
                .env("NATTER_AUTH_LOGIN_LIMIT_PER_USERNAME", "1000000")
                .env("RUST_LOG", "warn")
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        };
        let mut migrate = Command::new(&binary);
        migrate.arg("migrate");
        configure(&mut migrate);
        if !migrate.status()?.success() {
            bail!("natter migrate failed");
        }
        let mut serve = Command::new(&binary);
        serve.arg(subcommand).stdout(Stdio::null());
        configure(&mut serve);
        let child = serve
            .spawn()
            .with_context(|| format!("starting natter {subcommand}"))?;
        let process = Self {
            child,
            port,
            http_port,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("natter {subcommand} did not start listening");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(process)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its HTTP (and WebSocket) address.
    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

impl Drop for Natter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server under benchmark: Natter, or the bare reference server.
enum Process {
    Natter(Natter),
    Bare { child: Child, port: u16 },
}

impl Process {
    /// Starts the bare broadcast server (this optimised xtask, as its own process).
    fn bare_server(root: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new(root.join("target/release/xtask"))
            .args([
                "bench",
                "bare-server",
                "--addr",
                &format!("127.0.0.1:{port}"),
            ])
            .spawn()
            .context("starting the bare server")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("the bare server did not start listening");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self::Bare { child, port })
    }

    fn pid(&self) -> u32 {
        match self {
            Self::Natter(natter) => natter.pid(),
            Self::Bare { child, .. } => child.id(),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Natter(natter) => natter.url(),
            Self::Bare { port, .. } => format!("http://127.0.0.1:{port}"),
        }
    }

    fn rss_kib(&self) -> u64 {
        usage::rss_kib(self.pid())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Self::Bare { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A number that differs between runs (names of users and rooms in a reused database).
fn unique() -> u32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32)
}

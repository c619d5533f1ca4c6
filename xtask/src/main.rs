//! `cargo xtask`: the project's development tasks (test, check, gen, bench), in Rust
//! rather than shell scripts.

mod bench;
mod chart;
mod e2e;
mod generated;
mod servers;
mod tools;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Natter development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run every test of the workspace against real PostgreSQL, Redis and OpenBao
    /// (throwaway servers are started unless DATABASE_URL, REDIS_URL and VAULT_ADDR with
    /// VAULT_TOKEN are set). Extra arguments go
    /// to `cargo test`.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// rustfmt, clippy with -D warnings, and generated files in sync.
    Check,
    /// Regenerate generated files (docs/configuration.md, the CRD, manifests/install.yaml);
    /// `--check` only compares.
    Gen {
        #[arg(long)]
        check: bool,
    },
    /// helm lint/template, Kubernetes schema validation of the rendered chart and of
    /// manifests/, and the ChatCluster examples against the CRD (also run by `test`).
    Chart,
    /// Run the operator's end-to-end check against the cluster in KUBECONFIG (not in CI).
    E2e {
        /// Image tag the ChatCluster runs (the image must be pullable by the cluster).
        #[arg(long, default_value = "0.1.0")]
        tag: String,
        /// Image repository.
        #[arg(long, default_value = "ghcr.io/natter-chat/natter")]
        repository: String,
    },
    /// Take the web UI's screenshots (light and dark, phone and desktop, Russian) with
    /// the browser tests and copy them into docs/screenshots for docs/frontend.md.
    Screenshots,
    /// Benchmarks; see `cargo xtask bench auth --help`.
    Bench {
        #[command(subcommand)]
        bench: bench::Bench,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.task {
        Task::Test { args } => test(&root, &args),
        Task::Check => check(&root),
        Task::Gen { check } => generated::run(&root, check),
        Task::Chart => chart::check(&root),
        Task::E2e { tag, repository } => e2e::run(&root, &repository, &tag),
        Task::Screenshots => screenshots(&root),
        Task::Bench { bench } => bench::run(&root, bench),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

fn test(root: &Path, args: &[String]) -> anyhow::Result<()> {
    servers::ensure_browser();
    servers::ensure_schemathesis();
    let axe = servers::ensure_axe(root);
    let servers = servers::Servers::from_env_or_start()?;
    eprintln!("xtask: DATABASE_URL={}", servers.database_url);
    eprintln!("xtask: REDIS_URL={}", servers.redis_url);
    eprintln!("xtask: VAULT_ADDR={}", servers.vault.0);
    let mut cargo = Command::new(cargo_bin());
    cargo
        .current_dir(root)
        .args(["test", "--workspace"])
        .args(args)
        .env("DATABASE_URL", &servers.database_url)
        .env("REDIS_URL", &servers.redis_url)
        .env("VAULT_ADDR", &servers.vault.0)
        .env("VAULT_TOKEN", &servers.vault.1)
        .env("NATTER_AXE_JS", &axe)
        .stdout(Stdio::piped());
    let mut child = cargo.spawn().context("running cargo test")?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut totals = TestTotals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        totals.add(&line);
    }
    let status = child.wait()?;
    println!(
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    if totals.passed == 0 {
        bail!("no test ran");
    }
    eprintln!("xtask: checking the chart and manifests");
    chart::check(root)
}

/// The browser tests' screenshots shown in docs/frontend.md.
const SCREENSHOTS: [&str; 5] = [
    "shell.png",
    "desktop-light.png",
    "desktop-dark-ru.png",
    "phone-light.png",
    "phone-dark.png",
];

fn screenshots(root: &Path) -> anyhow::Result<()> {
    servers::ensure_browser();
    let axe = servers::ensure_axe(root);
    let servers = servers::Servers::from_env_or_start()?;
    run(Command::new(cargo_bin())
        .current_dir(root)
        .args(["test", "-p", "natter", "--test", "browser", "--", "shell::"])
        .env("DATABASE_URL", &servers.database_url)
        .env("REDIS_URL", &servers.redis_url)
        .env("NATTER_AXE_JS", &axe))?;
    let docs = root.join("docs/screenshots");
    std::fs::create_dir_all(&docs)?;
    for name in SCREENSHOTS {
        let taken = root.join("target/tmp/browser").join(name);
        std::fs::copy(&taken, docs.join(name)).with_context(|| format!("{}", taken.display()))?;
        println!("docs/screenshots/{name}");
    }
    Ok(())
}

/// Sums the `test result:` lines of every test binary.
#[derive(Debug, Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

fn check(root: &Path) -> anyhow::Result<()> {
    run(Command::new(cargo_bin())
        .current_dir(root)
        .args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(cargo_bin()).current_dir(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    generated::run(root, true)
}

pub(crate) fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub(crate) fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

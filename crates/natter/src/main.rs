//! The `natter` binary: parses the command line, loads config, starts telemetry and runs
//! standalone mode (the default) or one service.

mod admin;
mod grpc;
mod parts;
mod secrets;
mod services;
mod standalone;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use natter_core::config::Config;

/// Natter: a real-time chat suite.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file; environment variables override it (see docs/configuration.md).
    #[arg(long, global = true, env = "NATTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every service in one process on one port, SQLite and in-memory state (default).
    Standalone,
    /// The auth service alone: gRPC and HTTP against PostgreSQL and Redis.
    Auth,
    /// The chat service alone: WebSocket delivery at /ws against PostgreSQL and Redis.
    Chat,
    /// The website service alone (rooms, members, history, profiles; JSON API and gRPC),
    /// verifying tokens with the auth service's published keys.
    Website,
    /// The web frontend alone (server-rendered pages), talking gRPC to auth and website.
    Frontend,
    /// Apply database migrations and exit.
    Migrate,
    /// Rotate the JWT signing key (or, with --cookie, the cookie key; with --vapid, the
    /// Web Push key) in the configured secret source; running processes pick up signing
    /// and cookie keys without a restart, the Web Push key at their next start.
    RotateKeys {
        /// Rotate the cookie encryption key instead of the signing key.
        #[arg(long, conflicts_with = "vapid")]
        cookie: bool,
        /// Replace the Web Push (VAPID) key: browsers subscribe again on their next visit.
        #[arg(long)]
        vapid: bool,
    },
    /// Vault administration.
    #[command(subcommand)]
    Vault(admin::VaultCommand),
    /// Print the configuration reference (Markdown).
    ConfigDocs,
    /// Print the ChatCluster CustomResourceDefinition (YAML).
    Crd,
    /// Print every object the operator would apply for a ChatCluster file (YAML), without
    /// a cluster. Secrets in the output are freshly generated examples.
    Render {
        /// A ChatCluster manifest.
        file: PathBuf,
        /// Namespace to render into when the manifest names none.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// Run the ChatCluster operator (in a cluster, or against KUBECONFIG): leader election
    /// through a Lease in $POD_NAMESPACE, /metrics and /healthz on http.addr.
    Operator,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), |name| std::env::var(name).ok())
        .context("loading configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command.unwrap_or(Command::Standalone), config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let service = match command {
        Command::Standalone => "natter",
        Command::Auth => "natter-auth",
        Command::Website => "natter-website",
        Command::Chat => "natter-chat",
        Command::Frontend => "natter-frontend",
        Command::Migrate => "natter-migrate",
        Command::Operator => "natter-operator",
        Command::RotateKeys { .. }
        | Command::Vault(_)
        | Command::ConfigDocs
        | Command::Crd
        | Command::Render { .. } => "natter-cli",
    };
    let _telemetry = natter_core::telemetry::init(&config.telemetry, service)?;
    match command {
        Command::Standalone => standalone::run(config).await,
        Command::Auth => services::auth(config).await,
        Command::Website => services::website(config).await,
        Command::Chat => services::chat(config).await,
        Command::Frontend => services::frontend(config).await,
        Command::Migrate => services::migrate(config).await,
        Command::RotateKeys { cookie, vapid } => admin::rotate_keys(&config, cookie, vapid).await,
        Command::Vault(command) => admin::vault(&config, command).await,
        Command::ConfigDocs => {
            print!("{}", natter_core::config::reference_markdown());
            Ok(())
        }
        Command::Crd => {
            print!("{}", natter_operator::crd_yaml());
            Ok(())
        }
        Command::Render { file, namespace } => {
            print!("{}", natter_operator::render_file(&file, &namespace)?);
            Ok(())
        }
        Command::Operator => {
            let env = |name: &str, fallback: &str| {
                std::env::var(name).unwrap_or_else(|_| fallback.into())
            };
            natter_operator::run::run(natter_operator::run::Settings {
                http_addr: config.http_addr,
                namespace: env("POD_NAMESPACE", "default"),
                identity: env("POD_NAME", &env("HOSTNAME", "natter-operator")),
                watch_namespaces: config.operator_watch_namespaces.clone(),
            })
            .await
        }
    }
}

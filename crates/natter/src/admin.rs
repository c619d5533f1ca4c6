//! Administrative subcommands: key rotation in the configured secret source, and writing a
//! fresh set of secrets to Vault for a new installation.

use anyhow::Context;
use clap::Subcommand;
use natter_core::config::Config;
use natter_core::secret::Secret;
use natter_core::secrets::{
    ConnectionSecret, rotate_cookie_key, rotate_signing_key, rotate_vapid_key,
};
use natter_core::vault::{VaultSource, bootstrap};

/// `natter vault …`.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Write a fresh, valid set of secrets (new JWT signing key, new cookie key, and the
    /// given database and Redis connections) under vault.kv_mount/vault.kv_path.
    Bootstrap {
        /// Full database URL to store (postgres://user:password@host/db).
        #[arg(
            long,
            env = "NATTER_BOOTSTRAP_DATABASE_URL",
            conflicts_with = "database_password"
        )]
        database_url: Option<String>,
        /// Database user name to store beside the password (the URL then comes from config).
        #[arg(long, requires = "database_password")]
        database_username: Option<String>,
        /// Database password to store (read from the environment to keep it out of shell
        /// history).
        #[arg(
            long,
            env = "NATTER_BOOTSTRAP_DATABASE_PASSWORD",
            hide_env_values = true
        )]
        database_password: Option<String>,
        /// Full Redis URL to store.
        #[arg(long, env = "NATTER_BOOTSTRAP_REDIS_URL", hide_env_values = true)]
        redis_url: Option<String>,
        /// Overwrite secrets that already exist (tokens and sessions signed with the old
        /// keys stop working).
        #[arg(long)]
        force: bool,
    },
}

/// `natter rotate-keys [--cookie | --vapid]`.
pub async fn rotate_keys(config: &Config, cookie: bool, vapid: bool) -> anyhow::Result<()> {
    let source = natter_core::secrets::open(config, |name| std::env::var(name).ok())
        .await
        .context("opening the secret source")?;
    if vapid {
        rotate_vapid_key(source.as_ref())
            .await
            .context("replacing the Web Push key")?;
        println!("new Web Push key stored; restart the website service to send with it");
        return Ok(());
    }
    if cookie {
        // Sessions last as long as their refresh token: keep the old key that long.
        let grace = i64::try_from(config.auth.refresh_ttl_secs).unwrap_or(i64::MAX);
        rotate_cookie_key(source.as_ref(), grace)
            .await
            .context("rotating the cookie key")?;
        println!("new cookie key is active; the previous one opens cookies for {grace} s");
        return Ok(());
    }
    // Retired keys keep verifying for a day, far beyond any access-token lifetime.
    let keep = i64::try_from(config.auth.access_ttl_secs)
        .unwrap_or(i64::MAX)
        .max(86_400);
    let secrets = rotate_signing_key(source.as_ref(), keep)
        .await
        .context("rotating the signing key")?;
    println!("new signing key {} is active", secrets.jwt_keys.active_kid);
    Ok(())
}

/// `natter vault …`.
pub async fn vault(config: &Config, command: VaultCommand) -> anyhow::Result<()> {
    match command {
        VaultCommand::Bootstrap {
            database_url,
            database_username,
            database_password,
            redis_url,
            force,
        } => {
            let database = match (database_url, database_password) {
                (Some(url), _) => Some(ConnectionSecret::url(url)),
                (None, Some(password)) => Some(ConnectionSecret {
                    url: None,
                    username: database_username,
                    password: Some(Secret::new(password)),
                }),
                (None, None) => None,
            };
            let redis = redis_url.map(ConnectionSecret::url);
            let source = VaultSource::connect(&config.vault)
                .await
                .context("connecting to Vault")?;
            let secrets = bootstrap(&source, database, redis, force)
                .await
                .context("writing secrets")?;
            let base = format!("{}/{}", config.vault.kv_mount, config.vault.kv_path);
            println!(
                "wrote {base}/jwt (active kid {}) and {base}/cookie{}{}",
                secrets.jwt_keys.active_kid,
                if secrets.database.is_some() {
                    format!(", {base}/database")
                } else {
                    String::new()
                },
                if secrets.redis.is_some() {
                    format!(", {base}/redis")
                } else {
                    String::new()
                },
            );
            Ok(())
        }
    }
}

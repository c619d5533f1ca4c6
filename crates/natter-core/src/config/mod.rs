//! Typed configuration: defaults, then a TOML file, then environment variables, every key
//! documented in [`KEYS`]; a bad value is an error naming its key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

mod keys;

pub use keys::KEYS;

/// Everything a Natter process can be told. Built by [`Config::load`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server (JSON API, health, metrics) listens.
    pub http_addr: SocketAddr,
    /// Where the gRPC server listens in service mode.
    pub grpc_addr: SocketAddr,
    /// Standalone data directory: SQLite file and generated secrets.
    pub data_dir: PathBuf,
    /// Database connection settings.
    pub database: DatabaseConfig,
    /// Redis connection; `None` in standalone mode uses in-memory state.
    pub redis_url: Option<Secret<String>>,
    /// Bound on one Redis call (connecting, or waiting for an answer), in milliseconds.
    pub redis_timeout_ms: u64,
    /// Which secret source to read keys from.
    pub secrets_source: SecretSourceKind,
    /// How often secrets are re-read to pick up rotations, in seconds.
    pub secrets_poll_secs: u64,
    /// Vault connection, used when `secrets_source` is `Vault`.
    pub vault: VaultConfig,
    /// Whether `X-Forwarded-For` from the ingress names the client address.
    pub trust_forwarded_for: bool,
    /// Namespaces whose ChatClusters the operator manages; empty: every namespace.
    pub operator_watch_namespaces: Vec<String>,
    /// Token issuance and login policy.
    pub auth: AuthConfig,
    /// Writes allowed per user per window on the website API (rooms, members, messages).
    pub website_write_limit: u32,
    /// Length of that window in seconds.
    pub website_write_window_secs: u64,
    /// Rooms with more members show no read receipts.
    pub receipts_max_members: u32,
    /// Whether Web Push is sent (when the secrets hold a VAPID key).
    pub push_enabled: bool,
    /// The contact push services are given (RFC 8292 `sub`).
    pub push_contact: String,
    /// Seconds a message may stay unread before it is pushed.
    pub push_delay_secs: u64,
    /// Email digests.
    pub email: EmailConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// The web frontend.
    pub frontend: FrontendConfig,
}

/// Email digests of unread mentions and direct messages (off unless enabled).
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// Whether digests are sent.
    pub enabled: bool,
    /// The SMTP server, e.g. `smtps://mail.example.com` (credentials may come from the
    /// secrets' `smtp` part instead of the URL).
    pub smtp_url: Option<Secret<String>>,
    /// The digests' From address.
    pub from: String,
    /// A mention or direct message still unread this long goes into a digest; a user
    /// gets at most one digest per this long.
    pub delay_secs: u64,
    /// The address users open Natter at, for the links in digests (default: the HTTP
    /// address).
    pub public_url: Option<String>,
}

/// Web frontend settings.
#[derive(Debug, Clone)]
pub struct FrontendConfig {
    /// Where the frontend reaches the website service's gRPC port.
    pub website_grpc_url: String,
    /// Mark cookies Secure (HTTPS only).
    pub secure_cookies: bool,
}

/// Database settings.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://…`; `None` means the SQLite file in the data dir.
    pub url: Option<Secret<String>>,
    /// Upper bound of pooled (reading) connections; `None`: the backend's own default
    /// ([`crate::store::Backend::default_connections`]).
    pub max_connections: Option<u32>,
    /// A pooled connection is closed after this many seconds, so rotated credentials take
    /// over; keep it below the credentials' lifetime.
    pub max_lifetime_secs: u64,
    /// Longest wait for a pooled connection before a request is answered as
    /// unavailable, in milliseconds.
    pub acquire_timeout_ms: u64,
}

/// Where Vault is and how to log in to it.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `https://vault.example:8200`.
    pub addr: Option<String>,
    /// How this process logs in.
    pub auth_method: VaultAuthMethod,
    /// Token for the `token` method (`VAULT_TOKEN`).
    pub token: Option<Secret<String>>,
    /// Mount of the kubernetes or jwt auth method; `None` means the method's name.
    pub auth_mount: Option<String>,
    /// Vault role to log in as (kubernetes and jwt methods).
    pub role: Option<String>,
    /// The service-account token presented at login.
    pub token_file: PathBuf,
    /// KV v2 mount holding Natter's secrets.
    pub kv_mount: String,
    /// Path under the mount: secrets are `<kv_path>/jwt`, `/cookie`, `/database`, `/redis`.
    pub kv_path: String,
    /// Where the database secret is instead of `<kv_path>/database`.
    pub database_path: Option<String>,
    /// Where the Redis secret is instead of `<kv_path>/redis`.
    pub redis_path: Option<String>,
    /// Where the SMTP secret is instead of `<kv_path>/smtp`.
    pub smtp_path: Option<String>,
    /// A role of the database secrets engine: database credentials are leased from it
    /// instead of read from the KV secret.
    pub database_role: Option<String>,
    /// Mount of the database secrets engine.
    pub database_mount: String,
    /// How long start-up retries an unreachable Vault before giving up, in seconds.
    pub start_deadline_secs: u64,
}

/// How a process authenticates to Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultAuthMethod {
    /// A token from `VAULT_TOKEN` (development).
    Token,
    /// The Kubernetes auth method with the pod's service-account token.
    Kubernetes,
    /// The JWT auth method with the service-account token (no TokenReview needed).
    Jwt,
}

impl VaultAuthMethod {
    /// The method's default mount path.
    pub fn default_mount(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Kubernetes => "kubernetes",
            Self::Jwt => "jwt",
        }
    }
}

/// Where secrets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSourceKind {
    /// `secrets.json` in the data dir, generated on first start with mode 0600.
    File,
    /// `NATTER_JWT_KEYS` and `NATTER_COOKIE_KEY` environment variables.
    Env,
    /// HashiCorp Vault (or OpenBao) KV v2, see [`VaultConfig`].
    Vault,
}

/// Token lifetimes, password hashing cost and login rate limits.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `iss` claim of access tokens.
    pub issuer: String,
    /// `aud` claim of access tokens.
    pub audience: String,
    /// Access token lifetime in seconds.
    pub access_ttl_secs: u64,
    /// Refresh token lifetime in seconds (each rotation starts a new one).
    pub refresh_ttl_secs: u64,
    /// Argon2id cost.
    pub argon2: Argon2Params,
    /// Login attempts allowed per client address per window.
    pub login_limit_per_ip: u32,
    /// Login attempts allowed per username per window.
    pub login_limit_per_username: u32,
    /// Length of the login rate-limit window in seconds.
    pub login_limit_window_secs: u64,
    /// Where other services reach the auth service's gRPC port (for its key set).
    pub grpc_url: String,
}

/// Argon2id parameters (RFC 9106 names: m, t, p).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// Logging and tracing.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Log line format.
    pub log_format: LogFormat,
    /// OTLP/gRPC collector endpoint; traces are exported only when set.
    pub otlp_endpoint: Option<String>,
    /// Fraction of root traces sampled (parent-based).
    pub sample_ratio: f64,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for terminals.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// One documented configuration key.
#[derive(Debug)]
pub struct Key {
    /// Dotted name used in the TOML file (`[auth] issuer = …` is `auth.issuer`).
    pub name: &'static str,
    /// Environment variable that overrides it.
    pub env: &'static str,
    /// What it does, for docs/configuration.md.
    pub doc: &'static str,
    set: fn(&mut Config, &str) -> Result<(), String>,
}

/// A configuration error; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be parsed.
    #[error("config key `{key}` (env {env}): {reason}")]
    Invalid {
        /// Dotted key name.
        key: &'static str,
        /// Environment variable name.
        env: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The file names a key that does not exist.
    #[error("config file {file}: unknown key `{key}`")]
    UnknownKey {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
    },
    /// The file could not be read or parsed.
    #[error("config file {file}: {reason}")]
    File {
        /// The file.
        file: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("natter-data"),
            database: DatabaseConfig {
                url: None,
                max_connections: None,
                max_lifetime_secs: 30 * 60,
                acquire_timeout_ms: 5000,
            },
            redis_url: None,
            redis_timeout_ms: 500,
            secrets_source: SecretSourceKind::File,
            secrets_poll_secs: 30,
            vault: VaultConfig {
                addr: None,
                auth_method: VaultAuthMethod::Token,
                token: None,
                auth_mount: None,
                role: None,
                token_file: PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"),
                kv_mount: "secret".into(),
                kv_path: "natter".into(),
                database_path: None,
                redis_path: None,
                smtp_path: None,
                database_role: None,
                database_mount: "database".into(),
                start_deadline_secs: 60,
            },
            website_write_limit: 120,
            website_write_window_secs: 60,
            receipts_max_members: 50,
            push_enabled: true,
            push_contact: "mailto:postmaster@localhost".into(),
            push_delay_secs: 15,
            email: EmailConfig {
                enabled: false,
                smtp_url: None,
                from: "Natter <natter@localhost>".into(),
                delay_secs: 3600,
                public_url: None,
            },
            trust_forwarded_for: false,
            operator_watch_namespaces: Vec::new(),
            auth: AuthConfig {
                issuer: "natter".into(),
                audience: "natter".into(),
                access_ttl_secs: 15 * 60,
                refresh_ttl_secs: 30 * 24 * 3600,
                argon2: Argon2Params::OWASP,
                login_limit_per_ip: 30,
                login_limit_per_username: 10,
                login_limit_window_secs: 60,
                grpc_url: "http://127.0.0.1:50051".into(),
            },
            frontend: FrontendConfig {
                website_grpc_url: "http://127.0.0.1:50051".into(),
                secure_cookies: false,
            },
            telemetry: TelemetryConfig {
                log_format: LogFormat::Pretty,
                otlp_endpoint: None,
                sample_ratio: 1.0,
            },
        }
    }
}

impl Argon2Params {
    /// OWASP's recommended minimum for argon2id: m = 19 MiB, t = 2, p = 1.
    pub const OWASP: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
}

impl Config {
    /// Defaults, then `file` (TOML) when given, then the environment as read by `env`.
    ///
    /// `env` is a seam: binaries pass `std::env::var`, tests pass a map.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(file) = file {
            for (name, value) in read_file(file)? {
                let key = KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
                    ConfigError::UnknownKey {
                        file: file.to_owned(),
                        key: name.clone(),
                    }
                })?;
                key.apply(&mut config, &value)?;
            }
        }
        for key in KEYS {
            if let Some(value) = env(key.env) {
                key.apply(&mut config, value.trim())?;
            }
        }
        Ok(config)
    }

    /// The database URL in effect: the configured one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("natter.db").display()
            ),
        }
    }
}

impl Key {
    /// Sets this key on `config` from its textual value.
    pub fn apply(&self, config: &mut Config, value: &str) -> Result<(), ConfigError> {
        (self.set)(config, value).map_err(|reason| ConfigError::Invalid {
            key: self.name,
            env: self.env,
            reason,
        })
    }
}

/// Renders docs/configuration.md from [`KEYS`].
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration\n\n<!-- generated by `cargo xtask gen`; do not edit -->\n\n\
         Every key can be set in a TOML file passed with `--config` (dotted names are \
         tables: `auth.issuer` is `issuer` under `[auth]`) and overridden by its \
         environment variable. A bad value stops the process with an error naming the key.\n\n\
         | key | environment | meaning |\n| --- | --- | --- |\n",
    );
    for key in KEYS {
        out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            key.name, key.env, key.doc
        ));
    }
    out
}

fn read_file(file: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let fail = |reason: String| ConfigError::File {
        file: file.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(e.to_string()))?;
    let mut flat = BTreeMap::new();
    flatten("", &table, &mut flat);
    Ok(flat)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (name, value) in table {
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&full, inner, out),
            toml::Value::String(text) => {
                out.insert(full, text.clone());
            }
            other => {
                out.insert(full, other.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let config = Config::load(None, env_of(&[])).unwrap();
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.auth.access_ttl_secs, 900);
        assert_eq!(config.auth.argon2, Argon2Params::OWASP);
        assert!(
            config
                .database_url()
                .starts_with("sqlite://natter-data/natter.db")
        );
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("natter.toml");
        std::fs::write(
            &file,
            "[http]\naddr = \"0.0.0.0:9000\"\n[auth]\naccess_ttl_secs = 60\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            env_of(&[("NATTER_AUTH_ACCESS_TTL_SECS", "120")]),
        )
        .unwrap();
        assert_eq!(config.http_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(config.auth.access_ttl_secs, 120);
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = Config::load(None, env_of(&[("NATTER_HTTP_ADDR", "nowhere")])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("http.addr"), "{message}");
        assert!(message.contains("NATTER_HTTP_ADDR"), "{message}");
        let err = Config::load(None, env_of(&[("NATTER_AUTH_ACCESS_TTL_SECS", "5")])).unwrap_err();
        assert!(err.to_string().contains("between 10 and 86400"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("natter.toml");
        std::fs::write(&file, "[auth]\nissuer_typo = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("auth.issuer_typo"), "{err}");
    }

    #[test]
    fn database_url_is_redacted_in_debug() {
        let config = Config::load(
            None,
            env_of(&[("NATTER_DATABASE_URL", "postgres://u:pw@db/natter")]),
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("pw@db"));
    }

    #[test]
    fn every_key_is_documented_once() {
        let mut names: Vec<_> = KEYS.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
        assert!(KEYS.iter().all(|k| !k.doc.is_empty()));
    }
}

//! Secret sources behind one interface — a generated local file (standalone), environment
//! variables, Vault KV v2 — plus loading at start with retries and watching for rotations.
//! Secrets never reach logs.

mod env;
mod file;
mod watch;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use env::{EnvReader, EnvSource};
pub use file::FileSource;
pub use watch::{load_at_start, watch};

use crate::config::{Config, SecretSourceKind};
use crate::cookie::CookieKeys;
use crate::push::VapidKey;
use crate::secret::Secret;
use crate::time::now_secs;
use crate::token::{KeyError, KeySet};

/// Every secret a Natter process may need.
///
/// File shape: `{"jwt_keys": KeySet, "cookie_keys": CookieKeys}`; Vault keeps each part
/// under its own path (docs/vault.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// JWT signing keys.
    pub jwt_keys: KeySet,
    /// Session cookie encryption keys.
    pub cookie_keys: CookieKeys,
    /// Database URL or credentials, when the source holds them (else the config's URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<ConnectionSecret>,
    /// Redis URL or password, when the source holds them (else the config's URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<ConnectionSecret>,
    /// The Web Push (VAPID) key, when the source holds one (without it, no pushes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapid: Option<VapidKey>,
    /// The SMTP server of email digests (`{"url": …}`, or credentials for
    /// `notify.smtp_url`), when the source holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<ConnectionSecret>,
}

/// How to reach a database or Redis: a whole URL, or credentials to put into the
/// configured URL. JSON: `{"url": "…"}` or `{"username": "…", "password": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSecret {
    /// A complete connection URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret<String>>,
    /// User name for the configured URL (Redis may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for the configured URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret<String>>,
}

/// A secret source failure; the message names the missing or bad secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A secret is not there.
    #[error("secret `{0}` is missing")]
    Missing(String),
    /// A secret is there but unusable, or may not be read.
    #[error("secret `{name}` is invalid: {reason}")]
    Invalid {
        /// The secret's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The source cannot be reached now; worth retrying.
    #[error("secret source unavailable: {0}")]
    Unavailable(String),
    /// The source cannot be written (environment variables).
    #[error("this secret source is read-only")]
    ReadOnly,
    /// The secrets file could not be read or written.
    #[error("secrets file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where secrets come from. Implementations: [`FileSource`], [`EnvSource`],
/// [`crate::vault::VaultSource`].
#[async_trait]
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    /// Reads the current secrets; called at start and again to pick up rotations.
    async fn load(&self) -> Result<Secrets, SecretsError>;

    /// Replaces the stored secrets (rotation, bootstrap).
    async fn store(&self, secrets: &Secrets) -> Result<(), SecretsError> {
        let _ = secrets;
        Err(SecretsError::ReadOnly)
    }

    /// Seconds until the source's own credential (a Vault token) expires; `None` when it
    /// has none or it never expires.
    fn token_ttl_secs(&self) -> Option<i64> {
        None
    }
}

/// The source `config` selects: the data dir's file, the environment through `env`, or
/// Vault (logging in, with retries until `vault.start_deadline_secs`).
pub async fn open(
    config: &Config,
    env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> Result<Box<dyn SecretSource>, SecretsError> {
    Ok(match config.secrets_source {
        SecretSourceKind::File => Box::new(FileSource::in_dir(&config.data_dir)),
        SecretSourceKind::Env => Box::new(EnvSource::new(env)),
        SecretSourceKind::Vault => {
            Box::new(crate::vault::VaultSource::connect(&config.vault).await?)
        }
    })
}

/// Rotates the JWT signing key in `source`: a new key signs, the previous ones verify for
/// `keep_retired_secs` more (at least the access-token lifetime).
pub async fn rotate_signing_key(
    source: &dyn SecretSource,
    keep_retired_secs: i64,
) -> Result<Secrets, SecretsError> {
    rotate(source, |s| s.jwt_keys.rotate(now_secs(), keep_retired_secs)).await
}

/// Replaces the Web Push (VAPID) key in `source`: browsers subscribed with the old one
/// stop receiving pushes until they subscribe again (the web UI does on its next visit).
pub async fn rotate_vapid_key(source: &dyn SecretSource) -> Result<Secrets, SecretsError> {
    rotate(source, |s| s.vapid = Some(VapidKey::generate())).await
}

/// Rotates the cookie key in `source`: cookies sealed with the old key still open for
/// `grace_secs`.
pub async fn rotate_cookie_key(
    source: &dyn SecretSource,
    grace_secs: i64,
) -> Result<Secrets, SecretsError> {
    rotate(source, |s| s.cookie_keys.rotate(now_secs(), grace_secs)).await
}

async fn rotate(
    source: &dyn SecretSource,
    change: impl FnOnce(&mut Secrets),
) -> Result<Secrets, SecretsError> {
    let mut secrets = source.load().await?;
    change(&mut secrets);
    source.store(&secrets).await?;
    Ok(secrets)
}

impl Secrets {
    /// A fresh set: one new signing key and a random cookie key.
    pub fn generate() -> Self {
        Self {
            jwt_keys: KeySet::generate(now_secs()),
            cookie_keys: CookieKeys::generate(),
            database: None,
            redis: None,
            vapid: Some(VapidKey::generate()),
            smtp: None,
        }
    }

    /// Checks every secret is usable.
    pub fn validate(&self) -> Result<(), SecretsError> {
        let invalid = |name: &str, reason: String| SecretsError::Invalid {
            name: name.into(),
            reason,
        };
        let bad_key = |e: KeyError| invalid("jwt_keys", e.to_string());
        self.jwt_keys.active().map_err(bad_key)?;
        for key in &self.jwt_keys.keys {
            key.encoding_key().map_err(bad_key)?;
        }
        self.cookie_keys
            .validate()
            .map_err(|e| invalid("cookie_keys", e.to_string()))?;
        let parts = [
            ("database", &self.database),
            ("redis", &self.redis),
            ("smtp", &self.smtp),
        ];
        for (name, secret) in parts {
            if let Some(secret) = secret {
                secret.validate().map_err(|reason| invalid(name, reason))?;
            }
        }
        if let Some(vapid) = &self.vapid {
            vapid
                .validate()
                .map_err(|e| invalid("vapid", e.to_string()))?;
        }
        Ok(())
    }

    /// `config` with the database, Redis and SMTP connections this source holds put in.
    pub fn apply_to(&self, config: &mut Config) -> Result<(), SecretsError> {
        if let Some(database) = &self.database {
            let url = database.resolve(config.database.url.as_ref(), "database.url")?;
            config.database.url = Some(url);
        }
        if let Some(redis) = &self.redis {
            let url = redis.resolve(config.redis_url.as_ref(), "redis.url")?;
            config.redis_url = Some(url);
        }
        if let Some(smtp) = &self.smtp {
            let url = smtp.resolve(config.email.smtp_url.as_ref(), "notify.smtp_url")?;
            config.email.smtp_url = Some(url);
        }
        Ok(())
    }
}

impl ConnectionSecret {
    /// A whole URL.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: Some(Secret::new(url.into())),
            username: None,
            password: None,
        }
    }

    fn validate(&self) -> Result<(), String> {
        match (&self.url, &self.password) {
            (Some(_), None) if self.username.is_none() => Ok(()),
            (None, Some(_)) => Ok(()),
            _ => Err("expected either `url` or `password` (with an optional `username`)".into()),
        }
    }

    /// The URL to connect with: ours, or `base` (from config key `key`) with our
    /// credentials in place of its own.
    pub fn resolve(
        &self,
        base: Option<&Secret<String>>,
        key: &str,
    ) -> Result<Secret<String>, SecretsError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let invalid = |reason: String| SecretsError::Invalid {
            name: key.into(),
            reason,
        };
        let base = base.ok_or_else(|| {
            invalid(
                "the secret holds credentials only; set this key to the URL without them".into(),
            )
        })?;
        let mut url =
            url::Url::parse(base.expose()).map_err(|e| invalid(format!("not a URL: {e}")))?;
        let user = self.username.as_deref().unwrap_or("");
        let password = self.password.as_ref().map(|p| p.expose().as_str());
        let unusable = |_| invalid("this URL cannot carry credentials".into());
        url.set_username(user).map_err(unusable)?;
        url.set_password(password).map_err(unusable)?;
        Ok(Secret::new(url.into()))
    }
}

/// How long to wait before retry `attempt` (0-based): 200 ms doubling up to 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_into_the_configured_url() {
        let secret = ConnectionSecret {
            url: None,
            username: Some("natter_v2".into()),
            password: Some(Secret::new("p@ss/word".into())),
        };
        let base = Secret::new("postgres://db.example:5432/natter".to_string());
        let url = secret.resolve(Some(&base), "database.url").unwrap();
        assert_eq!(
            url.expose(),
            "postgres://natter_v2:p%40ss%2Fword@db.example:5432/natter"
        );
        let err = secret.resolve(None, "database.url").unwrap_err();
        assert!(err.to_string().contains("database.url"), "{err}");
    }

    #[test]
    fn a_connection_secret_needs_a_url_or_a_password() {
        let both = ConnectionSecret {
            password: Some(Secret::new("x".into())),
            ..ConnectionSecret::url("redis://r")
        };
        assert!(both.validate().is_err());
        assert!(ConnectionSecret::url("redis://r").validate().is_ok());
    }

    #[test]
    fn debug_output_hides_every_secret() {
        let mut secrets = Secrets::generate();
        secrets.database = Some(ConnectionSecret::url("postgres://u:hunter2@db/natter"));
        secrets.cookie_keys.rotate(0, 10);
        let debug = format!("{secrets:?}");
        assert!(!debug.contains(secrets.cookie_keys.current.expose().as_str()));
        let previous = secrets.cookie_keys.previous.as_ref().unwrap();
        assert!(!debug.contains(previous.expose().as_str()));
        assert!(!debug.contains(secrets.jwt_keys.keys[0].private_key.expose().as_str()));
        assert!(!debug.contains("hunter2"));
    }
}

//! Natter's secrets in Vault KV v2: `<path>/jwt`, `<path>/cookie` (required),
//! `<path>/database`, `<path>/redis`, `<path>/vapid`, `<path>/smtp` (optional). Each poll reads only metadata versions and
//! fetches a secret's data only when its version changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::{DynamicCredentials, Vault};
use crate::config::VaultConfig;
use crate::secrets::{ConnectionSecret, SecretSource, Secrets, SecretsError};

/// Secrets read from Vault.
#[derive(Debug)]
pub struct VaultSource {
    vault: Arc<Vault>,
    mount: String,
    path: String,
    /// Parts kept elsewhere than `<path>/<part>` (database, redis, smtp).
    elsewhere: HashMap<&'static str, String>,
    /// Last seen version and data of each part.
    cache: Mutex<HashMap<&'static str, (u64, Value)>>,
    /// Secret data reads so far (metadata reads not counted).
    data_reads: AtomicU64,
    /// Database credentials leased from the database secrets engine instead of KV.
    dynamic: Option<DynamicCredentials>,
}

impl VaultSource {
    /// Logs in to Vault as `config` says (see [`Vault::connect`]).
    pub async fn connect(config: &VaultConfig) -> Result<Self, SecretsError> {
        let mut source = Self::new(
            Vault::connect(config).await?,
            &config.kv_mount,
            &config.kv_path,
        );
        for (part, path) in [
            ("database", &config.database_path),
            ("redis", &config.redis_path),
            ("smtp", &config.smtp_path),
        ] {
            if let Some(path) = path {
                source = source.with_part_at(part, path);
            }
        }
        if let Some(role) = &config.database_role {
            source =
                source.with_dynamic_database(DynamicCredentials::new(&config.database_mount, role));
        }
        Ok(source)
    }

    /// Secrets under `mount`/`path` through a logged-in client.
    pub fn new(vault: Arc<Vault>, mount: &str, path: &str) -> Self {
        Self {
            vault,
            mount: mount.into(),
            path: path.into(),
            elsewhere: HashMap::new(),
            cache: Mutex::new(HashMap::new()),
            data_reads: AtomicU64::new(0),
            dynamic: None,
        }
    }

    /// Leases the database credentials from `dynamic` instead of reading the KV secret.
    pub fn with_dynamic_database(mut self, dynamic: DynamicCredentials) -> Self {
        self.dynamic = Some(dynamic);
        self
    }

    /// The database part: leased credentials when configured, else the KV secret.
    async fn database(&self) -> Result<Option<Value>, SecretsError> {
        match &self.dynamic {
            Some(dynamic) => Ok(Some(json(&dynamic.current(&self.vault).await?))),
            None => self.part("database", false).await,
        }
    }

    /// How many secrets' data this source has read (each poll reads only versions).
    pub fn data_reads(&self) -> u64 {
        self.data_reads.load(Ordering::Relaxed)
    }

    /// The client, e.g. for its token lifetime.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// Reads `part` (`database`, `redis` or `smtp`) from `path` under the mount instead.
    pub fn with_part_at(mut self, part: &'static str, path: &str) -> Self {
        self.elsewhere.insert(part, path.trim_matches('/').into());
        self
    }

    fn path_of(&self, part: &str) -> String {
        match self.elsewhere.get(part) {
            Some(path) => path.clone(),
            None => format!("{}/{part}", self.path),
        }
    }

    fn name(&self, part: &str) -> String {
        format!("{}/{}", self.mount, self.path_of(part))
    }

    /// The current data of `part`, from the cache when its version has not moved.
    async fn part(
        &self,
        part: &'static str,
        required: bool,
    ) -> Result<Option<Value>, SecretsError> {
        let path = self.path_of(part);
        let Some(version) = self.vault.version(&self.mount, &path).await? else {
            return match required {
                true => Err(SecretsError::Missing(self.name(part))),
                false => Ok(None),
            };
        };
        if let Some((seen, value)) = self.cached(part)
            && seen == version
        {
            return Ok(Some(value));
        }
        self.data_reads.fetch_add(1, Ordering::Relaxed);
        let Some(value) = self.vault.read::<Value>(&self.mount, &path).await? else {
            return Err(SecretsError::Missing(self.name(part)));
        };
        self.lock().insert(part, (version, value.clone()));
        Ok(Some(value))
    }

    fn cached(&self, part: &str) -> Option<(u64, Value)> {
        self.lock().get(part).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, (u64, Value)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        part: &str,
        value: Value,
    ) -> Result<T, SecretsError> {
        serde_json::from_value(value).map_err(|e| SecretsError::Invalid {
            name: self.name(part),
            reason: format!("not the documented JSON shape (docs/vault.md): {e}"),
        })
    }

    /// Writes `value` as `part` unless it is what Vault already holds; `create_only`
    /// refuses to overwrite an existing secret.
    async fn put(
        &self,
        part: &'static str,
        value: Value,
        create_only: bool,
    ) -> Result<(), SecretsError> {
        let cached = self.cached(part);
        if cached.as_ref().is_some_and(|(_, seen)| *seen == value) {
            return Ok(());
        }
        let cas = match (create_only, &cached) {
            (true, _) => Some(0),
            (false, Some((version, _))) => Some(*version),
            (false, None) => None,
        };
        let path = self.path_of(part);
        let version = self
            .vault
            .write(&self.mount, &path, &value, cas)
            .await
            .map_err(|e| match e {
                SecretsError::Invalid { reason, .. } if reason.contains("check-and-set") => {
                    SecretsError::Invalid {
                        name: self.name(part),
                        reason: match create_only {
                            true => "already exists (pass --force to overwrite)".into(),
                            false => "changed by someone else meanwhile; try again".into(),
                        },
                    }
                }
                other => other,
            })?;
        self.lock().insert(part, (version, value));
        Ok(())
    }

    async fn put_all(&self, secrets: &Secrets, create_only: bool) -> Result<(), SecretsError> {
        secrets.validate()?;
        self.put("jwt", json(&secrets.jwt_keys), create_only)
            .await?;
        self.put("cookie", json(&secrets.cookie_keys), create_only)
            .await?;
        // Leased database credentials belong to their lease, not to KV.
        let database = match self.dynamic {
            Some(_) => &None,
            None => &secrets.database,
        };
        let parts = [
            ("database", database),
            ("redis", &secrets.redis),
            ("smtp", &secrets.smtp),
        ];
        for (part, secret) in parts {
            if let Some(secret) = secret {
                self.put(part, json(secret), create_only).await?;
            }
        }
        if let Some(vapid) = &secrets.vapid {
            self.put("vapid", json(vapid), create_only).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl SecretSource for VaultSource {
    fn token_ttl_secs(&self) -> Option<i64> {
        self.vault.token_ttl_secs()
    }

    async fn load(&self) -> Result<Secrets, SecretsError> {
        // All parts at once; errors reported in a fixed order so the first missing is named.
        let (jwt, cookie, database, redis, vapid, smtp) = tokio::join!(
            self.part("jwt", true),
            self.part("cookie", true),
            self.database(),
            self.part("redis", false),
            self.part("vapid", false),
            self.part("smtp", false),
        );
        let (jwt, cookie, database, redis) = (jwt?, cookie?, database?, redis?);
        let (vapid, smtp) = (vapid?, smtp?);
        let required =
            |part: &str, v: Option<Value>| v.ok_or_else(|| SecretsError::Missing(self.name(part)));
        let secrets = Secrets {
            jwt_keys: self.parse("jwt", required("jwt", jwt)?)?,
            cookie_keys: self.parse("cookie", required("cookie", cookie)?)?,
            database: database.map(|v| self.parse("database", v)).transpose()?,
            redis: redis.map(|v| self.parse("redis", v)).transpose()?,
            vapid: vapid.map(|v| self.parse("vapid", v)).transpose()?,
            smtp: smtp.map(|v| self.parse("smtp", v)).transpose()?,
        };
        secrets.validate().map_err(|e| match e {
            SecretsError::Invalid { name, reason } => SecretsError::Invalid {
                name: format!("{} ({name})", self.name("")),
                reason,
            },
            other => other,
        })?;
        Ok(secrets)
    }

    async fn store(&self, secrets: &Secrets) -> Result<(), SecretsError> {
        self.put_all(secrets, false).await
    }
}

/// Writes a fresh, valid set of secrets (new JWT key, new cookie key, and the given
/// database and Redis connections) to `source`'s path. Without `force` an existing secret
/// is left alone and reported.
pub async fn bootstrap(
    source: &VaultSource,
    database: Option<ConnectionSecret>,
    redis: Option<ConnectionSecret>,
    force: bool,
) -> Result<Secrets, SecretsError> {
    let mut secrets = Secrets::generate();
    secrets.database = database;
    secrets.redis = redis;
    source.put_all(&secrets, !force).await?;
    Ok(secrets)
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("secrets serialise to JSON")
}

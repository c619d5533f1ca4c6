//! Secret sources behind one interface: a generated local file (standalone), environment
//! variables, and (in its own module, later) Vault. Secrets never reach logs.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::time::now_secs;
use crate::token::{KeyError, KeySet};

/// Every secret a Natter process may need.
///
/// Stored as JSON: `{"jwt_keys": KeySet, "cookie_key": "<base64 of 32 bytes>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// JWT signing keys.
    pub jwt_keys: KeySet,
    /// Key for encrypting session cookies (base64 of 32 bytes).
    pub cookie_key: Secret<String>,
}

/// A secret source failure; the message names the missing or bad secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A secret is not there.
    #[error("secret `{0}` is missing")]
    Missing(&'static str),
    /// A secret is there but unusable.
    #[error("secret `{name}` is invalid: {reason}")]
    Invalid {
        /// The secret's name.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The secrets file could not be read or written.
    #[error("secrets file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where secrets come from. Implementations: [`FileSource`], [`EnvSource`].
#[async_trait]
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    /// Reads the current secrets; called at start and again to pick up rotations.
    async fn load(&self) -> Result<Secrets, SecretsError>;
}

/// `secrets.json` in the data dir: generated with mode 0600 on first use, reused after.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

/// Reads one environment variable; a seam so tests need not touch the process environment.
pub type EnvReader = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// `NATTER_JWT_KEYS` (the key set as JSON) and `NATTER_COOKIE_KEY` (base64).
pub struct EnvSource {
    env: EnvReader,
}

impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSource").finish_non_exhaustive()
    }
}

/// The source `config` selects: the data dir's file, or the environment through `env`.
pub fn source(
    config: &crate::config::Config,
    env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> Box<dyn SecretSource> {
    match config.secrets_source {
        crate::config::SecretSourceKind::File => Box::new(FileSource::in_dir(&config.data_dir)),
        crate::config::SecretSourceKind::Env => Box::new(EnvSource::new(env)),
    }
}

impl Secrets {
    /// A fresh set: one new signing key and a random cookie key.
    pub fn generate() -> Self {
        let mut cookie = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut cookie);
        Self {
            jwt_keys: KeySet::generate(now_secs()),
            cookie_key: Secret::new(STANDARD.encode(cookie)),
        }
    }

    /// Checks every secret is usable.
    pub fn validate(&self) -> Result<(), SecretsError> {
        let invalid = |e: KeyError| SecretsError::Invalid {
            name: "jwt_keys",
            reason: e.to_string(),
        };
        self.jwt_keys.active().map_err(invalid)?;
        for key in &self.jwt_keys.keys {
            key.encoding_key().map_err(invalid)?;
        }
        let cookie = STANDARD.decode(self.cookie_key.expose()).ok();
        if cookie.is_none_or(|bytes| bytes.len() != 32) {
            return Err(SecretsError::Invalid {
                name: "cookie_key",
                reason: "must be base64 of 32 bytes".into(),
            });
        }
        Ok(())
    }
}

impl FileSource {
    /// The source for `<data_dir>/secrets.json`.
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("secrets.json"),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rotates the signing key in the file: a new key signs, the previous ones verify for
    /// `keep_retired_secs` more (at least the access-token lifetime).
    pub fn rotate_signing_key(&self, keep_retired_secs: i64) -> Result<Secrets, SecretsError> {
        let mut secrets = self.read()?.ok_or(SecretsError::Missing("jwt_keys"))?;
        secrets.jwt_keys.rotate(now_secs(), keep_retired_secs);
        self.write(&secrets, false)?;
        Ok(secrets)
    }

    fn read(&self) -> Result<Option<Secrets>, SecretsError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io(source)),
        };
        let secrets: Secrets = serde_json::from_str(&text).map_err(|e| SecretsError::Invalid {
            name: "secrets.json",
            reason: format!("not the expected JSON shape (line {})", e.line()),
        })?;
        secrets.validate()?;
        Ok(Some(secrets))
    }

    fn write(&self, secrets: &Secrets, create_new: bool) -> Result<(), SecretsError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let json = serde_json::to_vec_pretty(secrets).expect("secrets serialise");
        let tmp = self.path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(|e| self.io(e))?;
        file.write_all(&json)
            .and_then(|_| file.sync_all())
            .map_err(|e| self.io(e))?;
        if create_new && self.path.exists() {
            let _ = std::fs::remove_file(&tmp);
            return Ok(());
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> SecretsError {
        SecretsError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[async_trait]
impl SecretSource for FileSource {
    async fn load(&self) -> Result<Secrets, SecretsError> {
        if let Some(secrets) = self.read()? {
            return Ok(secrets);
        }
        let secrets = Secrets::generate();
        self.write(&secrets, true)?;
        tracing::info!(path = %self.path.display(), "generated new secrets");
        // Another process may have won the race to create the file: use what is there.
        self.read()?.ok_or(SecretsError::Missing("jwt_keys"))
    }
}

impl EnvSource {
    /// Reads variables through `env` (the process environment in binaries).
    pub fn new(env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { env: Box::new(env) }
    }
}

#[async_trait]
impl SecretSource for EnvSource {
    async fn load(&self) -> Result<Secrets, SecretsError> {
        let keys = (self.env)("NATTER_JWT_KEYS").ok_or(SecretsError::Missing("NATTER_JWT_KEYS"))?;
        let jwt_keys: KeySet = serde_json::from_str(&keys).map_err(|e| SecretsError::Invalid {
            name: "NATTER_JWT_KEYS",
            reason: format!("not a key set JSON document (column {})", e.column()),
        })?;
        let cookie_key =
            (self.env)("NATTER_COOKIE_KEY").ok_or(SecretsError::Missing("NATTER_COOKIE_KEY"))?;
        let secrets = Secrets {
            jwt_keys,
            cookie_key: Secret::new(cookie_key),
        };
        secrets.validate()?;
        Ok(secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_source_generates_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let source = FileSource::in_dir(&dir.path().join("data"));
        let first = source.load().await.unwrap();
        let second = source.load().await.unwrap();
        assert_eq!(first, second, "secrets are reused, not regenerated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(source.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn rotation_in_file_keeps_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let source = FileSource::in_dir(dir.path());
        let before = source.load().await.unwrap();
        let after = source.rotate_signing_key(3600).unwrap();
        assert_ne!(before.jwt_keys.active_kid, after.jwt_keys.active_kid);
        assert_eq!(after.jwt_keys.keys.len(), 2);
        assert_eq!(source.load().await.unwrap(), after);
    }

    #[tokio::test]
    async fn env_source_names_the_missing_variable() {
        let source = EnvSource::new(|_| None);
        let err = source.load().await.unwrap_err();
        assert_eq!(err.to_string(), "secret `NATTER_JWT_KEYS` is missing");
    }

    #[tokio::test]
    async fn env_source_reads_a_generated_set() {
        let generated = Secrets::generate();
        let keys = serde_json::to_string(&generated.jwt_keys).unwrap();
        let cookie = generated.cookie_key.expose().clone();
        let source = EnvSource::new(move |name| match name {
            "NATTER_JWT_KEYS" => Some(keys.clone()),
            "NATTER_COOKIE_KEY" => Some(cookie.clone()),
            _ => None,
        });
        assert_eq!(source.load().await.unwrap(), generated);
    }

    #[test]
    fn debug_output_hides_every_secret() {
        let secrets = Secrets::generate();
        let debug = format!("{secrets:?}");
        assert!(!debug.contains(secrets.cookie_key.expose().as_str()));
        assert!(!debug.contains(secrets.jwt_keys.keys[0].private_key.expose().as_str()));
    }
}

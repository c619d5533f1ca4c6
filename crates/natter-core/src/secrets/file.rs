//! `secrets.json` in the data dir: generated with mode 0600 on first use, reused after.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{SecretSource, Secrets, SecretsError};

/// `secrets.json` in the data dir: generated with mode 0600 on first use, reused after.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
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

    fn read(&self) -> Result<Option<Secrets>, SecretsError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io(source)),
        };
        let secrets: Secrets = serde_json::from_str(&text).map_err(|e| SecretsError::Invalid {
            name: "secrets.json".into(),
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
        if let Some(mut secrets) = self.read()? {
            if secrets.vapid.is_none() {
                // A file of the release before Web Push: it gets its key now.
                secrets.vapid = Some(crate::push::VapidKey::generate());
                self.write(&secrets, false)?;
            }
            return Ok(secrets);
        }
        let secrets = Secrets::generate();
        self.write(&secrets, true)?;
        tracing::info!(path = %self.path.display(), "generated new secrets");
        // Another process may have won the race to create the file: use what is there.
        self.read()?
            .ok_or_else(|| SecretsError::Missing("jwt_keys".into()))
    }

    async fn store(&self, secrets: &Secrets) -> Result<(), SecretsError> {
        secrets.validate()?;
        self.write(secrets, false)
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
        let after = crate::secrets::rotate_signing_key(&source, 3600)
            .await
            .unwrap();
        assert_ne!(before.jwt_keys.active_kid, after.jwt_keys.active_kid);
        assert_eq!(after.jwt_keys.keys.len(), 2);
        assert_eq!(source.load().await.unwrap(), after);
    }

    #[tokio::test]
    async fn a_file_from_before_web_push_gets_a_vapid_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let source = FileSource::in_dir(dir.path());
        let old = Secrets {
            vapid: None,
            smtp: None,
            ..Secrets::generate()
        };
        source.write(&old, true).unwrap();
        let upgraded = source.load().await.unwrap();
        assert!(upgraded.vapid.is_some());
        assert_eq!(upgraded.jwt_keys, old.jwt_keys, "the rest is kept");
        assert_eq!(
            source.load().await.unwrap(),
            upgraded,
            "stored, not made again"
        );
        let rotated = crate::secrets::rotate_vapid_key(&source).await.unwrap();
        assert_ne!(rotated.vapid, upgraded.vapid);
    }
}

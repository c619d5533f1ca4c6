//! Secrets from environment variables: `NATTER_JWT_KEYS` (the key set as JSON) and
//! `NATTER_COOKIE_KEY` (base64 of 32 bytes).

use async_trait::async_trait;

use super::{SecretSource, Secrets, SecretsError};
use crate::cookie::CookieKeys;
use crate::push::VapidKey;
use crate::secret::Secret;
use crate::token::KeySet;

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

impl EnvSource {
    /// Reads variables through `env` (the process environment in binaries).
    pub fn new(env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { env: Box::new(env) }
    }
}

#[async_trait]
impl SecretSource for EnvSource {
    async fn load(&self) -> Result<Secrets, SecretsError> {
        let keys = (self.env)("NATTER_JWT_KEYS")
            .ok_or_else(|| SecretsError::Missing("NATTER_JWT_KEYS".into()))?;
        let jwt_keys: KeySet = serde_json::from_str(&keys).map_err(|e| SecretsError::Invalid {
            name: "NATTER_JWT_KEYS".into(),
            reason: format!("not a key set JSON document (column {})", e.column()),
        })?;
        let cookie_key = (self.env)("NATTER_COOKIE_KEY")
            .ok_or_else(|| SecretsError::Missing("NATTER_COOKIE_KEY".into()))?;
        let secrets = Secrets {
            jwt_keys,
            cookie_keys: CookieKeys {
                current: Secret::new(cookie_key),
                previous: None,
                previous_until: None,
            },
            database: None,
            redis: None,
            vapid: (self.env)("NATTER_VAPID_KEY").map(|d| VapidKey::from_private(&d)),
            // A Secret's SMTP URL comes in as the notify.smtp_url setting.
            smtp: None,
        };
        secrets.validate()?;
        Ok(secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let cookie = generated.cookie_keys.current.expose().clone();
        let vapid = serde_json::to_value(&generated.vapid).unwrap()["d"].clone();
        let vapid = vapid.as_str().unwrap().to_owned();
        let source = EnvSource::new(move |name| match name {
            "NATTER_JWT_KEYS" => Some(keys.clone()),
            "NATTER_COOKIE_KEY" => Some(cookie.clone()),
            "NATTER_VAPID_KEY" => Some(vapid.clone()),
            _ => None,
        });
        assert_eq!(source.load().await.unwrap(), generated);
    }
}

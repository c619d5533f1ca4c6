//! A Vault (or OpenBao) client for Natter's secrets: logs in (token, kubernetes or jwt
//! auth), keeps its token fresh (renewing it, logging in again when renewal fails) and
//! reads and writes KV v2 secrets.

mod dynamic;
mod lease;
mod login;
mod source;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

pub use dynamic::DynamicCredentials;
pub use lease::Issued;
pub use login::Login;
pub use source::{VaultSource, bootstrap};

use crate::config::VaultConfig;
use crate::secrets::{SecretsError, backoff};
use crate::time::now_secs;

/// Timeout of one Vault request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in Vault client. Its `Debug` output holds no token.
pub struct Vault {
    addr: String,
    login: Login,
    client: RwLock<Arc<VaultClient>>,
    /// Unix seconds when the token expires; 0 when it never does.
    expires_at: AtomicI64,
    /// Lifetime the last login granted, in seconds.
    issued_ttl: AtomicI64,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("addr", &self.addr)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// What a login or renewal granted.
#[derive(Debug, Clone, Copy)]
struct Lease {
    ttl_secs: u64,
    renewable: bool,
}

impl Vault {
    /// Logs in to the Vault `config` names, retrying an unreachable server with backoff for
    /// `config.start_deadline_secs`, and starts keeping the token fresh.
    pub async fn connect(config: &VaultConfig) -> Result<Arc<Self>, SecretsError> {
        let addr = config.addr.clone().ok_or_else(|| SecretsError::Invalid {
            name: "vault.addr".into(),
            reason: "set VAULT_ADDR (config key vault.addr) to use the vault secret source".into(),
        })?;
        let login = Login::from_config(config)?;
        let client = new_client(&addr, login.initial_token())?;
        let vault = Arc::new(Self {
            addr,
            login,
            client: RwLock::new(Arc::new(client)),
            expires_at: AtomicI64::new(0),
            issued_ttl: AtomicI64::new(0),
        });
        let deadline = Duration::from_secs(config.start_deadline_secs);
        let give_up = Instant::now() + deadline;
        let mut attempt = 0;
        let lease = loop {
            match vault.login().await {
                Err(SecretsError::Unavailable(reason)) if Instant::now() < give_up => {
                    if attempt == 0 {
                        tracing::warn!(addr = %vault.addr, %reason, "Vault unreachable; retrying");
                    }
                    tokio::time::sleep(backoff(attempt).min(give_up - Instant::now())).await;
                    attempt += 1;
                }
                Err(SecretsError::Unavailable(reason)) => {
                    return Err(SecretsError::Unavailable(format!(
                        "Vault at {} unreachable for {deadline:?}: {reason}",
                        vault.addr
                    )));
                }
                other => break other?,
            }
        };
        tracing::info!(addr = %vault.addr, method = vault.login.method(), ttl_secs = lease.ttl_secs, "logged in to Vault");
        tokio::spawn(keep_token_fresh(Arc::downgrade(&vault), lease));
        Ok(vault)
    }

    /// Seconds until the token expires (`None` when it does not).
    pub fn token_ttl_secs(&self) -> Option<i64> {
        match self.expires_at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(at - now_secs()),
        }
    }

    /// The KV v2 secret at `mount`/`path`, or `None` when there is none.
    #[tracing::instrument(name = "vault kv read", skip_all, fields(vault.path = path))]
    pub async fn read<T: DeserializeOwned>(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<T>, SecretsError> {
        let name = format!("{mount}/{path}");
        let value = self
            .call(&name, |client| async move {
                vaultrs::kv2::read::<serde_json::Value>(&*client, mount, path).await
            })
            .await?;
        let Some(value) = value else { return Ok(None) };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| SecretsError::Invalid {
                name,
                reason: format!("not the documented JSON shape: {e}"),
            })
    }

    /// The current version of the KV v2 secret at `mount`/`path`, or `None`.
    #[tracing::instrument(name = "vault kv metadata", skip_all, fields(vault.path = path))]
    pub async fn version(&self, mount: &str, path: &str) -> Result<Option<u64>, SecretsError> {
        let name = format!("{mount}/{path}");
        let metadata = self
            .call(&name, |client| async move {
                vaultrs::kv2::read_metadata(&*client, mount, path).await
            })
            .await?;
        Ok(metadata.map(|m| m.current_version))
    }

    /// Writes `data` as a new version of `mount`/`path`; with `cas`, only if the current
    /// version is still `cas` (0: only if the secret does not exist). Returns the version.
    #[tracing::instrument(name = "vault kv write", skip_all, fields(vault.path = path))]
    pub async fn write<T: Serialize + Sync>(
        &self,
        mount: &str,
        path: &str,
        data: &T,
        cas: Option<u64>,
    ) -> Result<u64, SecretsError> {
        let name = format!("{mount}/{path}");
        let written = self
            .call(&name, |client| async move {
                match cas {
                    Some(cas) => {
                        let options = vaultrs::api::kv2::requests::SetSecretRequestOptions {
                            cas: u32::try_from(cas).unwrap_or(u32::MAX),
                        };
                        vaultrs::kv2::set_with_options(&*client, mount, path, data, options).await
                    }
                    None => vaultrs::kv2::set(&*client, mount, path, data).await,
                }
            })
            .await?;
        written
            .map(|m| m.version)
            .ok_or(SecretsError::Missing(name))
    }

    /// Runs `request`, mapping errors; on a refused token (expired, revoked, server
    /// restarted) a service-account login is renewed once and the request retried.
    async fn call<T, F, Fut>(&self, name: &str, request: F) -> Result<Option<T>, SecretsError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        match request(self.client()).await {
            Err(ClientError::APIError { code: 403, .. }) if self.login.can_login() => {
                tracing::info!("Vault refused the token; logging in again");
                self.login().await?;
                map_read(name, request(self.client()).await)
            }
            result => map_read(name, result),
        }
    }

    fn client(&self) -> Arc<VaultClient> {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Logs in (or, for a token, looks it up) and installs the token; returns its lease.
    #[tracing::instrument(name = "vault login", skip_all, fields(vault.method = self.login.method()))]
    async fn login(&self) -> Result<Lease, SecretsError> {
        let probe = Arc::new(new_client(&self.addr, self.login.initial_token())?);
        let (token, lease) = self.login.perform(&probe).await?;
        if let Some(token) = token {
            let client = new_client(&self.addr, token.expose())?;
            *self.client.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(client);
        }
        self.note_lease(lease);
        self.issued_ttl
            .store(lease.ttl_secs as i64, Ordering::Relaxed);
        Ok(lease)
    }

    #[tracing::instrument(name = "vault token renew", skip_all)]
    async fn renew(&self) -> Result<Lease, SecretsError> {
        let client = self.client();
        let info = vaultrs::token::renew_self(&*client, None)
            .await
            .map_err(|e| map_error("vault token renewal", e))?;
        let lease = Lease {
            ttl_secs: info.lease_duration,
            renewable: info.renewable,
        };
        self.note_lease(lease);
        Ok(lease)
    }

    fn note_lease(&self, lease: Lease) {
        let at = if lease.ttl_secs == 0 {
            0
        } else {
            now_secs() + lease.ttl_secs as i64
        };
        self.expires_at.store(at, Ordering::Relaxed);
    }
}

/// Renews the token at two thirds of its lifetime; when renewal fails or the token nears
/// its maximum lifetime, logs in again (service-account methods). Stops with the client.
async fn keep_token_fresh(vault: Weak<Vault>, mut lease: Lease) {
    let mut failures = 0;
    loop {
        if lease.ttl_secs == 0 {
            return; // a token that never expires
        }
        let wait = if failures == 0 {
            Duration::from_secs(lease.ttl_secs * 2 / 3).max(Duration::from_millis(500))
        } else {
            backoff(failures)
        };
        tokio::time::sleep(wait).await;
        let Some(vault) = vault.upgrade() else { return };
        let issued = vault.issued_ttl.load(Ordering::Relaxed).max(1) as u64;
        let renewed = if lease.renewable {
            vault.renew().await.ok()
        } else {
            None
        };
        let next = match renewed {
            // Vault caps renewals at the token's max TTL: near it, log in afresh instead.
            Some(renewed) if renewed.ttl_secs * 2 >= issued || !vault.login.can_login() => {
                Ok(renewed)
            }
            _ if vault.login.can_login() => vault.login().await,
            _ => Err(SecretsError::Unavailable("token cannot be renewed".into())),
        };
        match next {
            Ok(next) => {
                if failures > 0 {
                    tracing::info!("Vault token fresh again");
                }
                failures = 0;
                lease = next;
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(%error, ttl_secs = ?vault.token_ttl_secs(), "could not refresh the Vault token; retrying");
                }
                failures += 1;
            }
        }
    }
}

fn new_client(addr: &str, token: &str) -> Result<VaultClient, SecretsError> {
    // vaultrs is built without a TLS crypto provider of its own: use ring, as kube does.
    // Installing fails harmlessly when the process already chose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = VaultClientSettingsBuilder::default()
        .address(addr)
        .token(token)
        .timeout(Some(REQUEST_TIMEOUT))
        .build()
        .map_err(|e| SecretsError::Invalid {
            name: "vault.addr".into(),
            reason: e.to_string(),
        })?;
    VaultClient::new(settings).map_err(|e| SecretsError::Invalid {
        name: "vault.addr".into(),
        reason: error_chain(&e),
    })
}

fn map_read<T>(name: &str, result: Result<T, ClientError>) -> Result<Option<T>, SecretsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(ClientError::APIError { code: 404, .. }) => Ok(None),
        Err(error) => Err(map_error(name, error)),
    }
}

/// Maps a client error: refusals name `what`, everything else is worth retrying.
fn map_error(what: &str, error: ClientError) -> SecretsError {
    match error {
        ClientError::APIError { code, errors } if (400..500).contains(&code) => {
            let detail = if errors.is_empty() {
                format!("Vault answered {code}")
            } else {
                format!("Vault answered {code}: {}", errors.join("; "))
            };
            let hint = match code {
                403 => " (check the Vault policy bound to this role or token)",
                _ => "",
            };
            SecretsError::Invalid {
                name: what.into(),
                reason: format!("{detail}{hint}"),
            }
        }
        other => SecretsError::Unavailable(format!("{what}: {}", error_chain(&other))),
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

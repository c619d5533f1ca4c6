//! How a process proves itself to Vault: a given token, or the pod's service-account token
//! presented to the kubernetes or jwt auth method.

use std::path::PathBuf;

use vaultrs::client::VaultClient;

use super::{Lease, map_error};
use crate::config::{VaultAuthMethod, VaultConfig};
use crate::secret::Secret;
use crate::secrets::SecretsError;

/// A login method with its settings. `Debug` shows no token.
#[derive(Debug, Clone)]
pub enum Login {
    /// A token given by configuration (`VAULT_TOKEN`).
    Token(Secret<String>),
    /// A service-account JWT read from `token_file` at every login.
    ServiceAccount {
        /// kubernetes or jwt.
        method: VaultAuthMethod,
        /// Where the auth method is mounted.
        mount: String,
        /// The Vault role.
        role: String,
        /// The projected service-account token.
        token_file: PathBuf,
    },
}

impl Login {
    /// The login `config` describes, or an error naming the missing setting.
    pub fn from_config(config: &VaultConfig) -> Result<Self, SecretsError> {
        let missing = |name: &str, reason: &str| SecretsError::Invalid {
            name: name.into(),
            reason: reason.into(),
        };
        match config.auth_method {
            VaultAuthMethod::Token => {
                config.token.clone().map(Login::Token).ok_or_else(|| {
                    missing("vault.token", "set VAULT_TOKEN for the token auth method")
                })
            }
            method => Ok(Login::ServiceAccount {
                method,
                mount: config
                    .auth_mount
                    .clone()
                    .unwrap_or_else(|| method.default_mount().into()),
                role: config.role.clone().ok_or_else(|| {
                    missing(
                        "vault.role",
                        "set NATTER_VAULT_ROLE for the service-account login",
                    )
                })?,
                token_file: config.token_file.clone(),
            }),
        }
    }

    /// The token to start with: the configured one, or none until logged in.
    pub(super) fn initial_token(&self) -> &str {
        match self {
            Self::Token(token) => token.expose(),
            Self::ServiceAccount { .. } => "",
        }
    }

    /// Whether logging in again yields a new token.
    pub(super) fn can_login(&self) -> bool {
        matches!(self, Self::ServiceAccount { .. })
    }

    /// The method's name, for logs.
    pub(super) fn method(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::ServiceAccount { method, .. } => method.default_mount(),
        }
    }

    /// Logs in; returns the new token (none for the token method, whose token is looked up
    /// to learn its lifetime) and its lease.
    pub(super) async fn perform(
        &self,
        client: &VaultClient,
    ) -> Result<(Option<Secret<String>>, Lease), SecretsError> {
        match self {
            Self::Token(_) => {
                let info = vaultrs::token::lookup_self(client)
                    .await
                    .map_err(|e| map_error("vault token (VAULT_TOKEN)", e))?;
                let lease = Lease {
                    ttl_secs: info.ttl,
                    renewable: info.renewable.unwrap_or(false),
                };
                Ok((None, lease))
            }
            Self::ServiceAccount {
                method,
                mount,
                role,
                token_file,
            } => {
                let jwt = tokio::fs::read_to_string(token_file).await.map_err(|e| {
                    SecretsError::Invalid {
                        name: format!("service-account token {}", token_file.display()),
                        reason: e.to_string(),
                    }
                })?;
                let jwt = jwt.trim();
                let what = format!(
                    "vault login ({} auth at `{mount}`, role `{role}`)",
                    method.default_mount()
                );
                let info = match method {
                    VaultAuthMethod::Kubernetes => {
                        vaultrs::auth::kubernetes::login(client, mount, role, jwt).await
                    }
                    _ => vaultrs::auth::oidc::login(client, mount, jwt, Some(role.clone())).await,
                }
                .map_err(|e| map_error(&what, e))?;
                let lease = Lease {
                    ttl_secs: info.lease_duration,
                    renewable: info.renewable,
                };
                Ok((Some(Secret::new(info.client_token)), lease))
            }
        }
    }
}

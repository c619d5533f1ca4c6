//! Database credentials leased from Vault's database secrets engine: one lease at a time,
//! renewed once two thirds of it have passed, and replaced by new credentials when Vault
//! will not extend it by at least a third of its first lifetime (its maximum is near).
//! New credentials reach the pool as a changed secret; old connections retire at the
//! pool's connection lifetime, which must be shorter than that last third.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::Vault;
use super::lease::Issued;
use crate::secrets::{ConnectionSecret, SecretsError};

/// Leased credentials for one role.
#[derive(Debug)]
pub struct DynamicCredentials {
    mount: String,
    role: String,
    held: Mutex<Option<Held>>,
}

#[derive(Debug, Clone)]
struct Held {
    issued: Issued,
    /// The lifetime Vault granted at issue.
    granted: Duration,
    expires_at: Instant,
}

impl Held {
    fn new(issued: Issued) -> Self {
        let granted = Duration::from_secs(issued.ttl_secs);
        Self {
            issued,
            granted,
            expires_at: Instant::now() + granted,
        }
    }

    /// Whether `left` is more than a third of the first lifetime.
    fn enough(&self, left: Duration) -> bool {
        left * 3 > self.granted
    }

    fn secret(&self) -> ConnectionSecret {
        ConnectionSecret {
            url: None,
            username: Some(self.issued.username.clone()),
            password: Some(self.issued.password.clone()),
        }
    }
}

impl DynamicCredentials {
    /// Credentials of `role` from the engine mounted at `mount`.
    pub fn new(mount: &str, role: &str) -> Self {
        Self {
            mount: mount.trim_matches('/').into(),
            role: role.into(),
            held: Mutex::new(None),
        }
    }

    /// The engine's name for messages: `<mount>/creds/<role>`.
    pub fn name(&self) -> String {
        format!("{}/creds/{}", self.mount, self.role)
    }

    /// The credentials to use now: the held ones while enough of their lease is left,
    /// else the same ones renewed, else new ones. An unreachable Vault is reported (the
    /// caller keeps what it has); a lease Vault no longer knows is replaced.
    pub async fn current(&self, vault: &Vault) -> Result<ConnectionSecret, SecretsError> {
        let held = self.lock().clone();
        if let Some(mut held) = held {
            let left = held.expires_at.saturating_duration_since(Instant::now());
            if held.enough(left) {
                return Ok(held.secret());
            }
            if held.issued.renewable {
                let increment = held.granted.as_secs();
                match vault.renew_lease(&held.issued.lease_id, increment).await {
                    Ok(ttl) if held.enough(Duration::from_secs(ttl)) => {
                        held.expires_at = Instant::now() + Duration::from_secs(ttl);
                        *self.lock() = Some(held.clone());
                        return Ok(held.secret());
                    }
                    Ok(_) => {
                        tracing::info!(role = %self.role, "database lease near its maximum lifetime; new credentials")
                    }
                    Err(error @ SecretsError::Unavailable(_)) => return Err(error),
                    Err(error) => {
                        tracing::warn!(%error, role = %self.role, "database lease not renewed; new credentials")
                    }
                }
            }
        }
        let issued = vault
            .issue_database_credentials(&self.mount, &self.role)
            .await?;
        tracing::info!(role = %self.role, ttl_secs = issued.ttl_secs, "leased database credentials");
        let held = Held::new(issued);
        *self.lock() = Some(held.clone());
        Ok(held.secret())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

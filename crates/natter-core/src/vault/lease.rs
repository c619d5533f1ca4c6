//! Leased secrets: database credentials issued by Vault's database secrets engine, and
//! lease renewal. vaultrs returns these credentials without their lease, so the two calls
//! go through its HTTP client and middleware (address, token, `/v1`) directly.

use rustify::endpoint::Endpoint;
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use serde::Deserialize;
use serde_json::Value;
use vaultrs::client::Client;
use vaultrs::error::ClientError;

use super::Vault;
use crate::secret::Secret;
use crate::secrets::SecretsError;

/// Credentials and the lease they live by.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The lease to renew or let expire.
    pub lease_id: String,
    /// Seconds the lease runs from now.
    pub ttl_secs: u64,
    /// Whether the lease can be renewed.
    pub renewable: bool,
    /// The database role's user name.
    pub username: String,
    /// Its password.
    pub password: Secret<String>,
}

#[derive(Deserialize)]
struct LeaseBody {
    lease_id: String,
    lease_duration: u64,
    renewable: bool,
    #[serde(default)]
    data: Option<Credentials>,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// One Vault API call whose whole JSON answer (lease fields included) is wanted.
struct Call {
    path: String,
    method: RequestMethod,
    body: Option<Value>,
}

impl Endpoint for Call {
    type Response = Value;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }

    fn method(&self) -> RequestMethod {
        self.method.clone()
    }

    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(self.body.as_ref().map(|b| b.to_string().into_bytes()))
    }
}

impl Vault {
    /// New credentials from the database secrets engine at `mount` for `role`.
    #[tracing::instrument(name = "vault database creds", skip_all, fields(vault.role = role))]
    pub async fn issue_database_credentials(
        &self,
        mount: &str,
        role: &str,
    ) -> Result<Issued, SecretsError> {
        let name = format!("{mount}/creds/{role}");
        let call = || Call {
            path: format!("{mount}/creds/{role}"),
            method: RequestMethod::GET,
            body: None,
        };
        let body = self.lease_call(&name, call).await?;
        let Some(data) = body.data else {
            return Err(SecretsError::Invalid {
                name,
                reason: "Vault returned no credentials".into(),
            });
        };
        Ok(Issued {
            lease_id: body.lease_id,
            ttl_secs: body.lease_duration,
            renewable: body.renewable,
            username: data.username,
            password: Secret::new(data.password),
        })
    }

    /// Extends `lease_id` by up to `increment_secs`; returns the seconds it now runs (Vault
    /// caps them at the role's maximum lifetime).
    #[tracing::instrument(name = "vault lease renew", skip_all)]
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment_secs: u64,
    ) -> Result<u64, SecretsError> {
        let call = || Call {
            path: "sys/leases/renew".into(),
            method: RequestMethod::PUT,
            body: Some(serde_json::json!({"lease_id": lease_id, "increment": increment_secs})),
        };
        Ok(self
            .lease_call("sys/leases/renew", call)
            .await?
            .lease_duration)
    }

    async fn lease_call(
        &self,
        name: &str,
        call: impl Fn() -> Call,
    ) -> Result<LeaseBody, SecretsError> {
        let answer = self
            .call(name, |client| {
                let call = call();
                async move {
                    let result = call
                        .with_middleware(client.middle())
                        .exec(client.http())
                        .await
                        .map_err(api_error)?;
                    result.parse().map_err(api_error)
                }
            })
            .await?
            .ok_or_else(|| SecretsError::Missing(name.into()))?;
        serde_json::from_value(answer).map_err(|e| SecretsError::Invalid {
            name: name.into(),
            reason: format!("unexpected answer: {e}"),
        })
    }
}

/// A refusal from Vault as vaultrs reports it (so that 403s lead to a new login and 4xx
/// answers name the secret), anything else as a transport error.
fn api_error(error: rustify::errors::ClientError) -> ClientError {
    match error {
        rustify::errors::ClientError::ServerResponseError { code, content } => {
            let errors = content
                .and_then(|c| serde_json::from_str::<Value>(&c).ok())
                .and_then(|v| serde_json::from_value::<Vec<String>>(v["errors"].clone()).ok())
                .unwrap_or_default();
            ClientError::APIError { code, errors }
        }
        source => ClientError::RestClientError { source },
    }
}

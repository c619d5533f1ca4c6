//! Builds an [`Auth`] from configuration and the shared handles, the same way in the
//! binary and in tests.

use std::sync::Arc;
use std::time::Duration;

use natter_core::broker::Broker;
use natter_core::config::Config;
use natter_core::kv::Kv;
use natter_core::store::Store;
use natter_core::token::{Denylist, KeySet, TokenSigner, TokenVerifier};

use crate::{Auth, AuthError, AuthParts, LoginLimiter, Passwords};

/// The shared handles the auth service works with.
#[derive(Debug, Clone)]
pub struct Handles {
    /// Accounts and sessions.
    pub store: Store,
    /// Deny-list and rate-limit counters.
    pub kv: Arc<dyn Kv>,
    /// Where revoked sessions are announced.
    pub broker: Arc<dyn Broker>,
}

/// Assembles the auth service over `handles` with the signing keys `keys`, and puts the
/// sessions revoked within an access token's lifetime back on the deny-list (a restart of
/// standalone mode, or of Redis, must not bring a logged-out token back to life).
pub async fn assemble(config: &Config, handles: Handles, keys: &KeySet) -> Result<Auth, AuthError> {
    let Handles { store, kv, broker } = handles;
    let internal = |e: &dyn std::fmt::Display| AuthError::Internal(e.to_string());
    let auth = &config.auth;
    let jwks = keys.jwks().map_err(|e| internal(&e))?;
    let verifier = TokenVerifier::new(
        &jwks,
        &auth.issuer,
        &auth.audience,
        Denylist::announcing(kv.clone(), broker),
    );
    let signer = TokenSigner::new(keys, &auth.issuer, &auth.audience, auth.access_ttl_secs)
        .map_err(|e| internal(&e))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let passwords = Passwords::new(auth.argon2, cores).await?;
    let auth = Auth::new(AuthParts {
        store,
        passwords,
        keys: keys.clone(),
        signer,
        verifier,
        limiter: LoginLimiter::new(kv, auth),
        refresh_ttl: Duration::from_secs(auth.refresh_ttl_secs),
    })?;
    auth.restore_denials().await?;
    Ok(auth)
}

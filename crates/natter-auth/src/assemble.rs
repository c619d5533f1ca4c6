//! Builds an [`Auth`] from configuration and the shared handles, the same way in the
//! binary and in tests.

use std::sync::Arc;
use std::time::Duration;

use natter_core::config::Config;
use natter_core::kv::Kv;
use natter_core::store::Store;
use natter_core::token::{Denylist, KeySet, TokenSigner, TokenVerifier};

use crate::{Auth, AuthError, AuthParts, LoginLimiter, Passwords};

/// Assembles the auth service over `store` and `kv` with the signing keys `keys`.
pub async fn assemble(
    config: &Config,
    store: Store,
    kv: Arc<dyn Kv>,
    keys: &KeySet,
) -> Result<Auth, AuthError> {
    let internal = |e: &dyn std::fmt::Display| AuthError::Internal(e.to_string());
    let auth = &config.auth;
    let jwks = keys.jwks().map_err(|e| internal(&e))?;
    let verifier = TokenVerifier::new(
        &jwks,
        &auth.issuer,
        &auth.audience,
        Denylist::new(kv.clone()),
    );
    let signer = TokenSigner::new(keys, &auth.issuer, &auth.audience, auth.access_ttl_secs)
        .map_err(|e| internal(&e))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let passwords = Passwords::new(auth.argon2, cores).await?;
    Auth::new(AuthParts {
        store,
        passwords,
        keys: keys.clone(),
        signer,
        verifier,
        limiter: LoginLimiter::new(kv, auth),
        refresh_ttl: Duration::from_secs(auth.refresh_ttl_secs),
    })
}

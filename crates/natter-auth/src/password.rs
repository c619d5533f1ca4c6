//! Password hashing with argon2id at explicit parameters, off the async threads and with
//! bounded concurrency (each hash holds `m` KiB of memory).

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use natter_core::config::Argon2Params;
use tokio::sync::Semaphore;

use crate::AuthError;

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    params: Argon2Params,
    permits: Arc<Semaphore>,
    /// A hash at the current parameters, verified against when the user does not exist
    /// so that a failed login takes the same time either way.
    dummy: Arc<str>,
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password matched.
    pub matches: bool,
    /// Whether the stored hash uses other parameters than the current ones.
    pub needs_rehash: bool,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// A hasher at `params`, running at most `concurrency` hashes at once.
    pub async fn new(params: Argon2Params, concurrency: usize) -> Result<Self, AuthError> {
        argon2(params)?;
        let mut passwords = Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::from(""),
        };
        passwords.dummy = Arc::from(passwords.hash("natter-dummy-password").await?);
        Ok(passwords)
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
    #[tracing::instrument(name = "password.hash", skip_all)]
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let params = self.params;
        let password = password.to_owned();
        self.blocking(move || {
            let hash = argon2(params)?
                .hash_password(password.as_bytes())
                .map_err(|e| AuthError::Internal(format!("argon2: {e}")))?;
            Ok(hash.to_string())
        })
        .await
    }

    /// Checks `password` against `stored`, or against the dummy hash when `stored` is
    /// `None` (the answer is then always "no match", after the same amount of work).
    #[tracing::instrument(name = "password.verify", skip_all)]
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, AuthError> {
        let exists = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy.to_string(), str::to_owned);
        let password = password.to_owned();
        let current = self.params;
        self.blocking(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| AuthError::Internal(format!("stored hash unreadable: {e}")))?;
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(Verified {
                matches: matches && exists,
                needs_rehash: !uses_params(&parsed, current),
            })
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AuthError::Internal(format!("password task: {e}")))?
    }
}

fn argon2(params: Argon2Params) -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| AuthError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn uses_params(hash: &PasswordHash, current: Argon2Params) -> bool {
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm.as_str() == "argon2id"
        && hash.version == Some(Version::V0x13.into())
        && params.m_cost() == current.memory_kib
        && params.t_cost() == current.iterations
        && params.p_cost() == current.parallelism
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_configured_parameters() {
        let passwords = Passwords::new(Argon2Params::OWASP, 1).await.unwrap();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let ok = passwords
            .verify("correct horse", Some(&hash))
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        let bad = passwords.verify("wrong horse", Some(&hash)).await.unwrap();
        assert!(!bad.matches);
    }

    #[tokio::test]
    async fn a_parameter_change_asks_for_a_rehash() {
        let old = Passwords::new(CHEAP, 1).await.unwrap();
        let hash = old.hash("correct horse").await.unwrap();
        let new = Passwords::new(
            Argon2Params {
                memory_kib: 128,
                ..CHEAP
            },
            1,
        )
        .await
        .unwrap();
        let verified = new.verify("correct horse", Some(&hash)).await.unwrap();
        assert_eq!(
            verified,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn a_missing_user_never_matches() {
        let passwords = Passwords::new(CHEAP, 1).await.unwrap();
        let verified = passwords
            .verify("natter-dummy-password", None)
            .await
            .unwrap();
        assert!(!verified.matches);
    }
}

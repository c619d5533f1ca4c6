//! Password hashing with argon2id at explicit parameters, on a fixed set of hashing
//! threads that reuse their memory ([`HashPool`]): bounded concurrency and bounded
//! memory (each hash needs `m` KiB).

use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use natter_core::config::Argon2Params;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::AuthError;
use crate::hashpool::{HashPool, blocks_for, shrink_to};

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    params: Argon2Params,
    /// Argon2 blocks a hash at `params` needs: what a hashing thread keeps.
    blocks: usize,
    pool: HashPool,
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
    /// A hasher at `params`, running at most `concurrency` hashes at once (on as many
    /// threads, holding at most `concurrency × m` KiB).
    pub async fn new(params: Argon2Params, concurrency: usize) -> Result<Self, AuthError> {
        let blocks = argon2(params)?.params().block_count();
        let mut passwords = Self {
            params,
            blocks,
            pool: HashPool::new(concurrency)?,
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
        self.pool
            .run(move |memory| {
                let argon2 = argon2(params)?;
                let mut salt = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut salt);
                let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
                compute(&argon2, password.as_bytes(), &salt, &mut out, memory)?;
                let phc = PasswordHash {
                    algorithm: Algorithm::Argon2id.ident(),
                    version: Some(Version::V0x13.into()),
                    params: ParamsString::try_from(argon2.params()).map_err(internal)?,
                    salt: Some(Salt::new(&salt).map_err(internal)?),
                    hash: Some(Output::new(&out).map_err(internal)?),
                };
                Ok(phc.to_string())
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
        let (current, keep) = (self.params, self.blocks);
        self.pool
            .run(move |memory| {
                let parsed = PasswordHash::new(&stored)
                    .map_err(|e| AuthError::Internal(format!("stored hash unreadable: {e}")))?;
                let matches = matches(&parsed, password.as_bytes(), memory)?;
                shrink_to(memory, keep);
                Ok(Verified {
                    matches: matches && exists,
                    needs_rehash: !uses_params(&parsed, current),
                })
            })
            .await
    }
}

/// Whether `password` hashes to `stored`'s output at `stored`'s algorithm, version,
/// parameters and salt (compared in constant time).
fn matches(
    stored: &PasswordHash,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<bool, AuthError> {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Err(AuthError::Internal(
            "stored hash has no salt or output".into(),
        ));
    };
    let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(internal)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(internal)?
        .unwrap_or_default();
    let params = Params::try_from(stored).map_err(internal)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    compute(&argon2, password, salt.as_ref(), &mut out, memory)?;
    Ok(bool::from(out.ct_eq(expected.as_bytes())))
}

/// One argon2 hash into `out`, in the hashing thread's `memory`.
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), AuthError> {
    let blocks = blocks_for(memory, argon2.params().block_count());
    argon2
        .hash_password_into_with_memory(password, salt, out, blocks)
        .map_err(internal)
}

fn internal(error: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(format!("argon2: {error}"))
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
    async fn hashes_are_standard_phc_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let passwords = Passwords::new(CHEAP, 1).await.unwrap();
        let ours = passwords.hash("correct horse").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2(CHEAP)
                .unwrap()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let theirs = argon2(CHEAP)
            .unwrap()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let verified = passwords
            .verify("correct horse", Some(&theirs))
            .await
            .unwrap();
        assert!(verified.matches && !verified.needs_rehash);
        assert!(
            !passwords
                .verify("wrong", Some(&theirs))
                .await
                .unwrap()
                .matches
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

//! Signs access tokens with the active key of a [`KeySet`]; only the auth service signs.

use std::sync::{Arc, RwLock};

use jsonwebtoken::{EncodingKey, Header};
use uuid::Uuid;

use super::{ALGORITHM, AccessClaims, KeyError, KeySet};

/// Signs access tokens. Cheap to clone; [`TokenSigner::set_keys`] swaps the key in place
/// so a rotated key takes effect without a restart.
#[derive(Clone)]
pub struct TokenSigner {
    active: Arc<RwLock<Arc<ActiveKey>>>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

struct ActiveKey {
    kid: String,
    key: EncodingKey,
}

/// A freshly signed token and its claims.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// What it says.
    pub claims: AccessClaims,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.current().kid)
            .field("issuer", &self.issuer)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer using `keys`' active key.
    pub fn new(
        keys: &KeySet,
        issuer: &str,
        audience: &str,
        ttl_secs: u64,
    ) -> Result<Self, KeyError> {
        Ok(Self {
            active: Arc::new(RwLock::new(Arc::new(ActiveKey::from_set(keys)?))),
            issuer: issuer.into(),
            audience: audience.into(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        })
    }

    /// Switches to `keys`' active key.
    pub fn set_keys(&self, keys: &KeySet) -> Result<(), KeyError> {
        let next = Arc::new(ActiveKey::from_set(keys)?);
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Access token lifetime in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs a token for `user_id` in session `session_id`, valid from `now_secs`.
    #[tracing::instrument(name = "token.sign", skip_all)]
    pub fn sign(
        &self,
        user_id: &str,
        username: &str,
        session_id: &str,
        now_secs: i64,
    ) -> IssuedToken {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.into(),
            jti: Uuid::now_v7().to_string(),
            sid: session_id.into(),
            name: username.into(),
            iat: now_secs,
            exp: now_secs + self.ttl_secs,
        };
        let active = self.current();
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(active.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &active.key)
            .expect("an Ed25519 key from a checked KeySet always signs");
        IssuedToken { token, claims }
    }

    fn current(&self) -> Arc<ActiveKey> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ActiveKey {
    fn from_set(keys: &KeySet) -> Result<Self, KeyError> {
        let spec = keys.active()?;
        Ok(Self {
            kid: spec.kid.clone(),
            key: spec.encoding_key()?,
        })
    }
}

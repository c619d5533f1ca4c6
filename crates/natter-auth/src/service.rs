//! The auth domain: register, login, refresh, logout, validate. Transport-agnostic; the
//! gRPC and JSON layers translate to and from it.

use std::time::Duration;

use natter_core::store::{
    NewSession, NewUser, RotateRequest, Rotation, Store, StoreError, UserRecord,
};
use natter_core::time::{now_ms, now_secs};
use natter_core::token::JwkSet;
use natter_core::token::{AccessClaims, KeySet, TokenSigner, TokenVerifier};
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};

use crate::validate::{normalize_username, validate_email, validate_password};
use crate::{AuthError, LoginLimiter, Passwords};

/// The auth service's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Auth {
    store: Store,
    passwords: Passwords,
    signer: TokenSigner,
    verifier: TokenVerifier,
    limiter: LoginLimiter,
    jwks: Arc<RwLock<Arc<str>>>,
    refresh_ttl_ms: i64,
}

/// What [`Auth::new`] is built from.
#[derive(Debug)]
pub struct AuthParts {
    /// The store (users, sessions).
    pub store: Store,
    /// Password hashing.
    pub passwords: Passwords,
    /// The key set in effect.
    pub keys: KeySet,
    /// Signs access tokens.
    pub signer: TokenSigner,
    /// Verifies access tokens (shares its deny-list with logout).
    pub verifier: TokenVerifier,
    /// Login rate limits.
    pub limiter: LoginLimiter,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
}

/// Who is calling, as seen at the edge.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// Client address; empty when unknown.
    pub ip: String,
    /// User agent; empty when unknown.
    pub user_agent: String,
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The stored user.
    pub user: UserRecord,
}

/// Tokens issued by a login or refresh.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The JWT.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// The session both belong to.
    pub session_id: String,
    /// The user.
    pub user: UserRecord,
}

/// A verified access token's subject.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Verified claims.
    pub claims: AccessClaims,
}

const MAX_LOGIN_LEN: usize = 320;
/// 256 characters of up to 4 bytes each.
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_USER_AGENT_LEN: usize = 256;
/// Longer than any IPv6 text form; forwarded addresses are client-controlled.
const MAX_IP_LEN: usize = 64;

impl Auth {
    /// Assembles the service.
    pub fn new(parts: AuthParts) -> Result<Self, AuthError> {
        let jwks = jwks_json(&parts.keys)?;
        Ok(Self {
            store: parts.store,
            passwords: parts.passwords,
            signer: parts.signer,
            verifier: parts.verifier,
            limiter: parts.limiter,
            jwks: Arc::new(RwLock::new(jwks)),
            refresh_ttl_ms: i64::try_from(parts.refresh_ttl.as_millis()).unwrap_or(i64::MAX),
        })
    }

    /// Switches to a rotated key set: its active key signs from now on, every key in it
    /// verifies.
    pub fn set_keys(&self, keys: &KeySet) -> Result<(), AuthError> {
        let jwks = keys
            .jwks()
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        self.signer
            .set_keys(keys)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        self.verifier.set_keys(&jwks);
        *self.jwks.write().unwrap_or_else(|e| e.into_inner()) = jwks_json(keys)?;
        Ok(())
    }

    /// The public keys as a JWKS JSON document.
    pub fn jwks(&self) -> Arc<str> {
        self.jwks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The verifier, for other services in the same process.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates an account.
    #[tracing::instrument(name = "auth.register", skip_all)]
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
    ) -> Result<Registered, AuthError> {
        let username = normalize_username(username)?;
        validate_password(password)?;
        let email = email
            .filter(|e| !e.trim().is_empty())
            .map(validate_email)
            .transpose()?;
        let password_hash = self.passwords.hash(password).await?;
        let new = NewUser {
            username: &username,
            email: email.as_deref(),
            password_hash: &password_hash,
        };
        let user = self.store.create_user(new).await.map_err(|e| match e {
            StoreError::Conflict(what) if what.contains("email") => AuthError::EmailTaken,
            StoreError::Conflict(_) => AuthError::UsernameTaken,
            other => other.into(),
        })?;
        tracing::info!(user.id = %user.id, "registered");
        Ok(Registered { user })
    }

    /// Checks a login (username or email) and password and opens a session. Unknown
    /// users and wrong passwords get the same error after the same hashing work.
    #[tracing::instrument(name = "auth.login", skip_all)]
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        client: &Client,
    ) -> Result<LoginOutcome, AuthError> {
        let login = login.trim();
        // No account has such a login or password: refuse before counting (the login
        // becomes a rate-limit key) or hashing (cost grows with the password).
        if login.is_empty()
            || login.len() > MAX_LOGIN_LEN
            || login.chars().any(char::is_control)
            || password.len() > MAX_PASSWORD_BYTES
        {
            return Err(AuthError::InvalidCredentials);
        }
        let ip = truncate(&client.ip, MAX_IP_LEN);
        self.limiter.attempt(ip, login).await?;
        let user = self.store.user_by_login(login).await?;
        let verified = self
            .passwords
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let Some(user) = user.filter(|_| verified.matches) else {
            tracing::info!("login refused");
            return Err(AuthError::InvalidCredentials);
        };
        if verified.needs_rehash {
            self.rehash(&user, password).await;
        }
        self.open_session(user, client).await
    }

    /// Opens a session for `user`, whose password was just checked or set (login, and
    /// register asked for a session), without hashing it again.
    pub async fn open_session(
        &self,
        user: UserRecord,
        client: &Client,
    ) -> Result<LoginOutcome, AuthError> {
        let refresh = new_refresh_token();
        let now = now_ms();
        let session = NewSession {
            user_id: &user.id,
            user_agent: truncate(&client.user_agent, MAX_USER_AGENT_LEN),
            ip: truncate(&client.ip, MAX_IP_LEN),
            token_hash: &hash_refresh(&refresh),
            expires_at: now + self.refresh_ttl_ms,
            now,
        };
        let session_id = self.store.create_session(session).await?;
        tracing::info!(user.id = %user.id, session.id = %session_id, "logged in");
        Ok(self.outcome(user, session_id, refresh))
    }

    /// Exchanges a refresh token for a new pair. A token that was already exchanged
    /// revokes its whole session and every access token of it.
    #[tracing::instrument(name = "auth.refresh", skip_all)]
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &Client,
    ) -> Result<LoginOutcome, AuthError> {
        let next = new_refresh_token();
        let now = now_ms();
        let rotation = self
            .store
            .rotate_refresh(RotateRequest {
                old_hash: &hash_refresh(refresh_token),
                new_hash: &hash_refresh(&next),
                expires_at: now + self.refresh_ttl_ms,
                user_agent: truncate(&client.user_agent, MAX_USER_AGENT_LEN),
                ip: truncate(&client.ip, MAX_IP_LEN),
                now,
            })
            .await?;
        let (session_id, user_id) = match rotation {
            Rotation::Rotated {
                session_id,
                user_id,
            } => (session_id, user_id),
            Rotation::Reused { session_id } => {
                tracing::warn!(session.id = %session_id, "refresh token reuse: session revoked");
                self.deny_session(&session_id).await?;
                return Err(AuthError::RefreshTokenReused);
            }
            Rotation::Revoked | Rotation::Expired | Rotation::Unknown => {
                return Err(AuthError::InvalidRefreshToken);
            }
        };
        let user = self
            .store
            .user_by_id(&user_id)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        Ok(self.outcome(user, session_id, next))
    }

    /// Ends a session: revokes its refresh tokens and denies its access tokens until they
    /// expire. Either token identifies the session; an expired access token is enough
    /// together with the refresh token.
    #[tracing::instrument(name = "auth.logout", skip_all)]
    pub async fn logout(
        &self,
        access_token: Option<&str>,
        refresh_token: Option<&str>,
    ) -> Result<(), AuthError> {
        let access = access_token.filter(|t| !t.is_empty());
        let refresh = refresh_token.filter(|t| !t.is_empty());
        if access.is_none() && refresh.is_none() {
            return Err(AuthError::invalid(
                "missing_token",
                "an access token or a refresh token is required",
            ));
        }
        let mut ended = false;
        if let Some(token) = access {
            match self.verifier.verify_signature(token) {
                Ok(claims) => {
                    let remaining = claims.exp.saturating_sub(now_secs()).max(0);
                    self.verifier
                        .denylist()
                        .deny_token(&claims.jti, Duration::from_secs(remaining as u64))
                        .await?;
                    self.end_session(&claims.sid).await?;
                    ended = true;
                }
                // An expired access token with a refresh token: the refresh token decides.
                Err(_) if refresh.is_some() => {}
                Err(error) => return Err(error.into()),
            }
        }
        if let Some(token) = refresh {
            match self.store.session_of_token(&hash_refresh(token)).await? {
                Some(session_id) => self.end_session(&session_id).await?,
                None if !ended => return Err(AuthError::InvalidRefreshToken),
                None => {}
            }
        }
        Ok(())
    }

    /// Verifies an access token, deny-list included.
    pub async fn validate(&self, access_token: &str) -> Result<Identity, AuthError> {
        let claims = self.verifier.verify(access_token).await?;
        Ok(Identity { claims })
    }

    async fn end_session(&self, session_id: &str) -> Result<(), AuthError> {
        self.store
            .revoke_session(session_id, "logout", now_ms())
            .await?;
        self.deny_session(session_id).await?;
        tracing::info!(session.id = %session_id, "session ended");
        Ok(())
    }

    async fn deny_session(&self, session_id: &str) -> Result<(), AuthError> {
        self.verifier
            .denylist()
            .deny_session(session_id, self.denial_lifetime())
            .await?;
        Ok(())
    }

    /// How long a session stays denied: as long as an access token of it may live.
    fn denial_lifetime(&self) -> Duration {
        Duration::from_secs(self.signer.ttl_secs().max(0) as u64 + 60)
    }

    /// Denies again every session revoked within [`Auth::denial_lifetime`], from the store.
    pub(crate) async fn restore_denials(&self) -> Result<(), AuthError> {
        let lifetime = self.denial_lifetime();
        let now = now_ms();
        let lifetime_ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        let revoked = self
            .store
            .sessions_revoked_since(now.saturating_sub(lifetime_ms))
            .await?;
        for (session_id, revoked_at) in &revoked {
            let elapsed = u64::try_from(now - revoked_at).unwrap_or(0);
            let remaining = lifetime.saturating_sub(Duration::from_millis(elapsed));
            self.verifier
                .denylist()
                .restore_session(session_id, remaining)
                .await?;
        }
        tracing::debug!(sessions = revoked.len(), "revoked sessions denied again");
        Ok(())
    }

    async fn rehash(&self, user: &UserRecord, password: &str) {
        let result = match self.passwords.hash(password).await {
            Ok(hash) => self
                .store
                .set_password_hash(&user.id, &hash)
                .await
                .map_err(AuthError::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!(user.id = %user.id, "password re-hashed at current parameters")
            }
            Err(error) => tracing::warn!(user.id = %user.id, %error, "password re-hash failed"),
        }
    }

    fn outcome(&self, user: UserRecord, session_id: String, refresh_token: String) -> LoginOutcome {
        let issued = self
            .signer
            .sign(&user.id, &user.username, &session_id, now_secs());
        LoginOutcome {
            access_token: issued.token,
            expires_in: self.signer.ttl_secs(),
            refresh_token,
            refresh_expires_in: self.refresh_ttl_ms / 1000,
            session_id,
            user,
        }
    }
}

fn jwks_json(keys: &KeySet) -> Result<Arc<str>, AuthError> {
    let jwks: JwkSet = keys
        .jwks()
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    let json = serde_json::to_string(&jwks).map_err(|e| AuthError::Internal(e.to_string()))?;
    Ok(Arc::from(json))
}

/// A new opaque refresh token: 256 random bits, base64url.
fn new_refresh_token() -> String {
    natter_core::secret::random_token("nrt_")
}

/// Refresh tokens are stored only as their SHA-256 (they are random, so a fast hash is
/// enough).
fn hash_refresh(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

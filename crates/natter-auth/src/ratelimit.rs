//! Login rate limits: fixed windows per client address and per username, shared by every
//! replica through the key-value store.

use std::sync::Arc;
use std::time::Duration;

use natter_core::config::AuthConfig;
use natter_core::kv::Kv;

use crate::AuthError;

/// Counts login attempts and refuses them past the configured limits.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    kv: Arc<dyn Kv>,
    per_ip: u64,
    per_username: u64,
    window: Duration,
}

impl LoginLimiter {
    /// A limiter with `config`'s limits over `kv`.
    pub fn new(kv: Arc<dyn Kv>, config: &AuthConfig) -> Self {
        Self {
            kv,
            per_ip: config.login_limit_per_ip.into(),
            per_username: config.login_limit_per_username.into(),
            window: Duration::from_secs(config.login_limit_window_secs),
        }
    }

    /// Counts one attempt for `ip` and `login`; refuses it when either is over its limit.
    /// An empty `ip` (in-process callers) is only limited by login.
    #[tracing::instrument(name = "login.rate_limit", skip_all)]
    pub async fn attempt(&self, ip: &str, login: &str) -> Result<(), AuthError> {
        let mut retry_after = Duration::ZERO;
        let login_key = format!("natter:rl:login:user:{}", login.trim().to_lowercase());
        let user = self.kv.hit(&login_key, self.window).await?;
        if user.count > self.per_username {
            retry_after = user.resets_in;
        }
        if !ip.is_empty() {
            let ip_hit = self
                .kv
                .hit(&format!("natter:rl:login:ip:{ip}"), self.window)
                .await?;
            if ip_hit.count > self.per_ip {
                retry_after = retry_after.max(ip_hit.resets_in);
            }
        }
        if retry_after.is_zero() {
            return Ok(());
        }
        tracing::info!("login rate limit reached");
        Err(AuthError::RateLimited { retry_after })
    }
}

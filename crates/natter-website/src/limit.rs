//! Per-user write limits on the website API, counted in the shared key-value store so
//! every replica agrees.

use std::sync::Arc;
use std::time::Duration;

use natter_core::kv::Kv;

use crate::WebsiteError;

/// Counts a user's writes in fixed windows.
#[derive(Debug, Clone)]
pub struct WriteLimiter {
    kv: Arc<dyn Kv>,
    limit: u64,
    window: Duration,
}

impl WriteLimiter {
    /// `limit` writes per user per `window`.
    pub fn new(kv: Arc<dyn Kv>, limit: u32, window: Duration) -> Self {
        Self {
            kv,
            limit: limit.into(),
            window,
        }
    }

    /// Counts one write by `user`; refuses it past the limit.
    pub async fn write(&self, user: &str) -> Result<(), WebsiteError> {
        let hit = self
            .kv
            .hit(&format!("natter:rl:web:{user}"), self.window)
            .await
            .map_err(|e| WebsiteError::Unavailable(e.to_string()))?;
        if hit.count > self.limit {
            return Err(WebsiteError::RateLimited(hit.resets_in.as_secs().max(1)));
        }
        Ok(())
    }
}

//! Keeps a verifier's keys in step with the auth service's published key set, so services
//! other than auth verify tokens locally and pick up rotations without a restart.

use std::future::Future;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;

use super::TokenVerifier;
use crate::shutdown::Shutdown;

/// Fetches the key set, retrying with backoff (0.2 s doubling to 5 s) until `deadline`.
pub async fn fetch_with_retry<F, Fut>(fetch: &F, deadline: Duration) -> Result<JwkSet, String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<JwkSet, String>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(200);
    loop {
        match fetch().await {
            Ok(jwks) => return Ok(jwks),
            Err(error) if started.elapsed() + pause > deadline => {
                return Err(format!("no key set after {deadline:?}: {error}"));
            }
            Err(error) => tracing::info!(%error, "key set not available yet; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Re-fetches the key set every `every` until `shutdown`, replacing the verifier's keys
/// when it changed; a failed fetch keeps the current keys and is logged once until a
/// fetch succeeds again.
pub async fn follow<F, Fut>(verifier: TokenVerifier, fetch: F, every: Duration, shutdown: Shutdown)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<JwkSet, String>>,
{
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.clone().wait() => return,
        }
        match fetch().await {
            Ok(jwks) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("key set reachable again");
                }
                let mut kids: Vec<String> = jwks
                    .keys
                    .iter()
                    .filter_map(|k| k.common.key_id.clone())
                    .collect();
                let mut known = verifier.kids();
                kids.sort();
                known.sort();
                if kids != known {
                    tracing::info!(?kids, "verification keys changed");
                    verifier.set_keys(&jwks);
                }
            }
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "key set unreachable; keeping the current keys");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::kv::MemoryKv;
    use crate::token::{Denylist, KeySet};

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_key_set_answers() {
        let keys = KeySet::generate(0);
        let calls = AtomicUsize::new(0);
        let fetch = || {
            let attempt = calls.fetch_add(1, Ordering::SeqCst);
            let jwks = keys.jwks().unwrap();
            async move {
                if attempt < 3 {
                    Err("down".to_owned())
                } else {
                    Ok(jwks)
                }
            }
        };
        let jwks = fetch_with_retry(&fetch, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(jwks.keys.len(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let never = || async { Err::<JwkSet, _>("down".to_owned()) };
        assert!(
            fetch_with_retry(&never, Duration::from_secs(2))
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn follows_a_rotation() {
        let mut keys = KeySet::generate(0);
        let denylist = Denylist::new(Arc::new(MemoryKv::default()));
        let verifier = TokenVerifier::new(&keys.jwks().unwrap(), "i", "a", denylist);
        keys.rotate(10, 900);
        let published = keys.jwks().unwrap();
        let (stop, shutdown) = Shutdown::new();
        let task = tokio::spawn(follow(
            verifier.clone(),
            move || {
                let jwks = published.clone();
                async move { Ok(jwks) }
            },
            Duration::from_secs(60),
            shutdown,
        ));
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(verifier.kids().len(), 2);
        stop.trigger();
        task.await.unwrap();
    }
}

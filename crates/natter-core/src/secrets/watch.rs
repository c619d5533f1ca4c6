//! Loading secrets at start (retrying a source that is not reachable yet) and watching
//! them afterwards, so a rotation reaches the running process without a restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as channel;
use tokio::time::Instant;

use super::{SecretSource, Secrets, SecretsError, backoff};
use crate::shutdown::Shutdown;

/// Loads secrets, retrying with backoff while the source is unavailable and `deadline` has
/// not passed. A missing or invalid secret fails at once: waiting will not fix it.
pub async fn load_at_start(
    source: &dyn SecretSource,
    deadline: Duration,
) -> Result<Secrets, SecretsError> {
    let give_up = Instant::now() + deadline;
    let mut attempt = 0;
    loop {
        match source.load().await {
            Err(SecretsError::Unavailable(reason)) if Instant::now() < give_up => {
                if attempt == 0 {
                    tracing::warn!(%reason, "secrets unavailable; retrying");
                }
                tokio::time::sleep(backoff(attempt).min(give_up - Instant::now())).await;
                attempt += 1;
            }
            Err(SecretsError::Unavailable(reason)) => {
                return Err(SecretsError::Unavailable(format!(
                    "{reason} (gave up after {deadline:?})"
                )));
            }
            other => return other,
        }
    }
}

/// Re-reads `source` every `poll` and publishes each changed set to the returned receiver,
/// starting from `initial`. While the source fails the last good set stays in effect; a
/// warning is logged when it starts failing and a note when it recovers, not per poll.
pub fn watch(
    source: Arc<dyn SecretSource>,
    initial: Secrets,
    poll: Duration,
    shutdown: Shutdown,
) -> channel::Receiver<Secrets> {
    let (sender, receiver) = channel::channel(initial);
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.clone().wait() => return,
                _ = sender.closed() => return,
            }
            match source.load().await {
                Ok(secrets) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("secrets readable again");
                    }
                    sender.send_if_modified(|current| {
                        let changed = *current != secrets;
                        if changed {
                            *current = secrets;
                        }
                        changed
                    });
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "secrets unreadable; keeping the loaded ones");
                    }
                    failing = true;
                }
            }
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;

    /// A source whose answers the test scripts.
    #[derive(Debug, Default)]
    struct Scripted(Mutex<Vec<Result<Secrets, &'static str>>>);

    #[async_trait]
    impl SecretSource for Scripted {
        async fn load(&self) -> Result<Secrets, SecretsError> {
            let mut answers = self.0.lock().unwrap();
            let next = if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            };
            next.map_err(|e| SecretsError::Unavailable(e.into()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn start_retries_an_unavailable_source_then_gives_up() {
        let good = Secrets::generate();
        let source = Scripted(Mutex::new(vec![Err("down"), Err("down"), Ok(good.clone())]));
        let loaded = load_at_start(&source, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(loaded, good);
        let down = Scripted(Mutex::new(vec![Err("connection refused")]));
        let err = load_at_start(&down, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert!(err.to_string().contains("gave up after 2s"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn watch_keeps_the_last_good_set_through_failures() {
        let first = Secrets::generate();
        let second = Secrets::generate();
        let source = Arc::new(Scripted(Mutex::new(vec![
            Err("down"),
            Ok(first.clone()),
            Ok(second.clone()),
        ])));
        let (_trigger, shutdown) = Shutdown::new();
        let mut rx = watch(source, first.clone(), Duration::from_secs(1), shutdown);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            *rx.borrow_and_update(),
            first,
            "failure and no-change publish nothing"
        );
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), second);
    }
}

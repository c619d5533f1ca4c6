//! One shutdown signal (SIGTERM or Ctrl-C) that every server in the process waits on.

use tokio::sync::watch;

/// A cloneable handle that resolves when the process should stop.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// Triggers a [`Shutdown`] by hand (tests, or the signal listener).
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

impl Shutdown {
    /// A handle and its trigger.
    pub fn new() -> (ShutdownTrigger, Self) {
        let (sender, receiver) = watch::channel(false);
        (ShutdownTrigger { sender }, Self { receiver })
    }

    /// A handle triggered by SIGTERM or Ctrl-C.
    pub fn on_signals() -> Self {
        let (trigger, shutdown) = Self::new();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received");
            trigger.trigger();
        });
        shutdown
    }

    /// Resolves once shutdown has been triggered.
    pub async fn wait(mut self) {
        let _ = self.receiver.wait_for(|stopped| *stopped).await;
    }

    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Runs `tick` every `period` until shutdown (a late tick delays the next); a failed
    /// tick is logged as `what`'s and the next one tries again.
    pub async fn every<F, E>(
        self,
        period: std::time::Duration,
        what: &str,
        mut tick: impl FnMut() -> F,
    ) where
        F: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = self.clone().wait() => return,
            }
            if let Err(error) = tick().await {
                tracing::warn!(%error, "{what} tick failed; trying again");
            }
        }
    }
}

impl ShutdownTrigger {
    /// Starts the shutdown.
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

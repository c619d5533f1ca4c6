//! One shutdown signal (SIGTERM or Ctrl-C) that every server in the process waits on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A cloneable handle that resolves when the process should stop.
#[derive(Debug, Clone)]
pub struct Shutdown {
    signal: Arc<Signal>,
}

/// Triggers a [`Shutdown`] by hand (tests, or the signal listener); dropping it triggers
/// it too.
#[derive(Debug)]
pub struct ShutdownTrigger {
    signal: Arc<Signal>,
}

/// A flag and its waiters. Every open socket waits on it, so a waiter is kept small: a
/// `Notify` waiter (a `watch` receiver's `wait_for` took 184 bytes per socket).
#[derive(Debug, Default)]
struct Signal {
    triggered: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    /// A handle and its trigger.
    pub fn new() -> (ShutdownTrigger, Self) {
        let signal = Arc::new(Signal::default());
        let trigger = ShutdownTrigger {
            signal: signal.clone(),
        };
        (trigger, Self { signal })
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
    pub async fn wait(self) {
        // A waiter hears every trigger after its creation, polled or not: created before
        // the flag is read, it cannot miss one in between.
        let triggered = self.signal.notify.notified();
        if !self.is_triggered() {
            triggered.await;
        }
    }

    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        self.signal.triggered.load(Ordering::SeqCst)
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
        self.signal.triggered.store(true, Ordering::SeqCst);
        self.signal.notify.notify_waiters();
    }
}

impl Drop for ShutdownTrigger {
    fn drop(&mut self) {
        self.trigger();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits for `task` to end, failing after 5 s instead of hanging.
    async fn ends(task: tokio::task::JoinHandle<()>) {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        ended.expect("the waiter ends").unwrap();
    }

    #[tokio::test]
    async fn every_waiter_hears_the_trigger_before_or_after_it_waits() {
        let (trigger, shutdown) = Shutdown::new();
        let early = tokio::spawn(shutdown.clone().wait());
        tokio::task::yield_now().await;
        assert!(!shutdown.is_triggered());
        trigger.trigger();
        ends(early).await;
        assert!(shutdown.is_triggered());
        ends(tokio::spawn(shutdown.wait())).await;
    }

    #[tokio::test]
    async fn a_dropped_trigger_shuts_down() {
        let (trigger, shutdown) = Shutdown::new();
        let waiting = tokio::spawn(shutdown.clone().wait());
        drop(trigger);
        ends(waiting).await;
        assert!(shutdown.is_triggered());
    }
}

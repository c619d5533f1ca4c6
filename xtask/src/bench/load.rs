//! Load shapes (open loop at a fixed rate, closed loop with N callers) and the latency
//! report they produce.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Latencies of one run.
pub struct Report {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub missed: usize,
    pub achieved: f64,
}

impl Report {
    pub fn header() -> String {
        format!(
            "{:<14} {:>9} {:>10} {:>7} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "rpc", "target/s", "achieved/s", "ok", "errors", "missed", "p50", "p90", "p99", "max"
        )
    }

    pub fn line(&self, name: &str, target: f64) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| -> String {
            match quantile(&sorted, q) {
                Some(at) => format!("{:.3}ms", at.as_secs_f64() * 1000.0),
                None => "-".into(),
            }
        };
        format!(
            "{:<14} {:>9.0} {:>10.1} {:>7} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}",
            name,
            target,
            self.achieved,
            sorted.len(),
            self.errors,
            self.missed,
            at(0.50),
            at(0.90),
            at(0.99),
            at(1.0)
        )
    }
}

/// Offers `rate` requests per second for `duration`, each on its own task, whatever the
/// latency of earlier ones (so queueing shows in the percentiles).
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, concurrency: usize, call: F) -> Report
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut missed = 0;
    while started.elapsed() < duration {
        ticker.tick().await;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            missed += 1;
            continue;
        };
        let request = call();
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            let outcome = request.await;
            drop(permit);
            (begun.elapsed(), outcome.is_ok())
        }));
    }
    collect(tasks, started, missed).await
}

/// `callers` loops issuing requests back to back for `duration`: the throughput ceiling.
pub async fn closed_loop<F, Fut>(duration: Duration, callers: usize, call: F) -> Report
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let started = Instant::now();
    let workers: Vec<_> = (0..callers)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while started.elapsed() < duration {
                    let begun = Instant::now();
                    let ok = call().await.is_ok();
                    seen.push((begun.elapsed(), ok));
                }
                seen
            })
        })
        .collect();
    let mut report = Report {
        latencies: Vec::new(),
        errors: 0,
        missed: 0,
        achieved: 0.0,
    };
    for worker in workers {
        for (latency, ok) in worker.await.unwrap_or_default() {
            report.add(latency, ok);
        }
    }
    report.achieved = report.latencies.len() as f64 / started.elapsed().as_secs_f64();
    report
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(Duration, bool)>>,
    started: Instant,
    missed: usize,
) -> Report {
    let mut report = Report {
        latencies: Vec::with_capacity(tasks.len()),
        errors: 0,
        missed,
        achieved: 0.0,
    };
    for task in tasks {
        if let Ok((latency, ok)) = task.await {
            report.add(latency, ok);
        }
    }
    report.achieved = report.latencies.len() as f64 / started.elapsed().as_secs_f64();
    report
}

impl Report {
    fn add(&mut self, latency: Duration, ok: bool) {
        if ok {
            self.latencies.push(latency);
        } else {
            self.errors += 1;
        }
    }
}

/// The `q` quantile (0–1) of `sorted` latencies, by the nearest-rank method.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    let index = (sorted.len() as f64 * q).ceil() as usize;
    sorted.get(index.clamp(1, sorted.len().max(1)) - 1).copied()
}

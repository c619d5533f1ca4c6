//! What a benchmarked process costs, read from /proc: CPU seconds over an interval (its
//! own, and PostgreSQL's and Redis's when they serve it) and resident memory; and the
//! percentile of sorted samples.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used over an interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// By the server process.
    pub server: f64,
    /// By PostgreSQL and Redis processes (zero when not counted).
    pub dependencies: f64,
    pid: u32,
    count_dependencies: bool,
}

impl Usage {
    /// Starts counting `pid` (and PostgreSQL and Redis when `dependencies`).
    pub fn start(pid: u32, dependencies: bool) -> Self {
        Self {
            server: cpu_seconds(pid),
            dependencies: if dependencies {
                dependencies_seconds()
            } else {
                0.0
            },
            pid,
            count_dependencies: dependencies,
        }
    }

    /// The server's CPU seconds and its dependencies'.
    pub fn total(&self) -> f64 {
        self.server + self.dependencies
    }

    /// The CPU seconds used since [`Usage::start`].
    pub fn stop(self) -> Self {
        let dependencies = match self.count_dependencies {
            true => dependencies_seconds() - self.dependencies,
            false => 0.0,
        };
        Self {
            server: cpu_seconds(self.pid) - self.server,
            dependencies,
            ..self
        }
    }
}

/// User + system CPU seconds of `pid` so far (its threads included).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

/// CPU seconds of every `postgres` and `redis-server` process so far.
fn dependencies_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            matches!(comm.trim(), "postgres" | "redis-server")
        })
        .map(cpu_seconds)
        .sum()
}

/// The resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `q` quantile of `sorted` samples, by [`super::load::quantile`]'s nearest rank
/// (zero when there are none).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    super::load::quantile(sorted, q).unwrap_or_default()
}

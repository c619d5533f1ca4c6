//! What a benchmarked process costs, read from /proc: CPU seconds over an interval (its
//! own, and PostgreSQL's and Redis's when they serve it) and resident memory; and the
//! percentile of sorted samples.

use std::collections::HashMap;
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
}

/// CPU being counted from [`Counting::start`] until [`Counting::stop`].
#[derive(Debug)]
pub struct Counting {
    pid: u32,
    server: f64,
    /// Each PostgreSQL and Redis process's CPU seconds at the start, when counted.
    dependencies: Option<HashMap<u32, f64>>,
}

impl Usage {
    /// The server's CPU seconds and its dependencies'.
    pub fn total(&self) -> f64 {
        self.server + self.dependencies
    }
}

impl Counting {
    /// Starts counting `pid` (and PostgreSQL and Redis when `dependencies`).
    pub fn start(pid: u32, dependencies: bool) -> Self {
        Self {
            pid,
            server: cpu_seconds(pid),
            dependencies: dependencies.then(dependencies_seconds),
        }
    }

    /// The CPU seconds used since [`Counting::start`]. Dependencies are counted process by
    /// process: one that ended meanwhile (a backend of the previous round's server, say)
    /// must not take its whole life's CPU off the sum, and one that started counts from
    /// zero.
    pub fn stop(self) -> Usage {
        let dependencies =
            (self.dependencies).map_or(0.0, |before| used_since(&before, &dependencies_seconds()));
        Usage {
            server: cpu_seconds(self.pid) - self.server,
            dependencies,
        }
    }
}

/// CPU seconds the processes of `now` used since `before` (by pid): a process that
/// ended is left out, one that started counts from zero (and one whose pid an ended
/// process had, at worst as having used none).
fn used_since(before: &HashMap<u32, f64>, now: &HashMap<u32, f64>) -> f64 {
    (now.iter())
        .map(|(pid, seconds)| (seconds - before.get(pid).copied().unwrap_or(0.0)).max(0.0))
        .sum()
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

/// CPU seconds so far of every `postgres` and `redis-server` process, by pid.
fn dependencies_seconds() -> HashMap<u32, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            matches!(comm.trim(), "postgres" | "redis-server")
        })
        .map(|pid| (pid, cpu_seconds(pid)))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_ended_takes_nothing_off_and_a_new_one_counts_from_zero() {
        let before = HashMap::from([(1, 10.0), (2, 40.0)]);
        // 1 used 0.5 s, 2 ended (its 40 s are not subtracted), 3 started and used 0.25 s.
        let now = HashMap::from([(1, 10.5), (3, 0.25)]);
        assert_eq!(used_since(&before, &now), 0.75);
        // 2's pid taken by a process that has used 1 s: nothing is subtracted.
        let reused = HashMap::from([(1, 10.5), (2, 1.0)]);
        assert_eq!(used_since(&before, &reused), 0.5);
    }
}

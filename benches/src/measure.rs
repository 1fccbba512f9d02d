//! What one measured chunk records, CPU time from `getrusage`, and the summary figures.

use std::time::Duration;

/// The operations measured, one S3 object each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    Set,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Delete => "delete",
        }
    }
}

/// One contender's run of one operation over a slice of keys.
pub struct Chunk {
    /// Wall-clock time of each operation, in order.
    pub latencies_ns: Vec<u64>,
    /// User + system CPU time of the client process over the whole loop.
    pub cpu_ns: u64,
    /// The part of it spent on the calling thread, where known (in-process contenders): the
    /// rest ran on other threads, such as the Tokio workers of the wasmtime host.
    pub thread_cpu_ns: Option<u64>,
}

/// User + system CPU time of this whole process (every thread: the wasmtime host's and
/// hyper's Tokio workers included). The S3 server runs in another process, so this is the
/// client's cost alone.
pub fn process_cpu_ns() -> u64 {
    rusage_ns(libc::RUSAGE_SELF)
}

/// User + system CPU time of the calling thread alone.
pub fn thread_cpu_ns() -> u64 {
    rusage_ns(libc::RUSAGE_THREAD)
}

fn rusage_ns(who: libc::c_int) -> u64 {
    // SAFETY: `rusage` is plain data; getrusage fills the struct we own and reads nothing.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid pointer to a live, writable `rusage`.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    assert_eq!(rc, 0, "getrusage({who}) failed");
    timeval_ns(usage.ru_utime) + timeval_ns(usage.ru_stime)
}

fn timeval_ns(tv: libc::timeval) -> u64 {
    (tv.tv_sec as u64) * 1_000_000_000 + (tv.tv_usec as u64) * 1_000
}

/// Median, p99, throughput and CPU of one contender × operation × size.
#[derive(Clone, Debug)]
pub struct Summary {
    pub iterations: usize,
    pub median_ns: f64,
    pub p99_ns: f64,
    pub mean_ns: f64,
    /// One client doing one operation after another: iterations / (sum of latencies).
    pub ops_per_s: f64,
    pub cpu_ns_per_op: f64,
}

impl Summary {
    pub fn of(latencies_ns: &[u64], cpu_ns: u64) -> Summary {
        let mut sorted = latencies_ns.to_vec();
        sorted.sort_unstable();
        let n = sorted.len().max(1);
        let total: u64 = sorted.iter().sum();
        Summary {
            iterations: sorted.len(),
            median_ns: median(&sorted),
            p99_ns: percentile(&sorted, 0.99),
            mean_ns: total as f64 / n as f64,
            ops_per_s: if total == 0 {
                0.0
            } else {
                sorted.len() as f64 * 1e9 / total as f64
            },
            cpu_ns_per_op: cpu_ns as f64 / n as f64,
        }
    }
}

fn median(sorted: &[u64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0,
    }
}

/// Nearest-rank percentile.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// `812 µs`, `1.23 ms`, `45.6 ms`, `1.20 s`.
pub fn fmt_ns(ns: f64) -> String {
    let d = Duration::from_nanos(ns.max(0.0) as u64);
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_figures() {
        let lat: Vec<u64> = (1..=100).collect();
        let s = Summary::of(&lat, 1_000);
        assert_eq!(s.median_ns, 50.5);
        assert_eq!(s.p99_ns, 99.0);
        assert_eq!(s.cpu_ns_per_op, 10.0);
        assert_eq!(Summary::of(&[3, 1, 2], 0).median_ns, 2.0);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ns(812_000.0), "812 µs");
        assert_eq!(fmt_ns(1_234_000.0), "1.23 ms");
        assert_eq!(fmt_ns(45_600_000.0), "45.6 ms");
    }
}

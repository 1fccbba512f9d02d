//! `memory`: the peak memory of this process while it sets, then gets, one large value through
//! the component, against the S3 server the global flags name (run the server as another
//! process, so that its buffers are not counted here).
//!
//! Peak RSS is the kernel's high-water mark (`VmHWM` in /proc/self/status), reset before each
//! operation (`5` written to /proc/self/clear_refs), so Linux only. Each operation runs in a
//! store of its own, as a request would, and is measured from the same baseline: the runtime
//! loaded and a store opened and warmed up (one small set and get), before the value exists.
//! The value buffer the caller holds for `set`, and the one `get` returns, count in the peak.

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use s3_result_store_host::{ConfigInput, Error, Runtime};

pub struct Options {
    pub size: u64,
    pub key: Option<String>,
    /// Whether `runtime` uses the pooling allocator (for the report).
    pub pooling: bool,
}

const MIB: f64 = (1 << 20) as f64;

pub fn run(runtime: &Runtime, config: &ConfigInput, options: &Options) -> Result<ExitCode, Error> {
    let size = usize::try_from(options.size).map_err(|_| usage("--size is too large"))?;
    let key = options.key.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("s3rs-memory/{nanos:x}-{}", std::process::id())
    });
    // A store's max-value-bytes must admit the value; unless set, ask for just enough.
    let mut config = config.clone();
    if config.max_value_bytes.is_none()
        && options.size > s3_result_store::config::DEFAULT_MAX_VALUE_BYTES
    {
        config.max_value_bytes = Some(options.size);
    }

    // Baseline: everything but the value in place, including a connection to the server.
    {
        let mut warm = runtime.open(&config)?;
        warm.set(&key, b"warm-up")?;
        warm.get(&key)?;
    }
    let baseline = rss()?;
    println!(
        "value {:.1} MiB ({size} bytes) under {key:?}",
        size as f64 / MIB
    );
    println!(
        "baseline RSS {:.1} MiB (runtime loaded, {} allocator, a store opened and warmed up)",
        baseline as f64 / MIB,
        if options.pooling {
            "pooling"
        } else {
            "on-demand"
        }
    );
    println!(
        "\n{:<5}{:>14}{:>18}{:>12}{:>16}{:>10}",
        "op", "peak RSS", "peak - baseline", "x value", "guest memory", "time"
    );

    // set: the caller's value, the component's copy of it, and what is in flight.
    let mut value = vec![0u8; size];
    Pattern::new().fill(&mut value);
    let mut store = runtime.open(&config)?;
    reset_peak()?;
    let started = Instant::now();
    store.set(&key, &value)?;
    let elapsed = started.elapsed();
    let set_peak = peak()?;
    let set_guest = store.guest_memory_peak();
    drop(store);
    drop(value);
    let set_ratio = report("set", set_peak, baseline, size, set_guest, elapsed);

    // get: the component's copy and the one handed back to the caller.
    let mut store = runtime.open(&config)?;
    reset_peak()?;
    let started = Instant::now();
    let got = store.get(&key)?;
    let elapsed = started.elapsed();
    let get_peak = peak()?;
    let get_guest = store.guest_memory_peak();
    drop(store);
    let get_ratio = report("get", get_peak, baseline, size, get_guest, elapsed);

    let intact = got.as_deref().is_some_and(|got| matches(got, size));
    drop(got);
    if let Ok(mut store) = runtime.open(&config) {
        let _ = store.delete(&key);
    }
    println!(
        "\nthe value read back is {}",
        if intact {
            "byte-identical to the one set"
        } else {
            "NOT the one set"
        }
    );
    let worst = set_ratio.max(get_ratio);
    // The caller's buffer plus the copy that crosses the component boundary, and a little.
    const BUDGET: f64 = 2.1;
    println!(
        "peak - baseline is at most {worst:.2}x the value: {} the {BUDGET}x budget",
        if worst <= BUDGET { "within" } else { "OVER" }
    );
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn report(
    op: &str,
    peak: u64,
    baseline: u64,
    size: usize,
    guest: usize,
    elapsed: std::time::Duration,
) -> f64 {
    let over = peak.saturating_sub(baseline);
    let ratio = over as f64 / size.max(1) as f64;
    println!(
        "{op:<5}{:>10.1} MiB{:>14.1} MiB{:>11.2}x{:>12.1} MiB{:>10.2?}",
        peak as f64 / MIB,
        over as f64 / MIB,
        ratio,
        guest as f64 / MIB,
        elapsed
    );
    ratio
}

/// Deterministic, incompressible bytes (xorshift64*), so that no page is shared or zero.
struct Pattern(u64);

impl Pattern {
    fn new() -> Pattern {
        Pattern(0x9E37_79B9_7F4A_7C15)
    }

    /// The next `buf.len()` bytes of the stream; all but the last call take multiples of 8.
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let state = &mut self.0;
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Whether `got` is the pattern's first `size` bytes, checked a window at a time rather than
/// against a second copy of the whole value.
fn matches(got: &[u8], size: usize) -> bool {
    if got.len() != size {
        return false;
    }
    let mut pattern = Pattern::new();
    let mut expected = vec![0u8; size.min(1 << 20)];
    got.chunks(expected.len().max(1)).all(|window| {
        let expected = &mut expected[..window.len()];
        pattern.fill(expected);
        window == expected
    })
}

fn status_kib(field: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| crate::io_error("cannot read /proc/self/status (Linux only)", e))?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
        })
        .ok_or_else(|| usage(&format!("no {field} in /proc/self/status")))
}

fn rss() -> Result<u64, Error> {
    Ok(status_kib("VmRSS")? * 1024)
}

fn peak() -> Result<u64, Error> {
    Ok(status_kib("VmHWM")? * 1024)
}

fn reset_peak() -> Result<(), Error> {
    std::fs::write("/proc/self/clear_refs", "5")
        .map_err(|e| crate::io_error("cannot reset the peak RSS (/proc/self/clear_refs)", e))
}

fn usage(message: &str) -> Error {
    Error::Runtime(wasmtime::Error::msg(message.to_owned()))
}

/// `64MiB`, `1.5GiB`, `100MB`, `4096`: bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 64MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => MIB,
        "mb" => 1e6,
        "g" | "gib" => MIB * 1024.0,
        "gb" => 1e9,
        other => return Err(format!("unknown unit {other:?} (use B, KiB, MiB, GiB)")),
    };
    Ok((number * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn the_check_regenerates_the_pattern() {
        for size in [0, 7, 8, 1 << 20, (1 << 20) + 13, 3 << 20] {
            let mut value = vec![0u8; size];
            Pattern::new().fill(&mut value);
            assert!(matches(&value, size), "{size}");
            if size > 0 {
                value[size / 2] ^= 1;
                assert!(!matches(&value, size), "{size}");
            }
        }
    }
}

//! `coldstart`: what it costs to load the component and to open a store, measured here and now.
//!
//! Loading: compiling the `.wasm` (Cranelift, no cache) against deserializing a component that
//! `Runtime::precompile` compiled beforehand. Opening a store: a fresh instance of the
//! component and one `result-store` resource in it (the config is resolved, nothing is sent),
//! with wasmtime's on-demand instance allocator and with its pooling allocator.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use s3_result_store_host::{ConfigInput, Error, PoolingOptions, Runtime, RuntimeOptions};

pub struct Options {
    pub iterations: usize,
    pub compile_runs: usize,
    pub load_runs: usize,
    pub pooling: PoolingOptions,
}

pub fn run(component: &Path, options: &Options) -> Result<ExitCode, Error> {
    let bytes = std::fs::read(component)
        .map_err(|e| crate::io_error(&format!("cannot read {}", component.display()), e))?;
    println!("component {} ({} bytes)", component.display(), bytes.len());

    println!("\nload{:>47}{:>8}", "median", "runs");
    let no_cache = RuntimeOptions::new().compilation_cache(false);
    let compile = measure(options.compile_runs.max(1), || {
        Runtime::from_bytes_with(&bytes, &no_cache).map(drop)
    })?;
    row("compile the .wasm (Cranelift, no cache)", &compile);
    let cached = RuntimeOptions::new();
    // The first load fills wasmtime's on-disk cache, if it is not filled already.
    Runtime::from_bytes_with(&bytes, &cached)?;
    let cache_hit = measure(options.load_runs.max(1), || {
        Runtime::from_bytes_with(&bytes, &cached).map(drop)
    })?;
    row("load the .wasm, wasmtime cache hit", &cache_hit);

    let started = Instant::now();
    let precompiled = Runtime::precompile(component)?;
    let precompile_time = started.elapsed();
    println!(
        "  {:<42}{:>9}{:>8}   {} bytes",
        "precompile (compile + serialize)",
        human(precompile_time),
        1,
        precompiled.len()
    );
    let plain = RuntimeOptions::new();
    let pooling = RuntimeOptions::new().pooling(options.pooling);
    let load = measure(options.load_runs.max(1), || {
        Runtime::from_precompiled(&precompiled, &plain).map(drop)
    })?;
    row("load precompiled (check + deserialize)", &load);
    let load_pooling = measure(options.load_runs.max(1), || {
        Runtime::from_precompiled(&precompiled, &pooling).map(drop)
    })?;
    row("  same, pooling allocator", &load_pooling);

    let config = ConfigInput {
        // Never contacted: opening a store resolves its config and sends nothing.
        endpoint_url: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        access_key_id: Some("AKIDCOLDSTART".into()),
        secret_access_key: Some("coldstart-secret".into()),
        bucket_name: Some("coldstart".into()),
        ..ConfigInput::default()
    };
    println!(
        "\nopen a store: instantiate + result-store.open, no network ({} runs each)",
        options.iterations
    );
    println!(
        "  {:<12}{:>12}{:>10}{:>10}{:>18}",
        "allocator", "open median", "p99", "mean", "open+drop median"
    );
    for (name, runtime_options) in [("on-demand", &plain), ("pooling", &pooling)] {
        let runtime = Runtime::from_precompiled(&precompiled, runtime_options)?;
        let (open, cycle) = instantiations(&runtime, &config, options.iterations)?;
        println!(
            "  {:<12}{:>12}{:>10}{:>10}{:>18}",
            name,
            human(open.median),
            human(open.p99),
            human(open.mean),
            human(cycle.median)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens and drops a store `iterations` times (after a warm-up): the time to open, and to
/// open and drop.
fn instantiations(
    runtime: &Runtime,
    config: &ConfigInput,
    iterations: usize,
) -> Result<(Stats, Stats), Error> {
    for _ in 0..iterations.clamp(1, 200) {
        drop(runtime.open(config)?);
    }
    let mut open = Vec::with_capacity(iterations);
    let mut cycle = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        let store = runtime.open(config)?;
        let opened = started.elapsed();
        drop(store);
        cycle.push(started.elapsed());
        open.push(opened);
    }
    Ok((Stats::of(open), Stats::of(cycle)))
}

fn measure(runs: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<Stats, Error> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed());
    }
    Ok(Stats::of(times))
}

fn row(what: &str, stats: &Stats) {
    println!("  {what:<42}{:>9}{:>8}", human(stats.median), stats.runs);
}

struct Stats {
    runs: usize,
    median: Duration,
    p99: Duration,
    mean: Duration,
}

impl Stats {
    fn of(mut times: Vec<Duration>) -> Stats {
        times.sort();
        let runs = times.len();
        let at = |q: f64| times[((runs - 1) as f64 * q).round() as usize];
        let total: Duration = times.iter().sum();
        Stats {
            runs,
            median: at(0.5),
            p99: at(0.99),
            mean: total / u32::try_from(runs).unwrap_or(u32::MAX),
        }
    }
}

fn human(d: Duration) -> String {
    let nanos = d.as_nanos() as f64;
    if nanos >= 1e9 {
        format!("{:.2} s", nanos / 1e9)
    } else if nanos >= 1e6 {
        format!("{:.2} ms", nanos / 1e6)
    } else {
        format!("{:.1} µs", nanos / 1e3)
    }
}

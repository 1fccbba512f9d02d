//! `bench`: the component under wasmtime against a native floor, a native SDK and Celery's own
//! S3 backend, all on one S3 server, in one run.
//!
//! Contenders take turns in rounds (each round, every contender runs a slice of the
//! iterations of every operation, the order rotating), so machine noise spreads over all of
//! them instead of landing on whichever ran last. Figures: median and p99 latency, operations
//! per second (one client, one operation after another) and the client's CPU time per
//! operation (user + system of the client process; the S3 server must run in another
//! process). Writes a markdown table to stdout, and `results.csv`, `results.json` and
//! `chart.svg` to the output directory. Nothing is asserted: it is a measuring tool.
//!
//! `scripts/bench` starts Garage, builds everything and runs this; see the README.

mod aws_sdk;
mod celery;
mod chart;
mod clients;
mod latency;
mod measure;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use clap::Parser;
use s3_result_store::ConfigInput;
use s3_result_store_host::{Runtime, default_component_path, store_only_component_path};
use s3_result_store_tests::tls_relay::{TestCa, TlsRelay};

use crate::aws_sdk::AwsSdk;
use crate::clients::{Client, Component, Contender, Floor, InProcess, Sdk, ServerArgs};
use crate::measure::{Op, process_cpu_ns};
use crate::report::{Batch, Measured, Report};

/// Benchmarks the s3-result-store component against a native floor, aws-sdk-s3, object_store and
/// Celery's S3Backend on one S3 server. The server must run in another process.
#[derive(Parser)]
#[command(name = "bench")]
struct Args {
    #[command(flatten)]
    s3: ServerArgs,
    /// What the server is, for the report (e.g. "Garage 2.5.0").
    #[arg(long, env = "S3RS_BENCH_SERVER", default_value = "unnamed S3 server")]
    server: String,
    /// Key prefix of everything the benchmark writes.
    #[arg(long, default_value = "s3rs-bench/")]
    prefix: String,
    /// Measured operations per contender and operation, 1 KiB values.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Measured operations per contender and operation, 64 KiB values (0: skip the size).
    #[arg(long, default_value_t = 500)]
    iterations_64k: usize,
    /// Measured operations per contender and operation, 1 MiB values (0: skip the size).
    #[arg(long, default_value_t = 100)]
    iterations_1m: usize,
    /// Measured operations per contender and operation, 8 MiB values (0: skip the size).
    #[arg(long, default_value_t = 40)]
    iterations_8m: usize,
    /// Unmeasured operations per contender and operation before measuring (1 KiB, 64 KiB).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Unmeasured operations per contender and operation before measuring (1 MiB and 8 MiB).
    #[arg(long, default_value_t = 3)]
    warmup_8m: usize,
    /// Rounds the iterations are spread over; contenders take turns within each round.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Keys read by one `get_many`, against as many sequential `get`s.
    #[arg(long, default_value_t = 100)]
    batch_keys: usize,
    /// Measured repetitions of the batch comparison (each: one `get_many`, one sequence).
    #[arg(long, default_value_t = 20)]
    batch_repeats: usize,
    /// Measured operations per contender and operation, 1 KiB values over HTTPS through a TLS
    /// front on loopback (0: skip).
    #[arg(long, default_value_t = 1000)]
    iterations_https: usize,
    /// The same for 64 KiB values, get and set (0: skip).
    #[arg(long, default_value_t = 300)]
    iterations_https_64k: usize,
    /// The same for 1 MiB values, get and set (0: skip).
    #[arg(long, default_value_t = 60)]
    iterations_https_1m: usize,
    /// The same for 8 MiB values, get and set (0: skip).
    #[arg(long, default_value_t = 20)]
    iterations_https_8m: usize,
    /// Also compare the batch through a relay adding this round-trip time, as over a network
    /// (0: loopback only).
    #[arg(long, default_value_t = 2)]
    batch_rtt_ms: u64,
    /// Python with celery and boto3 (made by `scripts/setup --test`).
    #[arg(long, env = "S3RS_PYTHON", default_value_os_t = default_python())]
    python: PathBuf,
    /// Leave Celery's S3Backend out.
    #[arg(long)]
    no_celery: bool,
    /// Where results.csv, results.json and chart.svg go.
    #[arg(long, default_value_os_t = default_out_dir())]
    out: PathBuf,
}

fn workspace_dir() -> PathBuf {
    let bench_crate = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    bench_crate.parent().unwrap_or(bench_crate).to_path_buf()
}

fn default_python() -> PathBuf {
    workspace_dir().join(".venv/bin/python")
}

fn default_out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"))
        .join("bench")
}

/// One value size and what is measured at it.
struct Size {
    bytes: usize,
    label: &'static str,
    key_label: &'static str,
    iterations: usize,
    warmup: usize,
    ops: &'static [Op],
}

/// A contender with its names: `id` for files, `label` for people.
pub struct Entry {
    pub id: &'static str,
    pub label: String,
    contender: Box<dyn Contender>,
}

/// The same bytes for every contender (Celery's `get` decodes UTF-8, so ASCII).
pub fn value(size: usize) -> Bytes {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    ALPHABET.iter().copied().cycle().take(size).collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.rounds > 0, "--rounds must be at least 1");
    let started = Instant::now();
    let mut report = Report::new(&args.server, &args.s3.endpoint);
    let input = args.s3.config();

    // Untimed work (preparing and restoring objects, cleaning up) goes through a floor client
    // of its own, so that no measured client's connection pool is touched by it.
    let mut setup = Floor::new(&input)?;

    let component_path = default_component_path();
    eprintln!("bench: loading the component {}", component_path.display());
    for (build, path) in [
        ("default", component_path.clone()),
        ("store-only", store_only_component_path()),
    ] {
        // The store-only build is only reported: every contender here uses the default one.
        if let Ok(meta) = std::fs::metadata(&path) {
            report.component_sizes.push((build, meta.len()));
        }
    }
    let pooled = Runtime::load(&component_path)?;
    let unpooled = Runtime::load(&component_path)?.with_connection_pool(false);

    let mut entries = vec![
        Entry {
            id: "component",
            label: "component (pool)".into(),
            contender: Box::new(InProcess(Component::open(&pooled, &input)?)),
        },
        Entry {
            id: "component-nopool",
            label: "component (no pool)".into(),
            contender: Box::new(InProcess(Component::open(&unpooled, &input)?)),
        },
        Entry {
            id: "floor",
            label: "floor (hyper + sigv4)".into(),
            contender: Box::new(InProcess(Floor::new(&input)?)),
        },
        Entry {
            id: "aws-sdk-s3",
            label: "aws-sdk-s3 1.x".into(),
            contender: Box::new(InProcess(AwsSdk::new(&input, None)?)),
        },
        Entry {
            id: "object_store",
            label: "object_store 0.13".into(),
            contender: Box::new(InProcess(Sdk::new(&input, None)?)),
        },
    ];
    if !args.no_celery {
        let celery = celery_entry(&args, &input, None)?;
        report.celery_info = Some(celery.1);
        entries.push(celery.0);
    }

    // Every contender must round-trip a value before anything is timed: what it sets is
    // what another client reads, and what it deletes is gone.
    let probe = format!("{}probe", args.prefix);
    let probe_value = value(1024);
    for entry in &mut entries {
        for op in [Op::Set, Op::Get, Op::Delete] {
            entry
                .contender
                .run(op, std::slice::from_ref(&probe), &probe_value)
                .with_context(|| format!("{}: {} of a probe object", entry.label, op.name()))?;
            match op {
                Op::Set => ensure!(
                    setup.get(&probe)?.as_ref() == Some(&probe_value),
                    "{}: set stored other bytes",
                    entry.label
                ),
                Op::Delete => ensure!(
                    setup.get(&probe)?.is_none(),
                    "{}: delete left the object",
                    entry.label
                ),
                Op::Get => {}
            }
        }
    }

    let sizes = [
        Size {
            bytes: 1024,
            label: "1 KiB",
            key_label: "1k",
            iterations: args.iterations,
            warmup: args.warmup,
            ops: &[Op::Set, Op::Get, Op::Delete],
        },
        Size {
            bytes: 64 << 10,
            label: "64 KiB",
            key_label: "64k",
            iterations: args.iterations_64k,
            warmup: args.warmup,
            ops: &[Op::Set, Op::Get],
        },
        Size {
            bytes: 1 << 20,
            label: "1 MiB",
            key_label: "1m",
            iterations: args.iterations_1m,
            warmup: args.warmup_8m,
            ops: &[Op::Set, Op::Get],
        },
        Size {
            bytes: 8 << 20,
            label: "8 MiB",
            key_label: "8m",
            iterations: args.iterations_8m,
            warmup: args.warmup_8m,
            ops: &[Op::Set, Op::Get],
        },
    ];
    for size in sizes.iter().filter(|s| s.iterations > 0) {
        let measured = measure_size(&args, size, &mut setup, &mut entries)?;
        report.results.extend(measured);
    }

    if args.iterations_https > 0
        || args.iterations_https_64k > 0
        || args.iterations_https_1m > 0
        || args.iterations_https_8m > 0
    {
        report.https = measure_https(&args, &input, &mut setup)?;
    }

    report
        .batches
        .push(measure_batch(&args, &pooled, &input, &mut setup, 0)?);
    if args.batch_rtt_ms > 0 {
        let upstream = upstream(&args, "the batch over a relay")?;
        let rtt = std::time::Duration::from_millis(args.batch_rtt_ms);
        let relay = latency::LatencyRelay::start(upstream, rtt)?;
        let through = ConfigInput {
            endpoint_url: Some(relay.endpoint()),
            ..input.clone()
        };
        let batch = measure_batch(&args, &pooled, &through, &mut setup, args.batch_rtt_ms)?;
        report.batches.push(batch);
    }
    report.contenders = entries.iter().map(|e| (e.id, e.label.clone())).collect();
    report.parameters = serde_json::json!({
        "iterations_1k": args.iterations,
        "iterations_64k": args.iterations_64k,
        "iterations_1m": args.iterations_1m,
        "iterations_8m": args.iterations_8m,
        "warmup": args.warmup,
        "warmup_8m": args.warmup_8m,
        "rounds": args.rounds,
        "batch_keys": args.batch_keys,
        "batch_repeats": args.batch_repeats,
        "batch_rtt_ms": args.batch_rtt_ms,
        "iterations_https": args.iterations_https,
        "iterations_https_64k": args.iterations_https_64k,
        "iterations_https_1m": args.iterations_https_1m,
        "iterations_https_8m": args.iterations_https_8m,
        "bucket": args.s3.bucket,
        "prefix": args.prefix,
    });
    drop(entries);
    report.finish(started.elapsed());

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    print!("{}", report.markdown());
    let csv = args.out.join("results.csv");
    let json = args.out.join("results.json");
    let svg = args.out.join("chart.svg");
    std::fs::write(&csv, report.csv())?;
    std::fs::write(&json, serde_json::to_string_pretty(&report.json())?)?;
    chart::draw(&report, &svg)?;
    println!(
        "\nwrote {}, {} and {}",
        csv.display(),
        json.display(),
        svg.display()
    );
    Ok(())
}

/// A progress bar over the rounds on a terminal; elsewhere (logs, CI) a line per round.
fn rounds_bar(rounds: usize, label: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(rounds as u64).with_message(format!("{label} rounds"));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("bench: {msg} {bar:30} {pos}/{len} ({eta} left)")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// Prepares the objects of one size, warms every contender up, then measures in rounds.
fn measure_size(
    args: &Args,
    size: &Size,
    setup: &mut Floor,
    entries: &mut [Entry],
) -> Result<Vec<Measured>> {
    let value = value(size.bytes);
    let keys: Vec<String> = (0..size.iterations)
        .map(|i| format!("{}{}/{i:06}", args.prefix, size.key_label))
        .collect();
    let warm: Vec<String> = (0..size.warmup)
        .map(|i| format!("{}{}/warm-{i:04}", args.prefix, size.key_label))
        .collect();
    eprintln!(
        "bench: {}: preparing {} objects",
        size.label,
        keys.len() + warm.len()
    );
    // Every set overwrites an existing object and every get finds one.
    for key in keys.iter().chain(&warm) {
        setup.set(key, &value)?;
    }

    eprintln!("bench: {}: warming up", size.label);
    for entry in entries.iter_mut() {
        for &op in size.ops {
            if op == Op::Delete {
                restore(setup, &warm, &value)?;
            }
            entry.contender.run(op, &warm, &value)?;
        }
    }

    let mut results: Vec<Measured> = entries
        .iter()
        .flat_map(|e| {
            size.ops
                .iter()
                .map(move |&op| Measured::new(e.id, &e.label, op, size.bytes))
        })
        .collect();
    let chunk = size.iterations.div_ceil(args.rounds);
    let n = entries.len();
    let rounds = keys.len().div_ceil(chunk);
    let bar = rounds_bar(rounds, size.label);
    for (round, slice) in keys.chunks(chunk).enumerate() {
        let t0 = Instant::now();
        for &op in size.ops {
            for turn in 0..n {
                let index = (turn + round) % n;
                if op == Op::Delete {
                    // Each contender deletes objects that exist.
                    restore(setup, slice, &value)?;
                }
                let entry = &mut entries[index];
                let measured = entry
                    .contender
                    .run(op, slice, &value)
                    .with_context(|| format!("{}: {} {}", entry.label, op.name(), size.label))?;
                let slot = results
                    .iter_mut()
                    .find(|m| m.id == entry.id && m.op == op)
                    .context("no result slot")?;
                slot.add(measured);
            }
        }
        match &bar {
            Some(bar) => bar.inc(1),
            None => eprintln!(
                "bench: {}: round {}/{rounds} done in {:.1} s",
                size.label,
                round + 1,
                t0.elapsed().as_secs_f64()
            ),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    // Objects left behind (sizes without a delete round, warm-up keys).
    for key in keys.iter().chain(&warm) {
        setup.delete(key)?;
    }
    Ok(results)
}

/// The server's address, for relays in front of it.
fn upstream(args: &Args, what: &str) -> Result<std::net::SocketAddr> {
    args.s3
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("{what} needs an http://IP:PORT endpoint"))
}

/// Every size over HTTPS: a TLS front on loopback (the tests' relay, with a CA made for the
/// run) before the server; the component with and without its pool (a handshake per request,
/// as wasmtime's own sender), the floor, the SDKs and Celery over TLS.
fn measure_https(args: &Args, input: &ConfigInput, setup: &mut Floor) -> Result<Vec<Measured>> {
    let ca = TestCa::new("s3-result-store bench CA");
    let relay = TlsRelay::start(upstream(args, "HTTPS")?, &ca, &["127.0.0.1"]);
    let through = ConfigInput {
        endpoint_url: Some(format!("https://127.0.0.1:{}", relay.port())),
        ..input.clone()
    };
    let pem = ca.pem();
    let component = |pool: bool| -> Result<Runtime> {
        Ok(Runtime::load(default_component_path())?
            .with_connection_pool(pool)
            .with_root_certificates_pem(pem.as_bytes())?)
    };
    let (pooled, unpooled) = (component(true)?, component(false)?);
    let mut entries = vec![
        Entry {
            id: "component",
            label: "component (pool)".into(),
            contender: Box::new(InProcess(Component::open(&pooled, &through)?)),
        },
        Entry {
            id: "component-nopool",
            label: "component (no pool)".into(),
            contender: Box::new(InProcess(Component::open(&unpooled, &through)?)),
        },
        Entry {
            id: "floor",
            label: "floor (hyper + rustls + sigv4)".into(),
            contender: Box::new(InProcess(Floor::trusting(&through, Some(pem.as_bytes()))?)),
        },
        Entry {
            id: "aws-sdk-s3",
            label: "aws-sdk-s3 1.x".into(),
            contender: Box::new(InProcess(AwsSdk::new(&through, Some(pem.as_bytes()))?)),
        },
        Entry {
            id: "object_store",
            label: "object_store 0.13".into(),
            contender: Box::new(InProcess(Sdk::new(&through, Some(pem.as_bytes()))?)),
        },
    ];
    // boto3 takes the CA from a file.
    let ca_file = args.out.join("bench-ca.pem");
    if !args.no_celery {
        std::fs::create_dir_all(&args.out)?;
        std::fs::write(&ca_file, &pem)?;
        entries.push(celery_entry(args, &through, Some(&ca_file))?.0);
    }
    let sizes = [
        Size {
            bytes: 1024,
            label: "1 KiB over HTTPS",
            key_label: "https-1k",
            iterations: args.iterations_https,
            warmup: args.warmup,
            ops: &[Op::Set, Op::Get, Op::Delete],
        },
        Size {
            bytes: 64 << 10,
            label: "64 KiB over HTTPS",
            key_label: "https-64k",
            iterations: args.iterations_https_64k,
            warmup: args.warmup,
            ops: &[Op::Set, Op::Get],
        },
        Size {
            bytes: 1 << 20,
            label: "1 MiB over HTTPS",
            key_label: "https-1m",
            iterations: args.iterations_https_1m,
            warmup: args.warmup_8m,
            ops: &[Op::Set, Op::Get],
        },
        Size {
            bytes: 8 << 20,
            label: "8 MiB over HTTPS",
            key_label: "https-8m",
            iterations: args.iterations_https_8m,
            warmup: args.warmup_8m,
            ops: &[Op::Set, Op::Get],
        },
    ];
    let mut measured = Vec::new();
    for size in sizes.iter().filter(|s| s.iterations > 0) {
        measured.extend(measure_size(args, size, setup, &mut entries)?);
    }
    eprintln!(
        "bench: HTTPS: {} TLS handshakes over {} connections",
        relay.handshakes(),
        relay.connections()
    );
    Ok(measured)
}

/// Celery's S3Backend in its own Python process, trusting `ca_file` for HTTPS; and what it
/// runs on (versions), for the report.
fn celery_entry(
    args: &Args,
    input: &ConfigInput,
    ca_file: Option<&std::path::Path>,
) -> Result<(Entry, serde_json::Value)> {
    let script = workspace_dir().join("benches/celery_backend.py");
    let celery = celery::Celery::start(&args.python, &script, input, ca_file)?;
    let info = celery.info.clone();
    let entry = Entry {
        id: "celery",
        label: format!(
            "Celery {} S3Backend",
            info["celery"].as_str().unwrap_or("?")
        ),
        contender: Box::new(celery),
    };
    Ok((entry, info))
}

fn restore(setup: &mut Floor, keys: &[String], value: &Bytes) -> Result<()> {
    for key in keys {
        setup.set(key, value)?;
    }
    Ok(())
}

/// `get_many` of `batch_keys` keys against as many sequential `get`s, through the component
/// with the connection pool, alternating which goes first.
fn measure_batch(
    args: &Args,
    runtime: &Runtime,
    input: &ConfigInput,
    setup: &mut Floor,
    added_rtt_ms: u64,
) -> Result<Batch> {
    let value = value(1024);
    let keys: Vec<String> = (0..args.batch_keys)
        .map(|i| format!("{}batch/{i:04}", args.prefix))
        .collect();
    eprintln!("bench: batch: preparing {} objects", keys.len());
    restore(setup, &keys, &value)?;
    let mut store = runtime.open(input)?;

    let many = |store: &mut s3_result_store_host::ResultStore| -> Result<(u64, u64)> {
        let cpu0 = process_cpu_ns();
        let t0 = Instant::now();
        let results = store.get_many(&keys)?;
        let wall = t0.elapsed().as_nanos() as u64;
        let cpu = process_cpu_ns().saturating_sub(cpu0);
        ensure!(
            results.len() == keys.len(),
            "get_many: {} results",
            results.len()
        );
        for (key, result) in keys.iter().zip(results) {
            let got = result?.with_context(|| format!("get_many: {key} missing"))?;
            ensure!(
                got.len() == value.len(),
                "get_many {key}: {} bytes",
                got.len()
            );
        }
        Ok((wall, cpu))
    };
    let sequential = |store: &mut s3_result_store_host::ResultStore| -> Result<(u64, u64)> {
        let cpu0 = process_cpu_ns();
        let t0 = Instant::now();
        for key in &keys {
            let got = store
                .get(key)?
                .with_context(|| format!("get {key} missing"))?;
            ensure!(got.len() == value.len(), "get {key}: {} bytes", got.len());
        }
        Ok((
            t0.elapsed().as_nanos() as u64,
            process_cpu_ns().saturating_sub(cpu0),
        ))
    };

    eprintln!("bench: batch: warming up");
    for _ in 0..2 {
        many(&mut store)?;
        sequential(&mut store)?;
    }
    let mut batch = Batch::new(args.batch_keys, added_rtt_ms);
    for repeat in 0..args.batch_repeats {
        if repeat % 2 == 0 {
            batch.many.push(many(&mut store)?);
            batch.sequential.push(sequential(&mut store)?);
        } else {
            batch.sequential.push(sequential(&mut store)?);
            batch.many.push(many(&mut store)?);
        }
    }
    eprintln!("bench: batch: done");
    for key in &keys {
        setup.delete(key)?;
    }
    Ok(batch)
}

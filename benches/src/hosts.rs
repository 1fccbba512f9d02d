//! `hosts`: the same 1 KiB get, set and delete through the component on every host it is
//! deployed on, with a native client in the same run as the reference, against one S3 server
//! in another process. Prints a markdown table.
//!
//! | host | how |
//! |---|---|
//! | native | the floor of the main benchmark (the project's signer, hyper), in this process |
//! | project host | the component under this project's wasmtime host, in this process |
//! | wasmtime CLI | `wasmtime run` of the kv example composed with the store (`bench` command, wasi:keyvalue) |
//! | Node.js | the jco package (`js/bench/hosts.mjs`) |
//! | workerd | the Worker example's JSPI transpilation under `workerd test` (`examples/worker/bench/`) |
//!
//! Every host runs the same shape, timed by its own clock around each operation: N sets of
//! a value under N keys, then N gets, then N deletes. workerd's clock moves only when I/O
//! completes (Cloudflare's Spectre mitigation), in whole milliseconds: its medians are
//! whole milliseconds and its means are the figures to compare. The other hosts' medians are
//! (means carry the tails of a shared machine).

#[allow(dead_code)]
mod clients;
#[allow(dead_code)]
mod measure;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use clap::Parser;
use s3_result_store_host::{Runtime, default_component_path};
use serde_json::Value;

use crate::clients::{Client, Component, Floor, ServerArgs};

#[derive(Parser)]
#[command(name = "hosts")]
struct Args {
    #[command(flatten)]
    s3: ServerArgs,
    /// Operations of each kind per host.
    #[arg(long, default_value_t = 300)]
    rounds: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Hosts to run (native, host, wasmtime-cli, node, workerd); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The wasmtime binary (scripts/install-wasmtime).
    #[arg(long, env = "S3RS_WASMTIME", default_value = "wasmtime")]
    wasmtime: PathBuf,
    #[arg(long, default_value = "node")]
    node: PathBuf,
}

/// Mean, median and 90th percentile of one operation, in microseconds.
#[derive(Clone, Copy)]
struct Summary {
    mean_us: f64,
    median_us: f64,
    p90_us: f64,
}

impl Summary {
    fn of(times: &mut [Duration]) -> Summary {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
        Summary {
            mean_us: us(times.iter().sum::<Duration>()) / times.len() as f64,
            median_us: us(at(0.5)),
            p90_us: us(at(0.9)),
        }
    }

    fn from_json(value: &Value) -> Result<Summary> {
        let field = |name: &str| {
            value[name]
                .as_f64()
                .with_context(|| format!("no {name} in {value}"))
        };
        Ok(Summary {
            mean_us: field("mean_us")?,
            median_us: field("median_us")?,
            p90_us: field("p90_us")?,
        })
    }
}

/// One host's figures: set, get, delete.
struct Row {
    host: String,
    ops: [Summary; 3],
}

const OPS: [&str; 3] = ["set", "get", "delete"];

fn main() -> Result<()> {
    let args = Args::parse();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let wanted = |host: &str| args.only.is_empty() || args.only.iter().any(|h| h == host);
    let prefix = format!(
        "s3rs-bench-hosts/{}-{}/",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
        std::process::id()
    );
    let mut rows = Vec::new();

    if wanted("native") {
        let mut config = args.s3.config();
        config.base_path = Some(format!("{prefix}native/"));
        let mut floor = Floor::new(&config)?;
        rows.push(in_process(
            "native client (hyper + the project's signer)",
            &mut floor,
            &args,
        )?);
    }
    if wanted("host") {
        let runtime = Runtime::load(default_component_path())?;
        let mut config = args.s3.config();
        config.base_path = Some(format!("{prefix}host/"));
        let mut component = Component::open(&runtime, &config)?;
        rows.push(in_process(
            "project host (wasmtime 48, pooled sender)",
            &mut component,
            &args,
        )?);
    }
    if wanted("wasmtime-cli") {
        rows.push(wasmtime_cli(
            &args,
            &workspace,
            &format!("{prefix}wasmtime-cli"),
        )?);
    }
    if wanted("node") {
        rows.push(node(&args, &workspace, &format!("{prefix}node/"))?);
    }
    if wanted("workerd") {
        rows.push(workerd(&args, &workspace, &format!("{prefix}workerd/"))?);
    }

    print_table(&rows, &args);
    Ok(())
}

/// N sets under N keys, N gets, N deletes, each timed on its own.
fn in_process(host: &str, client: &mut dyn Client, args: &Args) -> Result<Row> {
    eprintln!("==> {host}");
    let value = Bytes::from((0..args.size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let keys: Vec<String> = (0..args.rounds).map(|i| format!("k{i}")).collect();
    let mut ops = [None; 3];
    for (slot, op) in ops.iter_mut().zip(OPS) {
        let mut times = Vec::with_capacity(keys.len());
        for key in &keys {
            let started = Instant::now();
            match op {
                "set" => client.set(key, &value)?,
                "get" => {
                    let got = client.get(key)?;
                    ensure!(got.as_ref() == Some(&value), "get {key}: another value");
                }
                _ => client.delete(key)?,
            }
            times.push(started.elapsed());
        }
        *slot = Some(Summary::of(&mut times));
    }
    Ok(Row {
        host: host.to_owned(),
        ops: ops.map(|s| s.expect("every op measured")),
    })
}

fn parse_row(host: &str, json: &Value) -> Result<Row> {
    let mut ops = [None; 3];
    for (slot, op) in ops.iter_mut().zip(OPS) {
        *slot = Some(Summary::from_json(&json[op])?);
    }
    Ok(Row {
        host: host.to_owned(),
        ops: ops.map(|s| s.expect("every op parsed")),
    })
}

/// Runs `command`, expecting success; its stdout.
fn output(command: &mut Command, what: &str) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {what}"))?;
    ensure!(out.status.success(), "{what} failed ({})", out.status);
    Ok(String::from_utf8(out.stdout)?)
}

fn version(bin: &Path, arg: &str) -> String {
    Command::new(bin)
        .arg(arg)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn wasmtime_cli(args: &Args, workspace: &Path, folder: &str) -> Result<Row> {
    let version = version(&args.wasmtime, "--version");
    eprintln!("==> wasmtime CLI: {version}");
    let composed = workspace.join("target/wasm32-wasip2/release/kv.composed.wasm");
    ensure!(
        composed.exists(),
        "{} is missing: run scripts/compose",
        composed.display()
    );
    let compiled = std::env::temp_dir().join(format!("s3rs-bench-kv-{}.cwasm", std::process::id()));
    output(
        Command::new(&args.wasmtime)
            .arg("compile")
            .arg("-o")
            .arg(&compiled)
            .arg(&composed),
        "wasmtime compile",
    )?;
    let s3 = &args.s3;
    let mut command = Command::new(&args.wasmtime);
    command.args(["run", "--allow-precompiled", "-S", "http", "-S", "cli"]);
    for (name, value) in [
        ("AWS_ENDPOINT_URL_S3", &s3.endpoint),
        ("AWS_REGION", &s3.region),
        ("AWS_ACCESS_KEY_ID", &s3.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key),
    ] {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    command
        .arg(&compiled)
        .arg(format!("{}/{folder}", s3.bucket))
        .args(["bench", &args.rounds.to_string(), &args.size.to_string()]);
    let result = output(&mut command, "wasmtime run kv bench");
    let _ = std::fs::remove_file(&compiled);
    let json: Value = serde_json::from_str(result?.trim())?;
    parse_row(
        &format!("wasmtime CLI ({version}; kv example, wasi:keyvalue)"),
        &json,
    )
}

/// The environment the JS benchmarks read the server from.
fn js_env(command: &mut Command, args: &Args, folder: &str) {
    let s3 = &args.s3;
    command
        .env("S3RS_BENCH_ENDPOINT", &s3.endpoint)
        .env("S3RS_BENCH_REGION", &s3.region)
        .env("S3RS_BENCH_ACCESS_KEY_ID", &s3.access_key_id)
        .env("S3RS_BENCH_SECRET_ACCESS_KEY", &s3.secret_access_key)
        .env("S3RS_BENCH_BUCKET", &s3.bucket)
        .env("S3RS_BENCH_BASE_PATH", folder)
        .env("S3RS_BENCH_ROUNDS", args.rounds.to_string())
        .env("S3RS_BENCH_SIZE", args.size.to_string());
}

fn node(args: &Args, workspace: &Path, folder: &str) -> Result<Row> {
    let version = version(&args.node, "--version");
    eprintln!("==> Node.js {version}");
    let mut command = Command::new(&args.node);
    command.arg(workspace.join("js/bench/hosts.mjs"));
    js_env(&mut command, args, folder);
    let json: Value =
        serde_json::from_str(output(&mut command, "node js/bench/hosts.mjs")?.trim())?;
    parse_row(
        &format!("Node.js {version} (jco 1.35.0, preview2-shim 0.26.1)"),
        &json,
    )
}

fn workerd(args: &Args, workspace: &Path, folder: &str) -> Result<Row> {
    let dir = workspace.join("examples/worker");
    let bin = dir.join("node_modules/.bin/workerd");
    let version = version(&bin, "--version");
    eprintln!("==> {version}");
    let mut command = Command::new(&bin);
    command.current_dir(&dir).args(["test", "bench.capnp"]);
    js_env(&mut command, args, folder);
    let stdout = output(&mut command, "workerd test bench.capnp")?;
    // workerd prints the worker's console.log lines among its own.
    let Some(line) = stdout
        .lines()
        .find_map(|l| l.split_once("bench: ").map(|(_, json)| json))
    else {
        bail!("workerd printed no `bench: ` line:\n{stdout}");
    };
    let json: Value = serde_json::from_str(line.trim())?;
    parse_row(
        &format!("{version} (JSPI; one instance for the loop)"),
        &json,
    )
}

fn print_table(rows: &[Row], args: &Args) {
    println!(
        "\n{} operations of each kind, {}-byte values; microseconds, median / mean (p90); x: median over the native client's (workerd: mean over its median, its clock being in whole milliseconds)\n",
        args.rounds, args.size
    );
    println!("| host | set | get | delete | x (set, get, delete) |");
    println!("|---|---|---|---|---|");
    let native = rows.first().filter(|r| r.host.starts_with("native"));
    for row in rows {
        let cells: Vec<String> = row
            .ops
            .iter()
            .map(|s| format!("{:.0} / {:.0} ({:.0})", s.median_us, s.mean_us, s.p90_us))
            .collect();
        let ratio = native.map_or_else(
            || "-".to_owned(),
            |n| {
                let coarse = row.host.starts_with("workerd");
                let r: Vec<String> = row
                    .ops
                    .iter()
                    .zip(&n.ops)
                    .map(|(s, n)| {
                        let own = if coarse { s.mean_us } else { s.median_us };
                        format!("{:.2}", own / n.median_us)
                    })
                    .collect();
                r.join(", ")
            },
        );
        println!(
            "| {} | {} | {} | {} | {ratio} |",
            row.host, cells[0], cells[1], cells[2]
        );
    }
}

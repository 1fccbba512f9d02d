//! `profile`: one contender repeating one operation against an S3 server in another process,
//! and nothing else, for a profiler to look at (`perf stat`, `valgrind --tool=callgrind`).
//!
//! Prints the CPU time per operation (whole process and calling thread) and the mean latency.
//! Profilers count the warm-up too: run twice with different `--iterations` and take the
//! difference to get the cost of the measured operations alone.

// Shared with the bench binary, which uses what this one leaves out.
mod aws_sdk;
#[allow(dead_code)]
mod clients;
#[allow(dead_code)]
mod measure;

use std::time::Instant;

use anyhow::{Result, bail};
use clap::Parser;
use s3_result_store_host::{Runtime, default_component_path};

use crate::aws_sdk::AwsSdk;
use crate::clients::{Client, Component, Floor, Sdk, ServerArgs};
use crate::measure::{process_cpu_ns, thread_cpu_ns};

#[derive(Parser)]
#[command(name = "profile")]
struct Args {
    #[command(flatten)]
    s3: ServerArgs,
    /// component, component-no-pool, floor, aws-sdk-s3 or object_store.
    #[arg(long, default_value = "component")]
    contender: String,
    /// get, set or delete.
    #[arg(long, default_value = "get")]
    op: String,
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
}

/// The measured operations and nothing else, in a function of their own, so that a profiler
/// can count them alone: `valgrind --tool=callgrind --collect-atstart=no
/// --toggle-collect='profile::measured*'`.
#[inline(never)]
fn measured(run: &mut dyn FnMut(usize) -> Result<()>, iterations: usize) -> Result<()> {
    run(iterations)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let input = args.s3.config();
    let mut client: Box<dyn Client> = match args.contender.as_str() {
        "component" | "component-no-pool" => {
            let runtime = Runtime::load(default_component_path())?
                .with_connection_pool(args.contender == "component");
            Box::new(Component::open(&runtime, &input)?)
        }
        "floor" => Box::new(Floor::new(&input)?),
        "aws-sdk-s3" => Box::new(AwsSdk::new(&input, None)?),
        "object_store" => Box::new(Sdk::new(&input, None)?),
        other => bail!("unknown contender {other}"),
    };
    let value = bytes::Bytes::from(vec![b'x'; args.size]);
    let key = "s3rs-profile/key";
    client.set(key, &value)?;
    let mut run = |n: usize| -> Result<()> {
        for _ in 0..n {
            match args.op.as_str() {
                "get" => {
                    client.get(key)?;
                }
                "set" => client.set(key, &value)?,
                "delete" => client.delete(key)?,
                other => bail!("unknown op {other}"),
            }
        }
        Ok(())
    };
    run(args.warmup)?;
    let (cpu0, thread0, t0) = (process_cpu_ns(), thread_cpu_ns(), Instant::now());
    measured(&mut run, args.iterations)?;
    let n = args.iterations.max(1) as f64;
    let per_op_us = |ns: u64| ns as f64 / n / 1000.0;
    println!(
        "{} {} x{}: {:.1} us CPU/op ({:.1} on the calling thread), {:.1} us/op wall",
        args.contender,
        args.op,
        args.iterations,
        per_op_us(process_cpu_ns() - cpu0),
        per_op_us(thread_cpu_ns() - thread0),
        t0.elapsed().as_secs_f64() * 1e6 / n,
    );
    Ok(())
}

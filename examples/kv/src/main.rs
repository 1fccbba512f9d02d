//! `kv`: a key-value command line, written only against `wasi:keyvalue` at `0.2.0-draft`.
//!
//! It knows nothing of S3. Run by itself under `wasmtime run -S keyvalue`, it uses wasmtime's
//! in-memory store; composed with the s3-result-store component (`scripts/compose`, `wac
//! plug`), the same code reads and writes an S3 bucket, configured from the environment as any
//! AWS client (`AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, ...):
//!
//! ```text
//! wasmtime run -S http -S cli --env AWS_ENDPOINT_URL_S3 --env AWS_ACCESS_KEY_ID \
//!     --env AWS_SECRET_ACCESS_KEY kv.composed.wasm my-bucket/prefix set greeting hello
//! ```
//!
//! `0.2.0-draft` because it is the draft wasmtime implements (`-S keyvalue`), so the same file
//! runs on both; the store exports `0.2.0-draft2` (Spin's) too.
//!
//! Exit status: 0 done; 1 anything else (usage, no such key, a store error), with the reason
//! on stderr (a WASI command cannot portably exit with other codes).

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "
            package example:kv;

            world kv {
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import wasi:keyvalue/batch@0.2.0-draft;
            }
        ",
        world: "example:kv/kv",
        generate_all,
    });
}

use bindings::wasi::keyvalue0_2_0_draft::store::{self, Bucket, Error};
use bindings::wasi::keyvalue0_2_0_draft::{atomics, batch};

const USAGE: &str = "usage: kv STORE COMMAND [ARGS]
  STORE is the store to open: a bucket, bucket/folder or s3://bucket/folder on S3; any name
  on wasmtime's in-memory store.
commands:
  get KEY              print the value; fails when there is none
  set KEY VALUE        store VALUE ('-': read it from stdin)
  delete KEY           remove KEY (also when there is none)
  exists KEY           print true or false
  incr KEY [DELTA]     add DELTA (default 1) to a decimal counter, print the new value
  list                 print every key, one a line
  get-many KEY...      print KEY=VALUE, or KEY alone when there is none, one a line
  bench N [SIZE]       N sets of SIZE-byte values (default 1024), N gets, N deletes; print
                       the mean, median and 90th percentile of each, in microseconds, as JSON";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("kv: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
        Err(Failure::Store(e)) => {
            eprintln!("kv: {}", describe(&e));
            ExitCode::FAILURE
        }
        Err(Failure::NotFound(key)) => {
            eprintln!("kv: no such key: {key}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Usage(String),
    Store(Error),
    NotFound(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

/// The error's case, then what it says: the store's own message for `other`.
fn describe(e: &Error) -> String {
    match e {
        Error::NoSuchStore => "no-such-store".to_owned(),
        Error::AccessDenied => "access-denied".to_owned(),
        Error::Other(message) => format!("other: {message}"),
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let usage = |what: &str| Failure::Usage(what.to_owned());
    let [identifier, command, rest @ ..] = args else {
        return Err(usage("a store and a command are required"));
    };
    let bucket = store::open(identifier)?;
    let mut out = std::io::stdout().lock();
    let wrote = |r: std::io::Result<()>| r.map_err(|e| Failure::Usage(format!("stdout: {e}")));
    match (command.as_str(), rest) {
        ("get", [key]) => {
            let value = bucket
                .get(key)?
                .ok_or_else(|| Failure::NotFound(key.clone()))?;
            wrote(out.write_all(&value))?;
        }
        ("set", [key, value]) => {
            let value = if value == "-" {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
                bytes
            } else {
                value.clone().into_bytes()
            };
            bucket.set(key, &value)?;
        }
        ("delete", [key]) => bucket.delete(key)?,
        ("exists", [key]) => wrote(writeln!(out, "{}", bucket.exists(key)?))?,
        ("incr", [key, delta @ ..]) if delta.len() <= 1 => {
            let delta = match delta {
                [d] => d
                    .parse()
                    .map_err(|_| usage("DELTA must be a whole number"))?,
                _ => 1,
            };
            wrote(writeln!(
                out,
                "{}",
                atomics::increment(&bucket, key, delta)?
            ))?;
        }
        ("list", []) => {
            for key in list(&bucket)? {
                wrote(writeln!(out, "{key}"))?;
            }
        }
        ("get-many", keys) if !keys.is_empty() => {
            let found = batch::get_many(&bucket, keys)?;
            for (key, entry) in keys.iter().zip(found) {
                match entry {
                    Some((_, value)) => {
                        wrote(writeln!(out, "{key}={}", String::from_utf8_lossy(&value)))?
                    }
                    None => wrote(writeln!(out, "{key}"))?,
                }
            }
        }
        ("bench", [n, size @ ..]) if size.len() <= 1 => {
            let rounds: usize = n.parse().map_err(|_| usage("N must be a whole number"))?;
            let size: usize = match size {
                [s] => s
                    .parse()
                    .map_err(|_| usage("SIZE must be a whole number"))?,
                _ => 1024,
            };
            wrote(writeln!(out, "{}", bench(&bucket, rounds.max(1), size)?))?;
        }
        _ => return Err(usage(&format!("unknown command or arguments: {command}"))),
    }
    wrote(out.flush())
}

/// Every key, following the cursor from page to page.
fn list(bucket: &Bucket) -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket.list_keys(cursor)?;
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

/// Times `rounds` sets of one SIZE-byte value each under its own key, then as many gets, then
/// as many deletes, each operation on its own (the benchmark's shape on every host).
fn bench(bucket: &Bucket, rounds: usize, size: usize) -> Result<String, Failure> {
    let value: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let keys: Vec<String> = (0..rounds).map(|i| format!("kv-bench-{i}")).collect();
    let mut figures = Vec::new();
    for op in ["set", "get", "delete"] {
        let mut times = Vec::with_capacity(rounds);
        for key in &keys {
            let started = Instant::now();
            match op {
                "set" => bucket.set(key, &value)?,
                "get" => {
                    if bucket.get(key)?.as_deref() != Some(&value[..]) {
                        return Err(Failure::Usage(format!("bench: get {key}: another value")));
                    }
                }
                _ => bucket.delete(key)?,
            }
            times.push(started.elapsed());
        }
        figures.push(format!("\"{op}\": {}", summary(&mut times)));
    }
    Ok(format!(
        "{{\"rounds\": {rounds}, \"size\": {size}, {}}}",
        figures.join(", ")
    ))
}

/// `{"mean_us", "median_us", "p90_us"}` of `times`.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_micros();
    let mean = times.iter().sum::<Duration>().as_micros() / times.len() as u128;
    format!(
        "{{\"mean_us\": {mean}, \"median_us\": {}, \"p90_us\": {}}}",
        at(0.5),
        at(0.9)
    )
}

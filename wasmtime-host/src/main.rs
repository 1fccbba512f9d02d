//! `s3-result-store`: the component from the command line.
//!
//! Exit codes: 0 success; 1 `get` found no such key; 2 usage error; 3 the store failed
//! (config, key, S3, network); 4 the component could not run.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};
use s3_result_store_host::{AddressingStyle, ConfigInput, Error, Runtime, default_component_path};

#[derive(Parser)]
#[command(
    name = "s3-result-store",
    version,
    about = "Celery task results in S3, through the s3-result-store WebAssembly component",
    after_help = "Examples:\n  \
        s3-result-store demo\n  \
        s3-result-store --endpoint-url http://127.0.0.1:9000 --bucket results set celery-task-meta-1 '{\"status\": \"SUCCESS\"}'\n  \
        s3-result-store --bucket results get celery-task-meta-1\n  \
        echo -n data | s3-result-store --bucket results set my-key -\n\n\
        Credentials, region and endpoint fall back to AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n\
        AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL."
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// The component to run.
    #[arg(long, env = "S3RS_COMPONENT", global = true)]
    component: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct StoreArgs {
    /// S3 endpoint, e.g. http://127.0.0.1:9000 (default: AWS).
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    #[arg(long, global = true)]
    region: Option<String>,
    /// Prefer the AWS_ACCESS_KEY_ID variable: flags show up in process lists.
    #[arg(long, global = true)]
    access_key_id: Option<String>,
    #[arg(long, global = true, hide_env_values = true)]
    secret_access_key: Option<String>,
    #[arg(long, global = true, hide_env_values = true)]
    session_token: Option<String>,
    /// Bucket holding the results.
    #[arg(long, env = "S3RS_BUCKET", global = true)]
    bucket: Option<String>,
    /// Prefix prepended to every key, as Celery's s3_base_path (no separator is added).
    #[arg(long, env = "S3RS_BASE_PATH", global = true)]
    base_path: Option<String>,
    #[arg(long, value_enum, default_value_t = Style::Auto, global = true)]
    addressing_style: Style,
    /// Attempts per operation, the first included [default: 3].
    #[arg(long, global = true)]
    max_attempts: Option<u32>,
    /// Time limit of one operation, retries included [default: 60000].
    #[arg(long, global = true)]
    operation_timeout_ms: Option<u32>,
    /// Per-request timeouts [defaults: 5000, 15000, 15000].
    #[arg(long, global = true)]
    connect_timeout_ms: Option<u32>,
    #[arg(long, global = true)]
    first_byte_timeout_ms: Option<u32>,
    #[arg(long, global = true)]
    between_bytes_timeout_ms: Option<u32>,
    /// Largest value set sends or get accepts [default: 268435456].
    #[arg(long, global = true)]
    max_value_bytes: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Style {
    Auto,
    Path,
    VirtualHosted,
}

#[derive(Subcommand)]
enum Command {
    /// Print the value stored under KEY (raw bytes); exit 1 if there is none.
    Get { key: String },
    /// Store a value under KEY: from VALUE, from --file, or from stdin when VALUE is '-'.
    Set {
        key: String,
        value: Option<String>,
        #[arg(long, conflicts_with = "value")]
        file: Option<PathBuf>,
    },
    /// Remove KEY (succeeds when it does not exist).
    Delete { key: String },
    /// Start an embedded S3 server and run set/get/delete through the component.
    Demo {
        /// Keep the demo's objects here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                Error::Store(_) => ExitCode::from(3),
                Error::Runtime(_) => ExitCode::from(4),
            }
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let component = cli.component.unwrap_or_else(default_component_path);
    match cli.command {
        Command::Demo { data_dir } => demo(&component, data_dir),
        command => {
            let runtime = Runtime::load(&component)?.with_env(aws_env());
            let mut store = runtime.open(&config(&cli.store))?;
            match command {
                Command::Get { key } => match store.get(&key)? {
                    Some(value) => {
                        write_stdout(&value)?;
                        Ok(ExitCode::SUCCESS)
                    }
                    None => {
                        eprintln!("no value stored under {key:?}");
                        Ok(ExitCode::from(1))
                    }
                },
                Command::Set { key, value, file } => {
                    store.set(&key, read_value(value, file)?)?;
                    Ok(ExitCode::SUCCESS)
                }
                Command::Delete { key } => {
                    store.delete(&key)?;
                    Ok(ExitCode::SUCCESS)
                }
                Command::Demo { .. } => unreachable!("handled above"),
            }
        }
    }
}

/// Only the variables the component documents; nothing else of the host's environment leaks in.
fn aws_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

fn config(args: &StoreArgs) -> ConfigInput {
    ConfigInput {
        endpoint_url: args.endpoint_url.clone(),
        region: args.region.clone(),
        access_key_id: args.access_key_id.clone(),
        secret_access_key: args.secret_access_key.clone(),
        session_token: args.session_token.clone(),
        bucket_name: args.bucket.clone(),
        base_path: args.base_path.clone(),
        addressing_style: match args.addressing_style {
            Style::Auto => AddressingStyle::Auto,
            Style::Path => AddressingStyle::Path,
            Style::VirtualHosted => AddressingStyle::VirtualHosted,
        },
        max_attempts: args.max_attempts,
        operation_timeout_ms: args.operation_timeout_ms,
        connect_timeout_ms: args.connect_timeout_ms,
        first_byte_timeout_ms: args.first_byte_timeout_ms,
        between_bytes_timeout_ms: args.between_bytes_timeout_ms,
        max_value_bytes: args.max_value_bytes,
    }
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::Runtime(wasmtime::Error::msg(format!("{what}: {e}")))
}

fn read_value(value: Option<String>, file: Option<PathBuf>) -> Result<Vec<u8>, Error> {
    match (value, file) {
        (_, Some(path)) => std::fs::read(&path)
            .map_err(|e| io_error(&format!("cannot read {}", path.display()), e)),
        (Some(v), None) if v != "-" => Ok(v.into_bytes()),
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| io_error("cannot read stdin", e))?;
            Ok(buf)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| io_error("cannot write to stdout", e))
}

fn demo(component: &std::path::Path, data_dir: Option<PathBuf>) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let runtime = Runtime::load(component)?;
    println!(
        "loaded the component {} in {:.0?}",
        component.display(),
        started.elapsed()
    );

    let server = LocalS3::start(LocalS3Options {
        data_dir,
        ..LocalS3Options::default()
    })
    .map_err(|e| {
        Error::Runtime(wasmtime::Error::msg(format!(
            "cannot start the local S3 server: {e:#}"
        )))
    })?;
    let bucket = "celery-results";
    server.create_bucket(bucket).map_err(|e| {
        Error::Runtime(wasmtime::Error::msg(format!(
            "cannot create the bucket: {e:#}"
        )))
    })?;
    println!(
        "started an embedded S3 server (s3s-fs, SigV4 checked) at {} with bucket {bucket:?}, data in {}",
        server.endpoint(),
        server.data_dir().display()
    );

    let config = ConfigInput {
        endpoint_url: Some(server.endpoint()),
        region: Some(server.region().to_owned()),
        access_key_id: Some(server.access_key().to_owned()),
        secret_access_key: Some(server.secret_key().to_owned()),
        bucket_name: Some(bucket.to_owned()),
        base_path: Some("results/".to_owned()),
        ..ConfigInput::default()
    };
    let mut store = runtime.open(&config)?;
    let key = "celery-task-meta-8a5ddc2e-7a1f-4b43-9c5e-0d5f8f0c1b23";
    let value = br#"{"status": "SUCCESS", "result": {"x": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T16:34:09.244119+00:00", "task_id": "8a5ddc2e-7a1f-4b43-9c5e-0d5f8f0c1b23"}"#;

    let t = Instant::now();
    store.set(key, value)?;
    println!(
        "set    {key} ({} bytes) in {:.1?}",
        value.len(),
        t.elapsed()
    );
    let object = server.data_dir().join(bucket).join("results").join(key);
    println!(
        "       stored as object \"results/{key}\" ({})",
        if object.exists() {
            "found on disk"
        } else {
            "NOT on disk"
        }
    );

    let t = Instant::now();
    let read = store.get(key)?;
    let same = read.as_deref() == Some(&value[..]);
    println!(
        "get    {key} in {:.1?}: {} bytes, {}",
        t.elapsed(),
        read.as_ref().map_or(0, Vec::len),
        if same { "identical" } else { "DIFFERENT" }
    );
    println!(
        "       {}",
        String::from_utf8_lossy(read.as_deref().unwrap_or_default())
    );

    let t = Instant::now();
    store.delete(key)?;
    println!("delete {key} in {:.1?}", t.elapsed());
    let after = store.get(key)?;
    println!(
        "get    {key} after delete: {}",
        if after.is_none() {
            "none (missing keys read as none)"
        } else {
            "STILL THERE"
        }
    );

    let mut wrong = config.clone();
    wrong.secret_access_key = Some("not-the-secret".into());
    let denied = runtime.open(&wrong)?.get(key).err();
    println!(
        "get with a wrong secret: {}",
        denied.map_or_else(|| "UNEXPECTEDLY SUCCEEDED".into(), |e| e.to_string())
    );
    let mut missing = config.clone();
    missing.bucket_name = Some("no-such-bucket".into());
    let err = runtime.open(&missing)?.get(key).err();
    println!(
        "get from a missing bucket: {}",
        err.map_or_else(|| "UNEXPECTEDLY SUCCEEDED".into(), |e| e.to_string())
    );

    Ok(if same && after.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

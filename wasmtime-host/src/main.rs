//! `s3-result-store`: the component from the command line.
//!
//! Exit codes (cli/report.rs): 0 success; 1 `get` found no such key; 2 usage error (flags,
//! config file); 3 the store failed (config, key, S3, network); 4 the component could not run
//! (or could not be had from its OCI registry).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cli;
use s3_result_store_host::{
    AddressingStyle, ComponentSource, ConfigInput, Error, OciCache, PoolingOptions, Runtime,
    RuntimeOptions, TaskStore, default_component_path,
};

#[derive(Parser)]
#[command(
    name = "s3-result-store",
    version,
    about = "Celery task results in S3, through the s3-result-store WebAssembly component",
    after_help = "Examples:\n  \
        s3-result-store demo\n  \
        s3-result-store --endpoint-url http://127.0.0.1:9000 --bucket results set celery-task-meta-1 '{\"status\": \"SUCCESS\"}'\n  \
        s3-result-store --bucket results get celery-task-meta-1\n  \
        echo -n data | s3-result-store --bucket results set my-key -\n  \
        s3-result-store coldstart\n  \
        s3-result-store --config store.toml --json get celery-task-meta-1\n  \
        s3-result-store --endpoint-url http://127.0.0.1:3900 --bucket results memory --size 64MiB\n  \
        s3-result-store --component oci://127.0.0.1:5000/result-store/s3-result-store:0.1.0 demo\n\n\
        Settings come from flags, then environment variables (S3RS_BUCKET, S3RS_BASE_PATH, ...),\n\
        then a TOML config file (--config or S3RS_CONFIG; keys are the long flag names, e.g.\n\
        bucket = \"results\", endpoint-url = \"http://127.0.0.1:3900\"). Credentials, region\n\
        and endpoint finally fall back to AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n\
        AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.\n\n\
        Exit codes: 0 success; 1 get found no value; 2 usage error (flags, config file);\n\
        3 the store failed (config, key, S3, network; a hint says what to do); 4 the component\n\
        could not run (or could not be had from its OCI registry; a hint says why)."
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    /// The component to run: a file, or an OCI artifact oci://REGISTRY/REPOSITORY:TAG (or
    /// @sha256:DIGEST), downloaded once into a cache keyed by digest (S3RS_OCI_CACHE).
    #[arg(long, env = "S3RS_COMPONENT", global = true)]
    component: Option<PathBuf>,
    /// Celery's global_keyprefix transport option, for `task` commands.
    #[arg(long, env = "S3RS_GLOBAL_KEYPREFIX", global = true)]
    global_keyprefix: Option<String>,
    /// A TOML file of settings (keys: the long flag names); flags and variables win over it.
    #[arg(long, env = "S3RS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print results and errors as JSON documents (errors on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// A PEM file of CA certificates to trust for https endpoints besides the Mozilla roots,
    /// for a server with a private CA (the AWS CLI's variable).
    #[arg(long, env = "AWS_CA_BUNDLE", global = true)]
    ca_bundle: Option<PathBuf>,
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
    /// [default: auto]
    #[arg(long, value_enum, global = true)]
    addressing_style: Option<cli::settings::Style>,
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
    /// Celery task results: read, store and forget task metas as Celery does.
    #[command(after_help = "Examples:\n  \
        s3-result-store --bucket results task get 6f1c2a4e-0d9b-4b7e-9c1e-2f0a8d3b5c71\n  \
        s3-result-store --bucket results task get $(cat ids.txt)    # concurrently, with progress\n  \
        s3-result-store --bucket results task put t1 --state FAILURE \\\n      \
        --result '{\"exc_type\": \"ValueError\", \"exc_message\": [\"boom\"], \"exc_module\": \"builtins\"}'\n  \
        s3-result-store --bucket results --global-keyprefix myapp task forget t1")]
    Task {
        #[command(subcommand)]
        command: cli::task::TaskCommand,
    },
    /// Delete Celery task and group results older than a given age (S3 never expires them).
    /// Prints {"deleted": N}; safe to run again and concurrently.
    #[command(
        after_help = "Example:\n  s3-result-store --bucket results --base-path celery/ cleanup --older-than 7d"
    )]
    Cleanup {
        /// Age such as 3600, 90s, 30m, 12h or 7d.
        #[arg(long, value_parser = cli::task::parse_age)]
        older_than: std::time::Duration,
    },
    /// Serve a wasi:http/proxy component over HTTP: by default the example task-status app
    /// composed with the store (scripts/compose). It sees the AWS_* and S3RS_* variables.
    Serve(cli::serve::ServeArgs),
    /// Start an embedded S3 server and run set/get/delete through the component.
    Demo {
        /// Keep the demo's objects here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Measure loading the component (compile vs precompiled) and opening a store (on-demand
    /// vs pooling allocator). Needs no server.
    Coldstart {
        /// Stores opened (and dropped) per allocator.
        #[arg(long, default_value_t = 10_000)]
        iterations: usize,
        /// Cold compiles of the .wasm (seconds each).
        #[arg(long, default_value_t = 3)]
        compile_runs: usize,
        /// Loads of the precompiled component.
        #[arg(long, default_value_t = 20)]
        load_runs: usize,
        /// Pooling: bytes of each slot's memory kept resident between instances.
        #[arg(long, default_value_t = PoolingOptions::default().keep_resident_bytes, value_parser = cli::memory::parse_size)]
        keep_resident: u64,
    },
    /// Measure this process's peak memory while it sets, then gets, one value of --size
    /// against the S3 server the global flags name (run the server as another process).
    Memory {
        /// Value size: 64MiB, 1GiB, 4096...
        #[arg(long, default_value = "64MiB", value_parser = cli::memory::parse_size)]
        size: u64,
        /// Object key to use (default: a fresh one under s3rs-memory/); deleted afterwards.
        #[arg(long)]
        key: Option<String>,
        /// Use the pooling instance allocator (PoolingOptions::default()).
        #[arg(long)]
        pooling: bool,
    },
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let json = cli.json;
    let settings = match settings(&mut cli) {
        Ok(settings) => settings,
        Err(message) => return cli::report::usage(&message, json),
    };
    match run(cli, &settings) {
        Ok(code) => code,
        Err(e) => cli::report::fail(&e, json),
    }
}

/// The store's settings and Celery's key prefix, from flags, variables and the config file.
struct Settings {
    store: ConfigInput,
    global_keyprefix: Option<String>,
    /// The CA bundle's PEM, read.
    ca_bundle: Option<Vec<u8>>,
}

fn settings(cli: &mut Cli) -> Result<Settings, String> {
    let file = match &cli.config {
        Some(path) => cli::settings::ConfigFile::load(path)?,
        None => cli::settings::ConfigFile::default(),
    };
    let global_keyprefix = cli
        .global_keyprefix
        .take()
        .or(file.global_keyprefix.clone());
    let ca_bundle = match cli.ca_bundle.take().or(file.ca_bundle.clone()) {
        Some(path) => Some(
            std::fs::read(&path)
                .map_err(|e| format!("cannot read the CA bundle {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let store = file.under(config(&cli.store), cli.store.addressing_style);
    Ok(Settings {
        store,
        global_keyprefix,
        ca_bundle,
    })
}

fn run(cli: Cli, settings: &Settings) -> Result<ExitCode, Error> {
    let component = ComponentSource::parse(cli.component.unwrap_or_else(default_component_path))?;
    let json = cli.json;
    let store_config = &settings.store;
    let global_keyprefix = settings.global_keyprefix.as_deref();
    match cli.command {
        Command::Demo { data_dir } => {
            cli::demo::run(&component.local_file(&OciCache::default())?, data_dir)
        }
        Command::Serve(args) => cli::serve::run(
            args,
            store_config,
            global_keyprefix,
            settings.ca_bundle.as_deref(),
        ),
        Command::Coldstart {
            iterations,
            compile_runs,
            load_runs,
            keep_resident,
        } => cli::coldstart::run(
            &component.local_file(&OciCache::default())?,
            &cli::coldstart::Options {
                iterations,
                compile_runs,
                load_runs,
                pooling: PoolingOptions {
                    keep_resident_bytes: keep_resident,
                    ..PoolingOptions::default()
                },
            },
        ),
        Command::Memory { size, key, pooling } => {
            let mut options = RuntimeOptions::new();
            if pooling {
                options = options.pooling(PoolingOptions::default());
            }
            let runtime = trusting(Runtime::load_source(&component, &options)?, settings)?
                .with_env(aws_env());
            cli::memory::run(
                &runtime,
                store_config,
                &cli::memory::Options { size, key, pooling },
            )
        }
        Command::Task { command } => {
            cli::task::run(&mut open_tasks(&component, settings)?, command)
        }
        Command::Cleanup { older_than } => {
            let mut tasks = open_tasks(&component, settings)?;
            let spinner = cli::progress::spinner(&format!(
                "deleting results older than {}s",
                older_than.as_secs()
            ));
            let deleted = tasks.cleanup(older_than);
            spinner.finish_and_clear();
            write_stdout(format!("{{\"deleted\": {}}}\n", deleted?).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let runtime = trusting(
                Runtime::load_source(&component, &RuntimeOptions::default())?,
                settings,
            )?
            .with_env(aws_env());
            let mut store = runtime.open(store_config)?;
            match command {
                Command::Get { key } => match store.get(&key)? {
                    Some(value) if json => {
                        let document = cli::report::value_json(&key, &value);
                        write_stdout(format!("{document}\n").as_bytes())?;
                        Ok(ExitCode::SUCCESS)
                    }
                    Some(value) => {
                        write_stdout(&value)?;
                        Ok(ExitCode::SUCCESS)
                    }
                    None => {
                        if json {
                            let document = serde_json::json!({ "key": key, "found": false });
                            write_stdout(format!("{document}\n").as_bytes())?;
                        } else {
                            eprintln!("no value stored under {key:?}");
                        }
                        Ok(ExitCode::from(cli::report::NOT_FOUND))
                    }
                },
                Command::Set { key, value, file } => {
                    let value = read_value(value, file)?;
                    let bytes = value.len();
                    store.set(&key, value)?;
                    if json {
                        let document = serde_json::json!({ "key": key, "stored_bytes": bytes });
                        write_stdout(format!("{document}\n").as_bytes())?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Command::Delete { key } => {
                    store.delete(&key)?;
                    if json {
                        let document = serde_json::json!({ "key": key, "deleted": true });
                        write_stdout(format!("{document}\n").as_bytes())?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Command::Demo { .. }
                | Command::Serve(_)
                | Command::Task { .. }
                | Command::Cleanup { .. }
                | Command::Coldstart { .. }
                | Command::Memory { .. } => unreachable!("handled above"),
            }
        }
    }
}

/// Celery's result backend as the flags and environment describe it.
fn open_tasks(component: &ComponentSource, settings: &Settings) -> Result<TaskStore, Error> {
    trusting(
        Runtime::load_source(component, &RuntimeOptions::default())?,
        settings,
    )?
    .with_env(aws_env())
    .open_tasks(&settings.store, settings.global_keyprefix.as_deref())
}

/// `runtime`, also trusting the CA bundle if one is set.
fn trusting(runtime: Runtime, settings: &Settings) -> Result<Runtime, Error> {
    match &settings.ca_bundle {
        Some(pem) => runtime.with_root_certificates_pem(pem),
        None => Ok(runtime),
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
        addressing_style: args
            .addressing_style
            .map_or(AddressingStyle::Auto, Into::into),
        max_attempts: args.max_attempts,
        operation_timeout_ms: args.operation_timeout_ms,
        connect_timeout_ms: args.connect_timeout_ms,
        first_byte_timeout_ms: args.first_byte_timeout_ms,
        between_bytes_timeout_ms: args.between_bytes_timeout_ms,
        max_value_bytes: args.max_value_bytes,
    }
}

pub(crate) fn io_error(what: &str, e: std::io::Error) -> Error {
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

pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| io_error("cannot write to stdout", e))
}

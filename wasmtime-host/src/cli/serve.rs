//! `serve`: a `wasi:http/proxy` component over HTTP, by default the example task-status app
//! composed with the store (`scripts/compose`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use s3_result_store_host::{
    AddressingStyle, ComponentSource, ConfigInput, Error, ProxyServer, RuntimeOptions,
    default_task_status_path,
};

#[derive(Args)]
pub struct ServeArgs {
    /// The component: a file or an OCI artifact (oci://REGISTRY/REPOSITORY:TAG) [default:
    /// target/wasm32-wasip2/release/task-status.composed.wasm, or S3RS_TASK_STATUS_COMPONENT].
    pub component: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// An environment variable for the component, NAME=VALUE (repeatable; wins over the rest).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
}

/// The component reads its configuration from its environment, as it would on any platform:
/// the host's `AWS_*`, `S3RS_BUCKET`, `S3RS_BASE_PATH` and `S3RS_GLOBAL_KEYPREFIX`, with the
/// global flags that have such a variable written into it, then `--env`.
pub fn run(
    args: ServeArgs,
    store: &ConfigInput,
    global_keyprefix: Option<&str>,
    ca_bundle: Option<&[u8]>,
) -> Result<ExitCode, Error> {
    if let Some(flag) = unsupported_flag(store) {
        eprintln!(
            "error: {flag} does not apply to serve: the component takes its configuration from \
             its environment (S3RS_BUCKET, S3RS_BASE_PATH, S3RS_GLOBAL_KEYPREFIX, AWS_*)"
        );
        return Ok(ExitCode::from(2));
    }
    let env = component_env(std::env::vars(), store, global_keyprefix, args.env);
    let component =
        ComponentSource::parse(args.component.unwrap_or_else(default_task_status_path))?;
    let mut server = ProxyServer::load_source(&component, &RuntimeOptions::default())?;
    if let Some(pem) = ca_bundle {
        server = server.with_root_certificates_pem(pem)?;
    }
    let serving = server.with_env(env).bind(args.listen)?;
    eprintln!(
        "serving {} at http://{}/ (the task-status app: GET /tasks/{{id}}, DELETE /tasks/{{id}}, GET /healthz)",
        component,
        serving.local_addr()
    );
    serving.wait()?;
    Ok(ExitCode::SUCCESS)
}

/// A store setting given on the command line that has no environment variable, so it could
/// not reach the component.
fn unsupported_flag(store: &ConfigInput) -> Option<&'static str> {
    [
        (
            "--addressing-style",
            store.addressing_style != AddressingStyle::Auto,
        ),
        ("--max-attempts", store.max_attempts.is_some()),
        (
            "--operation-timeout-ms",
            store.operation_timeout_ms.is_some(),
        ),
        ("--connect-timeout-ms", store.connect_timeout_ms.is_some()),
        (
            "--first-byte-timeout-ms",
            store.first_byte_timeout_ms.is_some(),
        ),
        (
            "--between-bytes-timeout-ms",
            store.between_bytes_timeout_ms.is_some(),
        ),
        ("--max-value-bytes", store.max_value_bytes.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, set)| set.then_some(flag))
}

/// The host's documented variables, then the flags that have one, then `--env`; later wins.
fn component_env(
    host: impl Iterator<Item = (String, String)>,
    store: &ConfigInput,
    global_keyprefix: Option<&str>,
    extra: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = host
        .filter(|(k, _)| {
            k.starts_with("AWS_")
                || matches!(
                    k.as_str(),
                    "S3RS_BUCKET" | "S3RS_BASE_PATH" | "S3RS_GLOBAL_KEYPREFIX"
                )
        })
        .collect();
    let keyprefix = global_keyprefix.map(str::to_owned);
    let flags = [
        ("AWS_ENDPOINT_URL_S3", &store.endpoint_url),
        ("AWS_REGION", &store.region),
        ("AWS_ACCESS_KEY_ID", &store.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &store.secret_access_key),
        ("AWS_SESSION_TOKEN", &store.session_token),
        ("S3RS_BUCKET", &store.bucket_name),
        ("S3RS_BASE_PATH", &store.base_path),
        ("S3RS_GLOBAL_KEYPREFIX", &keyprefix),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)));
    for (name, value) in flags.chain(extra) {
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    }
    env
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_of_the_component() {
        let host = pairs(&[
            ("HOME", "/root"),
            ("AWS_REGION", "eu-west-1"),
            ("S3RS_BUCKET", "from-env"),
            ("S3RS_COMPONENT", "x.wasm"),
        ]);
        let store = ConfigInput {
            bucket_name: Some("from-flag".into()),
            endpoint_url: Some("http://127.0.0.1:9000".into()),
            ..ConfigInput::default()
        };
        let mut env = component_env(
            host.into_iter(),
            &store,
            Some("app"),
            pairs(&[("AWS_REGION", "garage"), ("EXTRA", "1")]),
        );
        env.sort();
        assert_eq!(
            env,
            pairs(&[
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000"),
                ("AWS_REGION", "garage"),
                ("EXTRA", "1"),
                ("S3RS_BUCKET", "from-flag"),
                ("S3RS_GLOBAL_KEYPREFIX", "app"),
            ])
        );
    }

    #[test]
    fn flags_without_a_variable_are_refused() {
        assert_eq!(unsupported_flag(&ConfigInput::default()), None);
        let store = ConfigInput {
            max_attempts: Some(2),
            ..ConfigInput::default()
        };
        assert_eq!(unsupported_flag(&store), Some("--max-attempts"));
        assert!(parse_env("A=b=c").is_ok_and(|kv| kv == ("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }
}

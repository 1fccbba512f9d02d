//! The config comes from the caller and the environment: arbitrary strings for every
//! `ConfigInput` field and an arbitrary environment through `Config::resolve`, then a GET for
//! key "k" built and signed with the result. Nothing may panic; a resolved config is usable;
//! and neither `Debug` output nor any error depends on the secret key or the session token.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use s3_result_store::config::{AddressingStyle, Config, ConfigInput, is_dns_safe_bucket};
use s3_result_store::key::{MAX_KEY_BYTES, ObjectKey};
use s3_result_store::request::{self, Operation};
use s3_result_store::sign;

/// The variables `Config::resolve` reads, and any other name.
#[derive(Clone, Debug, Arbitrary)]
enum EnvName {
    AccessKeyId,
    SecretAccessKey,
    SessionToken,
    Region,
    DefaultRegion,
    EndpointUrlS3,
    EndpointUrl,
    Other(String),
}

impl EnvName {
    fn name(&self) -> &str {
        match self {
            EnvName::AccessKeyId => "AWS_ACCESS_KEY_ID",
            EnvName::SecretAccessKey => "AWS_SECRET_ACCESS_KEY",
            EnvName::SessionToken => "AWS_SESSION_TOKEN",
            EnvName::Region => "AWS_REGION",
            EnvName::DefaultRegion => "AWS_DEFAULT_REGION",
            EnvName::EndpointUrlS3 => "AWS_ENDPOINT_URL_S3",
            EnvName::EndpointUrl => "AWS_ENDPOINT_URL",
            EnvName::Other(name) => name,
        }
    }

    fn is_secret(&self) -> bool {
        matches!(self, EnvName::SecretAccessKey | EnvName::SessionToken)
            || matches!(self, EnvName::Other(n) if n == "AWS_SECRET_ACCESS_KEY" || n == "AWS_SESSION_TOKEN")
    }
}

/// `ConfigInput`, field for field.
#[derive(Debug, Arbitrary)]
struct Input {
    endpoint_url: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    bucket_name: Option<String>,
    base_path: Option<String>,
    addressing_style: u8,
    max_attempts: Option<u32>,
    operation_timeout_ms: Option<u32>,
    connect_timeout_ms: Option<u32>,
    first_byte_timeout_ms: Option<u32>,
    between_bytes_timeout_ms: Option<u32>,
    max_value_bytes: Option<u64>,
    env: Vec<(EnvName, String)>,
}

impl Input {
    fn config_input(&self) -> ConfigInput {
        ConfigInput {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            bucket_name: self.bucket_name.clone(),
            base_path: self.base_path.clone(),
            addressing_style: match self.addressing_style % 3 {
                0 => AddressingStyle::Auto,
                1 => AddressingStyle::Path,
                _ => AddressingStyle::VirtualHosted,
            },
            max_attempts: self.max_attempts,
            operation_timeout_ms: self.operation_timeout_ms,
            connect_timeout_ms: self.connect_timeout_ms,
            first_byte_timeout_ms: self.first_byte_timeout_ms,
            between_bytes_timeout_ms: self.between_bytes_timeout_ms,
            max_value_bytes: self.max_value_bytes,
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(name, value)| (name.name().to_owned(), value.clone()))
            .collect()
    }
}

/// Resolution may look at a secret only to see whether it is set.
fn replace_secret(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| {
        if v.is_empty() {
            String::new()
        } else {
            "REPLACED-SECRET-VALUE".to_owned()
        }
    })
}

/// Long enough that finding it elsewhere by chance (in the bucket, say) is not expected.
fn leaks(debug: &str, debug_replaced: &str, secret: &Option<String>) -> bool {
    secret
        .as_deref()
        .is_some_and(|s| s.len() >= 8 && debug.contains(s) && !debug_replaced.contains(s))
}

/// The endpoint URL `Config::resolve` is documented to use: the config's, else the first
/// non-empty `AWS_ENDPOINT_URL_S3`, else the first non-empty `AWS_ENDPOINT_URL`.
fn endpoint_url_used(input: &ConfigInput, env: &[(String, String)]) -> Option<String> {
    let from_env = |name: &str| {
        env.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    input
        .endpoint_url
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| from_env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| from_env("AWS_ENDPOINT_URL"))
}

/// The port written in an accepted endpoint URL (the scheme's default when there is none), or
/// `None` when the text after the host is no port at all.
fn written_port(url: &str, https: bool) -> Option<u64> {
    let uri: http::Uri = url.parse().expect("an accepted endpoint URL parses");
    let authority = uri
        .authority()
        .expect("an accepted endpoint URL has a host")
        .as_str();
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.rfind(':').unwrap_or(authority.len())
    };
    match authority[host_end..].strip_prefix(':') {
        None if authority.len() == host_end => Some(if https { 443 } else { 80 }),
        None => None,
        Some(text) => text.parse::<u64>().ok(),
    }
}

fuzz_target!(|input: Input| {
    let config_input = input.config_input();
    let env = input.env();
    let result = Config::resolve(&config_input, env.iter().cloned());

    // The same input with other secrets (set or unset alike) must resolve the same way.
    let mut replaced_input = config_input.clone();
    replaced_input.secret_access_key = replace_secret(&config_input.secret_access_key);
    replaced_input.session_token = replace_secret(&config_input.session_token);
    let replaced_env: Vec<(String, String)> = input
        .env
        .iter()
        .map(|(name, value)| {
            let value = if name.is_secret() {
                replace_secret(&Some(value.clone())).unwrap()
            } else {
                value.clone()
            };
            (name.name().to_owned(), value)
        })
        .collect();
    let replaced = Config::resolve(&replaced_input, replaced_env.iter().cloned());

    let (debug_input, debug_replaced_input) =
        (format!("{config_input:?}"), format!("{replaced_input:?}"));
    assert_eq!(
        debug_input, debug_replaced_input,
        "ConfigInput's Debug shows a secret"
    );
    for secret in [&config_input.secret_access_key, &config_input.session_token] {
        assert!(!leaks(&debug_input, &debug_replaced_input, secret));
    }

    let config = match (result, replaced) {
        (Err(error), Err(replaced)) => {
            assert_eq!(error, replaced, "an error depends on a secret");
            return;
        }
        (Ok(config), Ok(replaced)) => {
            let (debug, debug_replaced) = (format!("{config:?}"), format!("{replaced:?}"));
            assert_eq!(debug, debug_replaced, "Config's Debug shows a secret");
            for secret in [
                &Some(config.credentials.secret_access_key.clone()),
                &config.credentials.session_token,
                &config_input.secret_access_key,
                &config_input.session_token,
            ] {
                assert!(!leaks(&debug, &debug_replaced, secret));
            }
            let mut same = replaced.clone();
            same.credentials.secret_access_key = config.credentials.secret_access_key.clone();
            same.credentials.session_token = config.credentials.session_token.clone();
            assert_eq!(config, same, "resolution depends on a secret's value");
            config
        }
        (result, replaced) => panic!("a secret changed the outcome: {result:?} vs {replaced:?}"),
    };

    // A resolved config is complete and consistent.
    assert!(!config.endpoint.host.is_empty(), "empty host: {config:?}");
    assert_ne!(config.endpoint.port, Some(0));
    assert!(!config.region.is_empty());
    assert!(!config.bucket.is_empty());
    assert!(!config.credentials.access_key_id.is_empty());
    assert!(!config.credentials.secret_access_key.is_empty());
    assert_ne!(config.addressing_style, AddressingStyle::Auto);
    if config.addressing_style == AddressingStyle::VirtualHosted {
        assert!(is_dns_safe_bucket(&config.bucket), "{:?}", config.bucket);
    }
    assert!((1..=20).contains(&config.retry.max_attempts));
    assert!(config.base_path.len() <= MAX_KEY_BYTES);
    // Requests go to the port the endpoint URL names: one that is no TCP port is refused,
    // never dropped in favour of the scheme's default.
    if let Some(url) = endpoint_url_used(&config_input, &env) {
        let default = if config.endpoint.https { 443 } else { 80 };
        let used = u64::from(config.endpoint.port.unwrap_or(default));
        assert_eq!(
            written_port(&url, config.endpoint.https),
            Some(used),
            "endpoint {url:?} resolved to {:?}",
            config.endpoint
        );
    }

    let key = ObjectKey::new(&config.base_path, "k");
    assert_eq!(key.is_ok(), config.base_path.len() < MAX_KEY_BYTES);
    let Ok(key) = key else {
        return;
    };
    let Ok(mut request) = request::build(&config, Operation::Get, &key, Vec::new()) else {
        return;
    };
    let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let signer = sign::Signer::new(config.credentials.clone(), config.region.clone());
    let _ = signer.sign(&mut request, time);
});

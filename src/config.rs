//! Configuration as given (mirroring the WIT record) and as validated for use.
//!
//! Resolution takes the environment as a list of pairs rather than reading it, so every
//! fallback rule is unit-testable and the component decides where the environment comes from.

use std::fmt;
use std::time::Duration;

use crate::deadline::OperationDeadline;
use crate::error::Error;

/// How the bucket appears in request URLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressingStyle {
    /// Path style for custom endpoints, virtual-hosted style for AWS with DNS-safe buckets.
    #[default]
    Auto,
    Path,
    VirtualHosted,
}

/// The config exactly as the caller gave it; every field may be missing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfigInput {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub bucket_name: Option<String>,
    pub base_path: Option<String>,
    pub addressing_style: AddressingStyle,
    /// Attempts per operation, the first included (default 3; 1 disables retries).
    pub max_attempts: Option<u32>,
    /// Time an operation may take, retries and back-off included (default 60 s).
    pub operation_timeout_ms: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub first_byte_timeout_ms: Option<u32>,
    pub between_bytes_timeout_ms: Option<u32>,
    /// Largest value `set` sends or `get` accepts (default 256 MiB).
    pub max_value_bytes: Option<u64>,
}

impl fmt::Debug for ConfigInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigInput")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| REDACTED),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| REDACTED),
            )
            .field("bucket_name", &self.bucket_name)
            .field("base_path", &self.base_path)
            .field("addressing_style", &self.addressing_style)
            .field("max_attempts", &self.max_attempts)
            .field("operation_timeout_ms", &self.operation_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("first_byte_timeout_ms", &self.first_byte_timeout_ms)
            .field("between_bytes_timeout_ms", &self.between_bytes_timeout_ms)
            .field("max_value_bytes", &self.max_value_bytes)
            .finish()
    }
}

const REDACTED: &str = "** redacted **";

/// Access key pair and optional session token. `Debug` never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &REDACTED)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| REDACTED),
            )
            .finish()
    }
}

/// `http` or `https`, host and optional port: where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    /// Host without port; IPv6 literals keep their brackets.
    pub host: String,
    /// Only a non-default port: the `Host` header and the signature must agree on it.
    pub port: Option<u16>,
}

impl Endpoint {
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// `host[:port]`, optionally with the bucket as a leading label.
    pub fn authority(&self, bucket_label: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(bucket) = bucket_label {
            out.push_str(bucket);
            out.push('.');
        }
        out.push_str(&self.host);
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out
    }

    fn is_aws(&self) -> bool {
        let host = self.host.to_ascii_lowercase();
        host == "amazonaws.com" || host.ends_with(".amazonaws.com")
    }
}

/// What the transport must enforce on each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportLimits {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub between_bytes_timeout: Duration,
    /// Larger response bodies are refused rather than buffered.
    pub max_body_bytes: u64,
    /// Set by the store for each operation; none in a configuration.
    pub operation: Option<OperationDeadline>,
}

/// How hard an operation tries before it reports a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    pub max_attempts: u32,
    /// No attempt starts, and no back-off runs, past this much time since the operation began.
    pub operation_timeout: Duration,
}

pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Far below wasmtime's 600 s defaults, so a stalled server yields an error, not a hang.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_MAX_VALUE_BYTES: u64 = 256 << 20;
/// A wasm32 guest addresses 4 GiB at most; S3 takes 5 GiB in one PUT.
pub const MAX_VALUE_BYTES_LIMIT: u64 = 2 << 30;

/// A validated config: everything a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub endpoint: Endpoint,
    pub region: String,
    pub credentials: Credentials,
    pub bucket: String,
    pub base_path: String,
    /// Resolved: never `Auto`.
    pub addressing_style: AddressingStyle,
    pub retry: RetrySettings,
    pub limits: TransportLimits,
}

impl Config {
    /// Validates `input`, filling left-out fields from `env` (name, value pairs).
    ///
    /// Empty strings count as unset, as they do for Celery (`if not bucket_name`) and the AWS SDKs.
    pub fn resolve<I, K, V>(input: &ConfigInput, env: I) -> Result<Config, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let env = Env::collect(env);
        let bucket = non_empty(&input.bucket_name).ok_or(Error::MissingBucketName)?;
        let credentials = resolve_credentials(input, &env)?;
        let region = non_empty(&input.region)
            .or_else(|| env.get("AWS_REGION"))
            .or_else(|| env.get("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        validate_region(&region)?;
        let endpoint = match non_empty(&input.endpoint_url)
            .or_else(|| env.get("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env.get("AWS_ENDPOINT_URL"))
        {
            Some(url) => parse_endpoint(&url)?,
            None => Endpoint {
                https: true,
                host: format!("s3.{region}.amazonaws.com"),
                port: None,
            },
        };
        let addressing_style = resolve_addressing(input.addressing_style, &endpoint, &bucket)?;
        let base_path = input.base_path.clone().unwrap_or_default();
        if let Some(c) = base_path.chars().find(|c| c.is_control()) {
            return Err(Error::InvalidConfig(format!(
                "base-path contains the control character U+{:04X}",
                u32::from(c)
            )));
        }
        if base_path.len() > crate::key::MAX_KEY_BYTES {
            return Err(Error::InvalidConfig(format!(
                "base-path is {} bytes; an S3 key, base path included, has at most {} bytes",
                base_path.len(),
                crate::key::MAX_KEY_BYTES
            )));
        }
        Ok(Config {
            endpoint,
            region,
            credentials,
            bucket,
            base_path,
            addressing_style,
            retry: resolve_retry(input)?,
            limits: resolve_limits(input)?,
        })
    }
}

fn resolve_retry(input: &ConfigInput) -> Result<RetrySettings, Error> {
    let max_attempts = input.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !(1..=20).contains(&max_attempts) {
        return Err(Error::InvalidConfig(format!(
            "max-attempts is {max_attempts}; it must be 1 to 20"
        )));
    }
    Ok(RetrySettings {
        max_attempts,
        operation_timeout: millis(input.operation_timeout_ms, "operation-timeout-ms")?
            .unwrap_or(DEFAULT_OPERATION_TIMEOUT),
    })
}

fn resolve_limits(input: &ConfigInput) -> Result<TransportLimits, Error> {
    let max_body_bytes = input.max_value_bytes.unwrap_or(DEFAULT_MAX_VALUE_BYTES);
    if max_body_bytes > MAX_VALUE_BYTES_LIMIT {
        return Err(Error::InvalidConfig(format!(
            "max-value-bytes is {max_body_bytes}; a component can hold at most {MAX_VALUE_BYTES_LIMIT}"
        )));
    }
    Ok(TransportLimits {
        connect_timeout: millis(input.connect_timeout_ms, "connect-timeout-ms")?
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        first_byte_timeout: millis(input.first_byte_timeout_ms, "first-byte-timeout-ms")?
            .unwrap_or(DEFAULT_FIRST_BYTE_TIMEOUT),
        between_bytes_timeout: millis(input.between_bytes_timeout_ms, "between-bytes-timeout-ms")?
            .unwrap_or(DEFAULT_BETWEEN_BYTES_TIMEOUT),
        max_body_bytes,
        operation: None,
    })
}

/// A zero timeout would fail every request at once: refuse it rather than guess.
fn millis(value: Option<u32>, field: &str) -> Result<Option<Duration>, Error> {
    match value {
        Some(0) => Err(Error::InvalidConfig(format!("{field} must be at least 1"))),
        other => Ok(other.map(|ms| Duration::from_millis(u64::from(ms)))),
    }
}

/// Environment variables, with empty values dropped.
struct Env(Vec<(String, String)>);

impl Env {
    fn collect<I, K, V>(env: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        const WANTED: [&str; 7] = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL",
        ];
        Env(env
            .into_iter()
            .filter(|(k, _)| WANTED.contains(&k.as_ref()))
            .map(|(k, v)| (k.as_ref().to_owned(), v.into()))
            .filter(|(_, v)| !v.is_empty())
            .collect())
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| !v.is_empty()).cloned()
}

fn resolve_credentials(input: &ConfigInput, env: &Env) -> Result<Credentials, Error> {
    let (id, secret) = (
        non_empty(&input.access_key_id),
        non_empty(&input.secret_access_key),
    );
    // Credentials in the config are taken as they are: the environment is not consulted, so a
    // stray AWS_SESSION_TOKEN can never be paired with keys it does not belong to.
    let (id, secret, token) = if id.is_some() || secret.is_some() {
        (id, secret, non_empty(&input.session_token))
    } else {
        (
            env.get("AWS_ACCESS_KEY_ID"),
            env.get("AWS_SECRET_ACCESS_KEY"),
            env.get("AWS_SESSION_TOKEN"),
        )
    };
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: token,
        }),
        (None, None) => Err(Error::MissingCredentials),
        (Some(_), None) => Err(Error::InvalidConfig(
            "access-key-id is set but secret-access-key is not".into(),
        )),
        (None, Some(_)) => Err(Error::InvalidConfig(
            "secret-access-key is set but access-key-id is not".into(),
        )),
    }
}

fn validate_region(region: &str) -> Result<(), Error> {
    // The region becomes part of a host name and of the signing scope.
    let ok = region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "region {region:?} must be letters, digits, '-' or '_' (at most 64)"
        )))
    }
}

/// Accepts `http(s)://host[:port]` with at most a trailing `/`: a path or query would silently
/// change every object's URL, so it is refused rather than guessed at.
fn parse_endpoint(url: &str) -> Result<Endpoint, Error> {
    let invalid = |why: &str| Error::InvalidConfig(format!("endpoint-url {url:?}: {why}"));
    let uri: http::Uri = url
        .parse()
        .map_err(|_| invalid("not a URL of the form http(s)://host[:port]"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(_) => return Err(invalid("the scheme must be http or https")),
        None => return Err(invalid("missing scheme: write http://host or https://host")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid(
            "user info is not allowed; give credentials in their own fields",
        ));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(invalid("missing host"));
    }
    if !matches!(uri.path(), "" | "/") {
        return Err(invalid(
            "a path is not allowed; use base-path for a key prefix",
        ));
    }
    if uri.query().is_some() {
        return Err(invalid("a query is not allowed"));
    }
    let default_port = if https { 443 } else { 80 };
    // The `http` crate is lenient here: `port_u16` is None both for "no port" and for one that
    // is not a u16 ("99999", "9000abc"), and text between an IPv6 literal and its port is
    // let through. Only exactly `host` or `host:digits` is accepted.
    let rest = authority.as_str().strip_prefix(host).unwrap_or(":");
    let port_text = match rest.strip_prefix(':') {
        None if rest.is_empty() => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits)
        }
        _ => return Err(invalid("the port must be a number from 1 to 65535")),
    };
    let port = match port_text.map(str::parse::<u16>) {
        None => None,
        Some(Ok(0)) => return Err(invalid("port 0 is not a valid port")),
        Some(Ok(p)) if p == default_port => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return Err(invalid("the port must be a number from 1 to 65535")),
    };
    Ok(Endpoint {
        https,
        host: host.to_ascii_lowercase(),
        port,
    })
}

fn resolve_addressing(
    style: AddressingStyle,
    endpoint: &Endpoint,
    bucket: &str,
) -> Result<AddressingStyle, Error> {
    validate_bucket(bucket)?;
    let dns_safe = is_dns_safe_bucket(bucket);
    match style {
        AddressingStyle::Path => Ok(AddressingStyle::Path),
        AddressingStyle::VirtualHosted if is_ip_literal(&endpoint.host) => {
            Err(Error::InvalidConfig(format!(
                "virtual-hosted addressing needs a host name, not the address {}; use path addressing",
                endpoint.host
            )))
        }
        AddressingStyle::VirtualHosted if dns_safe => Ok(AddressingStyle::VirtualHosted),
        AddressingStyle::VirtualHosted => Err(Error::InvalidConfig(format!(
            "bucket {bucket:?} cannot be used with virtual-hosted addressing: it is not a \
             DNS-safe name (3-63 lowercase letters, digits, '-' and '.'); use path addressing"
        ))),
        // Dotted names break TLS wildcard certificates (*.s3.amazonaws.com), as the AWS SDKs note.
        AddressingStyle::Auto if endpoint.is_aws() && dns_safe && !bucket.contains('.') => {
            Ok(AddressingStyle::VirtualHosted)
        }
        AddressingStyle::Auto => Ok(AddressingStyle::Path),
    }
}

fn is_ip_literal(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The names S3 has ever accepted (legacy us-east-1 names included): anything else could not
/// name a bucket and might change the request's path.
pub(crate) fn validate_bucket(bucket: &str) -> Result<(), Error> {
    let ok = (3..=255).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "bucket-name {bucket:?} is not a valid S3 bucket name \
             (3-63 lowercase letters, digits, '-' and '.')"
        )))
    }
}

/// Current S3 naming rules, which make the name usable as a DNS label.
pub fn is_dns_safe_bucket(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !bucket.contains("..")
        && !bucket.contains(".-")
        && !bucket.contains("-.")
        && bucket.parse::<std::net::Ipv4Addr>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ConfigInput {
        ConfigInput {
            bucket_name: Some("results".into()),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("SECRET".into()),
            ..ConfigInput::default()
        }
    }

    fn resolve(input: &ConfigInput, env: &[(&str, &str)]) -> Result<Config, Error> {
        Config::resolve(input, env.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn missing_bucket_name_is_reported_first() {
        let mut i = ConfigInput::default();
        assert_eq!(resolve(&i, &[]), Err(Error::MissingBucketName));
        i.bucket_name = Some(String::new());
        assert_eq!(resolve(&i, &[]), Err(Error::MissingBucketName));
    }

    #[test]
    fn missing_credentials_without_config_or_env() {
        let i = ConfigInput {
            bucket_name: Some("b-1".into()),
            ..ConfigInput::default()
        };
        assert_eq!(resolve(&i, &[]), Err(Error::MissingCredentials));
        assert_eq!(
            resolve(
                &i,
                &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")]
            ),
            Err(Error::MissingCredentials)
        );
    }

    #[test]
    fn credentials_fall_back_to_environment() {
        let i = ConfigInput {
            bucket_name: Some("b-1".into()),
            ..ConfigInput::default()
        };
        let env = [
            ("AWS_ACCESS_KEY_ID", "ENVID"),
            ("AWS_SECRET_ACCESS_KEY", "ENVSECRET"),
            ("AWS_SESSION_TOKEN", "ENVTOKEN"),
        ];
        let c = resolve(&i, &env).unwrap().credentials;
        assert_eq!(c.access_key_id, "ENVID");
        assert_eq!(c.secret_access_key, "ENVSECRET");
        assert_eq!(c.session_token.as_deref(), Some("ENVTOKEN"));
    }

    #[test]
    fn config_credentials_ignore_the_environment() {
        let env = [
            ("AWS_ACCESS_KEY_ID", "ENVID"),
            ("AWS_SECRET_ACCESS_KEY", "ENVSECRET"),
            ("AWS_SESSION_TOKEN", "ENVTOKEN"),
        ];
        let c = resolve(&input(), &env).unwrap().credentials;
        assert_eq!(c.access_key_id, "AKID");
        assert_eq!(c.secret_access_key, "SECRET");
        assert_eq!(c.session_token, None);
    }

    #[test]
    fn half_given_credentials_are_invalid() {
        let mut i = input();
        i.secret_access_key = None;
        let env = [("AWS_SECRET_ACCESS_KEY", "ENVSECRET")];
        assert!(
            matches!(resolve(&i, &env), Err(Error::InvalidConfig(m)) if m.contains("secret-access-key"))
        );
    }

    #[test]
    fn region_precedence() {
        let env = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-2"),
        ];
        assert_eq!(resolve(&input(), &env).unwrap().region, "eu-west-1");
        assert_eq!(resolve(&input(), &env[1..]).unwrap().region, "eu-west-2");
        assert_eq!(resolve(&input(), &[]).unwrap().region, "us-east-1");
        let mut i = input();
        i.region = Some("garage".into());
        assert_eq!(resolve(&i, &env).unwrap().region, "garage");
        i.region = Some("eu/west".into());
        assert!(matches!(resolve(&i, &[]), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn endpoint_precedence_and_default() {
        let env = [
            ("AWS_ENDPOINT_URL_S3", "http://s3only:9000"),
            ("AWS_ENDPOINT_URL", "http://general:9000"),
        ];
        let c = resolve(&input(), &env).unwrap();
        assert_eq!(c.endpoint.authority(None), "s3only:9000");
        let c = resolve(&input(), &env[1..]).unwrap();
        assert_eq!(c.endpoint.authority(None), "general:9000");
        let mut i = input();
        i.endpoint_url = Some("https://config.example".into());
        assert_eq!(
            resolve(&i, &env).unwrap().endpoint.authority(None),
            "config.example"
        );
        let mut i = input();
        i.region = Some("eu-central-1".into());
        let c = resolve(&i, &[]).unwrap();
        assert_eq!(c.endpoint.scheme(), "https");
        assert_eq!(c.endpoint.authority(None), "s3.eu-central-1.amazonaws.com");
    }

    #[test]
    fn endpoint_validation() {
        let cases = [
            ("localhost:9000", "scheme"),
            ("ftp://host", "scheme"),
            ("http://host/prefix", "path"),
            ("http://host/?x=1", "query"),
            ("http://user:pw@host", "user info"),
            ("http://host:0", "port 0"),
            ("http://s3.local:900000", "1 to 65535"),
            ("http://h:65536", "1 to 65535"),
            ("http://h:9000abc", "1 to 65535"),
            ("http://4:72.30.00", "1 to 65535"),
            ("http://h:", "1 to 65535"),
            ("http://[::1]333:90", "1 to 65535"),
            ("not a url", "not a URL"),
        ];
        for (url, why) in cases {
            let mut i = input();
            i.endpoint_url = Some(url.into());
            match resolve(&i, &[]) {
                Err(Error::InvalidConfig(m)) => assert!(m.contains(why), "{url}: {m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn default_ports_are_dropped_so_host_and_signature_agree() {
        for (url, authority) in [
            ("https://h:443", "h"),
            ("http://h:80", "h"),
            ("http://h:443", "h:443"),
            ("http://[::1]:9000/", "[::1]:9000"),
            ("HTTP://Host.Example:9000", "host.example:9000"),
        ] {
            let mut i = input();
            i.endpoint_url = Some(url.into());
            assert_eq!(
                resolve(&i, &[]).unwrap().endpoint.authority(None),
                authority,
                "{url}"
            );
        }
    }

    #[test]
    fn addressing_auto_rules() {
        let style = |endpoint: Option<&str>, bucket: &str| {
            let mut i = input();
            i.endpoint_url = endpoint.map(Into::into);
            i.bucket_name = Some(bucket.into());
            resolve(&i, &[]).map(|c| c.addressing_style)
        };
        assert_eq!(style(None, "results"), Ok(AddressingStyle::VirtualHosted));
        assert_eq!(style(None, "my.results"), Ok(AddressingStyle::Path));
        assert_eq!(style(None, "My_Results"), Ok(AddressingStyle::Path));
        assert_eq!(
            style(Some("http://127.0.0.1:9000"), "results"),
            Ok(AddressingStyle::Path)
        );
        assert_eq!(
            style(Some("https://s3.eu-west-1.amazonaws.com"), "results"),
            Ok(AddressingStyle::VirtualHosted)
        );
    }

    #[test]
    fn explicit_virtual_hosted_needs_dns_safe_bucket() {
        let mut i = input();
        i.addressing_style = AddressingStyle::VirtualHosted;
        i.bucket_name = Some("Bad_Bucket".into());
        assert!(matches!(resolve(&i, &[]), Err(Error::InvalidConfig(m)) if m.contains("DNS-safe")));
    }

    #[test]
    fn virtual_hosted_needs_a_host_name_and_base_path_no_control_characters() {
        for endpoint in ["http://127.0.0.1:9000", "http://[::1]:9000"] {
            let mut i = input();
            i.endpoint_url = Some(endpoint.into());
            i.addressing_style = AddressingStyle::VirtualHosted;
            assert!(
                matches!(resolve(&i, &[]), Err(Error::InvalidConfig(m)) if m.contains("host name")),
                "{endpoint}"
            );
        }
        let mut i = input();
        i.base_path = Some("results\n/".into());
        assert!(matches!(resolve(&i, &[]), Err(Error::InvalidConfig(m)) if m.contains("U+000A")));
    }

    #[test]
    fn invalid_bucket_names_are_refused() {
        for bucket in ["ab", "a/b/c", "bucket?x", "bucket#x", "buc ket", "..."] {
            let mut i = input();
            i.bucket_name = Some(bucket.into());
            assert!(
                matches!(resolve(&i, &[]), Err(Error::InvalidConfig(_))),
                "{bucket}"
            );
        }
    }

    #[test]
    fn dns_safe_bucket_rules() {
        assert!(is_dns_safe_bucket("abc"));
        assert!(is_dns_safe_bucket("a.b-c"));
        for bad in [
            "ab",
            "Abc",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "a.-b",
            "192.168.1.1",
        ] {
            assert!(!is_dns_safe_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut i = input();
        i.session_token = Some("TOKEN-XYZ".into());
        let c = resolve(&i, &[]).unwrap();
        for text in [format!("{i:?}"), format!("{c:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
            assert!(!text.contains("TOKEN-XYZ"), "{text}");
            assert!(text.contains("AKID"));
        }
    }

    #[test]
    fn retry_and_limit_defaults_and_bounds() {
        let c = resolve(&input(), &[]).unwrap();
        assert_eq!(c.retry.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(c.limits.first_byte_timeout, DEFAULT_FIRST_BYTE_TIMEOUT);
        assert_eq!(c.limits.max_body_bytes, DEFAULT_MAX_VALUE_BYTES);
        let mut i = input();
        i.max_attempts = Some(1);
        i.first_byte_timeout_ms = Some(250);
        i.max_value_bytes = Some(10);
        let c = resolve(&i, &[]).unwrap();
        assert_eq!(c.retry.max_attempts, 1);
        assert_eq!(c.limits.first_byte_timeout, Duration::from_millis(250));
        assert_eq!(c.limits.max_body_bytes, 10);
        for bad in [
            ConfigInput {
                max_attempts: Some(0),
                ..input()
            },
            ConfigInput {
                max_attempts: Some(21),
                ..input()
            },
            ConfigInput {
                connect_timeout_ms: Some(0),
                ..input()
            },
            ConfigInput {
                operation_timeout_ms: Some(0),
                ..input()
            },
            ConfigInput {
                max_value_bytes: Some(MAX_VALUE_BYTES_LIMIT + 1),
                ..input()
            },
        ] {
            assert!(
                matches!(resolve(&bad, &[]), Err(Error::InvalidConfig(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn overlong_base_path_is_invalid_config() {
        let mut i = input();
        i.base_path = Some("p".repeat(1025));
        assert!(
            matches!(resolve(&i, &[]), Err(Error::InvalidConfig(m)) if m.contains("base-path"))
        );
    }
}

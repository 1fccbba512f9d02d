//! How the CLI tells the user what happened: exit codes, errors with what to do next, and
//! `--json` output.

use std::process::ExitCode;

use s3_result_store_host::{Error, KvError, OciError, StoreError};
use serde_json::{Value, json};

/// Exit codes, as `--help` and the README list them.
pub const NOT_FOUND: u8 = 1;
pub const USAGE: u8 = 2;
pub const STORE_FAILED: u8 = 3;
pub const RUNTIME_FAILED: u8 = 4;

/// Prints `error` to stderr (as one JSON document with `--json`) and gives its exit code.
pub fn fail(error: &Error, json: bool) -> ExitCode {
    let hint = hint(error);
    if json {
        let mut body = json!({ "kind": kind(error), "message": error.to_string() });
        if let Some(hint) = &hint {
            body["hint"] = Value::from(hint.as_str());
        }
        eprintln!("{}", json!({ "error": body }));
    } else {
        eprintln!("error: {error}");
        if let Some(hint) = hint {
            eprintln!("hint: {hint}");
        }
    }
    ExitCode::from(match error {
        Error::Runtime(_) | Error::NotExported { .. } | Error::Oci(_) => RUNTIME_FAILED,
        Error::Store(_) | Error::KeyValue(_) => STORE_FAILED,
    })
}

/// A usage error found after parsing (a bad config file): exit 2, like clap's own.
pub fn usage(message: &str, json: bool) -> ExitCode {
    if json {
        eprintln!(
            "{}",
            json!({ "error": { "kind": "usage", "message": message } })
        );
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::from(USAGE)
}

/// The error's case, as the WIT variant names it.
pub fn kind(error: &Error) -> &'static str {
    match error {
        Error::Runtime(_) => "runtime",
        Error::NotExported { .. } => "not-exported",
        Error::Oci(e) => match e {
            OciError::BadReference { .. } => "oci-bad-reference",
            OciError::Unreachable { .. } => "oci-unreachable",
            OciError::NotFound { .. } => "oci-not-found",
            OciError::DigestMismatch { .. } => "oci-digest-mismatch",
            OciError::NotAComponent { .. } => "oci-not-a-component",
            OciError::CorruptCache { .. } => "oci-corrupt-cache",
            OciError::Cache { .. } => "oci-cache",
            _ => "oci",
        },
        Error::KeyValue(KvError::NoSuchStore) => "no-such-store",
        Error::KeyValue(KvError::AccessDenied) => "access-denied",
        Error::KeyValue(KvError::Other(_)) => "other",
        Error::Store(e) => match e {
            StoreError::MissingBucketName => "missing-bucket-name",
            StoreError::MissingCredentials => "missing-credentials",
            StoreError::InvalidConfig(_) => "invalid-config",
            StoreError::InvalidKey(_) => "invalid-key",
            StoreError::ValueTooLarge(_) => "value-too-large",
            StoreError::InvalidValue(_) => "invalid-value",
            StoreError::NoSuchBucket(_) => "no-such-bucket",
            StoreError::AccessDenied(_) => "access-denied",
            StoreError::S3(_) => "s3",
            StoreError::Transport(_) => "transport",
            StoreError::Timeout(_) => "timeout",
            StoreError::Unsupported(_) => "unsupported",
        },
    }
}

/// What to do next, where the error suggests something.
pub fn hint(error: &Error) -> Option<String> {
    let store = match error {
        Error::Store(e) => e,
        Error::KeyValue(_) => return None,
        Error::Oci(e) => return oci_hint(e),
        Error::NotExported { feature, .. } => {
            return Some(format!(
                "use the default build of the component (`cargo build --release --target \
                 wasm32-wasip2 -p s3-result-store`), or one with `--features {feature}`"
            ));
        }
        Error::Runtime(e) => {
            let message = format!("{e:#}");
            return (message.contains("component") && message.contains("No such file")).then(
                || {
                    "build the component with `cargo build --release --target wasm32-wasip2 -p \
                 s3-result-store`, or pass --component"
                        .to_owned()
                },
            );
        }
    };
    let text = match store {
        StoreError::MissingBucketName => {
            "pass --bucket, set S3RS_BUCKET, or put `bucket = \"...\"` in a --config file"
        }
        StoreError::MissingCredentials => {
            "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put access-key-id and \
             secret-access-key in a --config file"
        }
        StoreError::NoSuchBucket(_) => {
            "create the bucket first, or check --bucket and --endpoint-url"
        }
        StoreError::AccessDenied(info) => match info.code.as_str() {
            "SignatureDoesNotMatch" => {
                "the secret key does not fit the key id, or --region is not the server's \
                 (Garage's is usually `garage`, MinIO's `us-east-1`)"
            }
            "InvalidAccessKeyId" => "the server knows no such access key id",
            "RequestTimeTooSkewed" => "this machine's clock is far off; synchronise it",
            _ => "the credentials lack permission for this bucket or key",
        },
        StoreError::Transport(m) if m.contains("refused") => {
            "nothing answers at the endpoint: is the S3 server running, and is --endpoint-url \
             (or AWS_ENDPOINT_URL) right?"
        }
        StoreError::Transport(m) if m.contains("resolve") => {
            "the endpoint's host name does not resolve; check --endpoint-url"
        }
        StoreError::Timeout(_) => {
            "the server is slow or unreachable; raise --operation-timeout-ms or the per-request \
             --*-timeout-ms flags"
        }
        StoreError::InvalidKey(_) => {
            "keys are 1 to 1024 bytes of UTF-8 without control characters, base path included"
        }
        StoreError::ValueTooLarge(_) => "raise --max-value-bytes (at most 2 GiB)",
        StoreError::Unsupported(_) => "this needs a server with conditional writes (AWS S3, MinIO)",
        _ => return None,
    };
    Some(text.to_owned())
}

fn oci_hint(error: &OciError) -> Option<String> {
    Some(match error {
        OciError::BadReference { .. } => "write it as oci://REGISTRY/REPOSITORY:TAG or \
             oci://REGISTRY/REPOSITORY@sha256:DIGEST (lowercase repository), e.g. \
             oci://127.0.0.1:5000/result-store/s3-result-store:0.1.0"
            .to_owned(),
        OciError::Unreachable { registry, .. } => format!(
            "is the registry running at {registry}? Loopback registries are reached over plain \
             HTTP, others over HTTPS unless S3RS_OCI_INSECURE lists them"
        ),
        OciError::NotFound { .. } => "check the repository and the tag; a publisher pushes with \
             `wkg oci push REGISTRY/REPOSITORY:TAG FILE` (see docs/releases.md)"
            .to_owned(),
        OciError::DigestMismatch { .. } => "the registry serves other bytes than its manifest \
             names (damaged or tampered storage); nothing was run or cached: tell its operator"
            .to_owned(),
        OciError::CorruptCache { path, .. } => format!(
            "something changed the cached file since it was downloaded; delete {} and run again \
             to download it anew",
            path.display()
        ),
        OciError::NotAComponent { .. } => "push a WebAssembly component (`wkg oci push`), e.g. \
             the release's s3-result-store-<version>.wasm"
            .to_owned(),
        OciError::Cache { .. } => {
            "set S3RS_OCI_CACHE to a directory this user can write".to_owned()
        }
        OciError::Registry { .. } => "pulls are anonymous (no credentials are sent), so a \
             private repository cannot be pulled yet; a server error may pass if you try again"
            .to_owned(),
        _ => return None,
    })
}

/// A value for `--json` output: text when it is UTF-8, hex otherwise.
pub fn value_json(key: &str, value: &[u8]) -> Value {
    match std::str::from_utf8(value) {
        Ok(text) => json!({ "key": key, "found": true, "value": text }),
        Err(_) => {
            let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
            json!({ "key": key, "found": true, "value_hex": hex })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3_result_store_host::S3ErrorInfo;

    fn denied(code: &str) -> Error {
        Error::Store(StoreError::AccessDenied(S3ErrorInfo {
            status: 403,
            code: code.into(),
            message: String::new(),
            request_id: None,
        }))
    }

    #[test]
    fn hints_point_at_the_likely_fix() {
        let hint = |e: Error| hint(&e).unwrap_or_default();
        assert!(hint(denied("SignatureDoesNotMatch")).contains("--region"));
        assert!(hint(denied("InvalidAccessKeyId")).contains("access key id"));
        assert!(hint(Error::Store(StoreError::MissingCredentials)).contains("AWS_ACCESS_KEY_ID"));
        let refused = StoreError::Transport("connection refused (gave up after 3 attempts)".into());
        assert!(hint(Error::Store(refused)).contains("--endpoint-url"));
        assert_eq!(
            super::hint(&Error::Store(StoreError::S3(S3ErrorInfo {
                status: 500,
                code: "InternalError".into(),
                message: String::new(),
                request_id: None,
            }))),
            None
        );
    }

    #[test]
    fn kinds_are_the_wit_case_names() {
        assert_eq!(kind(&denied("AccessDenied")), "access-denied");
        assert_eq!(
            kind(&Error::Store(StoreError::NoSuchBucket("b".into()))),
            "no-such-bucket"
        );
        assert_eq!(
            kind(&Error::KeyValue(KvError::NoSuchStore)),
            "no-such-store"
        );
    }

    #[test]
    fn values_are_text_or_hex() {
        assert_eq!(value_json("k", b"v")["value"], "v");
        assert_eq!(value_json("k", b"\xff\x00")["value_hex"], "ff00");
    }
}

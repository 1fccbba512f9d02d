//! The three faults every host must survive, on this project's host and on wasmtime's own CLI,
//! with the same settings as the Node and workerd suites (js/test/faults.test.js,
//! examples/worker/test/worker.test.js): a response body that stalls after 1,000 of 100,000
//! bytes, a body cut short, and a server that accepts and never answers, on every attempt.
//! Each ends in the store's typed error within the configured bound, and prints a row of the
//! host x fault table (`fault table: <host>, <fault> -> <error> in <ms>`).
//!
//! On wasmtime's CLI the store runs composed with the kv example (wasi:keyvalue, configured
//! from S3RS_* variables), whose errors carry the store's message in `other`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use s3_result_store_host::{ConfigInput, Error, StoreError};
use s3_result_store_tests::fault_proxy::{Fault, FaultProxy};
use s3_result_store_tests::{report, runtime, server, unique_prefix, wasmtime_cli};

const CONNECT_TIMEOUT_MS: u32 = 1_000;
const FIRST_BYTE_TIMEOUT_MS: u32 = 500;
const BETWEEN_BYTES_TIMEOUT_MS: u32 = 500;
const OPERATION_TIMEOUT_MS: u32 = 5_000;
const MAX_ATTEMPTS: u32 = 2;
/// Generous: what it guards against is a hang, minutes long.
const BOUND: Duration = Duration::from_millis(OPERATION_TIMEOUT_MS as u64 + 5_000);
const VALUE_LEN: usize = 100_000;

fn upstream() -> SocketAddr {
    let endpoint = &server().endpoint;
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("fault tests need an http://IP:PORT endpoint, not {endpoint}"))
}

/// The faults, each with the error kind it must end in.
fn faults() -> [(&'static str, Fault, &'static str); 3] {
    [
        ("stall-body", Fault::StallBodyUntilClosed(1_000), "timeout"),
        ("truncate-body", Fault::TruncateBody, "transport"),
        ("silent", Fault::Silent, "timeout"),
    ]
}

fn value() -> Vec<u8> {
    (0..VALUE_LEN).map(|i| (i % 251) as u8).collect()
}

#[test]
fn on_the_project_host() {
    let proxy = FaultProxy::start(upstream());
    let prefix = unique_prefix("host-faults");
    let config = ConfigInput {
        endpoint_url: Some(proxy.endpoint()),
        connect_timeout_ms: Some(CONNECT_TIMEOUT_MS),
        first_byte_timeout_ms: Some(FIRST_BYTE_TIMEOUT_MS),
        between_bytes_timeout_ms: Some(BETWEEN_BYTES_TIMEOUT_MS),
        operation_timeout_ms: Some(OPERATION_TIMEOUT_MS),
        max_attempts: Some(MAX_ATTEMPTS),
        ..server().config(&prefix)
    };
    let mut store = runtime().open(&config).unwrap();
    store.set("big", value()).unwrap();
    for (name, fault, kind) in faults() {
        proxy.push_n(fault, MAX_ATTEMPTS as usize);
        let started = Instant::now();
        let result = store.get("big");
        let elapsed = started.elapsed();
        proxy.clear();
        let error = match result {
            Err(Error::Store(e)) => e,
            other => panic!("get under {name}: expected the store's error, got {other:?}"),
        };
        let got = match &error {
            StoreError::Timeout(_) => "timeout",
            StoreError::Transport(_) => "transport",
            other => panic!("get under {name}: {other:?}"),
        };
        report(&format!(
            "fault table: project host, {name} -> {got} in {} ms ({error})",
            elapsed.as_millis()
        ));
        assert_eq!(got, kind, "get under {name}: {error}");
        assert!(
            error.to_string().contains("gave up after 2 attempts"),
            "{error}"
        );
        assert!(elapsed < BOUND, "get under {name} took {elapsed:?}");
    }
    // Each held connection was closed by the client once it gave up, not left open.
    let held = proxy.stats().held;
    assert!(held.iter().all(|h| h.closed_by_client), "{held:?}");
}

#[test]
fn on_wasmtimes_cli() {
    let s = server();
    let proxy = FaultProxy::start(upstream());
    let prefix = unique_prefix("cli-faults");
    s.put_object(&format!("{prefix}big"), &value());
    let composed = std::env::var_os("S3RS_KV_COMPONENT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
                .join("wasm32-wasip2/release/kv.composed.wasm")
        });
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL_S3", proxy.endpoint()),
        ("AWS_REGION", s.region.clone()),
        ("AWS_ACCESS_KEY_ID", s.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", s.secret_access_key.clone()),
        ("S3RS_CONNECT_TIMEOUT_MS", CONNECT_TIMEOUT_MS.to_string()),
        (
            "S3RS_FIRST_BYTE_TIMEOUT_MS",
            FIRST_BYTE_TIMEOUT_MS.to_string(),
        ),
        (
            "S3RS_BETWEEN_BYTES_TIMEOUT_MS",
            BETWEEN_BYTES_TIMEOUT_MS.to_string(),
        ),
        (
            "S3RS_OPERATION_TIMEOUT_MS",
            OPERATION_TIMEOUT_MS.to_string(),
        ),
        ("S3RS_MAX_ATTEMPTS", MAX_ATTEMPTS.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let store = format!("{}/{}", s.bucket, prefix.trim_end_matches('/'));
    // Compiled before the clock starts.
    wasmtime_cli::precompiled(&composed);
    for (name, fault, kind) in faults() {
        proxy.push_n(fault, MAX_ATTEMPTS as usize);
        let started = Instant::now();
        let output = wasmtime_cli::run(
            &composed,
            &["http", "cli"],
            &env,
            &[&store, "get", "big"],
            b"",
        );
        let elapsed = started.elapsed();
        proxy.clear();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "get under {name} succeeded");
        // The store's error, as wasi:keyvalue's `other` carries it (its Display: "timed out:
        // ...", "transport error: ...").
        let message = stderr
            .lines()
            .find_map(|line| line.strip_prefix("kv: other: "))
            .unwrap_or_else(|| panic!("get under {name}: not the store's error: {stderr}"));
        report(&format!(
            "fault table: wasmtime CLI, {name} -> {message} in {} ms (process included)",
            elapsed.as_millis()
        ));
        assert!(message.contains("gave up after 2 attempts"), "{message}");
        let expected = match kind {
            "timeout" => "timed out: ",
            _ => "transport error: ",
        };
        assert!(
            message.starts_with(expected),
            "get under {name}: expected {kind}: {message}"
        );
        assert!(elapsed < BOUND, "get under {name} took {elapsed:?}");
    }
}

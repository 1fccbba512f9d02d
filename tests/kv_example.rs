//! The kv example (examples/kv): a `wasi:cli` command written only against `wasi:keyvalue`
//! (0.2.0-draft), composed with the store by `scripts/compose` and run by wasmtime's own CLI
//! (`wasmtime run -S http -S cli`, support/wasmtime_cli.rs) against the test server. What it
//! does is checked with an independent client (boto3); and the same app, not composed, runs on
//! wasmtime's in-memory `wasi:keyvalue` (`-S keyvalue`).
//!
//! Needs `target/wasm32-wasip2/release/kv.composed.wasm` and `kv.wasm` (`scripts/compose`; or
//! `S3RS_KV_COMPONENT` for the composition), built by `scripts/test` before the suites.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Output;

use s3_result_store_tests::wasmtime_cli;
use s3_result_store_tests::{TestServer, report, server, unique_prefix};

fn release_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("wasm32-wasip2/release")
}

fn composed() -> PathBuf {
    std::env::var_os("S3RS_KV_COMPONENT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| release_dir().join("kv.composed.wasm"))
}

/// The command's environment for `s`: what any AWS client reads, and nothing else.
fn env(s: &TestServer, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL_S3", s.endpoint.as_str()),
        ("AWS_REGION", &s.region),
        ("AWS_ACCESS_KEY_ID", &s.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &s.secret_access_key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in overrides {
        env.retain(|(k, _)| k != name);
        env.push((name.to_string(), value.to_string()));
    }
    env
}

/// The app against one folder of the test bucket.
struct Kv {
    env: Vec<(String, String)>,
    /// `bucket/folder`: the store identifier.
    store: String,
    /// The folder as a key prefix (`folder/`).
    prefix: String,
}

impl Kv {
    fn new(test: &str) -> Kv {
        let s = server();
        let prefix = unique_prefix(test);
        Kv {
            env: env(s, &[]),
            store: format!("{}/{}", s.bucket, prefix.trim_end_matches('/')),
            prefix,
        }
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut all = vec![self.store.as_str()];
        all.extend_from_slice(args);
        wasmtime_cli::run(&composed(), &["http", "cli"], &self.env, &all, stdin)
    }

    /// Runs the command and expects it to succeed; its stdout.
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        self.ok_with_input(args, b"")
    }

    fn ok_with_input(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let output = self.run(args, stdin);
        assert!(
            output.status.success(),
            "kv {args:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Runs the command and expects it to fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args, b"");
        assert!(!output.status.success(), "kv {args:?} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("UTF-8 output")
}

#[test]
fn set_get_delete_as_an_independent_client_sees_them() {
    let s = server();
    report(&format!(
        "kv example run by `wasmtime run`, {}",
        wasmtime_cli::version()
    ));
    let kv = Kv::new("kv-roundtrip");
    kv.ok(&["set", "greeting", "hello from wasi:keyvalue"]);
    assert_eq!(
        s.object(&kv.key("greeting")).as_deref(),
        Some(&b"hello from wasi:keyvalue"[..])
    );

    // Written by boto3, read by the app: every byte value, through stdin and stdout.
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    s.put_object(&kv.key("binary"), &binary);
    assert_eq!(kv.ok(&["get", "binary"]), binary);
    kv.ok_with_input(&["set", "copy", "-"], &binary);
    assert_eq!(s.object(&kv.key("copy")), Some(binary));

    assert_eq!(text(kv.ok(&["exists", "greeting"])), "true\n");
    kv.ok(&["delete", "greeting"]);
    assert_eq!(s.object(&kv.key("greeting")), None);
    assert_eq!(text(kv.ok(&["exists", "greeting"])), "false\n");
    let missing = kv.fails(&["get", "greeting"]);
    assert!(missing.contains("no such key: greeting"), "{missing}");
    // Deleting what is not there succeeds.
    kv.ok(&["delete", "greeting"]);
}

#[test]
fn list_and_get_many_see_only_the_folder() {
    let s = server();
    let kv = Kv::new("kv-list");
    for (key, value) in [("a", "1"), ("b/c", "2"), ("d", "3")] {
        s.put_object(&kv.key(key), value.as_bytes());
    }
    // Next to the folder, not in it.
    s.put_object(
        &format!("{}-outside", kv.prefix.trim_end_matches('/')),
        b"x",
    );
    assert_eq!(text(kv.ok(&["list"])), "a\nb/c\nd\n");
    assert_eq!(
        text(kv.ok(&["get-many", "a", "missing", "d"])),
        "a=1\nmissing\nd=3\n"
    );
}

#[test]
fn counters_are_conditional_writes_or_refused() {
    let s = server();
    let kv = Kv::new("kv-incr");
    if !s.conditional_writes {
        // The store probes the server and refuses rather than lose updates.
        let refused = kv.fails(&["incr", "visits"]);
        assert!(refused.contains("not supported by the server"), "{refused}");
        s.unsupported(
            "kv example: incr",
            "the server ignores If-Match / If-None-Match",
        );
        return;
    }
    assert_eq!(text(kv.ok(&["incr", "visits"])), "1\n");
    assert_eq!(text(kv.ok(&["incr", "visits", "41"])), "42\n");
    assert_eq!(s.object(&kv.key("visits")).as_deref(), Some(&b"42"[..]));
}

#[test]
fn store_errors_reach_the_app_as_keyvalue_errors() {
    let s = server();
    let kv = Kv::new("kv-errors");
    let with = |overrides: &[(&str, &str)], store: &str| Kv {
        env: env(s, overrides),
        store: store.to_owned(),
        prefix: kv.prefix.clone(),
    };

    let unknown = with(&[], "s3rs-no-such-bucket-kv").fails(&["get", "k"]);
    assert!(unknown.contains("no-such-store"), "{unknown}");

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{closed}");
    let refused = with(&[("AWS_ENDPOINT_URL_S3", &endpoint)], &kv.store).fails(&["get", "k"]);
    assert!(
        refused.contains("other:") && refused.contains("refused"),
        "{refused}"
    );

    let unconfigured = with(&[("AWS_ACCESS_KEY_ID", "")], &kv.store).fails(&["get", "k"]);
    assert!(unconfigured.contains("other:"), "{unconfigured}");

    if s.verifies_signatures {
        let denied =
            with(&[("AWS_SECRET_ACCESS_KEY", "not-the-secret")], &kv.store).fails(&["get", "k"]);
        assert!(denied.contains("access-denied"), "{denied}");
        assert!(!denied.contains("not-the-secret"), "{denied}");
    } else {
        s.unsupported(
            "kv example: wrong credentials -> access-denied",
            "the server accepts any signature",
        );
    }
}

#[test]
fn the_same_app_runs_on_wasmtimes_in_memory_keyvalue() {
    let app = release_dir().join("kv.wasm");
    let run = |args: &[&str]| {
        wasmtime_cli::run(
            &app,
            &[
                "keyvalue",
                "keyvalue-in-memory-data=greeting=hello from memory",
            ],
            &[],
            args,
            b"",
        )
    };
    let output = run(&["", "get", "greeting"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, b"hello from memory");
    let output = run(&["", "incr", "visits", "5"]);
    assert_eq!(
        output.stdout,
        b"5\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

//! Shared set-up for the end-to-end tests: one S3 server per test binary (the embedded one,
//! or an external server named by `S3RS_TEST_*` variables), the compiled component, unique
//! key prefixes, and an independent client (boto3) to look at what was really stored.
//!
//! | variable | meaning |
//! |---|---|
//! | `S3RS_TEST_ENDPOINT` | external server URL; unset: start the embedded s3s-fs server |
//! | `S3RS_TEST_ACCESS_KEY_ID`, `S3RS_TEST_SECRET_ACCESS_KEY` | its credentials |
//! | `S3RS_TEST_BUCKET` | an existing bucket; each test writes under its own prefix in it |
//! | `S3RS_TEST_REGION` | signing region (default `us-east-1`) |
//! | `S3RS_TEST_SERVER` | name shown in output (`garage`, `minio`, `aws`, ...) |
//! | `S3RS_TEST_VERIFIES_SIGNATURES` | `0` for servers that accept any signature (moto) |
//! | `S3RS_TEST_VHOST_DOMAIN` | its domain for virtual-hosted-style requests (`<bucket>.<domain>`), if any |
//! | `S3RS_TEST_CONDITIONAL_WRITES` | `0` for servers that ignore If-Match / If-None-Match (Garage) |
//! | `S3RS_PYTHON` | Python with boto3 for the independent client (default `.venv/bin/python`) |

pub mod celery;
pub mod fault_proxy;
pub mod tls_relay;
pub mod wasmtime_cli;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};
use s3_result_store_host::{ConfigInput, Runtime, default_component_path};

/// The S3 server the tests run against.
pub struct TestServer {
    pub name: String,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub bucket: String,
    pub verifies_signatures: bool,
    /// Whether PUT honours If-Match / If-None-Match (AWS, MinIO, s3s, moto) rather than
    /// ignoring them (Garage 2.5).
    pub conditional_writes: bool,
    /// Whether objects are files (s3s-fs): such a server cannot hold a key ending in '/' or
    /// with '.'/'..' segments, and folds '//' into '/'.
    pub keys_are_paths: bool,
    /// The domain under which the server takes virtual-hosted-style requests
    /// (`<bucket>.<domain>`), if it is configured for them.
    pub vhost_domain: Option<String>,
    /// Keeps the embedded server alive for the whole test binary.
    _local: Option<LocalS3>,
}

impl TestServer {
    /// The server `S3RS_TEST_*` name, if any.
    fn from_env() -> Option<TestServer> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        var("S3RS_TEST_ENDPOINT").map(|endpoint| TestServer::external(endpoint, var))
    }

    fn external(endpoint: String, var: impl Fn(&str) -> Option<String>) -> TestServer {
        let need = |name: &str| {
            var(name).unwrap_or_else(|| panic!("S3RS_TEST_ENDPOINT is set, so {name} must be too"))
        };
        TestServer {
            name: var("S3RS_TEST_SERVER").unwrap_or_else(|| "external".into()),
            endpoint,
            region: var("S3RS_TEST_REGION").unwrap_or_else(|| "us-east-1".into()),
            access_key_id: need("S3RS_TEST_ACCESS_KEY_ID"),
            secret_access_key: need("S3RS_TEST_SECRET_ACCESS_KEY"),
            bucket: need("S3RS_TEST_BUCKET"),
            verifies_signatures: var("S3RS_TEST_VERIFIES_SIGNATURES").as_deref() != Some("0"),
            conditional_writes: var("S3RS_TEST_CONDITIONAL_WRITES").as_deref() != Some("0"),
            keys_are_paths: false,
            vhost_domain: var("S3RS_TEST_VHOST_DOMAIN"),
            _local: None,
        }
    }

    fn embedded() -> TestServer {
        // Requests to the IP endpoint stay path-style; `<bucket>.<domain>` hosts are virtual-hosted.
        let vhost_domain = "s3.embedded.localhost".to_owned();
        let local = LocalS3::start(LocalS3Options {
            data_dir: Some(embedded_data_dir()),
            virtual_host_domain: Some(vhost_domain.clone()),
            ..LocalS3Options::default()
        })
        .expect("start the embedded S3 server");
        let bucket = "s3rs-test".to_owned();
        local
            .create_bucket(&bucket)
            .expect("create the test bucket");
        TestServer {
            name: "embedded s3s-fs".into(),
            endpoint: local.endpoint(),
            region: local.region().to_owned(),
            access_key_id: local.access_key().to_owned(),
            secret_access_key: local.secret_key().to_owned(),
            bucket,
            verifies_signatures: true,
            conditional_writes: true,
            keys_are_paths: true,
            vhost_domain: Some(vhost_domain),
            _local: Some(local),
        }
    }

    /// A config for this server with `base_path` as the prefix.
    pub fn config(&self, base_path: &str) -> ConfigInput {
        ConfigInput {
            endpoint_url: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            access_key_id: Some(self.access_key_id.clone()),
            secret_access_key: Some(self.secret_access_key.clone()),
            bucket_name: Some(self.bucket.clone()),
            base_path: Some(base_path.to_owned()),
            ..ConfigInput::default()
        }
    }

    /// The environment an AWS client (and the component's `wasi:keyvalue`) would take this
    /// server from.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_REGION", &self.region),
            ("AWS_ACCESS_KEY_ID", &self.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }

    /// The object under `key` as an independent client (boto3) reads it; none when there is
    /// no such key.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        let output = self.s3_object("get", key, &[]);
        match output.status.code() {
            Some(0) => Some(output.stdout),
            Some(3) => None,
            _ => panic!(
                "boto3 get of {key:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    /// Stores `value` under `key` with an independent client (boto3).
    pub fn put_object(&self, key: &str, value: &[u8]) {
        let output = self.s3_object("put", key, value);
        assert!(
            output.status.success(),
            "boto3 put of {key:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn s3_object(&self, command: &str, key: &str, stdin: &[u8]) -> std::process::Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("support/s3_object.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(command)
            .arg(key)
            .env("ENDPOINT", &self.endpoint)
            .env("REGION", &self.region)
            .env("ACCESS_KEY_ID", &self.access_key_id)
            .env("SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("BUCKET", &self.bucket)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the boto3 object script (is boto3 installed? see README)");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(stdin)
            .expect("send the script its input");
        child
            .wait_with_output()
            .expect("wait for the boto3 object script")
    }

    /// Keys under `prefix`, as an independent client (boto3, ListObjectsV2) sees them.
    pub fn list_keys(&self, prefix: &str) -> Vec<String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("support/list_keys.py");
        let output = Command::new(python())
            .arg(script)
            .env("ENDPOINT", &self.endpoint)
            .env("REGION", &self.region)
            .env("ACCESS_KEY_ID", &self.access_key_id)
            .env("SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("BUCKET", &self.bucket)
            .env("PREFIX", prefix)
            .output()
            .expect("run the boto3 listing script (is boto3 installed? see README)");
        assert!(
            output.status.success(),
            "boto3 listing failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).expect("listing is UTF-8");
        let mut keys: Vec<String> = text
            .lines()
            .map(|line| decode_hex(line).expect("listing lines are hex"))
            .collect();
        keys.sort();
        keys
    }

    /// What the server keeps of the object `key` besides its bytes, as an independent client
    /// (boto3, HEAD with `ChecksumMode=ENABLED`) sees it: `ChecksumCRC32C`, `ETag`, ...
    pub fn object_checksums(&self, key: &str) -> serde_json::Map<String, serde_json::Value> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("support/object_checksums.py");
        let output = Command::new(python())
            .arg(script)
            .env("ENDPOINT", &self.endpoint)
            .env("REGION", &self.region)
            .env("ACCESS_KEY_ID", &self.access_key_id)
            .env("SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("BUCKET", &self.bucket)
            .env("KEY", key)
            .output()
            .expect("run the boto3 HEAD script (is boto3 installed? see README)");
        assert!(
            output.status.success(),
            "boto3 HEAD failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the script prints a JSON object")
    }

    /// Says by name that this server cannot run a test, so nothing is skipped silently.
    pub fn unsupported(&self, test: &str, why: &str) {
        // Written to the real stderr, past libtest's capture, so it shows in every run.
        let _ = writeln!(
            std::io::stderr(),
            "NOT SUPPORTED by {}: {test}: {why}",
            self.name
        );
    }
}

/// Statics are never dropped, so the server's temporary directory would outlive every run:
/// keep the data under cargo's target/tmp instead, one directory per process, and remove those
/// of processes that are gone.
fn embedded_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let root = target.join("tmp/embedded-s3");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let alive = name
                .to_str()
                .is_some_and(|pid| PathBuf::from("/proc").join(pid).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).expect("create the embedded server's data directory");
    dir
}

/// A line for the test run's output: written to the real stderr, past libtest's capture, so
/// figures and "not supported" notes show in every run, not only in failures.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The Python with boto3 and Celery: `S3RS_PYTHON`, else the checkout's `.venv`, else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("S3RS_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

fn decode_hex(line: &str) -> Option<String> {
    let bytes = (0..line.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(line.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The server for this test binary, started on first use.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<&'static TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        // One embedded server per process: two on one data directory would corrupt uploads.
        let s: &'static TestServer = match TestServer::from_env() {
            Some(external) => Box::leak(Box::new(external)),
            None => embedded_server(),
        };
        let _ = writeln!(
            std::io::stderr(),
            "testing against {} at {}",
            s.name,
            s.endpoint
        );
        s
    })
}

/// The embedded server, whatever `S3RS_TEST_*` say: for tests of the host itself (its HTTP
/// sender), which need a server that behaves the same in every run.
pub fn embedded_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(TestServer::embedded)
}

/// The component, compiled once for this test binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::load(default_component_path()).unwrap_or_else(|e| panic!("{e}")))
}

/// A key prefix no other test (or earlier run) uses, so tests run in parallel and against
/// shared buckets without seeing each other's objects.
pub fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("s3rs-test/{nanos:x}-{}-{n}/{test}/", std::process::id())
}

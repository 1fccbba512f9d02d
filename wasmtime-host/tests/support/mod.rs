//! What the OCI tests share: a real registry per test, wkg, the release's files, and an
//! embedded S3 server to run what comes back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use s3_result_store_host::ConfigInput;
use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A command's output, or a panic that shows it.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Debian's docker-registry (distribution 2.8) on loopback, started by
/// `scripts/servers/registry` with its config and storage in a directory of its own; stopped
/// when dropped.
pub struct Registry {
    state: tempfile::TempDir,
    address: String,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(&[])
    }

    /// One that answers every request without a token 401 (`--token-auth`).
    pub fn start_refusing_anonymous() -> Registry {
        Registry::start_with(&["--token-auth"])
    }

    fn start_with(options: &[&str]) -> Registry {
        let state = tempfile::tempdir().unwrap();
        let output = run(Command::new(repo_root().join("scripts/servers/registry"))
            .arg("start")
            .arg(state.path())
            .args(options));
        let address = text(&output.stdout)
            .trim()
            .strip_prefix("export S3RS_OCI_REGISTRY='")
            .and_then(|s| s.strip_suffix('\''))
            .expect("the registry's address")
            .to_owned();
        Registry { state, address }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `oci://127.0.0.1:PORT/{path}`.
    pub fn oci(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.address)
    }

    /// The file the registry serves the blob `sha256:...` from.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.state
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&self) {
        run(Command::new(repo_root().join("scripts/servers/registry"))
            .arg("stop")
            .arg(self.state.path()));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/servers/registry"))
            .arg("stop")
            .arg(self.state.path())
            .output();
    }
}

/// The wkg binary: `S3RS_WKG`, else what `scripts/install-wkg` built (and caches).
pub fn wkg() -> PathBuf {
    if let Some(path) = std::env::var_os("S3RS_WKG") {
        return PathBuf::from(path);
    }
    let output = run(&mut Command::new(repo_root().join("scripts/install-wkg")));
    PathBuf::from(text(&output.stdout).trim())
}

/// A wkg command for `registry`, over plain HTTP, with its own (empty) cache.
pub fn wkg_command(registry: &Registry, cache: &Path) -> Command {
    let mut command = Command::new(wkg());
    command
        .env("WKG_OCI_INSECURE", registry.address())
        .env("WKG_CACHE_DIR", cache)
        .env_remove("WKG_CONFIG_FILE");
    command
}

/// The release `scripts/release` wrote: `S3RS_RELEASE_DIR`, else `target/release-artifacts`.
pub struct Release {
    pub dir: PathBuf,
    pub manifest: Value,
}

impl Release {
    pub fn load() -> Release {
        let dir = std::env::var_os("S3RS_RELEASE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| repo_root().join("target"))
                    .join("release-artifacts")
            });
        let manifest = std::fs::read(dir.join("manifest.json")).unwrap_or_else(|e| {
            panic!(
                "no release in {} ({e}): run scripts/release first",
                dir.display()
            )
        });
        Release {
            dir,
            manifest: serde_json::from_slice(&manifest).unwrap(),
        }
    }

    pub fn version(&self) -> &str {
        self.manifest["version"].as_str().unwrap()
    }

    pub fn artifacts(&self) -> &[Value] {
        self.manifest["artifacts"].as_array().unwrap()
    }

    /// The manifest's entry for the component of `flavour`.
    pub fn component(&self, flavour: &str) -> &Value {
        self.artifacts()
            .iter()
            .find(|a| a["flavour"] == flavour)
            .unwrap_or_else(|| panic!("no {flavour} component in the release"))
    }

    pub fn path(&self, artifact: &Value) -> PathBuf {
        self.dir.join(artifact["file"].as_str().unwrap())
    }

    pub fn bytes(&self, artifact: &Value) -> Vec<u8> {
        std::fs::read(self.path(artifact)).unwrap()
    }

    /// `result-store/NAME:VERSION`, where the tests push a component.
    pub fn repository(&self, artifact: &Value) -> String {
        format!(
            "result-store/{}:{}",
            artifact["name"].as_str().unwrap(),
            self.version()
        )
    }

    /// Pushes the component as a publisher would: `wkg oci push`, with the OCI annotations of
    /// its version, revision and source. Gives its `oci://` reference.
    pub fn push(&self, registry: &Registry, artifact: &Value) -> String {
        let repository = self.repository(artifact);
        let cache = tempfile::tempdir().unwrap();
        let manifest = &self.manifest;
        let annotations = [
            ("org.opencontainers.image.version", &manifest["version"]),
            ("org.opencontainers.image.revision", &manifest["revision"]),
            ("org.opencontainers.image.source", &manifest["source"]),
            ("org.opencontainers.image.licenses", &manifest["licenses"]),
        ];
        let mut command = wkg_command(registry, cache.path());
        command
            .args(["oci", "push"])
            .arg(format!("{}/{repository}", registry.address()))
            .arg(self.path(artifact));
        for (key, value) in annotations {
            command
                .arg("--annotation")
                .arg(format!("{key}={}", value.as_str().unwrap()));
        }
        run(&mut command);
        registry.oci(&repository)
    }
}

/// An embedded S3 server with a bucket `results`, for running what was pulled.
pub struct S3 {
    pub server: LocalS3,
}

impl S3 {
    pub fn start() -> S3 {
        let server = LocalS3::start(LocalS3Options::default()).unwrap();
        server.create_bucket("results").unwrap();
        S3 { server }
    }

    pub fn config(&self) -> ConfigInput {
        ConfigInput {
            endpoint_url: Some(self.server.endpoint()),
            region: Some(self.server.region().to_owned()),
            access_key_id: Some(self.server.access_key().to_owned()),
            secret_access_key: Some(self.server.secret_key().to_owned()),
            bucket_name: Some("results".into()),
            ..ConfigInput::default()
        }
    }

    /// What the component reads from its environment instead (keyvalue, the edge app).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_S3", self.server.endpoint()),
            ("AWS_REGION", self.server.region().to_owned()),
            ("AWS_ACCESS_KEY_ID", self.server.access_key().to_owned()),
            ("AWS_SECRET_ACCESS_KEY", self.server.secret_key().to_owned()),
            ("S3RS_BUCKET", "results".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

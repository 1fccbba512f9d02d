//! Components through a real OCI registry (Debian's docker-registry on loopback, one per test):
//! the release's files pushed with wkg as a publisher would, pulled back by wkg and by this
//! host (library and CLI), run; and each way a pull can fail, against the same registry.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use s3_result_store_host::celery::{State, TaskMeta};
use s3_result_store_host::{
    ComponentSource, Error, KvVersion, OciCache, OciError, OciReference, ProxyServer,
    PulledComponent, Runtime, RuntimeOptions,
};
use serde_json::{Value, json};
use sha2::Digest;
use support::{Registry, Release, S3, run, text, wkg_command};

fn pull(cache: &Path, reference: &str) -> Result<PulledComponent, OciError> {
    OciCache::new(cache).pull(&OciReference::parse(reference).unwrap())
}

/// The CLI as a user runs it, with its OCI cache in `cache`.
fn cli(s3: &S3, cache: &Path, component: &str, args: &[&str]) -> Output {
    let endpoint = s3.server.endpoint();
    Command::new(env!("CARGO_BIN_EXE_s3-result-store"))
        .args(["--component", component, "--endpoint-url", &endpoint])
        .args(["--bucket", "results"])
        .args(args)
        .env_clear()
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("S3RS_OCI_CACHE", cache)
        .env("AWS_ACCESS_KEY_ID", s3.server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", s3.server.secret_key())
        .output()
        .unwrap()
}

/// Exit code 4 and a message and hint with these words.
fn assert_refused(output: &Output, message: &str, hint: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    assert!(stderr.contains(message), "{stderr}");
    let hint_line = stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or("");
    assert!(hint_line.contains(hint), "{stderr}");
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn oci_client() -> Client {
    // reqwest is built without a crypto provider of its own (as the host installs one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
}

/// The manifest's annotations, as the registry holds them.
fn annotations(registry: &Registry, repository: &str) -> BTreeMap<String, String> {
    let reference: Reference = format!("{}/{repository}", registry.address())
        .parse()
        .unwrap();
    let (manifest, _) = tokio()
        .block_on(oci_client().pull_image_manifest(&reference, &RegistryAuth::Anonymous))
        .unwrap();
    manifest.annotations.unwrap_or_default()
}

#[test]
fn wkg_gives_back_every_release_file_byte_for_byte() {
    let release = Release::load();
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut components = 0;
    for artifact in release.artifacts() {
        if artifact["kind"] != "component" {
            continue;
        }
        components += 1;
        let reference = release.push(&registry, artifact);
        let out = dir.path().join(artifact["file"].as_str().unwrap());
        run(wkg_command(&registry, cache.path())
            .args(["oci", "pull"])
            .arg(reference.strip_prefix("oci://").unwrap())
            .arg("-o")
            .arg(&out));
        let pulled = std::fs::read(&out).unwrap();
        assert!(pulled == release.bytes(artifact), "{reference}");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&pulled)),
            artifact["sha256"].as_str().unwrap()
        );
    }
    assert_eq!(components, 5, "four flavours and the edge app");

    // The WIT package, published as wkg publishes packages: result-store:s3@VERSION, which a
    // registry config maps to this registry (where a platform's config would name its own).
    let wit = release
        .artifacts()
        .iter()
        .find(|a| a["kind"] == "wit-package")
        .unwrap();
    let package = wit["package"].as_str().unwrap();
    assert_eq!(package, format!("result-store:s3@{}", release.version()));
    let config = dir.path().join("wkg.toml");
    let address = registry.address();
    std::fs::write(
        &config,
        format!(
            "[namespace_registries.result-store]\nregistry = \"{address}\"\n\
             metadata = {{ preferredProtocol = \"oci\", oci = {{ registry = \"{address}\" }} }}\n\n\
             [registry.\"{address}\".oci]\nprotocol = \"http\"\n"
        ),
    )
    .unwrap();
    run(wkg_command(&registry, cache.path())
        .arg("publish")
        .arg("--config")
        .arg(&config)
        .arg(release.path(wit)));
    let got = dir.path().join("got.wasm");
    run(wkg_command(&registry, tempfile::tempdir().unwrap().path())
        .arg("get")
        .arg("--config")
        .arg(&config)
        .arg(package)
        .arg("-o")
        .arg(&got));
    assert!(
        std::fs::read(&got).unwrap() == release.bytes(wit),
        "wkg get {package}"
    );
    // A component pushed with `wkg oci push` to REGISTRY/result-store/NAME is the package
    // result-store:NAME to wkg (and so to platforms that resolve packages through it).
    let app = release.component("task-status");
    let got_app = dir.path().join("got-app.wasm");
    run(wkg_command(&registry, tempfile::tempdir().unwrap().path())
        .arg("get")
        .arg("--config")
        .arg(&config)
        .arg(format!("result-store:task-status@{}", release.version()))
        .arg("-o")
        .arg(&got_app));
    assert!(
        std::fs::read(&got_app).unwrap() == release.bytes(app),
        "wkg get the app"
    );
    // Where wkg put it: REGISTRY/NAMESPACE/NAME:VERSION, with the metadata as annotations.
    let published = annotations(&registry, &format!("result-store/s3:{}", release.version()));
    assert_eq!(
        published
            .get("org.opencontainers.image.version")
            .map(String::as_str),
        Some(release.version())
    );
    assert_eq!(
        published.get("org.opencontainers.image.source"),
        release.manifest["source"]
            .as_str()
            .map(String::from)
            .as_ref()
    );
}

#[test]
fn every_released_component_runs_from_the_registry() {
    let release = Release::load();
    let registry = Registry::start();
    let s3 = S3::start();
    let cache = tempfile::tempdir().unwrap();
    let config = s3.config();
    for flavour in ["default", "store-only", "tasks", "keyvalue"] {
        let artifact = release.component(flavour);
        let reference = release.push(&registry, artifact);
        let pulled = pull(cache.path(), &reference).unwrap();
        assert!(pulled.bytes == release.bytes(artifact), "{reference}");
        assert_eq!(
            pulled.digest,
            format!("sha256:{}", artifact["sha256"].as_str().unwrap())
        );
        assert_eq!(
            pulled.path,
            OciCache::new(cache.path())
                .component_path(&pulled.digest)
                .unwrap()
        );

        let runtime = Runtime::from_bytes(&pulled.bytes)
            .unwrap()
            .with_env(s3.env());
        let mut store = runtime.open(&config).unwrap();
        let key = format!("oci/{flavour}");
        store.set(&key, flavour).unwrap();
        assert_eq!(
            store.get(&key).unwrap().as_deref(),
            Some(flavour.as_bytes())
        );
        store.delete(&key).unwrap();
        assert_eq!(store.get(&key).unwrap(), None);

        let tasks = runtime.open_tasks(&config, None);
        let keyvalue = runtime.open_keyvalue(KvVersion::Draft2, "results");
        match flavour {
            "default" | "tasks" => {
                let meta = TaskMeta {
                    state: State::Success,
                    result: json!(flavour),
                    ..TaskMeta::pending(&format!("oci-{flavour}"))
                };
                let mut tasks = tasks.unwrap();
                tasks.store_result(&meta).unwrap();
                assert_eq!(
                    tasks.get_meta(&meta.task_id).unwrap().result,
                    json!(flavour)
                );
            }
            _ => assert!(matches!(tasks, Err(Error::NotExported { .. })), "{flavour}"),
        }
        match flavour {
            "default" | "keyvalue" => {
                let mut bucket = keyvalue.unwrap();
                bucket.set(&key, b"kv").unwrap();
                assert_eq!(bucket.get(&key).unwrap().as_deref(), Some(&b"kv"[..]));
            }
            _ => assert!(
                matches!(keyvalue, Err(Error::NotExported { .. })),
                "{flavour}"
            ),
        }
    }
    let revision = annotations(&registry, &release.repository(release.component("default")));
    assert_eq!(
        revision
            .get("org.opencontainers.image.revision")
            .map(String::as_str),
        release.manifest["revision"].as_str()
    );

    // The edge app, served as pulled: it reads the task the tasks build stored above.
    let artifact = release.component("task-status");
    let reference = release.push(&registry, artifact);
    let pulled = pull(cache.path(), &reference).unwrap();
    assert!(pulled.bytes == release.bytes(artifact));
    let serving =
        ProxyServer::from_bytes_with(&pulled.bytes, &reference, &RuntimeOptions::default())
            .unwrap()
            .with_env(s3.env())
            .bind("127.0.0.1:0".parse().unwrap())
            .unwrap();
    let (status, body) = get(serving.local_addr(), "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(serving.local_addr(), "/tasks/oci-tasks");
    assert_eq!(status, 200, "{body}");
    let document: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["status"], "SUCCESS");
    assert_eq!(document["result"], "tasks");
    serving.shutdown().unwrap();
}

/// One GET, `Connection: close`: the status and the body (the app answers with a length).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, body.to_owned())
}

#[test]
fn the_cli_runs_a_component_from_the_registry_then_from_its_cache_by_digest() {
    let release = Release::load();
    let registry = Registry::start();
    let s3 = S3::start();
    let cache = tempfile::tempdir().unwrap();
    let reference = release.push(&registry, release.component("default"));

    let set = cli(
        &s3,
        cache.path(),
        &reference,
        &["set", "oci-cli", "from the registry"],
    );
    assert!(set.status.success(), "{}", text(&set.stderr));
    let got = cli(&s3, cache.path(), &reference, &["get", "oci-cli"]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(got.stdout, b"from the registry");
    let task = cli(
        &s3,
        cache.path(),
        &reference,
        &["task", "get", "unknown-task"],
    );
    assert!(task.status.success(), "{}", text(&task.stderr));
    assert!(
        text(&task.stdout).contains("PENDING"),
        "{}",
        text(&task.stdout)
    );

    // Pinned by digest, it needs no registry once cached.
    let pulled = pull(cache.path(), &reference).unwrap();
    assert!(
        pulled.path.starts_with(cache.path()),
        "{}",
        pulled.path.display()
    );
    let pinned = format!(
        "{}@{}",
        reference.rsplit_once(':').unwrap().0,
        pulled.manifest_digest
    );
    registry.stop();
    let got = cli(&s3, cache.path(), &pinned, &["get", "oci-cli"]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(got.stdout, b"from the registry");
    // A tag is always looked up, so with the registry gone it is not found there.
    let by_tag = cli(&s3, cache.path(), &reference, &["get", "oci-cli"]);
    assert_refused(
        &by_tag,
        "cannot reach the OCI registry",
        "is the registry running",
    );
}

#[test]
fn bad_references_are_refused_before_anything_is_fetched() {
    for reference in [
        "oci://",
        "oci://127.0.0.1:5000",
        "oci://s3-result-store:0.1.0",
        "oci://result-store/s3-result-store:0.1.0",
        "oci://127.0.0.1:5000/Result-Store/s3-result-store:0.1.0",
        "oci://127.0.0.1:5000/result-store/s3-result-store:bad tag",
        "oci://127.0.0.1:5000/result-store/s3-result-store@sha256:abc",
        "oci://127.0.0.1:5000/result-store//s3-result-store:0.1.0",
    ] {
        match ComponentSource::parse(reference) {
            Err(Error::Oci(OciError::BadReference { reference: r, .. })) => {
                assert_eq!(r, reference)
            }
            other => panic!("{reference}: {other:?}"),
        }
    }
    // A path that is not oci:// stays a path.
    assert_eq!(
        ComponentSource::parse("oci-build/component.wasm").unwrap(),
        ComponentSource::File("oci-build/component.wasm".into())
    );

    let s3 = S3::start();
    let cache = tempfile::tempdir().unwrap();
    let output = cli(
        &s3,
        cache.path(),
        "oci://127.0.0.1:5000/Result-Store/s3-result-store:0.1.0",
        &["get", "k"],
    );
    assert_refused(
        &output,
        "repository names are lowercase",
        "oci://REGISTRY/REPOSITORY:TAG",
    );
    let json = cli(
        &s3,
        cache.path(),
        "oci://127.0.0.1:5000",
        &["--json", "get", "k"],
    );
    assert_eq!(json.status.code(), Some(4));
    let error: Value = serde_json::from_slice(&json.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "oci-bad-reference");
}

#[test]
fn a_missing_tag_or_repository_is_not_found() {
    let release = Release::load();
    let registry = Registry::start();
    let cache = tempfile::tempdir().unwrap();
    release.push(&registry, release.component("default"));
    let missing_tag = registry.oci("result-store/s3-result-store:9.9.9");
    let missing_repository = registry.oci("result-store/no-such-component:0.1.0");
    let missing_digest = registry.oci(&format!(
        "result-store/s3-result-store@sha256:{}",
        "0".repeat(64)
    ));
    for reference in [&missing_tag, &missing_repository, &missing_digest] {
        match pull(cache.path(), reference) {
            Err(OciError::NotFound { reference: r }) => assert_eq!(&r, reference),
            other => panic!("{reference}: {other:?}"),
        }
    }
    let s3 = S3::start();
    let output = cli(&s3, cache.path(), &missing_tag, &["get", "k"]);
    assert_refused(
        &output,
        "the OCI registry has no",
        "check the repository and the tag",
    );
}

#[test]
fn a_registry_serving_damaged_bytes_is_refused_and_nothing_is_cached() {
    let release = Release::load();
    let registry = Registry::start();
    let cache = tempfile::tempdir().unwrap();
    let artifact = release.component("store-only");
    let reference = release.push(&registry, artifact);
    let digest = format!("sha256:{}", artifact["sha256"].as_str().unwrap());
    // The registry's storage damaged under it: same size, one byte changed.
    let blob = registry.blob_file(&digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    match pull(cache.path(), &reference) {
        Err(OciError::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, digest);
            assert_ne!(actual, digest);
        }
        other => panic!("{other:?}"),
    }
    let cached = OciCache::new(cache.path()).component_path(&digest).unwrap();
    assert!(!cached.exists(), "damaged bytes were cached");

    let s3 = S3::start();
    let output = cli(&s3, cache.path(), &reference, &["set", "k", "v"]);
    assert_refused(
        &output,
        "the registry sent bytes whose digest is",
        "nothing was run",
    );
    assert!(!cached.exists());
}

#[test]
fn an_unreachable_registry_is_reported() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reference = format!("oci://127.0.0.1:{port}/result-store/s3-result-store:0.1.0");
    let cache = tempfile::tempdir().unwrap();
    match pull(cache.path(), &reference) {
        Err(OciError::Unreachable { registry, reason }) => {
            assert_eq!(registry, format!("127.0.0.1:{port}"));
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let s3 = S3::start();
    let output = cli(&s3, cache.path(), &reference, &["get", "k"]);
    assert_refused(
        &output,
        "cannot reach the OCI registry",
        "is the registry running",
    );
}

#[test]
fn a_cached_component_that_changed_is_refused_not_run() {
    let release = Release::load();
    let registry = Registry::start();
    let cache = tempfile::tempdir().unwrap();
    let reference = release.push(&registry, release.component("default"));
    let pulled = pull(cache.path(), &reference).unwrap();
    let pinned = format!(
        "{}@{}",
        reference.rsplit_once(':').unwrap().0,
        pulled.manifest_digest
    );
    let mut bytes = std::fs::read(&pulled.path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&pulled.path, &bytes).unwrap();

    // By tag (the registry asked for the manifest, the cache for the component) and pinned by
    // digest (both from the cache).
    for reference in [&reference, &pinned] {
        match pull(cache.path(), reference) {
            Err(OciError::CorruptCache {
                path,
                expected,
                actual,
            }) => {
                assert_eq!(path, pulled.path);
                assert_eq!(expected, pulled.digest);
                assert_ne!(actual, pulled.digest);
            }
            other => panic!("{reference}: {other:?}"),
        }
    }
    // The CLI refuses it too: nothing is stored through it.
    let s3 = S3::start();
    let output = cli(&s3, cache.path(), &reference, &["set", "not-run", "v"]);
    assert_refused(&output, "has changed", "delete");
    let runtime = Runtime::from_bytes(&release.bytes(release.component("default"))).unwrap();
    assert_eq!(
        runtime.open(&s3.config()).unwrap().get("not-run").unwrap(),
        None
    );
}

#[test]
fn artifacts_that_are_not_components_are_refused() {
    let registry = Registry::start();
    let cache = tempfile::tempdir().unwrap();
    let client = oci_client();
    let push = |repository: &str, layer: ImageLayer| {
        let reference: Reference = format!("{}/{repository}", registry.address())
            .parse()
            .unwrap();
        let config = Config::new(
            b"{}".to_vec(),
            "application/vnd.oci.image.config.v1+json".to_owned(),
            None,
        );
        tokio()
            .block_on(client.push(&reference, &[layer], config, &RegistryAuth::Anonymous, None))
            .unwrap();
        registry.oci(repository)
    };
    let tarball = push(
        "result-store/an-image:1",
        ImageLayer::new(
            vec![0u8; 1024],
            "application/vnd.oci.image.layer.v1.tar".into(),
            None,
        ),
    );
    let module = push(
        "result-store/a-core-module:1",
        ImageLayer::new(
            b"\0asm\x01\x00\x00\x00".to_vec(),
            "application/wasm".into(),
            None,
        ),
    );
    for (reference, reason) in [
        (&tarball, "not application/wasm"),
        (&module, "core Wasm module"),
    ] {
        match pull(cache.path(), reference) {
            Err(OciError::NotAComponent { reason: r, .. }) => assert!(r.contains(reason), "{r}"),
            other => panic!("{reference}: {other:?}"),
        }
    }
    let s3 = S3::start();
    let output = cli(&s3, cache.path(), &module, &["get", "k"]);
    assert_refused(
        &output,
        "is not a Wasm component",
        "push a WebAssembly component",
    );
}

#[test]
fn a_registry_that_refuses_anonymous_pulls_is_a_registry_error() {
    let registry = Registry::start_refusing_anonymous();
    let cache = tempfile::tempdir().unwrap();
    let reference = registry.oci("result-store/s3-result-store:0.1.0");
    match pull(cache.path(), &reference) {
        Err(OciError::Registry {
            reference: r,
            reason,
        }) => {
            assert_eq!(r, reference);
            assert!(reason.contains("Not authorized"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let s3 = S3::start();
    let output = cli(&s3, cache.path(), &reference, &["get", "k"]);
    assert_refused(&output, "the OCI registry failed", "pulls are anonymous");
}

#[test]
fn a_cache_that_cannot_be_written_is_reported() {
    let release = Release::load();
    let registry = Registry::start();
    let reference = release.push(&registry, release.component("store-only"));
    // The cache "directory" is under a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let cache = file.join("oci");
    match pull(&cache, &reference) {
        Err(OciError::Cache { path, reason }) => {
            assert!(path.starts_with(&cache), "{}", path.display());
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let s3 = S3::start();
    let output = cli(&s3, &cache, &reference, &["--json", "get", "k"]);
    assert_eq!(output.status.code(), Some(4));
    let error: Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "oci-cache");
    assert!(
        error["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("S3RS_OCI_CACHE")
    );
}

//! What `scripts/release` wrote: every file the manifest lists, each with its metadata, its
//! digest in SHA256SUMS, and its imports and exports.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use s3_result_store_release::{artifacts, interface, stamp, wit_package};
use serde_json::Value;

/// The wasm-tools binary: `S3RS_WASM_TOOLS`, else what `scripts/install-wasm-tools` built.
fn wasm_tools() -> PathBuf {
    if let Some(path) = std::env::var_os("S3RS_WASM_TOOLS") {
        return PathBuf::from(path);
    }
    let output = std::process::Command::new(support::root().join("scripts/install-wasm-tools"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scripts/install-wasm-tools: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

fn git_head() -> String {
    let out = support::git(&support::root(), &["rev-parse", "HEAD"]);
    String::from_utf8(out).unwrap().trim().to_owned()
}

#[test]
fn every_file_carries_its_metadata_and_the_manifest_says_what_it_is() {
    let dir = support::release_dir();
    let manifest = support::manifest(&dir);
    let version = manifest["version"].as_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let revision = manifest["revision"].as_str().unwrap();
    // The commit, from git; "-dirty" when built from uncommitted changes.
    assert_eq!(
        revision.trim_end_matches("-dirty"),
        git_head(),
        "a stale release: run scripts/release"
    );
    let source = manifest["source"].as_str().unwrap();
    let licenses = manifest["licenses"].as_str().unwrap();
    assert_eq!(licenses, "MIT OR Apache-2.0");
    for tool in ["rustc", "wasm-opt", "wac"] {
        assert!(manifest["built_with"][tool].is_string(), "{tool}");
    }

    let sums = std::fs::read_to_string(dir.join(artifacts::SUMS_FILE)).unwrap();
    let listed: Vec<&Value> = manifest["artifacts"].as_array().unwrap().iter().collect();
    assert_eq!(sums.lines().count(), listed.len());
    let mut flavours = BTreeSet::new();
    for artifact in &listed {
        let file = artifact["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let digest = s3_result_store_release::manifest::sha256_hex(&bytes);
        assert_eq!(artifact["sha256"], digest.as_str(), "{file}");
        assert_eq!(artifact["size"], bytes.len(), "{file}");
        assert!(
            sums.contains(&format!("{digest}  {file}\n")),
            "{file} in SHA256SUMS"
        );

        // As `wasm-tools metadata show` shows it (its own build of wasm-metadata, a newer one
        // than the release tool's).
        let shown = Command::new(wasm_tools())
            .args(["metadata", "show", "--json"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        assert!(
            shown.status.success(),
            "{}",
            String::from_utf8_lossy(&shown.stderr)
        );
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        let outer = &shown["component"]["metadata"];
        assert_eq!(outer["version"], version, "{file}");
        assert_eq!(outer["revision"], revision, "{file}");
        assert_eq!(outer["source"], source, "{file}");
        assert_eq!(outer["licenses"], licenses, "{file}");
        assert!(
            outer["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{file}"
        );
        if artifact["kind"] == "component" {
            assert_eq!(outer["name"], artifact["name"], "{file}");
        }
        // And as the release tool reads it.
        let metadata = stamp::read(&bytes).unwrap();
        for (field, read, expected) in [
            ("version", metadata.version.map(|v| v.to_string()), version),
            (
                "revision",
                metadata.revision.map(|v| v.to_string()),
                revision,
            ),
            ("source", metadata.source.map(|v| v.to_string()), source),
            (
                "licenses",
                metadata.licenses.map(|v| v.to_string()),
                licenses,
            ),
        ] {
            assert_eq!(read.as_deref(), Some(expected), "{file}: {field}");
        }
        assert!(metadata.description.is_some(), "{file}");

        match artifact["kind"].as_str().unwrap() {
            "component" => {
                let flavour = artifact["flavour"].as_str().unwrap();
                let expected = artifacts::component(flavour).unwrap();
                flavours.insert(flavour);
                assert_eq!(metadata.name.as_deref(), Some(expected.name), "{file}");
                assert_eq!(file, artifacts::component_file(expected.name, version));
                let found = interface::of(&bytes).unwrap();
                assert_eq!(
                    artifact["exports"],
                    serde_json::json!(found.exports),
                    "{file}"
                );
                assert_eq!(
                    artifact["imports"],
                    serde_json::json!(found.imports),
                    "{file}"
                );
                // Every import is WASI's: the store needs nothing else, nor does the app.
                assert!(
                    found.imports.iter().all(|i| i.starts_with("wasi:")),
                    "{file}: {:?}",
                    found.imports
                );
            }
            "wit-package" => {
                assert_eq!(file, artifacts::wit_package_file(version));
                let package = wit_package::package_of(&bytes).unwrap();
                assert_eq!(package, format!("result-store:s3@{version}"));
                assert_eq!(artifact["package"], package.as_str());
                let worlds: Vec<&str> = artifact["worlds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap())
                    .collect();
                assert!(worlds.contains(&"store-only"), "{worlds:?}");
            }
            kind => panic!("{file}: kind {kind}"),
        }
    }
    let all: BTreeSet<&str> = artifacts::COMPONENTS.iter().map(|c| c.flavour).collect();
    assert_eq!(flavours, all);

    // What each flavour exports, by interface.
    let exports = |flavour: &str| -> Vec<String> {
        let artifact = listed.iter().find(|a| a["flavour"] == flavour).unwrap();
        artifact["exports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    };
    let has = |flavour: &str, prefix: &str| exports(flavour).iter().any(|e| e.starts_with(prefix));
    for flavour in ["default", "store-only", "tasks", "keyvalue"] {
        assert!(has(flavour, "result-store:s3/store@"), "{flavour}");
    }
    assert!(has("default", "result-store:s3/tasks@") && has("default", "wasi:keyvalue/store@"));
    assert!(!has("store-only", "result-store:s3/tasks@") && !has("store-only", "wasi:keyvalue/"));
    assert!(has("tasks", "result-store:s3/tasks@") && !has("tasks", "wasi:keyvalue/"));
    assert!(has("keyvalue", "wasi:keyvalue/store@") && !has("keyvalue", "result-store:s3/tasks@"));
    let app = exports("task-status");
    assert!(
        app.len() == 1 && app[0].starts_with("wasi:http/incoming-handler@"),
        "{app:?}"
    );
}

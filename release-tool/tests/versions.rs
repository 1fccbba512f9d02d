//! One version everywhere: the workspace's, every crate's (the fuzz crate's too), the WIT
//! package's, every `result-store:s3...@VERSION` the sources and docs name, and the
//! CHANGELOG's latest release. Bumping one and not the others fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn toml_at(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn workspace_version() -> String {
    let manifest = toml_at(&root().join("Cargo.toml"));
    manifest["workspace"]["package"]["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_workspace_version_is_this_crates() {
    assert_eq!(workspace_version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_crate_carries_the_workspace_version() {
    let version = workspace_version();
    let root_manifest = toml_at(&root().join("Cargo.toml"));
    let mut manifests: Vec<PathBuf> = root_manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| root().join(member.as_str().unwrap()).join("Cargo.toml"))
        .collect();
    // Not a member (cargo-fuzz wants a workspace of its own), but a crate of this repository.
    manifests.push(root().join("fuzz/Cargo.toml"));
    for path in manifests {
        let manifest = toml_at(&path);
        let declared = &manifest["package"]["version"];
        let inherited = declared
            .as_table()
            .and_then(|t| t.get("workspace"))
            .and_then(toml::Value::as_bool)
            == Some(true);
        assert!(
            inherited || declared.as_str() == Some(version.as_str()),
            "{}: version {declared} is not the workspace's {version}",
            path.display()
        );
    }
}

#[test]
fn the_wit_package_carries_the_workspace_version() {
    let package = s3_result_store_release::wit_package::encode(&root().join("wit")).unwrap();
    assert_eq!(
        package.id,
        format!("result-store:s3@{}", workspace_version())
    );
}

/// Every `result-store:s3@V` and `result-store:s3/INTERFACE@V` in the repository's files (the
/// host's interface names, the example app's inline WIT, tests, docs).
#[test]
fn every_interface_named_in_the_sources_is_at_the_workspace_version() {
    let version = workspace_version();
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(listed.status.success());
    let mut named = 0;
    let mut wrong = Vec::new();
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let file = String::from_utf8_lossy(file);
        // CHANGELOG.md names past versions on purpose.
        if file == "CHANGELOG.md" || file.starts_with("wit/deps/") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root().join(&*file)) else {
            continue; // removed from the work tree, or not text
        };
        for (at, _) in text.match_indices("result-store:s3") {
            let rest = &text[at + "result-store:s3".len()..];
            let rest = rest
                .strip_prefix('/')
                .map(|r| r.trim_start_matches(|c: char| c.is_ascii_lowercase() || c == '-'))
                .unwrap_or(rest);
            let Some(named_version) = rest.strip_prefix('@') else {
                continue;
            };
            let end = named_version
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+'))
                .unwrap_or(named_version.len());
            let named_version = named_version[..end].trim_end_matches('.');
            // `@{version}`, `@VERSION`: placeholders in code and docs, not versions.
            if !named_version.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            named += 1;
            if named_version != version {
                wrong.push(format!("{file}: @{named_version}"));
            }
        }
    }
    assert!(named > 10, "only {named} versioned names found");
    assert!(wrong.is_empty(), "not at {version}: {wrong:#?}");
}

#[test]
fn the_changelogs_latest_release_is_the_workspace_version() {
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
    let latest = changelog
        .lines()
        .filter_map(|line| line.strip_prefix("## ["))
        .filter_map(|rest| rest.split(']').next())
        .find(|name| *name != "Unreleased")
        .expect("a `## [VERSION]` entry");
    assert_eq!(latest, workspace_version());
}

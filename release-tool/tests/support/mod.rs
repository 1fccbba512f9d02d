//! Where the tests find the repository and the release `scripts/release` wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `S3RS_RELEASE_DIR`, else `target/release-artifacts` (where `scripts/release` writes).
pub fn release_dir() -> PathBuf {
    std::env::var_os("S3RS_RELEASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target"))
                .join("release-artifacts")
        })
}

pub fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read(dir.join("manifest.json")).unwrap_or_else(|e| {
        panic!(
            "no release in {} ({e}): run scripts/release first",
            dir.display()
        )
    });
    serde_json::from_slice(&text).unwrap()
}

/// `git ARGS` run in `dir`; its standard output. Fails the test when git does.
pub fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

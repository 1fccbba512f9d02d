//! Two builds of one commit give the same bytes: the release `scripts/release` wrote from this
//! work tree, and `scripts/release` run again in a fresh clone at another path, with a target
//! directory of its own and the cargo home under another path (the same crate sources and
//! toolchain; nothing compiled is shared). A work tree with uncommitted changes is reproduced
//! by copying them into the clone.

mod support;

use std::path::Path;

use std::process::Command;
use support::git;

fn files(listing: &[u8]) -> impl Iterator<Item = String> + '_ {
    listing
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
}

#[test]
fn a_fresh_clone_builds_byte_identical_release_files() {
    let root = support::root().canonicalize().unwrap();
    let first = support::release_dir();
    let manifest = support::manifest(&first);
    let head = String::from_utf8(git(&root, &["rev-parse", "HEAD"])).unwrap();
    // The revision as scripts/release writes it for the work tree as it is now.
    let dirty = !git(&root, &["status", "--porcelain"]).is_empty();
    let revision = format!("{}{}", head.trim(), if dirty { "-dirty" } else { "" });
    assert_eq!(
        manifest["revision"].as_str().unwrap(),
        revision,
        "a stale release in {}: run scripts/release",
        first.display()
    );

    let scratch = tempfile::tempdir().unwrap();
    let clone = scratch
        .path()
        .join("elsewhere")
        .join("s3-result-store-clone");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-checkout"])
        .arg(&root)
        .arg(&clone)
        .status()
        .unwrap();
    assert!(status.success());
    git(&clone, &["checkout", "--quiet", "--detach", head.trim()]);
    // The work tree's uncommitted state, so that both builds are of the same sources.
    for file in files(&git(
        &root,
        &[
            "ls-files",
            "-z",
            "--modified",
            "--others",
            "--exclude-standard",
        ],
    )) {
        let from = root.join(&file);
        if from.is_file() {
            let to = clone.join(&file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
    }
    for file in files(&git(&root, &["ls-files", "-z", "--deleted"])) {
        let _ = std::fs::remove_file(clone.join(file));
    }

    // The cargo home under another name (a link to the same one, so nothing is downloaded
    // again): its path is in every dependency's panic locations until the build remaps it.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
    let other_cargo_home = scratch.path().join("another-cargo-home");
    std::os::unix::fs::symlink(&cargo_home, &other_cargo_home).unwrap();

    let second = scratch.path().join("second");
    let status = Command::new(clone.join("scripts/release"))
        .arg("--out")
        .arg(&second)
        .env("CARGO_TARGET_DIR", scratch.path().join("target"))
        .env("CARGO_HOME", &other_cargo_home)
        // This test's own build of the release tool (the same sources), rather than a
        // cold build of it and its dependencies in the clone.
        .env("S3RS_RELEASE_TOOL", env!("CARGO_BIN_EXE_s3rs-release"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/release in the clone: {status}");

    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&first), names(&second));
    let mut differ = Vec::new();
    for name in names(&first) {
        let (a, b) = (
            std::fs::read(first.join(&name)).unwrap(),
            std::fs::read(second.join(&name)).unwrap(),
        );
        println!(
            "{name}: {} and {} bytes, {}",
            a.len(),
            b.len(),
            if a == b { "identical" } else { "DIFFERENT" }
        );
        if a != b {
            differ.push(name);
        }
    }
    assert!(differ.is_empty(), "not reproducible: {differ:?}");
}

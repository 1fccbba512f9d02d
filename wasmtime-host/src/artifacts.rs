//! Where the components this host runs are found, and reading them: the one place that knows
//! the build's file layout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where `cargo build --release --target wasm32-wasip2` puts the component in this workspace,
/// unless `S3RS_COMPONENT` names another file.
pub fn default_component_path() -> PathBuf {
    workspace_artifact(
        "S3RS_COMPONENT",
        "wasm32-wasip2/release/s3_result_store.wasm",
    )
}

/// Where `scripts/build-components` puts the store-only build of the component
/// (`--no-default-features`: `result-store:s3/store` alone), in a target directory of its own,
/// unless `S3RS_COMPONENT_STORE_ONLY` names another file.
pub fn store_only_component_path() -> PathBuf {
    workspace_artifact(
        "S3RS_COMPONENT_STORE_ONLY",
        "store-only/wasm32-wasip2/release/s3_result_store.wasm",
    )
}

/// Where `scripts/compose` puts the example app composed with the store, unless
/// `S3RS_TASK_STATUS_COMPONENT` names another file.
pub fn default_task_status_path() -> PathBuf {
    workspace_artifact(
        "S3RS_TASK_STATUS_COMPONENT",
        "wasm32-wasip2/release/task-status.composed.wasm",
    )
}

/// The file `variable` names, else `path` under this workspace's target directory.
fn workspace_artifact(variable: &str, path: &str) -> PathBuf {
    match std::env::var_os(variable) {
        Some(file) => PathBuf::from(file),
        None => target_dir(std::env::var_os("CARGO_TARGET_DIR")).join(path),
    }
}

/// `CARGO_TARGET_DIR` when set, else the workspace's `target/`.
fn target_dir(cargo_target_dir: Option<OsString>) -> PathBuf {
    cargo_target_dir
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The workspace's root directory: this crate's parent, so that printed paths read
/// `.../target/...` rather than `.../wasmtime-host/../target/...`.
fn workspace_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// The bytes of the component at `path`; when it cannot be read, the error names the file and
/// says how to build it (`how_to_build`).
pub(crate) fn read_component(path: &Path, how_to_build: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::Runtime(wasmtime::Error::msg(format!(
            "cannot read the component {}: {e}; {how_to_build}",
            path.display()
        )))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Component;

    use super::*;

    #[test]
    fn the_default_target_dir_is_the_workspace_target_without_parent_steps() {
        let root = workspace_root();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"), "{}", root.display());
        let target = target_dir(None);
        assert_eq!(target, root.join("target"));
        assert!(target.is_absolute(), "{}", target.display());
        assert!(
            target.components().all(|c| c != Component::ParentDir),
            "{}",
            target.display()
        );
    }

    #[test]
    fn cargo_target_dir_is_taken_as_given() {
        assert_eq!(
            target_dir(Some("/elsewhere/target".into())),
            Path::new("/elsewhere/target")
        );
    }
}

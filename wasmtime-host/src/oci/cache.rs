//! Downloads kept on disk under their SHA-256 digest (`blobs/sha256/<hex>` for components,
//! `manifests/sha256/<hex>` for the manifests that name them), and checked against it each time
//! they are read: a file that no longer hashes to its name is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::OciError;

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Blob,
    Manifest,
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Where the file of `digest` is kept; `None` for a digest that is not `sha256:` and 64
/// lowercase hex digits (nothing else is cached, and nothing else can name a path).
pub(crate) fn path(dir: &Path, kind: Kind, digest: &str) -> Option<PathBuf> {
    let hex = digest.strip_prefix("sha256:")?;
    let well_formed = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let kind = match kind {
        Kind::Blob => "blobs",
        Kind::Manifest => "manifests",
    };
    well_formed.then(|| dir.join(kind).join("sha256").join(hex))
}

/// The cached bytes of `digest`, if there are any; an error if they no longer match it.
pub(crate) fn read(path: &Path, digest: &str) -> Result<Option<Vec<u8>>, OciError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cache_error(path, &e)),
    };
    let actual = sha256(&bytes);
    if actual != digest {
        return Err(OciError::CorruptCache {
            path: path.to_owned(),
            expected: digest.to_owned(),
            actual,
        });
    }
    Ok(Some(bytes))
}

/// Keeps `bytes` (already checked against their digest) at `path`, written whole or not at all.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| cache_error(dir, &e))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| cache_error(dir, &e))?;
    file.write_all(bytes).map_err(|e| cache_error(path, &e))?;
    file.persist(path)
        .map_err(|e| cache_error(path, &e.error))?;
    Ok(())
}

fn cache_error(path: &Path, e: &std::io::Error) -> OciError {
    OciError::Cache {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

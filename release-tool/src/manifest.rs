//! `manifest.json` (what each file is: flavour, size, digest, imports and exports) and
//! `SHA256SUMS` (`sha256sum -c` checks a download against it).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The release as a whole.
pub struct Release<'a> {
    pub version: &'a str,
    pub revision: &'a str,
    pub source: &'a str,
    pub licenses: &'a str,
    /// Tools and their versions (`rustc`, `wasm-opt`, `wac`): what a rebuild needs to match.
    pub built_with: &'a [(String, String)],
}

/// One file of the release: its name, bytes, and what the manifest says of it besides.
pub struct Entry {
    pub file: String,
    pub bytes: Vec<u8>,
    /// `kind`, `flavour`, `exports`... (size and digest are added).
    pub details: serde_json::Map<String, Value>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes every entry, then `SHA256SUMS` and `manifest.json`, into `dir`.
pub fn write(dir: &Path, release: &Release<'_>, entries: &[Entry]) -> Result<()> {
    let mut sums = String::new();
    let mut artifacts = Vec::new();
    for entry in entries {
        let path = dir.join(&entry.file);
        std::fs::write(&path, &entry.bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let digest = sha256_hex(&entry.bytes);
        writeln!(sums, "{digest}  {}", entry.file)?;
        let mut artifact = serde_json::Map::new();
        artifact.insert("file".into(), entry.file.clone().into());
        artifact.extend(entry.details.clone());
        artifact.insert("size".into(), entry.bytes.len().into());
        artifact.insert("sha256".into(), digest.into());
        artifacts.push(Value::Object(artifact));
    }
    let built_with: serde_json::Map<String, Value> = release
        .built_with
        .iter()
        .map(|(tool, version)| (tool.clone(), Value::from(version.as_str())))
        .collect();
    let manifest = json!({
        "name": "s3-result-store",
        "version": release.version,
        "revision": release.revision,
        "source": release.source,
        "licenses": release.licenses,
        "built_with": built_with,
        "artifacts": artifacts,
    });
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    std::fs::write(dir.join(crate::artifacts::SUMS_FILE), sums)?;
    std::fs::write(dir.join(crate::artifacts::MANIFEST_FILE), text)?;
    Ok(())
}

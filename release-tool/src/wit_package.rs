//! The WIT package as a binary (`wasm-tools component wit --wasm` makes the same kind of file):
//! what `wkg publish` publishes and `wkg get` or wac fetch.

use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_parser::Resolve;

/// The package encoded, with what the manifest says of it.
pub struct WitPackage {
    pub bytes: Vec<u8>,
    /// `result-store:s3@0.1.0`.
    pub id: String,
    pub version: Option<String>,
    pub interfaces: Vec<String>,
    pub worlds: Vec<String>,
}

/// Encodes the package in `dir` (its `deps/` are referred to, not included).
pub fn encode(dir: &Path) -> Result<WitPackage> {
    let mut resolve = Resolve::default();
    let (id, _) = resolve
        .push_dir(dir)
        .with_context(|| format!("cannot read the WIT package in {}", dir.display()))?;
    let bytes = wit_component::encode(&resolve, id).context("cannot encode the WIT package")?;
    let package = &resolve.packages[id];
    if package.name.version.is_none() {
        bail!("the WIT package {} has no version", package.name);
    }
    Ok(WitPackage {
        bytes,
        id: package.name.to_string(),
        version: package.name.version.as_ref().map(ToString::to_string),
        interfaces: package.interfaces.keys().cloned().collect(),
        worlds: package.worlds.keys().cloned().collect(),
    })
}

/// The package a binary WIT package holds, as `namespace:name@version`.
pub fn package_of(wasm: &[u8]) -> Result<String> {
    match wit_component::decode(wasm).context("not a binary WIT package")? {
        wit_component::DecodedWasm::WitPackage(resolve, id) => {
            Ok(resolve.packages[id].name.to_string())
        }
        wit_component::DecodedWasm::Component(..) => bail!("a component, not a WIT package"),
    }
}

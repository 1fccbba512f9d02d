//! The metadata each artifact carries, in the custom sections `wasm-tools metadata show` reads
//! and `wkg publish` turns into OCI annotations.

use anyhow::{Context, Result};
use wasm_metadata::{
    AddMetadata, AddMetadataField, Description, Licenses, Payload, Revision, Source, Version,
};

/// What is written into an artifact.
pub struct Stamp<'a> {
    /// The component's name; `None` for the WIT package, whose name is its package's.
    pub name: Option<&'a str>,
    pub version: &'a str,
    pub description: &'a str,
    /// An SPDX expression, as the workspace's `license`.
    pub licenses: &'a str,
    /// The source repository's URL.
    pub source: &'a str,
    /// The git commit it was built from.
    pub revision: &'a str,
}

/// `wasm` with `stamp` written into its outermost component (nested modules keep theirs).
pub fn stamp(wasm: &[u8], stamp: &Stamp<'_>) -> Result<Vec<u8>> {
    let mut add = AddMetadata::default();
    if let Some(name) = stamp.name {
        add.name = AddMetadataField::Set(name.to_owned());
    }
    add.version = AddMetadataField::Set(Version::new(stamp.version.to_owned()));
    add.description = AddMetadataField::Set(Description::new(stamp.description.to_owned()));
    add.licenses = AddMetadataField::Set(
        Licenses::new(stamp.licenses)
            .with_context(|| format!("{:?} is not an SPDX expression", stamp.licenses))?,
    );
    add.source = AddMetadataField::Set(
        Source::new(stamp.source).with_context(|| format!("{:?} is not a URL", stamp.source))?,
    );
    add.revision = AddMetadataField::Set(Revision::new(stamp.revision.to_owned()));
    add.to_wasm(wasm).context("cannot add metadata")
}

/// The metadata of the outermost component or module, as `wasm-tools metadata show` reads it.
pub fn read(wasm: &[u8]) -> Result<wasm_metadata::Metadata> {
    Ok(
        match Payload::from_binary(wasm).context("cannot read metadata")? {
            Payload::Component { metadata, .. } | Payload::Module(metadata) => metadata,
        },
    )
}

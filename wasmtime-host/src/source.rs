//! Where a component comes from: a file, or an OCI registry (`oci://...`), for the library's
//! loaders and the CLI's `--component`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::engine::RuntimeOptions;
use crate::error::Error;
use crate::oci::{OCI_SCHEME, OciCache, OciReference};
use crate::{ProxyServer, Runtime};

/// A component file, or an artifact in an OCI registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComponentSource {
    File(PathBuf),
    Oci(OciReference),
}

impl ComponentSource {
    /// `oci://REGISTRY/REPOSITORY[:TAG][@DIGEST]` is a reference (an error if it is not a
    /// well-formed one); anything else is a path.
    pub fn parse(arg: impl Into<PathBuf>) -> Result<ComponentSource, Error> {
        let path = arg.into();
        match path.to_str() {
            Some(text) if text.starts_with(OCI_SCHEME) => {
                Ok(ComponentSource::Oci(OciReference::parse(text)?))
            }
            _ => Ok(ComponentSource::File(path)),
        }
    }

    /// The component's bytes: read from the file, or pulled through `cache` (checked against
    /// their digest either way they come).
    pub fn read(&self, cache: &OciCache) -> Result<Vec<u8>, Error> {
        match self {
            ComponentSource::File(path) => std::fs::read(path).map_err(|e| {
                Error::Runtime(wasmtime::Error::msg(format!(
                    "cannot read the component {}: {e}",
                    path.display()
                )))
            }),
            ComponentSource::Oci(reference) => Ok(cache.pull(reference)?.bytes),
        }
    }

    /// A file holding the component: the file itself, or the cache's copy of the artifact
    /// (pulled if need be, and checked against its digest now). For what only takes a path.
    pub fn local_file(&self, cache: &OciCache) -> Result<PathBuf, Error> {
        match self {
            ComponentSource::File(path) => Ok(path.clone()),
            ComponentSource::Oci(reference) => Ok(cache.pull(reference)?.path),
        }
    }
}

impl From<&Path> for ComponentSource {
    fn from(path: &Path) -> ComponentSource {
        ComponentSource::File(path.to_owned())
    }
}

impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(path) => path.display().fmt(f),
            ComponentSource::Oci(reference) => reference.fmt(f),
        }
    }
}

impl Runtime {
    /// [`Runtime::load_with`] from a file or an OCI registry (through the default
    /// [`OciCache`]).
    pub fn load_source(
        source: &ComponentSource,
        options: &RuntimeOptions,
    ) -> Result<Runtime, Error> {
        match source {
            ComponentSource::File(path) => Runtime::load_with(path, options),
            ComponentSource::Oci(_) => {
                Runtime::from_bytes_with(&source.read(&OciCache::default())?, options)
            }
        }
    }
}

impl ProxyServer {
    /// [`ProxyServer::load_with`] from a file or an OCI registry (through the default
    /// [`OciCache`]).
    pub fn load_source(
        source: &ComponentSource,
        options: &RuntimeOptions,
    ) -> Result<ProxyServer, Error> {
        match source {
            ComponentSource::File(path) => ProxyServer::load_with(path, options),
            ComponentSource::Oci(reference) => ProxyServer::from_bytes_with(
                &source.read(&OciCache::default())?,
                &reference.to_string(),
                options,
            ),
        }
    }
}
